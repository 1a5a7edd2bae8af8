package nftables

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// syntheticDump builds a kube-proxy-shaped `nft -j list ruleset` document
// for n Services on one node: the fixed chains and maps of v1.34, and per
// Service a ClusterIP port 80 with three endpoints; every fifth Service
// also has a NodePort and an external chain. It mirrors what kube-proxy
// writes, not every option it has.
func syntheticDump(tb testing.TB, n int) []byte {
	tb.Helper()
	var items []any
	add := func(kind string, body map[string]any) {
		body["family"] = "ip"
		if kind != "table" {
			body["table"] = KubeProxyTable
		}
		items = append(items, map[string]any{kind: body})
	}
	jump := func(kind, target string) map[string]any {
		return map[string]any{kind: map[string]any{"target": target}}
	}
	payload := func(proto, field string) map[string]any {
		return map[string]any{"payload": map[string]any{"protocol": proto, "field": field}}
	}
	meta := func(key string) map[string]any { return map[string]any{"meta": map[string]any{"key": key}} }
	match := func(op string, left, right any) map[string]any {
		return map[string]any{"match": map[string]any{"op": op, "left": left, "right": right}}
	}
	rule := func(chain string, expr ...any) { add("rule", map[string]any{"chain": chain, "expr": expr}) }
	svcKey := []any{payload("ip", "daddr"), meta("l4proto"), payload("th", "dport")}
	ctNew := match("in", map[string]any{"ct": map[string]any{"key": "state"}}, "new")
	podCIDR := map[string]any{"prefix": map[string]any{"addr": "10.244.0.0", "len": 16}}

	add("table", map[string]any{"name": KubeProxyTable})
	for _, bc := range []struct {
		name, typ, hook string
		prio            int
	}{
		{"filter-prerouting-pre-dnat", "filter", "prerouting", -110}, {"filter-output-pre-dnat", "filter", "output", -110},
		{"filter-input", "filter", "input", 0}, {"filter-forward", "filter", "forward", 0}, {"filter-output", "filter", "output", 0},
		{"nat-prerouting", "nat", "prerouting", -100}, {"nat-output", "nat", "output", -100}, {"nat-postrouting", "nat", "postrouting", 100},
	} {
		add("chain", map[string]any{"name": bc.name, "type": bc.typ, "hook": bc.hook, "prio": bc.prio, "policy": "accept"})
	}
	for _, c := range []string{"services", "masquerading", "mark-for-masquerade", "reject-chain", "service-endpoints-check", "nodeport-endpoints-check", "firewall-check", "cluster-ips-check"} {
		add("chain", map[string]any{"name": c})
	}

	var clusterIPs, serviceIPs, nodePorts []any
	type svcChains struct {
		name  string
		rules [][]any
	}
	var chains []svcChains
	for i := range n {
		ns, name := fmt.Sprintf("ns%d", i%50), fmt.Sprintf("svc-%d", i)
		clusterIP := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		base := ServiceChainBase(ns, name, "tcp", "http")
		svcChain := ServiceChainPrefix + base
		clusterIPs = append(clusterIPs, clusterIP.String())
		serviceIPs = append(serviceIPs, []any{map[string]any{"concat": []any{clusterIP.String(), "tcp", 80}}, jump("goto", svcChain)})
		var lb []any
		for e := range 3 {
			ip := netip.AddrFrom4([4]byte{10, 244, byte((3*i + e) >> 8), byte(3*i + e)})
			ep := EndpointChainPrefix + EndpointChainBase(ns, name, "tcp", "http", ip, 8080)
			chains = append(chains, svcChains{ep, [][]any{
				{match("==", payload("ip", "saddr"), ip.String()), jump("jump", "mark-for-masquerade")},
				{match("==", meta("l4proto"), "tcp"), map[string]any{"dnat": map[string]any{"addr": ip.String(), "port": 8080}}},
			}})
			lb = append(lb, []any{e, jump("goto", ep)})
		}
		chains = append(chains, svcChains{svcChain, [][]any{
			{match("==", payload("ip", "daddr"), clusterIP.String()), match("!=", payload("ip", "saddr"), podCIDR), jump("jump", "mark-for-masquerade")},
			{map[string]any{"vmap": map[string]any{"key": map[string]any{"numgen": map[string]any{"mode": "random", "mod": 3, "offset": 0}}, "data": map[string]any{"set": lb}}}},
		}})
		if i%5 == 0 {
			ext := ExternalChainPrefix + base
			nodePorts = append(nodePorts, []any{map[string]any{"concat": []any{"tcp", 30000 + i/5}}, jump("goto", ext)})
			chains = append(chains, svcChains{ext, [][]any{{jump("jump", "mark-for-masquerade")}, {jump("goto", svcChain)}}})
		}
	}
	for _, c := range chains {
		add("chain", map[string]any{"name": c.name})
	}
	add("set", map[string]any{"name": "cluster-ips", "type": "ipv4_addr", "elem": clusterIPs})
	add("set", map[string]any{"name": "nodeport-ips", "type": "ipv4_addr", "elem": []any{"172.18.0.2"}})
	verdictMap := func(name string, typ []any, elems []any) {
		body := map[string]any{"name": name, "type": typ, "map": "verdict"}
		if len(elems) > 0 {
			body["elem"] = elems
		}
		add("map", body)
	}
	verdictMap("service-ips", []any{"ipv4_addr", "inet_proto", "inet_service"}, serviceIPs)
	verdictMap("service-nodeports", []any{"inet_proto", "inet_service"}, nodePorts)
	verdictMap("no-endpoint-services", []any{"ipv4_addr", "inet_proto", "inet_service"}, nil)
	verdictMap("no-endpoint-nodeports", []any{"inet_proto", "inet_service"}, nil)
	verdictMap("firewall-ips", []any{"ipv4_addr", "inet_proto", "inet_service"}, nil)

	rule("filter-prerouting-pre-dnat", ctNew, jump("jump", "firewall-check"))
	rule("filter-output-pre-dnat", ctNew, jump("jump", "firewall-check"))
	rule("filter-input", ctNew, jump("jump", "nodeport-endpoints-check"))
	rule("filter-input", ctNew, jump("jump", "service-endpoints-check"))
	rule("filter-forward", ctNew, jump("jump", "service-endpoints-check"))
	rule("filter-forward", ctNew, jump("jump", "cluster-ips-check"))
	rule("filter-output", ctNew, jump("jump", "service-endpoints-check"))
	rule("filter-output", ctNew, jump("jump", "cluster-ips-check"))
	rule("nat-prerouting", jump("jump", "services"))
	rule("nat-output", jump("jump", "services"))
	rule("nat-postrouting", jump("jump", "masquerading"))
	portKey := []any{meta("l4proto"), payload("th", "dport")}
	rule("nodeport-endpoints-check", match("==", payload("ip", "daddr"), "@nodeport-ips"),
		map[string]any{"vmap": map[string]any{"key": map[string]any{"concat": portKey}, "data": "@no-endpoint-nodeports"}})
	rule("service-endpoints-check", map[string]any{"vmap": map[string]any{"key": map[string]any{"concat": svcKey}, "data": "@no-endpoint-services"}})
	rule("firewall-check", map[string]any{"vmap": map[string]any{"key": map[string]any{"concat": svcKey}, "data": "@firewall-ips"}})
	rule("services", map[string]any{"vmap": map[string]any{"key": map[string]any{"concat": svcKey}, "data": "@service-ips"}})
	rule("services", match("==", payload("ip", "daddr"), "@nodeport-ips"),
		map[string]any{"vmap": map[string]any{"key": map[string]any{"concat": portKey}, "data": "@service-nodeports"}})
	mark := map[string]any{"meta": map[string]any{"key": "mark"}}
	rule("masquerading", match("==", map[string]any{"&": []any{mark, 0x4000}}, 0), map[string]any{"return": nil})
	rule("masquerading", map[string]any{"mangle": map[string]any{"key": mark, "value": map[string]any{"^": []any{mark, 0x4000}}}})
	rule("masquerading", map[string]any{"masquerade": map[string]any{"flags": "fully-random"}})
	rule("cluster-ips-check", match("==", payload("ip", "daddr"), "@cluster-ips"), map[string]any{"reject": nil})
	rule("mark-for-masquerade", map[string]any{"mangle": map[string]any{"key": mark, "value": map[string]any{"|": []any{mark, 0x4000}}}})
	rule("reject-chain", map[string]any{"reject": nil})
	for _, c := range chains {
		for _, r := range c.rules {
			rule(c.name, r...)
		}
	}
	b, err := json.Marshal(map[string]any{"nftables": items})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSyntheticDumpTraces(t *testing.T) {
	rs, err := ParseJSON(bytes.NewReader(syntheticDump(t, 10)))
	if err != nil {
		t.Fatal(err)
	}
	// Service 5 has NodePort 30001: three endpoints, 1/3 each, all
	// masqueraded by its external chain.
	res, err := NewTracer(rs, []netip.Addr{nodeIP}).Trace(pkt("172.18.0.1", "172.18.0.2", "tcp", 30001, dataplane.FromExternal))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Destinations) != 3 || !res.Destinations[0].Masquerade || res.Destinations[0].IP != netip.MustParseAddr("10.244.0.15") {
		t.Errorf("result %+v", res)
	}
}

// BenchmarkParseAndTrace parses a 5,000-Service dump and traces a packet to
// the last Service's ClusterIP; the sub-benchmarks split the two costs.
func BenchmarkParseAndTrace(b *testing.B) {
	const services = 5000
	data := syntheticDump(b, services)
	last := services - 1
	p := pkt("10.244.200.1", netip.AddrFrom4([4]byte{10, 96, byte(last >> 8), byte(last)}).String(), "tcp", 80, dataplane.FromPod)
	trace := func(b *testing.B, rs *Ruleset) {
		res, err := NewTracer(rs, []netip.Addr{nodeIP}).Trace(p)
		if err != nil || len(res.Destinations) != 3 {
			b.Fatalf("trace: %v %+v", err, res)
		}
	}
	b.Run("parse+trace", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			rs, err := ParseJSON(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			trace(b, rs)
		}
	})
	rs, err := ParseJSON(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("trace", func(b *testing.B) {
		tr := NewTracer(rs, []netip.Addr{nodeIP})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.Trace(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Logf("%d Services, %d bytes of JSON", services, len(data))
}
