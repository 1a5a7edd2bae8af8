package nftables

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/netconform/netconform/pkg/dataplane"
	"github.com/netconform/netconform/pkg/dataplane/iptables"
)

// The v1.37.2 3-node nftables-mode capture (../testdata/v1.37.2-3-node-
// nftables, see its README.md): each node's `nft -j list ruleset`, read
// through its kube-proxy pod, the cluster's Services, EndpointSlices and
// Nodes, where the seed pods of namespace nc-capture-829513 ran, and what
// probes saw right after (observations.json).
//
//	control-plane 172.18.0.5   pods 10.244.0.0/24   no seed pods
//	worker        172.18.0.7   pods 10.244.1.0/24   backend vtdcq .11, frontend 2ndpl .12, foo j5p8q .14, client .15
//	worker2       172.18.0.6   pods 10.244.2.0/24   backend dpqlq .10, frontend zpxms .11, tlh5j .12, foo 2f9px .15
//
// backend-service 10.96.160.170:3000; frontend-nodeport-service
// 10.96.51.68:80, node port 30530; foo-service (externalTrafficPolicy
// Local) 10.96.83.168:5678, node port 30294, LoadBalancer IP
// 172.18.245.201. The external client was a container on the kind network
// at 172.18.251.77.
//
// kube-proxy v1.37 writes a different table from the v1.34 one the rest of
// this package's tests use: a Service chain DNATs itself, through
// `dnat to numgen random mod N map { i : ip . port }`, with no endpoint
// chains; off-cluster ClusterIP traffic is marked in the services chain
// (no mark-for-masquerade chain); and hairpin traffic is masqueraded in
// the masquerading chain by `ct status dnat ip saddr . ip daddr . meta
// l4proto . th dport @hairpin-connections`, a set holding "ip . ip .
// proto . port" for each of the node's own endpoints.
var multiNodeV137Dir = filepath.Join("..", "testdata", "v1.37.2-3-node-nftables")

const multiNodeV137Prefix = "netconform-v1-37-nftables-"

var multiNodeV137IPs = map[string]string{"control-plane": "172.18.0.5", "worker": "172.18.0.7", "worker2": "172.18.0.6"}

