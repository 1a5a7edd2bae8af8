package client

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/netconform/netconform/pkg/probe"
)

// fakeDNS is a cluster DNS server on loopback with a handful of records. It
// remembers the names it was asked, in order, so tests can check the search
// list walk.
type fakeDNS struct {
	mu    sync.Mutex
	asked []string
}

const zone = `
backend-service.ns1.svc.cluster.local. 30 IN A 10.96.0.20
only-v4.ns1.svc.cluster.local. 30 IN A 10.96.0.21
_http._tcp.backend-service.ns1.svc.cluster.local. 30 IN SRV 0 100 3000 backend-service.ns1.svc.cluster.local.
20.0.96.10.in-addr.arpa. 30 IN PTR backend-service.ns1.svc.cluster.local.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.0.0.0.0.0.d.f.ip6.arpa. 30 IN PTR v6.ns1.svc.cluster.local.
example.com. 300 IN A 192.0.2.7
`

func (f *fakeDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	f.mu.Lock()
	f.asked = append(f.asked, q.Name)
	f.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	known := false
	zp := dns.NewZoneParser(strings.NewReader(zone), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if !strings.EqualFold(rr.Header().Name, q.Name) {
			continue
		}
		known = true
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	if q.Name == "big.ns1.svc.cluster.local." {
		known = true
		for i := range 40 {
			rr, _ := dns.NewRR("big.ns1.svc.cluster.local. 30 IN A 10.1.0." + strconv.Itoa(i+1))
			m.Answer = append(m.Answer, rr)
		}
		if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
			m.Answer, m.Truncated = nil, true
		}
	}
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

func (f *fakeDNS) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.asked
	f.asked = nil
	return a
}

// start serves f over UDP and TCP on 127.0.0.1 at one port, and leaves a
// silent UDP socket on 127.0.0.2 at the same port to stand for a dead
// nameserver.
func (f *fakeDNS) start(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			pc.Close()
			continue
		}
		dead, err := net.ListenPacket("udp", "127.0.0.2:"+port)
		if err != nil {
			pc.Close()
			l.Close()
			continue
		}
		udp := &dns.Server{PacketConn: pc, Handler: f}
		tcp := &dns.Server{Listener: l, Handler: f}
		go udp.ActivateAndServe()
		go tcp.ActivateAndServe()
		t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown(); dead.Close() })
		return port
	}
	t.Fatal("no port free for UDP and TCP together")
	return ""
}

