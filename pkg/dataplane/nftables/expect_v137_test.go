package nftables

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// v137Cluster is the v1.37 capture's objects seen from one node, with
// kind's pod CIDR as kube-proxy's cluster CIDR.
func v137Cluster(t *testing.T, node string) Cluster {
	t.Helper()
	objs := readMultiNodeV137Objects(t)
	c := Cluster{Services: objs.Services, EndpointSlices: objs.EndpointSlices, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	for i := range objs.Nodes {
		if objs.Nodes[i].Name == multiNodeV137Prefix+node {
			c.Node = &objs.Nodes[i]
		}
	}
	if c.Node == nil {
		t.Fatalf("no Node %s", multiNodeV137Prefix+node)
	}
	return c
}

func loadV137Doc(t *testing.T, node string) *dumpDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(multiNodeV137Dir, multiNodeV137Prefix+node+".nft.json"))
	if err != nil {
		t.Fatal(err)
	}
	return decodeDoc(t, b)
}

func TestV137LayoutDetected(t *testing.T) {
	for node := range multiNodeV137IPs {
		if got := DetectLayout(readMultiNodeV137(t, node).Table("ip", KubeProxyTable)); got != LayoutV137 {
			t.Errorf("%s: layout %s, want %s", node, got, LayoutV137)
		}
	}
	if got := DetectLayout(loadDump(t).Table("ip", KubeProxyTable)); got != LayoutV134 {
		t.Errorf("v1.34.4 dump: layout %s, want %s", got, LayoutV134)
	}
	// Without the hairpin set, the numgen DNAT maps still tell.
	d := loadV137Doc(t, "worker")
	d.replace(t, `hairpin-connections"`, `hairpin-connections-old"`)
	if got := DetectLayout(d.ruleset(t).Table("ip", KubeProxyTable)); got != LayoutV137 {
		t.Errorf("worker without @hairpin-connections: layout %s, want %s", got, LayoutV137)
	}
}

// Every node's v1.37 dump holds what its objects require.
func TestCheckV137DumpsAreClean(t *testing.T) {
	for node := range multiNodeV137IPs {
		c := v137Cluster(t, node)
		if fs := Check(readMultiNodeV137(t, node), c); len(fs) != 0 {
			t.Errorf("%s: findings on the unmodified dump:\n%s", node, findingList(fs))
		}
		c.ClusterCIDRs = nil
		if fs := Check(readMultiNodeV137(t, node), c); len(fs) != 0 {
			t.Errorf("%s: findings without ClusterCIDRs:\n%s", node, findingList(fs))
		}
	}
}