func readMultiNodeV137(t *testing.T, node string) *Ruleset {
	t.Helper()
	f, err := os.Open(filepath.Join(multiNodeV137Dir, multiNodeV137Prefix+node+".nft.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := ParseJSON(f)
	if err != nil {
		t.Fatalf("parsing %s's dump: %v", node, err)
	}
	return rs
}

func readMultiNodeV137Objects(t *testing.T) *iptables.APIObjects {
	t.Helper()
	f, err := os.Open(filepath.Join(multiNodeV137Dir, "services-endpointslices-nodes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := iptables.DecodeAPIObjects(f)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// The v1.37 layout as the parser reads it: every Service port's
// service-ips element leads to its chain, and @hairpin-connections holds
// exactly the node's own endpoints, as "ip . ip . proto . port".
func TestMultiNodeV137Layout(t *testing.T) {
	objs := readMultiNodeV137Objects(t)
	for node := range multiNodeV137IPs {
		tb := readMultiNodeV137(t, node).Table("ip", KubeProxyTable)
		if tb == nil {
			t.Fatalf("%s: no ip kube-proxy table", node)
		}
		if tb.Chain("mark-for-masquerade") != nil {
			t.Errorf("%s: a mark-for-masquerade chain; the v1.37 layout has none", node)
		}
		set := tb.Set("hairpin-connections")
		if set == nil {
			t.Fatalf("%s: no hairpin-connections set", node)
		}
		var got, want []string
		for _, el := range set.Elements {
			got = append(got, el.String())
		}
		elems := map[string]bool{}
		for _, el := range tb.Set("service-ips").Elements {
			elems[el.String()] = true
		}
		for i := range objs.Services {
			ports, err := iptables.ServicePorts(&objs.Services[i], objs.EndpointSlices, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range ports {
				chain := ServiceChainPrefix + ServiceChainBase(sp.Namespace, sp.Service, sp.Protocol, sp.PortName)
				if el := fmt.Sprintf("%s . %s . %d : goto %s", sp.ClusterIP, sp.Protocol, sp.Port, chain); !elems[el] {
					t.Errorf("%s: service-ips has no element %q", node, el)
				}
				for _, ep := range sp.Categorize(multiNodeV137Prefix + node).Cluster {
					if ep.NodeName == multiNodeV137Prefix+node {
						want = append(want, fmt.Sprintf("%s . %s . %s . %d", ep.Addr.Addr(), ep.Addr.Addr(), sp.Protocol, ep.Addr.Port()))
					}
				}
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: hairpin-connections\n  %v\nwant the node's own endpoints\n  %v", node, got, want)
		}
	}
}

// multiNodeV137Case is a hand-checked prediction on one node's dump and
// the probe run the cluster answered it with.
type multiNodeV137Case struct {
	name, node string
	pkt        dataplane.Packet
	verdict    dataplane.Verdict
	// dests are "ip:port probability masquerade", sorted by address.
	dests []string
	obs   string
}

// TestMultiNodeV137TracesMatchTheCluster checks hand-made predictions on
// the v1.37 dumps and that they are what the cluster did.
func TestMultiNodeV137TracesMatchTheCluster(t *testing.T) {
	const (
		backend  = "10.96.160.170"
		frontend = "10.96.51.68"
		lb       = "172.18.245.201"
		external = "172.18.251.77"
		third    = 1.0 / 3
	)
	p := func(from dataplane.Origin, src, dst string, dport uint16) dataplane.Packet {
		return dataplane.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: "tcp", DPort: dport, From: from}
	}
	cases := []multiNodeV137Case{
		{
			// The client (worker) to backend-service: services chain, no
			// mark (10.244.1.15 is inside 10.244.0.0/16); service-ips ->
			// the Service chain's numgen mod 2 map: half to each backend;
			// neither (client, backend) pair is in @hairpin-connections.
			// Cluster: both answered (21 and 19 of 40), both saw 10.244.1.15.
			name: "client to backend-service", node: "worker", obs: "client->backend /clientip",
			pkt: p(dataplane.FromPod, "10.244.1.15", backend, 3000), verdict: dataplane.Accept,
			dests: []string{"10.244.1.11:3000 0.5 false", "10.244.2.10:3000 0.5 false"},
		},
		{
			// Hairpin on worker: backend vtdcq (10.244.1.11) to its own
			// Service. On the branch back to itself the connection is
			// DNATed and "10.244.1.11 . 10.244.1.11 . tcp . 3000" is in
			// @hairpin-connections: masquerade. Cluster: vtdcq saw
			// 10.244.1.1 (worker's pod-side address), dpqlq saw 10.244.1.11.
			name: "hairpin on worker", node: "worker", obs: "backend-6ffc5cdd9b-vtdcq->backend /clientip (hairpin)",
			pkt: p(dataplane.FromPod, "10.244.1.11", backend, 3000), verdict: dataplane.Accept,
			dests: []string{"10.244.1.11:3000 0.5 true", "10.244.2.10:3000 0.5 false"},
		},
		{
			// The same on worker2 from dpqlq. Cluster: dpqlq saw 10.244.2.1,
			// vtdcq saw 10.244.2.10.
			name: "hairpin on worker2", node: "worker2", obs: "backend-6ffc5cdd9b-dpqlq->backend /clientip (hairpin)",
			pkt: p(dataplane.FromPod, "10.244.2.10", backend, 3000), verdict: dataplane.Accept,
			dests: []string{"10.244.1.11:3000 0.5 false", "10.244.2.10:3000 0.5 true"},
		},
		{
			// numgen mod 3: exactly a third each. Cluster: 19, 16, 25 of
			// 60, all saw 10.244.1.15.
			name: "client to frontend ClusterIP", node: "worker", obs: "client->frontend /clientip",
			pkt: p(dataplane.FromPod, "10.244.1.15", frontend, 80), verdict: dataplane.Accept,
			dests: []string{fmt.Sprintf("10.244.1.12:8080 %g false", third), fmt.Sprintf("10.244.2.11:8080 %g false", third), fmt.Sprintf("10.244.2.12:8080 %g false", third)},
		},
		{
			// From outside to frontend's node port: service-nodeports ->
			// the external chain marks for masquerade, then the Service
			// chain. Cluster: every pod saw a node address.
			name: "external to frontend node port on control-plane", node: "control-plane", obs: "external->frontend NodePort on netconform-v1-37-nftables-control-plane 172.18.0.5",
			pkt: p(dataplane.FromExternal, external, "172.18.0.5", 30530), verdict: dataplane.Accept,
			dests: []string{fmt.Sprintf("10.244.1.12:8080 %g true", third), fmt.Sprintf("10.244.2.11:8080 %g true", third), fmt.Sprintf("10.244.2.12:8080 %g true", third)},
		},
		{
			name: "external to frontend node port on worker", node: "worker", obs: "external->frontend NodePort on netconform-v1-37-nftables-worker 172.18.0.7",
			pkt: p(dataplane.FromExternal, external, "172.18.0.7", 30530), verdict: dataplane.Accept,
			dests: []string{fmt.Sprintf("10.244.1.12:8080 %g true", third), fmt.Sprintf("10.244.2.11:8080 %g true", third), fmt.Sprintf("10.244.2.12:8080 %g true", third)},
		},
		{
			name: "external to frontend node port on worker2", node: "worker2", obs: "external->frontend NodePort on netconform-v1-37-nftables-worker2 172.18.0.6",
			pkt: p(dataplane.FromExternal, external, "172.18.0.6", 30530), verdict: dataplane.Accept,
			dests: []string{fmt.Sprintf("10.244.1.12:8080 %g true", third), fmt.Sprintf("10.244.2.11:8080 %g true", third), fmt.Sprintf("10.244.2.12:8080 %g true", third)},
		},
		{
			// foo's node port (Local) on the control plane, which has no
			// foo pod: the external chain has no local- chain to go to and
			// falls through, undnatted; the node address is local, so input
			// hook's nodeport-endpoints-check finds "tcp . 30294 : drop" in
			// @no-endpoint-nodeports. Cluster: 30 timeouts.
			name: "external to Local node port without a local endpoint", node: "control-plane", obs: "external->foo (Local) NodePort on netconform-v1-37-nftables-control-plane 172.18.0.5",
			pkt: p(dataplane.FromExternal, external, "172.18.0.5", 30294), verdict: dataplane.Drop,
		},
		{
			// On worker the external chain ends in `goto local-...`, whose
			// only rule DNATs to worker's foo pod: source kept. Cluster:
			// j5p8q answered all 30 and saw 172.18.251.77.
			name: "external to Local node port on worker", node: "worker", obs: "external->foo (Local) NodePort on netconform-v1-37-nftables-worker 172.18.0.7",
			pkt: p(dataplane.FromExternal, external, "172.18.0.7", 30294), verdict: dataplane.Accept,
			dests: []string{"10.244.1.14:8080 1 false"},
		},
		{
			name: "external to Local node port on worker2", node: "worker2", obs: "external->foo (Local) NodePort on netconform-v1-37-nftables-worker2 172.18.0.6",
			pkt: p(dataplane.FromExternal, external, "172.18.0.6", 30294), verdict: dataplane.Accept,
			dests: []string{"10.244.2.15:8080 1 false"},
		},
		{
			// The LoadBalancer IP reached worker (whose foo pod j5p8q
			// answered all 30, seeing 172.18.251.77): service-ips ->
			// external chain -> local chain -> worker's foo pod.
			name: "external to the Local LoadBalancer IP on worker", node: "worker", obs: "external->foo (Local) LoadBalancer IP 172.18.245.201",
			pkt: p(dataplane.FromExternal, external, lb, 5678), verdict: dataplane.Accept,
			dests: []string{"10.244.1.14:8080 1 false"},
		},
		{
			// On the control plane it would have been dropped by
			// service-endpoints-check ("172.18.245.201 . tcp . 5678 : drop"
			// in @no-endpoint-services). No probe: it was not sent there.
			name: "the Local LoadBalancer IP without a local endpoint", node: "control-plane",
			pkt: p(dataplane.FromExternal, external, lb, 5678), verdict: dataplane.Drop,
		},
	}
	obs := readMultiNodeV137Observations(t)
	pods := readMultiNodeV137Pods(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracer(readMultiNodeV137(t, tc.node), []netip.Addr{netip.MustParseAddr(multiNodeV137IPs[tc.node])})
			res, err := tr.Trace(tc.pkt)
			if err != nil {
				t.Fatalf("trace: %v", err)
			}
			if res.Verdict != tc.verdict {
				t.Fatalf("verdict %s (rule %q), want %s", res.Verdict, res.Rule, tc.verdict)
			}
			var got []string
			for _, d := range res.Destinations {
				got = append(got, fmt.Sprintf("%s %g %v", netip.AddrPortFrom(d.IP, d.Port), d.Probability, d.Masquerade))
			}
			sort.Strings(got)
			if !slices.Equal(got, tc.dests) {
				t.Errorf("destinations\n  %v\nwant\n  %v", got, tc.dests)
			}
			if tc.obs == "" {
				return
			}
			o, ok := obs[tc.obs]
			if !ok {
				t.Fatalf("no observation %q", tc.obs)
			}
			agreesWithCluster(t, res, o, pods, tc.pkt.Src.String())
		})
	}
}

// v137Run is the part of a probe's HTTP result the checks read.
type v137Run struct {
	Total     int                 `json:"total"`
	OK        int                 `json:"ok"`
	Pods      map[string]int      `json:"pods"`
	ClientIPs map[string][]string `json:"clientIPs"`
	Errors    map[string]int      `json:"errors"`
}

func readMultiNodeV137Observations(t *testing.T) map[string]v137Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(multiNodeV137Dir, "observations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]v137Run{}
	for k, v := range raw {
		var run v137Run
		if json.Unmarshal(v, &run) == nil && run.Total > 0 {
			out[k] = run
		}
	}
	return out
}

func readMultiNodeV137Pods(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(multiNodeV137Dir, "pods.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Pods []struct {
			Name  string `json:"name"`
			PodIP string `json:"podIP"`
		} `json:"pods"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range doc.Pods {
		out[p.PodIP] = p.Name
	}
	return out
}

// agreesWithCluster checks a trace against a probe run: a dropped packet
// timed out; otherwise the predicted pods and only they answered, a pod on
// a masqueraded branch saw an address other than the caller's and any
// other exactly the caller's.
func agreesWithCluster(t *testing.T, res dataplane.Result, run v137Run, pods map[string]string, src string) {
	t.Helper()
	if res.Verdict != dataplane.Accept {
		if run.OK != 0 || run.Errors["timeout"] != run.Total {
			t.Errorf("the trace drops the packet but the cluster answered %d of %d (errors %v)", run.OK, run.Total, run.Errors)
		}
		return
	}
	masq := map[string]bool{}
	var predicted, answered []string
	for _, d := range res.Destinations {
		name := pods[d.IP.String()]
		if name == "" {
			t.Fatalf("destination %s is no seed pod", d.IP)
		}
		predicted = append(predicted, name)
		masq[name] = d.Masquerade
	}
	for name := range run.Pods {
		answered = append(answered, name)
	}
	sort.Strings(predicted)
	sort.Strings(answered)
	if run.OK != run.Total || !slices.Equal(predicted, answered) {
		t.Errorf("the trace sends to %v; the cluster answered %d of %d from %v", predicted, run.OK, run.Total, run.Pods)
	}
	for name, ips := range run.ClientIPs {
		switch {
		case masq[name] && slices.Contains(ips, src):
			t.Errorf("the trace masquerades the branch to %s but it saw the caller's %s", name, src)
		case !masq[name] && !slices.Equal(ips, []string{src}):
			t.Errorf("the trace keeps the source on the branch to %s but it saw %v, not %s", name, ips, src)
		}
	}
}
