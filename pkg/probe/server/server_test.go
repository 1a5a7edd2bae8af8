package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netconform/netconform/pkg/probe"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHTTPAnswersNameThePod(t *testing.T) {
	ts := httptest.NewServer((&Server{Pod: "backend-7d9f-abcde"}).Handler())
	defer ts.Close()

	for _, path := range []string{"/", "/job", "/world/anything"} {
		resp, body := get(t, ts.URL+path)
		var a probe.JobAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("%s: %q: %v", path, body, err)
		}
		if a.Pod != "backend-7d9f-abcde" || !slices.Contains(jobs, a.Job) {
			t.Errorf("%s: %+v", path, a)
		}
		if resp.Header.Get(PodHeader) != "backend-7d9f-abcde" {
			t.Errorf("%s: header %q", path, resp.Header.Get(PodHeader))
		}
	}

	_, body := get(t, ts.URL+"/hostname")
	if strings.TrimSpace(body) != "backend-7d9f-abcde" {
		t.Errorf("/hostname %q", body)
	}
	resp, body := get(t, ts.URL+"/healthz")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz %d %q", resp.StatusCode, body)
	}

	_, body = get(t, ts.URL+"/clientip")
	var c probe.ClientIPAnswer
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	if c.Pod != "backend-7d9f-abcde" || c.IP != "127.0.0.1" || c.Port == 0 {
		t.Errorf("/clientip %+v", c)
	}
}

func TestUDPAnswers(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Pod: "p1"}
	done := make(chan error)
	go func() { done <- s.ServeUDP(pc) }()

	conn, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func(q string) string {
		t.Helper()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte(q)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if got := ask("hostname\n"); got != "p1" {
		t.Errorf("hostname: %q", got)
	}
	var c probe.ClientIPAnswer
	if err := json.Unmarshal([]byte(ask("clientip")), &c); err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	if c.Pod != "p1" || c.IP != "127.0.0.1" || c.Port != local.Port {
		t.Errorf("clientip %+v, local %v", c, local)
	}
	if got := ask("what"); !strings.Contains(got, `"pod":"p1"`) {
		t.Errorf("unknown request answered %q", got)
	}
	pc.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeUDP after close: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestRunServesAllPortsAndStops(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Pod: "multi"}
	done := make(chan error)
	go func() { done <- s.Run(ctx, Options{HTTPPorts: []int{p1, p2}, Grace: time.Second}) }()

	for _, p := range []int{p1, p2} {
		url := "http://127.0.0.1:" + strconv.Itoa(p) + "/hostname"
		var err error
		for range 50 {
			var resp *http.Response
			if resp, err = http.Get(url); err == nil {
				resp.Body.Close()
				if resp.Header.Get(PodHeader) != "multi" {
					t.Errorf("port %d: header %q", p, resp.Header.Get(PodHeader))
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("port %d never answered: %v", p, err)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestRunFailsOnBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	err = (&Server{Pod: "x"}).Run(context.Background(), Options{HTTPPorts: []int{port}})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(port)) {
		t.Errorf("Run on busy port: %v", err)
	}
}

func TestParsePorts(t *testing.T) {
	got, err := ParsePorts("3000, 8080,,5678")
	if err != nil || !slices.Equal(got, []int{3000, 8080, 5678}) {
		t.Errorf("%v %v", got, err)
	}
	if got, err := ParsePorts(""); err != nil || got != nil {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"http", "70000", "-1"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPodName(t *testing.T) {
	t.Setenv("POD_NAME", "from-env")
	if PodName() != "from-env" {
		t.Error(PodName())
	}
	t.Setenv("POD_NAME", "")
	if PodName() == "" {
		t.Error("no fallback to hostname")
	}
}
