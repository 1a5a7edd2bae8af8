package iptables

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// syntheticService is one Service of a generated dump.
type syntheticService struct {
	portName  string // servicePortName
	clusterIP netip.Addr
	nodePort  uint16
	endpoints []netip.AddrPort
}

// syntheticDump writes an iptables-save dump shaped like kube-proxy's for n
// single-port TCP Services: service i has 1 + i%3 endpoints, every fifth is
// a NodePort. Chain names are the real hashes, comments and rule order are
// kube-proxy's, so parsing and tracing it costs what a real node's would.
func syntheticDump(n int) (string, []syntheticService) {
	svcs := make([]syntheticService, n)
	for i := range svcs {
		s := &svcs[i]
		s.portName = ServicePortName("bench", fmt.Sprintf("svc-%d", i), "http")
		s.clusterIP = netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		if i%5 == 0 {
			s.nodePort = uint16(30000 + i/5)
		}
		for e := 0; e <= i%3; e++ {
			k := i*3 + e
			s.endpoints = append(s.endpoints, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, byte(k >> 8), byte(k)}), 8080))
		}
	}

	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
		":KUBE-EXTERNAL-SERVICES - [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-FORWARD - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\n:KUBE-SERVICES - [0:0]\n" +
		`-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
`)
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
		":KUBE-MARK-MASQ - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-SERVICES - [0:0]\n")
	for _, s := range svcs {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ServiceChainName(PrefixService, s.portName, "tcp"))
		if s.nodePort != 0 {
			fmt.Fprintf(&b, ":%s - [0:0]\n", ServiceChainName(PrefixExternal, s.portName, "tcp"))
		}
		for _, e := range s.endpoints {
			fmt.Fprintf(&b, ":%s - [0:0]\n", EndpointChainName(s.portName, "tcp", e.String()))
		}
	}
	b.WriteString(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
`)
	for _, s := range svcs {
		svc := ServiceChainName(PrefixService, s.portName, "tcp")
		fmt.Fprintf(&b, "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport 80 -j %s\n", s.clusterIP, s.portName, svc)
		if s.nodePort != 0 {
			ext := ServiceChainName(PrefixExternal, s.portName, "tcp")
			fmt.Fprintf(&b, "-A KUBE-NODEPORTS -p tcp -m comment --comment \"%s\" -m tcp --dport %d -j %s\n", s.portName, s.nodePort, ext)
			fmt.Fprintf(&b, "-A %s -m comment --comment \"masquerade traffic for %s external destinations\" -j KUBE-MARK-MASQ\n-A %s -j %s\n", ext, s.portName, ext, svc)
		}
		fmt.Fprintf(&b, "-A %s ! -s 10.244.0.0/16 -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n", svc, s.clusterIP, s.portName)
		for j, e := range s.endpoints {
			sep := EndpointChainName(s.portName, "tcp", e.String())
			stat := ""
			if left := len(s.endpoints) - j; left > 1 {
				stat = fmt.Sprintf(" -m statistic --mode random --probability %.11f", 1/float64(left))
			}
			fmt.Fprintf(&b, "-A %s -m comment --comment \"%s -> %s\"%s -j %s\n", svc, s.portName, e, stat, sep)
			fmt.Fprintf(&b, "-A %s -s %s/32 -m comment --comment \"%s\" -j KUBE-MARK-MASQ\n", sep, e.Addr(), s.portName)
			fmt.Fprintf(&b, "-A %s -p tcp -m comment --comment \"%s\" -m tcp -j DNAT --to-destination %s\n", sep, s.portName, e)
		}
	}
	b.WriteString("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\nCOMMIT\n")
	return b.String(), svcs
}

// benchServices is the size the benchmark and docs/benchmarks.md quote.
const benchServices = 5000

// TestSyntheticDumpTraces checks the generator's output is what the
// benchmark claims: every Service spreads evenly over its endpoints.
func TestSyntheticDumpTraces(t *testing.T) {
	dump, svcs := syntheticDump(300)
	rs, err := ParseString(dump)
	if err != nil {
		t.Fatal(err)
	}
	if f := CheckNode(rs); len(f) != 0 {
		t.Errorf("synthetic dump misses node-wide rules: %v", f)
	}
	tr := NewTracer(rs, []netip.Addr{netip.MustParseAddr("172.18.0.3")})
	for _, i := range []int{0, 1, 2, 299} {
		s := svcs[i]
		res, err := tr.Trace(dataplane.Packet{Src: netip.MustParseAddr("10.244.200.1"), Dst: s.clusterIP, Proto: "tcp", DPort: 80, From: dataplane.FromPod})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Destinations) != len(s.endpoints) {
			t.Fatalf("service %d: %d destinations, want %d", i, len(res.Destinations), len(s.endpoints))
		}
		for j, d := range res.Destinations {
			if netip.AddrPortFrom(d.IP, d.Port) != s.endpoints[j] || math.Abs(d.Probability-1/float64(len(s.endpoints))) > 1e-9 {
				t.Errorf("service %d destination %d = %+v, want %s at 1/%d", i, j, d, s.endpoints[j], len(s.endpoints))
			}
		}
	}
	// A NodePort of the synthetic dump, from outside.
	res, err := tr.Trace(dataplane.Packet{Src: netip.MustParseAddr("192.168.0.9"), Dst: netip.MustParseAddr("172.18.0.3"), Proto: "tcp", DPort: svcs[295].nodePort, From: dataplane.FromExternal})
	if err != nil || len(res.Destinations) != len(svcs[295].endpoints) || !res.Destinations[0].Masquerade {
		t.Errorf("NodePort trace = %+v, %v", res, err)
	}
}

// BenchmarkParseAndTrace parses a 5,000-Service dump and traces one packet
// to the Service whose ClusterIP rule is last in KUBE-SERVICES (the worst
// case of the linear walk). The sub-benchmarks split the two costs.
func BenchmarkParseAndTrace(b *testing.B) {
	dump, svcs := syntheticDump(benchServices)
	last := svcs[len(svcs)-1]
	p := dataplane.Packet{Src: netip.MustParseAddr("10.244.200.1"), Dst: last.clusterIP, Proto: "tcp", DPort: 80, From: dataplane.FromPod}
	nodeIPs := []netip.Addr{netip.MustParseAddr("172.18.0.3")}
	b.Logf("dump: %d bytes, %d lines", len(dump), strings.Count(dump, "\n"))

	b.Run("parse+trace", func(b *testing.B) {
		b.SetBytes(int64(len(dump)))
		for b.Loop() {
			rs, err := ParseString(dump)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := NewTracer(rs, nodeIPs).Trace(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	rs, err := ParseString(dump)
	if err != nil {
		b.Fatal(err)
	}
	tr := NewTracer(rs, nodeIPs)
	b.Run("trace", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.Trace(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
