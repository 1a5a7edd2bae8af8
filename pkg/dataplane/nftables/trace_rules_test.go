package nftables

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// miniRuleset builds a kube-proxy table of the given family from chain
// declarations and rules written as JSON statement lists, to exercise the
// tracer's semantics one at a time.
func miniRuleset(t *testing.T, family string, chains []string, rules map[string][]string, extra ...string) *Ruleset {
	t.Helper()
	items := []string{fmt.Sprintf(`{"table": {"family": %q, "name": "kube-proxy"}}`, family)}
	items = append(items, extra...)
	for _, c := range chains {
		items = append(items, fmt.Sprintf(`{"chain": {"family": %q, "table": "kube-proxy", %s}}`, family, c))
	}
	for _, c := range chains {
		name := strings.Split(strings.Split(c, `"name": "`)[1], `"`)[0]
		for i, r := range rules[name] {
			items = append(items, fmt.Sprintf(`{"rule": {"family": %q, "table": "kube-proxy", "chain": %q, "handle": %d, "expr": [%s]}}`, family, name, i+100, r))
		}
	}
	rs, err := ParseJSON(strings.NewReader(`{"nftables": [` + strings.Join(items, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

const (
	natPre = `"name": "nat-prerouting", "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"`
	fwd    = `"name": "filter-forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"`
)

func TestTraceNumgenFallThrough(t *testing.T) {
	// numgen mod 4 covers 0 and 1-2; a 3 falls through the vmap to the
	// next rule, which drops: a quarter of the packets are lost.
	rs := miniRuleset(t, "ip",
		[]string{natPre, `"name": "a"`, `"name": "b"`},
		map[string][]string{
			"nat-prerouting": {
				`{"vmap": {"key": {"numgen": {"mode": "random", "mod": 4, "offset": 0}}, "data": {"set": [[0, {"goto": {"target": "a"}}], [{"range": [1, 2]}, {"goto": {"target": "b"}}]]}}}`,
				`{"drop": null}`,
			},
			"a": {`{"dnat": {"addr": "10.0.0.1", "port": 80}}`},
			"b": {`{"dnat": {"addr": "10.0.0.2", "port": 80}}`},
		})
	got, err := NewTracer(rs, nil).Trace(pkt("10.1.0.1", "10.9.9.9", "tcp", 8080, dataplane.FromPod))
	if err != nil {
		t.Fatal(err)
	}
	if got.Verdict != dataplane.Accept || len(got.Destinations) != 2 {
		t.Fatalf("result %+v", got)
	}
	if p := got.Destinations[0].Probability; math.Abs(p-0.25) > 1e-12 {
		t.Errorf("10.0.0.1 probability %v, want 0.25", p)
	}
	if p := got.Destinations[1].Probability; math.Abs(p-0.5) > 1e-12 {
		t.Errorf("10.0.0.2 probability %v, want 0.5", p)
	}
	if got.Rule != "nat-prerouting: drop" {
		t.Errorf("rule %q, want the drop rule of the lost quarter", got.Rule)
	}
}

func TestTraceJumpGotoReturn(t *testing.T) {
	// jump x; x: goto y; y: return. The return in y ends x too (goto
	// replaced x's frame), so evaluation resumes in the base chain
	// after the jump, where the mark is set and the packet DNATed.
	rs := miniRuleset(t, "ip",
		[]string{natPre, `"name": "x"`, `"name": "y"`, `"name": "z"`},
		map[string][]string{
			"nat-prerouting": {
				`{"jump": {"target": "x"}}`,
				`{"mangle": {"key": {"meta": {"key": "mark"}}, "value": 16384}}`,
				`{"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 16384]}, "right": 16384}}, {"dnat": {"addr": "10.0.0.7"}}`,
			},
			"x": {`{"goto": {"target": "y"}}`, `{"jump": {"target": "z"}}`},
			"y": {`{"return": null}`, `{"drop": null}`},
			"z": {`{"drop": null}`},
		})
	got, err := NewTracer(rs, nil).Trace(pkt("10.1.0.1", "10.9.9.9", "tcp", 8080, dataplane.FromPod))
	if err != nil {
		t.Fatal(err)
	}
	compareResult(t, got, dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
		// No port in the dnat: the destination port is kept.
		dest("10.0.0.7", 8080, 1, false, []string{"nat-prerouting", "x", "y"}),
	}})
}

func TestTracePolicyDrop(t *testing.T) {
	rs := miniRuleset(t, "ip", []string{strings.Replace(fwd, `"policy": "accept"`, `"policy": "drop"`, 1)}, nil)
	got, err := NewTracer(rs, nil).Trace(pkt("10.1.0.1", "10.9.9.9", "tcp", 80, dataplane.FromPod))
	if err != nil {
		t.Fatal(err)
	}
	compareResult(t, got, dataplane.Result{Verdict: dataplane.Drop, Rule: "filter-forward: policy drop"})
}

func TestTraceImplicitDependencies(t *testing.T) {
	// `tcp dport != 53` does not match a UDP packet: nft adds an
	// implicit `meta l4proto tcp`. Neither does `ip6 daddr != ::1` an
	// IPv4 packet in an inet table, nor a ct state outside {established,
	// related} the first packet.
	rs := miniRuleset(t, "inet", []string{fwd}, map[string][]string{
		"filter-forward": {
			`{"match": {"op": "!=", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 53}}, {"drop": null}`,
			`{"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "::1"}}, {"drop": null}`,
			`{"match": {"op": "==", "left": {"ct": {"key": "state"}}, "right": {"set": ["established", "related"]}}}, {"drop": null}`,
			`{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"reject": {"type": "tcp reset"}}`,
		},
	})
	tr := NewTracer(rs, nil)
	got, err := tr.Trace(pkt("10.1.0.1", "10.9.9.9", "udp", 80, dataplane.FromPod))
	if err != nil {
		t.Fatal(err)
	}
	compareResult(t, got, dataplane.Result{Verdict: dataplane.Reject,
		Rule: "filter-forward: ct state new meta nfproto ipv4 reject with tcp reset"})

	// The inet table is traced for IPv6 too, where the ip6 rule drops.
	got, err = tr.Trace(pkt("fd00::1", "fd00::2", "udp", 80, dataplane.FromPod))
	if err != nil {
		t.Fatal(err)
	}
	compareResult(t, got, dataplane.Result{Verdict: dataplane.Drop, Rule: "filter-forward: ip6 daddr != ::1 drop"})
}

func TestTraceErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		family string
		chains []string
		rules  map[string][]string
		want   string
	}{
		{"jump loop", "ip", []string{natPre, `"name": "x"`}, map[string][]string{
			"nat-prerouting": {`{"jump": {"target": "x"}}`}, "x": {`{"jump": {"target": "x"}}`},
		}, "jumps nested deeper than 64"},
		{"goto loop", "ip", []string{natPre, `"name": "x"`}, map[string][]string{
			"nat-prerouting": {`{"goto": {"target": "x"}}`}, "x": {`{"goto": {"target": "x"}}`},
		}, "jumps nested deeper than 64"},
		{"xt statement", "ip", []string{natPre}, map[string][]string{
			"nat-prerouting": {`{"xt": {"type": "target", "name": "DNAT"}}`},
		}, "xt target DNAT cannot be evaluated"},
		{"source port", "ip", []string{natPre}, map[string][]string{
			"nat-prerouting": {`{"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "sport"}}, "right": 1}}, {"drop": null}`},
		}, "th sport is not known for a traced packet"},
		{"interface", "ip", []string{natPre}, map[string][]string{
			"nat-prerouting": {`{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"drop": null}`},
		}, "meta iifname is not known"},
		{"no table of the family", "ip6", []string{natPre}, nil, "the dump has no ip kube-proxy table"},
		{"numgen branch explosion", "ip", []string{natPre, `"name": "x"`}, map[string][]string{
			"nat-prerouting": {`{"jump": {"target": "x"}}`, `{"jump": {"target": "x"}}`, `{"jump": {"target": "x"}}`},
			"x":              {`{"vmap": {"key": {"numgen": {"mode": "random", "mod": 100}}, "data": {"set": [` + hundredElements() + `]}}}`},
		}, "more than 4096 branches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := miniRuleset(t, tc.family, tc.chains, tc.rules)
			_, err := NewTracer(rs, nil).Trace(pkt("10.1.0.1", "10.9.9.9", "tcp", 80, dataplane.FromPod))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTraceNodeIPsDecideLocalDelivery(t *testing.T) {
	// An input base chain that rejects: only packets for the node's own
	// addresses reach it.
	rs := miniRuleset(t, "ip", []string{`"name": "in", "type": "filter", "hook": "input", "prio": 0`}, map[string][]string{
		"in": {`{"reject": null}`},
	})
	tr := NewTracer(rs, []netip.Addr{netip.MustParseAddr("192.0.2.1")})
	for dst, want := range map[string]dataplane.Verdict{"192.0.2.1": dataplane.Reject, "127.0.0.1": dataplane.Reject, "192.0.2.2": dataplane.Accept} {
		got, err := tr.Trace(pkt("198.51.100.1", dst, "tcp", 80, dataplane.FromExternal))
		if err != nil {
			t.Fatal(err)
		}
		if got.Verdict != want {
			t.Errorf("to %s: verdict %s, want %s", dst, got.Verdict, want)
		}
	}
}

// hundredElements is an anonymous map of 100 elements, 0..99 : continue.
func hundredElements() string {
	els := make([]string, 100)
	for i := range els {
		els[i] = fmt.Sprintf(`[%d, {"continue": null}]`, i)
	}
	return strings.Join(els, ",")
}

// TestTraceConcurrent: a Tracer is read-only after NewTracer, so one may
// serve many goroutines (run with -race to make this mean something).
func TestTraceConcurrent(t *testing.T) {
	tr := NewTracer(loadDump(t), []netip.Addr{nodeIP})
	done := make(chan error)
	for _, p := range fuzzPackets {
		go func() {
			for range 20 {
				if _, err := tr.Trace(p); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range fuzzPackets {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
