package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netconform/netconform/pkg/probe"
)

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// decode reads stdout strictly, as the suite's helpers do.
func decode(t *testing.T, out []byte, into any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
}

func TestServeAndProbeThroughTheCommandLine(t *testing.T) {
	t.Setenv("POD_NAME", "cli-pod")
	hp1, hp2, up := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int)
	var serveErr bytes.Buffer
	go func() {
		served <- run(ctx, []string{"serve", "--http-ports", strconv.Itoa(hp1) + "," + strconv.Itoa(hp2), "--udp-ports", strconv.Itoa(up)}, &bytes.Buffer{}, &serveErr)
	}()

	probeCmd := func(args ...string) []byte {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errb.String())
		}
		return out.Bytes()
	}
	// Wait for the server with the probe itself.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var c probe.ConnectResult
		decode(t, probeCmd("connect", "--addr", "127.0.0.1:"+strconv.Itoa(hp2), "--timeout", "200ms"), &c)
		if c.Outcomes[probe.Connected] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never came up: %s", serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	var h probe.HTTPResult
	decode(t, probeCmd(probe.HTTPOptions{URL: "http://127.0.0.1:" + strconv.Itoa(hp1) + "/", Path: "/clientip", Count: 4}.Args()...), &h)
	if h.OK != 4 || h.Pods["cli-pod"] != 4 || h.ClientIPs["cli-pod"][0] != "127.0.0.1" {
		t.Errorf("http: %+v", h)
	}

	var c probe.ConnectResult
	decode(t, probeCmd(probe.ConnectOptions{Addr: "127.0.0.1:" + strconv.Itoa(up), Proto: "udp", Count: 2}.Args()...), &c)
	if c.Outcomes[probe.Connected] != 2 || c.Pods["cli-pod"] != 2 {
		t.Errorf("udp: %+v", c)
	}

	cancel()
	select {
	case code := <-served:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, serveErr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
}

func TestDNSCommandReadsResolvConf(t *testing.T) {
	// A nameserver nobody answers on: the command still succeeds and
	// reports the configuration it read and the failure it met.
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("nameserver 127.0.0.1\nsearch a.svc.cluster.local\noptions ndots:3 attempts:1\n"), 0o644)
	var out, errb bytes.Buffer
	// Port 53 on loopback is most likely closed: refused, quickly.
	code := run(context.Background(), []string{"dns", "--name", "x", "--resolv-conf", p, "--timeout", "200ms"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var d probe.DNSResult
	decode(t, out.Bytes(), &d)
	if d.ResolvConf.Ndots != 3 || d.ResolvConf.Search[0] != "a.svc.cluster.local" || len(d.Queries) != 1 {
		t.Errorf("dns: %+v", d)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"http", "--bogus"},
		{"http", "--url", "http://x/", "extra"},
		{"http", "--url", "not-a-url"},
		{"connect", "--addr", "a:1", "--proto", "sctp"},
		{"serve", "--http-ports", "eighty"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 || errb.Len() == 0 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"dns", "--name", "x", "--resolv-conf", "/nonexistent"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "resolver configuration") {
		t.Errorf("missing resolv.conf: exit %d %q", code, errb.String())
	}
}
