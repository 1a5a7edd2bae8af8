package iptables

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/netconform/netconform/pkg/dataplane"
)

// The v1.37.2 3-node dumps were captured from a live kind cluster
// (Kubernetes v1.37.2, kube-proxy iptables mode, podnet CNI, MetalLB) with
// the seed fixtures in namespace nc-capture-095ab5 (see the directory's
// README.md): each node's iptables-save, read through its kube-proxy pod,
// the cluster's Services, EndpointSlices and Nodes, where the pods ran,
// and what probes saw right after (observations.json).
//
//	control-plane 172.18.0.4   pods 10.244.0.0/24   no seed pods
//	worker        172.18.0.2   pods 10.244.3.0/24   backend rc98m .147, frontend 9gvs8 .148, q5kxk .149, foo 7vqtw .151
//	worker2       172.18.0.3   pods 10.244.1.0/24   backend lthv4 .112, frontend pns6h .113, foo rfgpg .116, client .117
//
// backend-service 10.96.99.223:3000; frontend-nodeport-service
// 10.96.83.182:80, node port 32222; foo-service (externalTrafficPolicy
// Local) 10.96.110.128:5678, node port 30163, LoadBalancer IP
// 172.18.246.201. The external client was a container on the kind network
// at 172.18.251.77.
var multiNodeDir = filepath.Join("..", "testdata", "v1.37.2-3-node-iptables")

const multiNodePrefix = "netconform-v1-37-iptables-"

var multiNodeIPs = map[string]string{"control-plane": "172.18.0.4", "worker": "172.18.0.2", "worker2": "172.18.0.3"}

