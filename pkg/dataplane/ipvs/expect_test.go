package ipvs

// The tables and objects in testdata/ are hand-written (this host has no
// IPVS); see testdata/README.md.

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netconform/netconform/pkg/dataplane/iptables"
)

func readObjects(t *testing.T) (*iptables.APIObjects, *corev1.Node) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "objects.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := iptables.DecodeAPIObjects(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Nodes) != 1 || len(objs.Services) != 6 || len(objs.EndpointSlices) != 6 {
		t.Fatalf("objects: %d nodes, %d services, %d slices", len(objs.Nodes), len(objs.Services), len(objs.EndpointSlices))
	}
	return objs, &objs.Nodes[0]
}

func expectAll(t *testing.T, objs *iptables.APIObjects, node *corev1.Node, opts Options) []Expectation {
	t.Helper()
	var out []Expectation
	for i := range objs.Services {
		exps, err := Expect(&objs.Services[i], objs.EndpointSlices, node, opts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, exps...)
	}
	return out
}

func TestExpectSeedServices(t *testing.T) {
	objs, node := readObjects(t)
	exps := expectAll(t, objs, node, Options{})
	by := map[string]Expectation{}
	for _, e := range exps {
		by[e.Protocol+" "+e.Addr.String()] = e
	}
	// ClusterIPs (7 TCP ports, 1 UDP), frontend's and foo's NodePort on
	// the InternalIP, foo's LoadBalancer IP.
	if len(exps) != 11 {
		t.Errorf("%d expectations, want 11: %v", len(exps), exps)
	}
	check := func(key string, kind Kind, eps ...string) {
		t.Helper()
		e, ok := by[key]
		if !ok {
			t.Errorf("no expectation for %s", key)
			return
		}
		var got []string
		for _, a := range e.RealServers {
			got = append(got, a.String())
		}
		if e.Kind != kind || e.Scheduler != "rr" || strings.Join(got, ",") != strings.Join(eps, ",") {
			t.Errorf("%s: %+v, want %s with %v", key, e, kind, eps)
		}
	}
	check("tcp 10.96.45.12:3000", KindClusterIP, "10.244.1.4:3000", "10.244.2.4:3000")
	check("tcp 172.18.0.3:30000", KindNodePort, "10.244.1.5:8080", "10.244.2.5:8080", "10.244.2.6:8080")
	// externalTrafficPolicy Local: NodePort and LoadBalancer IP forward to
	// this node's endpoint only, the ClusterIP to both.
	check("tcp 10.96.88.9:5678", KindClusterIP, "10.244.1.6:8080", "10.244.2.7:8080")
	check("tcp 172.18.0.3:31234", KindNodePort, "10.244.1.6:8080")
	check("tcp 172.18.255.200:5678", KindLoadBalancer, "10.244.1.6:8080")
	check("udp 10.96.0.10:53", KindClusterIP, "10.244.0.2:53", "10.244.0.3:53")
	if s := by["tcp 10.96.130.40:8080"]; !s.Persistent || s.Timeout != 10800 {
		t.Errorf("sticky: %+v", s)
	}
	// On the other worker, Local policy leaves nothing for the NodePort.
	other := node.DeepCopy()
	other.Name = "kind-worker2"
	other.Status.Addresses[0].Address = "172.18.0.4"
	for _, e := range expectAll(t, objs, other, Options{}) {
		if e.Service == "default/foo-service:http" && e.Kind == KindNodePort {
			if e.Addr != netip.MustParseAddrPort("172.18.0.4:31234") || len(e.RealServers) != 1 || e.RealServers[0].String() != "10.244.2.7:8080" {
				t.Errorf("foo NodePort on kind-worker2: %+v", e)
			}
		}
	}
}

// Both hand-written listings of the same table satisfy every expectation;
// the weight-0 backend server is a draining endpoint, not a finding.
func TestCheckSeedTablesAreClean(t *testing.T) {
	objs, node := readObjects(t)
	exps := expectAll(t, objs, node, Options{})
	for _, name := range []string{"ipvsadm-Ln.txt", "proc-net-ip_vs.txt"} {
		for _, f := range Check(readTable(t, name), exps) {
			t.Errorf("%s: unexpected finding [%s] %s", name, f.Check, f)
		}
	}
	// The stats listing holds only five services and no weights: what it
	// has (real server sets; the draining server cannot be told apart, so
	// strangers are not reported) still matches, the rest is reported
	// missing.
	var missing int
	for _, f := range Check(readTable(t, "ipvsadm-Ln-stats.txt"), exps) {
		if f.Check != CheckVirtualService {
			t.Errorf("stats: unexpected finding [%s] %s", f.Check, f)
		}
		missing++
	}
	if missing != 6 {
		t.Errorf("stats listing: %d virtual services missing, want 6", missing)
	}
}

