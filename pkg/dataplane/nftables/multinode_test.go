package nftables

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
	"github.com/netconform/netconform/pkg/dataplane/iptables"
)

// The v1.37.2 3-node iptables-mode capture (../testdata/v1.37.2-3-node-
// iptables, see its README.md) holds each node's `nft -j list ruleset`
// beside its iptables-save, read through the node's kube-proxy pod. In
// iptables mode kube-proxy writes through iptables-nft, so the JSON shows
// the same rules as nft sees them (tables ip nat, ip filter, ip mangle,
// rules made of xt matches) and no kube-proxy table.
var multiNodeIPTablesDir = filepath.Join("..", "testdata", "v1.37.2-3-node-iptables")

var multiNodeIPTablesNodes = map[string]string{
	"netconform-v1-37-iptables-control-plane": "172.18.0.4",
	"netconform-v1-37-iptables-worker":        "172.18.0.2",
	"netconform-v1-37-iptables-worker2":       "172.18.0.3",
}

func readMultiNodeJSON(t *testing.T, node string) *Ruleset {
	t.Helper()
	f, err := os.Open(filepath.Join(multiNodeIPTablesDir, node+".nft.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := ParseJSON(f)
	if err != nil {
		t.Fatalf("parsing %s.nft.json: %v", node, err)
	}
	return rs
}

// iptablesSaveCounts counts the rules of each chain of one table in an
// iptables-save dump: "table/chain" -> rules, declared chains included;
// builtin lists the builtin chains (declared with a policy).
func iptablesSaveCounts(t *testing.T, node string) (counts map[string]int, builtin map[string]bool) {
	t.Helper()
	f, err := os.Open(filepath.Join(multiNodeIPTablesDir, node+".iptables-save.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	builtin = map[string]bool{}
	table := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			out[table+"/"+f[0]] += 0
			builtin[table+"/"+f[0]] = len(f) > 1 && f[1] != "-"
		case strings.HasPrefix(l, "-A "):
			out[table+"/"+strings.Fields(l)[1]]++
		}
	}
	return out, builtin
}

// The JSON and iptables-save views of each node's rules agree: the same
// chains in ip nat, ip filter and ip mangle, with the same number of
// rules each. Only builtin chains without rules may be missing from the
// JSON: iptables-nft creates a base chain when a rule first needs it, while
// iptables-nft-save prints every builtin chain of a table with its policy.
func TestMultiNodeIPTablesModeJSONMatchesIPTablesSave(t *testing.T) {
	for node := range multiNodeIPTablesNodes {
		rs := readMultiNodeJSON(t, node)
		if rs.Table("ip", KubeProxyTable) != nil || rs.Table("ip6", KubeProxyTable) != nil {
			t.Errorf("%s: a kube-proxy table in an iptables-mode cluster", node)
		}
		want, builtin := iptablesSaveCounts(t, node)
		got := map[string]int{}
		for _, tb := range rs.Tables {
			if tb.Family != "ip" {
				continue
			}
			for _, c := range tb.Chains {
				got[tb.Name+"/"+c.Name] = len(c.Rules)
			}
		}
		if len(want) < 40 {
			t.Fatalf("%s: only %d chains in iptables-save", node, len(want))
		}
		for k, n := range want {
			g, ok := got[k]
			if !ok && builtin[k] && n == 0 {
				continue
			}
			if !ok || g != n {
				t.Errorf("%s: chain %s has %d rules in iptables-save, %d (present %v) in the JSON", node, k, n, g, ok)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: chain %s is in the JSON but not in iptables-save", node, k)
			}
		}
	}
}

// Read from an iptables-mode node, the tracer says it has nothing to go by
// rather than predicting that a Service packet goes nowhere, and Check says
// the table is missing. (On the cluster that packet, the client's to
// backend-service, was answered by both backends.)
func TestMultiNodeIPTablesModeJSONHasNoKubeProxyTable(t *testing.T) {
	for node, ip := range multiNodeIPTablesNodes {
		rs := readMultiNodeJSON(t, node)
		tr := NewTracer(rs, []netip.Addr{netip.MustParseAddr(ip)})
		_, err := tr.Trace(dataplane.Packet{Src: netip.MustParseAddr("10.244.1.117"), Dst: netip.MustParseAddr("10.96.99.223"), Proto: "tcp", DPort: 3000, From: dataplane.FromPod})
		if err == nil || !strings.Contains(err.Error(), "kube-proxy") {
			t.Errorf("%s: trace error %v, want one naming the missing kube-proxy table", node, err)
		}

		f, err := os.Open(filepath.Join(multiNodeIPTablesDir, "services-endpointslices-nodes.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := iptables.DecodeAPIObjects(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var c Cluster
		for i := range objs.Nodes {
			if objs.Nodes[i].Name == node {
				c.Node = &objs.Nodes[i]
			}
		}
		c.Services, c.EndpointSlices = objs.Services, objs.EndpointSlices
		findings := Check(rs, c)
		if len(findings) == 0 || findings[0].Check != CheckTable {
			t.Errorf("%s: findings %v, want the missing table first", node, findings)
		}
	}
}
