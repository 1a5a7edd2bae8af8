package nftables

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// The v1.37 constructs as the parser renders them.
func TestV137RuleStrings(t *testing.T) {
	tb := readMultiNodeV137(t, "worker").Table("ip", KubeProxyTable)
	for chain, want := range map[string]string{
		"service-NVFXXSGO-nc-capture-829513/backend-service/tcp/http":  "meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.244.1.11 . 3000, 1 : 10.244.2.10 . 3000 }",
		"service-SE3EJK5C-metallb-system/metallb-webhook-service/tcp/": "meta l4proto tcp dnat to 10.244.1.2:9443",
	} {
		c := tb.Chain(chain)
		if c == nil || len(c.Rules) != 1 {
			t.Fatalf("chain %s: want one rule", chain)
		}
		if got := c.Rules[0].String(); got != want {
			t.Errorf("%s:\n  %s\nwant\n  %s", chain, got, want)
		}
	}
	var got []string
	for _, r := range tb.Chain("masquerading").Rules {
		got = append(got, r.String())
	}
	want := []string{
		"meta mark & 0x00004000 != 0x00000000 meta mark set meta mark ^ 0x00004000 masquerade fully-random",
		"ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random",
	}
	if !slices.Equal(got, want) {
		t.Errorf("masquerading:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// v137Trace traces pkt on a v1.37 node's dump after mutate changed it, and
// renders the destinations as in TestMultiNodeV137TracesMatchTheCluster.
func v137Trace(t *testing.T, node string, mutate func(*Table), pkt dataplane.Packet) (dataplane.Result, []string) {
	t.Helper()
	rs := readMultiNodeV137(t, node)
	mutate(rs.Table("ip", KubeProxyTable))
	res, err := NewTracer(rs, []netip.Addr{netip.MustParseAddr(multiNodeV137IPs[node])}).Trace(pkt)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Destinations {
		got = append(got, fmt.Sprintf("%s %g %v", netip.AddrPortFrom(d.IP, d.Port), d.Probability, d.Masquerade))
	}
	sort.Strings(got)
	return res, got
}

// v137EditDNAT lets edit change the dnat statement of chain in place.
func v137EditDNAT(t *testing.T, tb *Table, chain string, edit func(n *NAT)) {
	t.Helper()
	for _, r := range tb.Chain(chain).Rules {
		for i, s := range r.Stmts {
			if n, ok := s.(NAT); ok && n.Kind == "dnat" {
				edit(&n)
				r.Stmts[i] = n
				return
			}
		}
	}
	t.Fatalf("chain %s has no dnat", chain)
}

// The tracer follows what the v1.37 constructs say, not what kube-proxy
// usually writes: each mutation changes the predicted destinations.
func TestV137TraceFollowsTheRules(t *testing.T) {
	const backendChain = "service-NVFXXSGO-nc-capture-829513/backend-service/tcp/http"
	hairpin := dataplane.Packet{Src: netip.MustParseAddr("10.244.1.11"), Dst: netip.MustParseAddr("10.96.160.170"), Proto: "tcp", DPort: 3000, From: dataplane.FromPod}
	cases := []struct {
		name   string
		mutate func(t *testing.T, tb *Table)
		want   []string
	}{
		{"as dumped", func(*testing.T, *Table) {}, []string{"10.244.1.11:3000 0.5 true", "10.244.2.10:3000 0.5 false"}},
		{"hairpin set emptied: no hairpin masquerade", func(_ *testing.T, tb *Table) {
			tb.Set("hairpin-connections").Elements = nil
		}, []string{"10.244.1.11:3000 0.5 false", "10.244.2.10:3000 0.5 false"}},
		{"mod 4 over two elements: half falls through undnatted", func(t *testing.T, tb *Table) {
			v137EditDNAT(t, tb, backendChain, func(n *NAT) {
				ml := n.Addr.(MapLookup)
				ml.Key = Numgen{Mode: "random", Mod: 4}
				n.Addr = ml
			})
		}, []string{"10.244.1.11:3000 0.25 true", "10.244.2.10:3000 0.25 false"}},
		{"element range 0-2 of mod 3", func(t *testing.T, tb *Table) {
			v137EditDNAT(t, tb, backendChain, func(n *NAT) {
				ml := n.Addr.(MapLookup)
				ml.Key = Numgen{Mode: "random", Mod: 3}
				data := slices.Clone(ml.Data.(AnonSet))
				data[1].Key = Range{Lo: Number(1), Hi: Number(2)}
				ml.Data = data
				n.Addr = ml
			})
		}, []string{fmt.Sprintf("10.244.1.11:3000 %g true", 1.0/3), fmt.Sprintf("10.244.2.10:3000 %g false", 2.0/3)}},
		{"keyed by source address through a named map", func(t *testing.T, tb *Table) {
			tb.Sets = append(tb.Sets, &Set{Family: "ip", Table: KubeProxyTable, Name: "by-src", Type: []string{"ipv4_addr"}, Map: "ipv4_addr . inet_service",
				Elements: []Element{{Key: String("10.244.1.11"), Value: Concat{String("10.244.2.10"), Number(3000)}}}})
			tb.setIndex["by-src"] = tb.Sets[len(tb.Sets)-1]
			v137EditDNAT(t, tb, backendChain, func(n *NAT) {
				n.Addr = MapLookup{Key: Payload{Protocol: "ip", Field: "saddr"}, Data: SetRef("by-src")}
			})
		}, []string{"10.244.2.10:3000 1 false"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got := v137Trace(t, "worker", func(tb *Table) { tc.mutate(t, tb) }, hairpin)
			if !slices.Equal(got, tc.want) {
				t.Errorf("destinations\n  %v\nwant\n  %v", got, tc.want)
			}
		})
	}
}