func multiNodeDump(t *testing.T, node string) *Ruleset {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(multiNodeDir, multiNodePrefix+node+".iptables-save.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseBytes(b)
	if err != nil {
		t.Fatalf("parsing %s's dump: %v", node, err)
	}
	return rs
}

func multiNodeObjects(t *testing.T) *APIObjects {
	t.Helper()
	f, err := os.Open(filepath.Join(multiNodeDir, "services-endpointslices-nodes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := DecodeAPIObjects(f)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func multiNodeNode(t *testing.T, objs *APIObjects, node string) *corev1.Node {
	t.Helper()
	for i := range objs.Nodes {
		if objs.Nodes[i].Name == multiNodePrefix+node {
			return &objs.Nodes[i]
		}
	}
	t.Fatalf("no Node %s%s", multiNodePrefix, node)
	return nil
}

// Every node's dump holds exactly what the cluster's Services and
// EndpointSlices call for (all namespaces, stale chains included).
func TestMultiNodeCheckIsClean(t *testing.T) {
	objs := multiNodeObjects(t)
	if len(objs.Nodes) != 3 || len(objs.Services) < 10 || len(objs.EndpointSlices) < 10 {
		t.Fatalf("objects: %d nodes, %d Services, %d EndpointSlices", len(objs.Nodes), len(objs.Services), len(objs.EndpointSlices))
	}
	for node := range multiNodeIPs {
		rs := multiNodeDump(t, node)
		findings, err := Check(rs, multiNodeNode(t, objs, node), objs, Options{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Errorf("%s: unexpected finding [%s] %s", node, f.Check, f)
		}
	}
}

// The nodes differ where externalTrafficPolicy Local says they must: only
// the nodes with a foo pod have a KUBE-SVL chain with a KUBE-SEP jump, and
// the control plane drops the Service's node port and LoadBalancer IP.
func TestMultiNodeLocalPolicyPerNode(t *testing.T) {
	objs := multiNodeObjects(t)
	var foo *corev1.Service
	for i := range objs.Services {
		if objs.Services[i].Namespace == "nc-capture-095ab5" && objs.Services[i].Name == "foo-service" {
			foo = &objs.Services[i]
		}
	}
	if foo == nil {
		t.Fatal("no foo-service")
	}
	for node, wantLocal := range map[string]string{"control-plane": "", "worker": "10.244.3.151:8080", "worker2": "10.244.1.116:8080"} {
		exps, err := Expect(foo, objs.EndpointSlices, multiNodeNode(t, objs, node), Options{})
		if err != nil || len(exps) != 1 {
			t.Fatalf("%s: %v, %d expectations", node, err, len(exps))
		}
		e := exps[0]
		var local []string
		for _, ep := range e.Endpoints.Local {
			local = append(local, ep.String())
		}
		if strings.Join(local, ",") != wantLocal {
			t.Errorf("%s: local endpoints %v, want %q", node, local, wantLocal)
		}
		rs := multiNodeDump(t, node)
		svl := rs.Chain("nat", e.Port.Chain(PrefixLocal))
		switch {
		case wantLocal == "" && (svl != nil || e.ExternalFilter != "DROP"):
			t.Errorf("%s: SVL chain %v, external filter %q; want no chain and DROP", node, svl != nil, e.ExternalFilter)
		case wantLocal != "" && (svl == nil || len(svl.Rules) == 0 || !strings.Contains(svl.Rules[len(svl.Rules)-1].Text, wantLocal)):
			t.Errorf("%s: SVL chain %v does not end with the jump to %s", node, svl, wantLocal)
		}
	}
}

// multiNodeCase is a hand-checked trace on one node's dump, with the probe
// run that the cluster answered it with.
type multiNodeCase struct {
	node string
	traceCase
	// obs names the probe run in observations.json (empty: none).
	obs string
}

// TestMultiNodeTracesMatchTheCluster checks hand-made predictions on the
// captured dumps, and then that they are what the cluster did: every
// predicted pod and only those answered; a pod on a masqueraded branch saw
// an address other than the caller's, any other exactly the caller's; a
// dropped packet timed out.
func TestMultiNodeTracesMatchTheCluster(t *testing.T) {
	const (
		backendIP  = "10.96.99.223"
		frontendIP = "10.96.83.182"
		lbIP       = "172.18.246.201"
		external   = "172.18.251.77"
	)
	cases := []multiNodeCase{
		{
			// The client (worker2) to backend-service: 0.5 to each backend,
			// neither branch marked (the client is inside 10.244.0.0/16 and
			// is neither endpoint), so neither is masqueraded; the branch to
			// worker's backend is forwarded over the node network.
			// Cluster: both answered (23 and 17 of 40) and both saw the
			// client's own 10.244.1.117.
			node: "worker2", obs: "client->backend /clientip",
			traceCase: traceCase{name: "client to backend-service", pkt: pkt(dataplane.FromPod, "10.244.1.117", backendIP, "tcp", 3000), verdict: dataplane.Accept,
				dests: []wantDest{
					{"10.244.1.112", 3000, 0.5, false, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-SVC-GMI3TDRLO4YVOKLE", "KUBE-SEP-QZTAJKTFRHTN3THB",
						"filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "nat/POSTROUTING", "KUBE-POSTROUTING", "PODNET-MASQ"}},
					{"10.244.3.147", 3000, 0.5, false, nil},
				}},
		},
		{
			// Hairpin on worker2: backend lthv4 (10.244.1.112) to its own
			// Service. The branch through its own KUBE-SEP meets "-s
			// 10.244.1.112/32 -j KUBE-MARK-MASQ" and is masqueraded; the
			// branch to worker's backend is not.
			// Cluster: lthv4 saw 10.244.1.1 (worker2's pod-side address),
			// rc98m saw 10.244.1.112.
			node: "worker2", obs: "backend-6ffc5cdd9b-lthv4->backend /clientip (hairpin)",
			traceCase: traceCase{name: "hairpin on worker2", pkt: pkt(dataplane.FromPod, "10.244.1.112", backendIP, "tcp", 3000), verdict: dataplane.Accept,
				dests: []wantDest{
					{"10.244.1.112", 3000, 0.5, true, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-SVC-GMI3TDRLO4YVOKLE", "KUBE-SEP-QZTAJKTFRHTN3THB", "KUBE-MARK-MASQ",
						"filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
					{"10.244.3.147", 3000, 0.5, false, nil},
				}},
		},
		{
			// The same from worker's backend rc98m (10.244.3.147).
			// Cluster: rc98m saw 10.244.3.1, lthv4 saw 10.244.3.147.
			node: "worker", obs: "backend-6ffc5cdd9b-rc98m->backend /clientip (hairpin)",
			traceCase: traceCase{name: "hairpin on worker", pkt: pkt(dataplane.FromPod, "10.244.3.147", backendIP, "tcp", 3000), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.1.112", 3000, 0.5, false, nil}, {"10.244.3.147", 3000, 0.5, true, nil}}},
		},
		{
			// The client to frontend-nodeport-service's ClusterIP: kube-proxy's
			// 1/3, then 1/2 of the rest, then the rest; no masquerade.
			// Cluster: 21, 19, 20 of 60, each saw 10.244.1.117.
			node: "worker2", obs: "client->frontend /clientip",
			traceCase: traceCase{name: "client to frontend ClusterIP", pkt: pkt(dataplane.FromPod, "10.244.1.117", frontendIP, "tcp", 80), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.1.113", 8080, third, false, nil}, {"10.244.3.148", 8080, restThird, false, nil}, {"10.244.3.149", 8080, restThird, false, nil}}},
		},
		{
			// From outside to the frontend node port (Cluster policy) on
			// each node: KUBE-NODEPORTS -> KUBE-EXT, whose first rule marks
			// every external packet, so every branch is masqueraded.
			// Cluster: every pod saw a node address (the receiving node's
			// InternalIP or pod-side address), never 172.18.251.77.
			node: "control-plane", obs: "external->frontend NodePort on netconform-v1-37-iptables-control-plane 172.18.0.4",
			traceCase: traceCase{name: "external to frontend node port on control-plane", pkt: pkt(dataplane.FromExternal, external, "172.18.0.4", "tcp", 32222), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.1.113", 8080, third, true, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXT-OQ7VHEMUH7MLEDBQ", "KUBE-MARK-MASQ",
					"KUBE-SVC-OQ7VHEMUH7MLEDBQ", "KUBE-SEP-IMG23TU64R2G2CSI", "filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
					{"10.244.3.148", 8080, restThird, true, nil}, {"10.244.3.149", 8080, restThird, true, nil}}},
		},
		{
			node: "worker", obs: "external->frontend NodePort on netconform-v1-37-iptables-worker 172.18.0.2",
			traceCase: traceCase{name: "external to frontend node port on worker", pkt: pkt(dataplane.FromExternal, external, "172.18.0.2", "tcp", 32222), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.1.113", 8080, third, true, nil}, {"10.244.3.148", 8080, restThird, true, nil}, {"10.244.3.149", 8080, restThird, true, nil}}},
		},
		{
			node: "worker2", obs: "external->frontend NodePort on netconform-v1-37-iptables-worker2 172.18.0.3",
			traceCase: traceCase{name: "external to frontend node port on worker2", pkt: pkt(dataplane.FromExternal, external, "172.18.0.3", "tcp", 32222), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.1.113", 8080, third, true, nil}, {"10.244.3.148", 8080, restThird, true, nil}, {"10.244.3.149", 8080, restThird, true, nil}}},
		},
		{
			// foo-service's node port (Local policy) on the control plane,
			// which has no foo pod: filter KUBE-EXTERNAL-SERVICES drops it.
			// Cluster: all 30 requests timed out.
			node: "control-plane", obs: "external->foo (Local) NodePort on netconform-v1-37-iptables-control-plane 172.18.0.4",
			traceCase: traceCase{name: "external to Local node port without a local endpoint", pkt: pkt(dataplane.FromExternal, external, "172.18.0.4", "tcp", 30163), verdict: dataplane.Drop,
				rule: `"nc-capture-095ab5/foo-service:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30163 -j DROP`},
		},
		{
			// The same on worker: KUBE-EXT -> KUBE-SVL -> its own foo pod,
			// source kept. Cluster: foo 7vqtw answered all 30 and saw
			// 172.18.251.77.
			node: "worker", obs: "external->foo (Local) NodePort on netconform-v1-37-iptables-worker 172.18.0.2",
			traceCase: traceCase{name: "external to Local node port with a local endpoint", pkt: pkt(dataplane.FromExternal, external, "172.18.0.2", "tcp", 30163), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.3.151", 8080, 1, false, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXT-4URG32TIAI4GFWAU", "KUBE-SVL-4URG32TIAI4GFWAU", "KUBE-SEP-7TIMJOIDT6F5AYTN",
					"filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "nat/POSTROUTING", "KUBE-POSTROUTING", "PODNET-MASQ"}}}},
		},
		{
			node: "worker2", obs: "external->foo (Local) NodePort on netconform-v1-37-iptables-worker2 172.18.0.3",
			traceCase: traceCase{name: "external to Local node port on worker2", pkt: pkt(dataplane.FromExternal, external, "172.18.0.3", "tcp", 30163), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.1.116", 8080, 1, false, nil}}},
		},
		{
			// The LoadBalancer IP reached worker2 (MetalLB's L2 speaker
			// there answered ARP for it): KUBE-SERVICES -> KUBE-EXT ->
			// KUBE-SVL -> worker2's foo pod, source kept.
			// Cluster: foo rfgpg (worker2) answered all 30 and saw
			// 172.18.251.77.
			node: "worker2", obs: "external->foo (Local) LoadBalancer IP 172.18.246.201",
			traceCase: traceCase{name: "external to the Local LoadBalancer IP on worker2", pkt: pkt(dataplane.FromExternal, external, lbIP, "tcp", 5678), verdict: dataplane.Accept,
				dests: []wantDest{{"10.244.1.116", 8080, 1, false, nil}}},
		},
		{
			// Had it reached the control plane, it would have been dropped
			// (no probe: MetalLB did not send it there).
			node: "control-plane",
			traceCase: traceCase{name: "the Local LoadBalancer IP on a node without an endpoint", pkt: pkt(dataplane.FromExternal, external, lbIP, "tcp", 5678), verdict: dataplane.Drop,
				rule: `-d 172.18.246.201/32 -p tcp -m comment --comment "nc-capture-095ab5/foo-service:http has no local endpoints" -m tcp --dport 5678 -j DROP`},
		},
	}
	obs := multiNodeObservations(t)
	podsByIP := multiNodePods(t)
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracer(multiNodeDump(t, tc.node), []netip.Addr{netip.MustParseAddr(multiNodeIPs[tc.node])})
			checkTrace(t, tr, tc.traceCase)
			if tc.obs == "" {
				return
			}
			o, ok := obs[tc.obs]
			if !ok {
				t.Fatalf("no observation %q", tc.obs)
			}
			seen[tc.obs] = true
			res, err := tr.Trace(tc.pkt)
			if err != nil {
				t.Fatal(err)
			}
			multiNodeAgrees(t, res, o, podsByIP, tc.pkt.Src.String())
		})
	}
	for k, v := range obs {
		if _, isRun := v.(multiNodeRun); isRun && !seen[k] {
			t.Errorf("observation %q is not checked against any trace", k)
		}
	}
}

// multiNodeRun is the part of a probe's HTTP result the checks read.
type multiNodeRun struct {
	Total     int                 `json:"total"`
	OK        int                 `json:"ok"`
	Pods      map[string]int      `json:"pods"`
	ClientIPs map[string][]string `json:"clientIPs"`
	Errors    map[string]int      `json:"errors"`
}

func multiNodeObservations(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(multiNodeDir, "observations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range raw {
		var run multiNodeRun
		if json.Unmarshal(v, &run) == nil && run.Total > 0 {
			out[k] = run
			continue
		}
		out[k] = string(v)
	}
	return out
}

// multiNodePods maps pod IPs to names from pods.yaml.
func multiNodePods(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(multiNodeDir, "pods.yaml"))
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

// multiNodeAgrees checks a trace against what the cluster did.
func multiNodeAgrees(t *testing.T, res dataplane.Result, o any, pods map[string]string, src string) {
	t.Helper()
	run, ok := o.(multiNodeRun)
	if !ok {
		t.Fatalf("observation is not a probe run: %v", o)
	}
	if res.Verdict != dataplane.Accept {
		if run.OK != 0 || run.Errors["timeout"] != run.Total {
			t.Errorf("the trace drops the packet but the cluster answered %d of %d (errors %v)", run.OK, run.Total, run.Errors)
		}
		return
	}
	var predicted []string
	masq := map[string]bool{}
	for _, d := range res.Destinations {
		name := pods[d.IP.String()]
		if name == "" {
			t.Fatalf("destination %s is no seed pod", d.IP)
		}
		predicted = append(predicted, name)
		masq[name] = d.Masquerade
	}
	var answered []string
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
			t.Errorf("the trace masquerades the branch to %s but it saw the caller's %s (%v)", name, src, ips)
		case !masq[name] && !slices.Equal(ips, []string{src}):
			t.Errorf("the trace keeps the source on the branch to %s but it saw %v, not %s", name, ips, src)
		}
	}
}
