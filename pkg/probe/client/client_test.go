package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/probe/server"
)

func TestClassify(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	for _, tc := range []struct {
		err  error
		want probe.Outcome
	}{
		{nil, probe.Connected},
		{op(syscall.ECONNREFUSED), probe.Refused},
		{op(syscall.EHOSTUNREACH), probe.Unreachable},
		{op(syscall.ENETUNREACH), probe.Unreachable},
		{op(syscall.ETIMEDOUT), probe.Timeout},
		{op(syscall.ECONNRESET), probe.Reset},
		{fmt.Errorf("Get: %w", io.EOF), probe.Reset},
		{&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, probe.DNSError},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "timeout", IsTimeout: true}}, probe.DNSError},
		{context.DeadlineExceeded, probe.Timeout},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), probe.Timeout},
		{errors.New("something else"), probe.Other},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestHTTPFreshConnectionsAndAttribution(t *testing.T) {
	var conns atomic.Int32
	var sawHost atomic.Value
	h := (&server.Server{Pod: "backend-1"}).Handler()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHost.Store(r.Host)
		h.ServeHTTP(w, r)
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	defer ts.Close()

	res, err := HTTP(context.Background(), probe.HTTPOptions{URL: ts.URL + "/", Count: 5, Timeout: 2 * time.Second, Host: "hello.test.com"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 5 || res.OK != 5 || res.Pods["backend-1"] != 5 || res.Statuses["200"] != 5 || res.Latency.N != 5 || len(res.Errors) != 0 {
		t.Errorf("result %+v", res)
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("%d connections for 5 requests; want a fresh one each", n)
	}
	if sawHost.Load() != "hello.test.com" {
		t.Errorf("server saw Host %v", sawHost.Load())
	}

	res, err = HTTP(context.Background(), probe.HTTPOptions{URL: ts.URL + "/ignored", Path: "/clientip", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.ClientIPs, map[string][]string{"backend-1": {"127.0.0.1"}}) || res.OK != 3 {
		t.Errorf("clientip result %+v", res)
	}

	// /hostname answers in plain text; the header still names the pod.
	res, _ = HTTP(context.Background(), probe.HTTPOptions{URL: ts.URL + "/hostname", Count: 1})
	if res.Pods["backend-1"] != 1 || res.OK != 1 {
		t.Errorf("hostname result %+v", res)
	}
}

func TestHTTPForeignAnswerIsNotOK(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hello from the host")
	}))
	defer ts.Close()
	res, err := HTTP(context.Background(), probe.HTTPOptions{URL: ts.URL, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Unattributed != 2 || len(res.Pods) != 0 || res.Statuses["200"] != 2 {
		t.Errorf("result %+v", res)
	}
}

func closedPort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		return addr
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestHTTPErrorsClassified(t *testing.T) {
	res, err := HTTP(context.Background(), probe.HTTPOptions{URL: "http://" + closedPort(t, "tcp") + "/", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 3 || res.Errors[probe.Refused] != 3 || res.ErrorSamples[probe.Refused] == "" {
		t.Errorf("refused: %+v", res)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	res, _ = HTTP(context.Background(), probe.HTTPOptions{URL: slow.URL, Count: 1, Timeout: 100 * time.Millisecond})
	if res.Errors[probe.Timeout] != 1 {
		t.Errorf("timeout: %+v", res)
	}

	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer hangup.Close()
	res, _ = HTTP(context.Background(), probe.HTTPOptions{URL: hangup.URL, Count: 1})
	if res.Errors[probe.Reset] != 1 {
		t.Errorf("hang-up: %+v", res)
	}

	if _, err := HTTP(context.Background(), probe.HTTPOptions{URL: "backend-service:3000"}); err == nil {
		t.Error("relative URL accepted")
	}
}

func TestConnectTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	res, err := Connect(context.Background(), probe.ConnectOptions{Addr: l.Addr().String(), Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Proto != "tcp" || res.Outcomes[probe.Connected] != 3 || len(res.Attempts) != 3 || res.Timing[probe.Connected].N != 3 {
		t.Errorf("connected: %+v", res)
	}
	res, _ = Connect(context.Background(), probe.ConnectOptions{Addr: closedPort(t, "tcp"), Count: 2})
	if res.Outcomes[probe.Refused] != 2 || res.Attempts[0].Error == "" {
		t.Errorf("refused: %+v", res)
	}
	for _, bad := range []probe.ConnectOptions{{Addr: "nope"}, {Addr: "a:1", Proto: "sctp"}} {
		if _, err := Connect(context.Background(), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestConnectUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go (&server.Server{Pod: "udp-1"}).ServeUDP(pc)
	res, err := Connect(context.Background(), probe.ConnectOptions{Addr: pc.LocalAddr().String(), Proto: "udp", Count: 2, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcomes[probe.Connected] != 2 || res.Pods["udp-1"] != 2 || res.Attempts[0].Pod != "udp-1" {
		t.Errorf("answered: %+v", res)
	}

	// ICMP port unreachable on loopback comes back as ECONNREFUSED.
	res, _ = Connect(context.Background(), probe.ConnectOptions{Addr: closedPort(t, "udp"), Proto: "udp", Timeout: time.Second})
	if res.Outcomes[probe.Refused] != 1 {
		t.Errorf("closed port: %+v", res)
	}

	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	res, _ = Connect(context.Background(), probe.ConnectOptions{Addr: silent.LocalAddr().String(), Proto: "udp", Timeout: 150 * time.Millisecond})
	if res.Outcomes[probe.Timeout] != 1 || res.Attempts[0].Ms < 140 {
		t.Errorf("silent: %+v", res)
	}

	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, peer, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], peer)
		}
	}()
	res, _ = Connect(context.Background(), probe.ConnectOptions{Addr: echo.LocalAddr().String(), Proto: "udp", Timeout: time.Second})
	if res.Outcomes[probe.Other] != 1 || len(res.Pods) != 0 {
		t.Errorf("echo: %+v", res)
	}
}

func TestConnectUDPFromOneSourcePort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	peers := make(chan int, 3)
	go func() {
		buf := make([]byte, 512)
		for {
			_, peer, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			peers <- peer.(*net.UDPAddr).Port
			reply, _ := json.Marshal(probe.ClientIPAnswer{Pod: "udp-1"})
			pc.WriteTo(reply, peer)
		}
	}()
	port := freeUDPPort(t)
	res, err := Connect(context.Background(), probe.ConnectOptions{Addr: pc.LocalAddr().String(), Proto: "udp", Count: 3, Timeout: time.Second, SourcePort: port})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcomes[probe.Connected] != 3 || res.SourcePort != port {
		t.Fatalf("%+v", res)
	}
	for range 3 {
		if got := <-peers; got != port {
			t.Errorf("an attempt came from port %d, want %d", got, port)
		}
	}
	if _, err := Connect(context.Background(), probe.ConnectOptions{Addr: pc.LocalAddr().String(), Proto: "udp", SourcePort: 70000}); err == nil {
		t.Error("source port 70000 accepted")
	}
}

// freeUDPPort is a local UDP port nothing holds (it was free a moment ago).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
