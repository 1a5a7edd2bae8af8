package iptables

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// natFilter wraps nat and filter rule lines in a minimal dump. Chains used
// by the lines must be declared in the extra declarations.
func natFilter(natDecl, natRules, filterDecl, filterRules string) string {
	return "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
		natDecl + natRules + "COMMIT\n" +
		"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
		filterDecl + filterRules + "COMMIT\n"
}

func tracerFor(t *testing.T, dump string) *Tracer {
	t.Helper()
	rs, err := ParseString(dump)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return NewTracer(rs, []netip.Addr{netip.MustParseAddr("192.0.2.1")})
}

func TestTraceEngineSemantics(t *testing.T) {
	pod := func(dst string, port uint16) dataplane.Packet {
		return pkt(dataplane.FromPod, "10.0.0.5", dst, "tcp", port)
	}
	for _, tc := range []struct {
		traceCase
		dump string
	}{
		{
			// Nested statistic rules split the remaining mass: 0.25, then
			// 0.5 of 0.75, then the rest; a goto'd chain's RETURN returns
			// from its caller too, so the rule after the -g is not reached.
			dump: natFilter(":A - [0:0]\n:B - [0:0]\n",
				"-A PREROUTING -d 10.96.0.1/32 -g A\n"+
					"-A PREROUTING -j DNAT --to-destination 9.9.9.9:1\n"+
					"-A A -m statistic --mode random --probability 0.25 -j DNAT --to-destination 10.1.0.1:80\n"+
					"-A A -m statistic --mode random --probability 0.5 -j B\n"+
					"-A A -j DNAT --to-destination 10.1.0.3\n"+
					"-A B -j DNAT --to-destination 10.1.0.2:8080\n", "", ""),
			traceCase: traceCase{name: "split and goto", pkt: pod("10.96.0.1", 80), verdict: dataplane.Accept, dests: []wantDest{
				{"10.1.0.1", 80, 0.25, false, []string{"nat/PREROUTING", "A", "filter/FORWARD", "nat/POSTROUTING"}},
				{"10.1.0.2", 8080, 0.375, false, []string{"nat/PREROUTING", "A", "B", "filter/FORWARD", "nat/POSTROUTING"}},
				{"10.1.0.3", 80, 0.375, false, nil}, // DNAT without a port keeps it
			}},
		},
		{
			// A negated statistic matches with 1-p; nth mode is modelled as
			// 1/every. A goto'd chain falling off its end returns past the
			// caller's later rules, which here leaves one share undNATed.
			dump: natFilter(":A - [0:0]\n",
				"-A PREROUTING -g A\n-A PREROUTING -j DNAT --to-destination 9.9.9.9\n"+
					"-A A -m statistic --mode random ! --probability 0.2 -j DNAT --to-destination 10.1.0.1\n"+
					"-A A -m statistic --mode nth --every 4 --packet 0 -j DNAT --to-destination 10.1.0.2\n", "", ""),
			traceCase: traceCase{name: "negated and nth statistic", pkt: pod("10.96.0.1", 80), verdict: dataplane.Accept, dests: []wantDest{
				{"10.1.0.1", 80, 0.8, false, nil},
				{"10.1.0.2", 80, 0.05, false, nil},
				{"10.96.0.1", 80, 0.15, false, nil},
			}},
		},
		{
			// A FORWARD policy of DROP decides when no rule accepts; the
			// deciding "rule" is the chain's declaration.
			dump:      strings.Replace(natFilter("", "", "", ""), ":FORWARD ACCEPT", ":FORWARD DROP", 1),
			traceCase: traceCase{name: "policy drop", pkt: pod("10.1.0.1", 80), verdict: dataplane.Drop, rule: ":FORWARD DROP [0:0]"},
		},
		{
			// RETURN in a builtin chain applies its policy.
			dump:      strings.Replace(natFilter("", "", "", "-A FORWARD -j RETURN\n-A FORWARD -j ACCEPT\n"), ":FORWARD ACCEPT", ":FORWARD DROP", 1),
			traceCase: traceCase{name: "return in builtin chain", pkt: pod("10.1.0.1", 80), verdict: dataplane.Drop, rule: ":FORWARD DROP"},
		},
		{
			// internalTrafficPolicy Local without local endpoints: kube-proxy
			// writes a filter DROP for the ClusterIP.
			dump: natFilter("", "", ":KUBE-SERVICES - [0:0]\n",
				"-A FORWARD -m conntrack --ctstate NEW -j KUBE-SERVICES\n"+
					`-A KUBE-SERVICES -d 10.96.0.9/32 -p tcp -m comment --comment "ns/svc has no local endpoints" -m tcp --dport 80 -j DROP`+"\n"),
			traceCase: traceCase{name: "no local endpoints drop", pkt: pod("10.96.0.9", 80), verdict: dataplane.Drop, rule: "has no local endpoints"},
		},
		{
			// Marks: --set-xmark with a mask keeps other bits, and a mark
			// match sees the result; MASQUERADE in POSTROUTING is the
			// masquerade.
			dump: natFilter("", "-A PREROUTING -j MARK --set-xmark 0x4000/0x4000\n"+
				"-A PREROUTING -m mark --mark 0x4000/0x4000 -j DNAT --to-destination 10.1.0.1:80\n"+
				"-A POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A POSTROUTING -j MASQUERADE\n", "", ""),
			traceCase: traceCase{name: "mark and masquerade", pkt: pod("10.96.0.1", 80), verdict: dataplane.Accept, dests: []wantDest{
				{"10.1.0.1", 80, 1, true, nil},
			}},
		},
		{
			// Mixed outcome: the branch to 10.1.0.2 is dropped in FORWARD;
			// the accepted branch is listed alone with its share (so the
			// shares sum to 0.5, not 1), and Rule names the drop.
			dump: natFilter("", "-A PREROUTING -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.1.0.1\n"+
				"-A PREROUTING -j DNAT --to-destination 10.1.0.2\n", "", "-A FORWARD -d 10.1.0.2/32 -j DROP\n"),
			traceCase: traceCase{name: "mixed outcome", pkt: pod("10.96.0.1", 80), verdict: dataplane.Accept, rule: "-A FORWARD -d 10.1.0.2/32 -j DROP",
				dests: []wantDest{{"10.1.0.1", 80, 0.5, false, nil}}},
		},
		{
			// A match the tracer cannot evaluate is harmless when an earlier
			// part of the rule already fails.
			dump:      natFilter("", "-A PREROUTING -p udp -m set --match-set X dst -j DROP\n", "", ""),
			traceCase: traceCase{name: "unknown match not reached", pkt: pod("10.96.0.1", 80), verdict: dataplane.Accept},
		},
		{
			// REDIRECT from outside goes to the node's address.
			dump: natFilter("", "-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 15001\n", "", ""),
			traceCase: traceCase{name: "redirect", pkt: pod("10.96.0.1", 80), verdict: dataplane.Accept, dests: []wantDest{
				{"192.0.2.1", 15001, 1, false, []string{"nat/PREROUTING", "filter/INPUT", "nat/INPUT"}},
			}},
		},
		{
			// Protocol and port matches: udp packets skip tcp rules; a port
			// range and negation.
			dump: natFilter("", "-A PREROUTING -p tcp -m tcp --dport 53 -j DNAT --to-destination 10.1.0.1\n"+
				"-A PREROUTING -p udp -m udp ! --dport 1:52 -j DNAT --to-destination 10.1.0.2\n", "", ""),
			traceCase: traceCase{name: "protocols and ports", pkt: pkt(dataplane.FromPod, "10.0.0.5", "10.96.0.1", "udp", 53), verdict: dataplane.Accept,
				dests: []wantDest{{"10.1.0.2", 53, 1, false, nil}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTrace(t, tracerFor(t, tc.dump), tc.traceCase) })
	}
}

func TestTraceErrors(t *testing.T) {
	good := pkt(dataplane.FromPod, "10.0.0.5", "10.96.0.1", "tcp", 80)
	for _, tc := range []struct {
		name string
		dump string
		pkt  dataplane.Packet
		want string
	}{
		{"unknown match reached", natFilter("", "-A PREROUTING -m set --match-set X dst -j DROP\n", "", ""), good, "-m set is not modelled"},
		{"interface match", natFilter("", "-A PREROUTING -i eth0 -j DROP\n", "", ""), good, "interface matches"},
		{"unknown target", natFilter("", "-A PREROUTING -j CT --notrack\n", "", ""), good, "target CT is not modelled"},
		{"source port", natFilter("", "-A PREROUTING -p tcp -m tcp --sport 5 -j DROP\n", "", ""), good, "source port"},
		{"loop", natFilter(":A - [0:0]\n:B - [0:0]\n", "-A PREROUTING -j A\n-A A -j B\n-A B -j A\n", "", ""), good, "nested deeper"},
		{"fan-out", fanOut(), good, "rule evaluations"},
		{"addrtype other than LOCAL", natFilter("", "-A PREROUTING -m addrtype --dst-type BROADCAST -j DROP\n", "", ""), good, "only LOCAL"},
		{"bad packet proto", natFilter("", "", "", ""), pkt(dataplane.FromPod, "10.0.0.5", "10.96.0.1", "icmp", 80), "protocol"},
		{"bad packet family", natFilter("", "", "", ""), pkt(dataplane.FromPod, "10.0.0.5", "fd00::1", "tcp", 80), "families"},
		{"bad packet origin", natFilter("", "", "", ""), pkt("mars", "10.0.0.5", "10.96.0.1", "tcp", 80), "origin"},
		{"port zero", natFilter("", "", "", ""), pkt(dataplane.FromPod, "10.0.0.5", "10.96.0.1", "tcp", 0), "port 0"},
		{"no source", natFilter("", "", "", ""), dataplane.Packet{Dst: netip.MustParseAddr("10.96.0.1"), Proto: "tcp", DPort: 80, From: dataplane.FromPod}, "must be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tracerFor(t, tc.dump).Trace(tc.pkt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// fanOut is a dump without loops whose chains C0..C9 each jump ten times to
// the next: 10^10 rule evaluations unless the tracer gives up.
func fanOut() string {
	var decl, rules strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&decl, ":C%d - [0:0]\n", i)
		for j := 0; j < 10 && i < 9; j++ {
			fmt.Fprintf(&rules, "-A C%d -j C%d\n", i, i+1)
		}
	}
	return natFilter(decl.String(), "-A PREROUTING -j C0\n"+rules.String(), "", "")
}