// Each mutation of the table breaks one expectation, and Check says so.
func TestCheckMutations(t *testing.T) {
	objs, node := readObjects(t)
	exps := expectAll(t, objs, node, Options{})
	orig, err := os.ReadFile(filepath.Join("testdata", "ipvsadm-Ln.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, m := range []struct {
		name     string
		old, new string
		check    string
		want     string
	}{
		{"ClusterIP service missing", "TCP  10.96.45.12:3000 rr", "TCP  10.96.45.13:3000 rr", CheckVirtualService, "no virtual service TCP 10.96.45.12:3000 for default/backend-service:http (ClusterIP)"},
		{"NodePort not bound on the node IP", "TCP  172.18.0.3:30000 rr", "TCP  172.18.0.9:30000 rr", CheckVirtualService, "172.18.0.3:30000"},
		{"scheduler", "TCP  10.96.200.7:80 rr", "TCP  10.96.200.7:80 lc", CheckScheduler, "uses scheduler lc, want rr"},
		{"affinity lost", "TCP  10.96.130.40:8080 rr persistent 10800", "TCP  10.96.130.40:8080 rr", CheckPersistence, "is not persistent"},
		{"affinity timeout", "persistent 10800", "persistent 60", CheckPersistence, "persists for 60s, want 10800s"},
		{"affinity added", "TCP  10.96.45.12:3000 rr", "TCP  10.96.45.12:3000 rr persistent 10800", CheckPersistence, "no ClientIP session affinity"},
		{"endpoint missing", "  -> 10.244.2.4:3000              Masq    1", "  -> 10.244.2.99:3000             Masq    1", CheckRealServers, "10.244.2.4:3000"},
		{"Local policy forwards to a remote endpoint", "TCP  172.18.255.200:5678 rr\n  -> 10.244.1.6:8080              Masq    1      0          0         \n",
			"TCP  172.18.255.200:5678 rr\n  -> 10.244.1.6:8080              Masq    1      0          0         \n  -> 10.244.2.7:8080              Masq    1      0          0         \n",
			CheckRealServers, "forwards to 10.244.2.7:8080"},
		{"weight", "  -> 10.244.1.4:3000              Masq    1 ", "  -> 10.244.1.4:3000              Masq    2 ", CheckWeight, "weight 2"},
		{"endpoint at weight 0", "  -> 10.244.2.4:3000              Masq    1 ", "  -> 10.244.2.4:3000              Masq    0 ", CheckWeight, "weight 0"},
		{"forward", "  -> 10.244.1.4:3000              Masq   ", "  -> 10.244.1.4:3000              Route  ", CheckForward, "by Route"},
	} {
		s := strings.Replace(string(orig), m.old, m.new, 1)
		if s == string(orig) {
			t.Fatalf("%s: %q not in the table", m.name, m.old)
		}
		tb, err := ParseString(s)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		found := false
		var got []string
		for _, f := range Check(tb, exps) {
			got = append(got, "["+f.Check+"] "+f.Message)
			if f.Check == m.check && strings.Contains(f.Message, m.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no [%s] finding containing %q; got %v", m.name, m.check, m.want, got)
		}
		fired[m.check] = true
	}
	for _, c := range AllChecks {
		if !fired[c] {
			t.Errorf("check %s is never made to fail", c)
		}
	}
}

func TestExpectOptions(t *testing.T) {
	objs, node := readObjects(t)
	exps := expectAll(t, objs, node, Options{Scheduler: "lc", NodePortAddresses: []netip.Addr{netip.MustParseAddr("10.244.1.1"), netip.MustParseAddr("172.18.0.3")}})
	tb := readTable(t, "ipvsadm-Ln.txt")
	var sched, missing int
	for _, f := range Check(tb, exps) {
		switch f.Check {
		case CheckScheduler:
			sched++
		default:
			missing++
		}
	}
	// Every service is rr in the table (11 expectations, and 2 more for
	// the NodePorts on the kube-bridge address, which the table binds too,
	// so nothing else differs).
	if sched != 13 || missing != 0 {
		t.Errorf("scheduler findings %d (want 13), others %d (want 0)", sched, missing)
	}
}

func TestSharesSeed(t *testing.T) {
	tb := readTable(t, "ipvsadm-Ln.txt")
	// The draining weight-0 server gets nothing.
	shares, err := tb.Shares("tcp", ap("10.96.45.12:3000"))
	if err != nil || len(shares) != 2 || shares[0].Probability != 0.5 || shares[1].Addr != ap("10.244.2.4:3000") {
		t.Errorf("backend shares %+v, %v", shares, err)
	}
	if _, err := tb.Shares("tcp", ap("10.1.1.1:1")); err == nil {
		t.Error("shares of a missing service")
	}
}