func clientConfig(t *testing.T, port, resolvConf string) *dns.ClientConfig {
	t.Helper()
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte(resolvConf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := dns.ClientConfigFromFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = port
	return cfg
}

const podResolvConf = "search ns1.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5\n"

func TestDNSSearchExpansion(t *testing.T) {
	f := &fakeDNS{}
	cfg := clientConfig(t, f.start(t), podResolvConf)
	ctx := context.Background()

	for _, tc := range []struct {
		name, typ string
		answered  string
		rcode     string
		asked     []string
		answers   []probe.DNSAnswer
	}{
		{
			name: "backend-service", typ: "A", answered: "backend-service.ns1.svc.cluster.local.", rcode: "NOERROR",
			asked:   []string{"backend-service.ns1.svc.cluster.local."},
			answers: []probe.DNSAnswer{{Name: "backend-service.ns1.svc.cluster.local.", Type: "A", TTL: 30, Address: "10.96.0.20"}},
		},
		{
			// One dot < ndots 5: the search list first, ns1 matches on
			// the second suffix.
			name: "backend-service.ns1", typ: "A", answered: "backend-service.ns1.svc.cluster.local.", rcode: "NOERROR",
			asked:   []string{"backend-service.ns1.ns1.svc.cluster.local.", "backend-service.ns1.svc.cluster.local."},
			answers: []probe.DNSAnswer{{Name: "backend-service.ns1.svc.cluster.local.", Type: "A", TTL: 30, Address: "10.96.0.20"}},
		},
		{
			// The classic ndots:5 cost: every suffix is asked before
			// the name itself.
			name: "example.com", typ: "A", answered: "example.com.", rcode: "NOERROR",
			asked:   []string{"example.com.ns1.svc.cluster.local.", "example.com.svc.cluster.local.", "example.com.cluster.local.", "example.com."},
			answers: []probe.DNSAnswer{{Name: "example.com.", Type: "A", TTL: 300, Address: "192.0.2.7"}},
		},
		{
			name: "example.com.", typ: "A", answered: "example.com.", rcode: "NOERROR",
			asked:   []string{"example.com."},
			answers: []probe.DNSAnswer{{Name: "example.com.", Type: "A", TTL: 300, Address: "192.0.2.7"}},
		},
		{
			name: "_http._tcp.backend-service", typ: "SRV", answered: "_http._tcp.backend-service.ns1.svc.cluster.local.", rcode: "NOERROR",
			asked:   []string{"_http._tcp.backend-service.ns1.svc.cluster.local."},
			answers: []probe.DNSAnswer{{Name: "_http._tcp.backend-service.ns1.svc.cluster.local.", Type: "SRV", TTL: 30, Priority: 0, Weight: 100, Port: 3000, Target: "backend-service.ns1.svc.cluster.local."}},
		},
		{
			name: "10.96.0.20", typ: "ptr", answered: "20.0.96.10.in-addr.arpa.", rcode: "NOERROR",
			asked:   []string{"20.0.96.10.in-addr.arpa."},
			answers: []probe.DNSAnswer{{Name: "20.0.96.10.in-addr.arpa.", Type: "PTR", TTL: 30, Target: "backend-service.ns1.svc.cluster.local."}},
		},
		{
			name: "fd00:d::1", typ: "PTR", answered: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.0.0.0.0.0.d.f.ip6.arpa.", rcode: "NOERROR",
			asked:   []string{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.0.0.0.0.0.d.f.ip6.arpa."},
			answers: []probe.DNSAnswer{{Name: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.0.0.0.0.0.d.f.ip6.arpa.", Type: "PTR", TTL: 30, Target: "v6.ns1.svc.cluster.local."}},
		},
		{
			// NODATA on the first suffix: the walk goes on (as glibc
			// does), and the result reports NOERROR for the name that
			// exists rather than the last NXDOMAIN.
			name: "only-v4", typ: "AAAA", answered: "only-v4.ns1.svc.cluster.local.", rcode: "NOERROR",
			asked:   []string{"only-v4.ns1.svc.cluster.local.", "only-v4.svc.cluster.local.", "only-v4.cluster.local.", "only-v4."},
			answers: []probe.DNSAnswer{},
		},
		{
			name: "missing", typ: "A", answered: "missing.", rcode: "NXDOMAIN",
			asked:   []string{"missing.ns1.svc.cluster.local.", "missing.svc.cluster.local.", "missing.cluster.local.", "missing."},
			answers: []probe.DNSAnswer{},
		},
	} {
		res, err := DNS(ctx, cfg, probe.DNSOptions{Name: tc.name, Type: tc.typ, Count: 2})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.name, tc.typ, err)
		}
		asked := f.take()
		if len(res.Queries) != 2 {
			t.Fatalf("%s: %d queries", tc.name, len(res.Queries))
		}
		q := res.Queries[0]
		if q.Name != tc.answered || q.Rcode != tc.rcode || q.Error != "" {
			t.Errorf("%s %s: answered by %q %s (%s), want %q %s", tc.name, tc.typ, q.Name, q.Rcode, q.Error, tc.answered, tc.rcode)
		}
		if !reflect.DeepEqual(q.Answers, tc.answers) {
			t.Errorf("%s %s: answers %+v, want %+v", tc.name, tc.typ, q.Answers, tc.answers)
		}
		if want := append(append([]string{}, tc.asked...), tc.asked...); !reflect.DeepEqual(asked, want) {
			t.Errorf("%s %s: server was asked %q, want %q", tc.name, tc.typ, asked, want)
		}
		if len(q.Tried) != len(tc.asked) {
			t.Errorf("%s: tried %+v", tc.name, q.Tried)
		}
	}
}

func TestDNSReportsResolvConf(t *testing.T) {
	f := &fakeDNS{}
	cfg := clientConfig(t, f.start(t), podResolvConf)
	res, err := DNS(context.Background(), cfg, probe.DNSOptions{Name: "backend-service"})
	if err != nil {
		t.Fatal(err)
	}
	want := probe.ResolvConf{Nameservers: []string{"127.0.0.1"}, Search: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Ndots: 5, Timeout: 5, Attempts: 2}
	if !reflect.DeepEqual(res.ResolvConf, want) || res.Type != "A" || res.Name != "backend-service" || len(res.Queries) != 1 {
		t.Errorf("result %+v", res)
	}
}

func TestDNSTruncatedRetriesOverTCP(t *testing.T) {
	f := &fakeDNS{}
	cfg := clientConfig(t, f.start(t), podResolvConf)
	res, err := DNS(context.Background(), cfg, probe.DNSOptions{Name: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if q := res.Queries[0]; q.Rcode != "NOERROR" || len(q.Addresses()) != 40 {
		t.Errorf("query %+v", q)
	}
}

func TestDNSDeadNameserverFallsThrough(t *testing.T) {
	f := &fakeDNS{}
	port := f.start(t)
	cfg := clientConfig(t, port, "search ns1.svc.cluster.local\nnameserver 127.0.0.2\nnameserver 127.0.0.1\noptions ndots:5 attempts:1\n")
	res, err := DNS(context.Background(), cfg, probe.DNSOptions{Name: "backend-service", Timeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q := res.Queries[0]
	if q.Rcode != "NOERROR" || q.Tried[0].Server != "127.0.0.1:"+port || q.Ms < 140 {
		t.Errorf("query %+v", q)
	}

	cfg = clientConfig(t, port, "nameserver 127.0.0.2\noptions attempts:2\n")
	res, _ = DNS(context.Background(), cfg, probe.DNSOptions{Name: "example.com", Timeout: 100 * time.Millisecond})
	q = res.Queries[0]
	if q.Error == "" || q.Rcode != "" || q.Name != "example.com." || len(q.Tried) != 1 {
		t.Errorf("dead server: %+v", q)
	}
}

func TestDNSBadInput(t *testing.T) {
	cfg := &dns.ClientConfig{Servers: []string{"127.0.0.1"}, Port: "53", Ndots: 1, Attempts: 1, Timeout: 1}
	for _, o := range []probe.DNSOptions{{Name: "x", Type: "BOGUS"}, {Type: "A"}} {
		if _, err := DNS(context.Background(), cfg, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := DNS(context.Background(), &dns.ClientConfig{}, probe.DNSOptions{Name: "x"}); err == nil {
		t.Error("no nameservers accepted")
	}
}
