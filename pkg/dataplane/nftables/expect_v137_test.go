package nftables

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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

// Rule handles of the v1.37 worker dump used below.
const (
	h137ClusterIPMark = 58  // services: ip daddr @cluster-ips ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000
	h137MasqMarked    = 35  // masquerading: meta mark & 0x4000 != 0 meta mark set meta mark ^ 0x4000 masquerade fully-random
	h137MasqHairpin   = 36  // masquerading: ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade
	h137BackendDNAT   = 142 // service-NVFXXSGO backend: meta l4proto tcp dnat ip to numgen random mod 2 map {...}
	h137FrontendMark  = 149 // external-PMTCI6L7 frontend: meta mark set meta mark | 0x4000
	h137FooLocalDNAT  = 162 // local-TQMY752Z foo: meta l4proto tcp dnat to 10.244.1.14:8080
	h137FooFibMark    = 157 // external-TQMY752Z foo: fib saddr type local meta mark set meta mark | 0x4000
)

// dnatMapOf returns the numgen key and elements of a v1.37 `dnat ... map`
// rule's JSON.
func dnatMapOf(t *testing.T, expr []any) (map[string]any, map[string]any) {
	t.Helper()
	m := expr[1].(map[string]any)["dnat"].(map[string]any)["addr"].(map[string]any)["map"].(map[string]any)
	return m["key"].(map[string]any)["numgen"].(map[string]any), m["data"].(map[string]any)
}

// TestCheckV137Mutations breaks a v1.37 dump (or the objects) one way at a
// time and requires the precise finding, as TestCheckMutations does for
// v1.34. Each v1.37-specific expectation is among them.
func TestCheckV137Mutations(t *testing.T) {
	cases := []struct {
		name, node string
		dump       func(t *testing.T, d *dumpDoc)
		objects    func(t *testing.T, c *Cluster)
		check      CheckID
		contains   string
	}{
		{
			name: "hairpin-connections set and rule gone", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				i, _ := d.body(t, "set", "name", hairpinSet)
				d.items = append(d.items[:i], d.items[i+1:]...)
				d.dropRule(t, h137MasqHairpin)
			},
			check: CheckTable, contains: "set hairpin-connections is missing",
		},
		{
			name: "a local endpoint missing from hairpin-connections", node: "worker",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "set", hairpinSet, `"10.244.1.11"`) },
			check: CheckHairpin, contains: "hairpin-connections has no element 10.244.1.11 . 10.244.1.11 . tcp . 3000",
		},
		{
			name: "hairpin masquerade rule gone", node: "worker2",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, h137MasqHairpin) },
			check: CheckHairpin, contains: "masquerading chain has no rule `ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade`",
		},
		{
			name: "hairpin element of another node's endpoint", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				d.addElem(t, "set", hairpinSet, `{"concat": ["10.244.2.10", "10.244.2.10", "tcp", 3000]}`)
			},
			check: CheckUnexpected, contains: "hairpin-connections element 10.244.2.10 . 10.244.2.10 . tcp . 3000 belongs to no Service port",
		},
		{
			name: "marked packets not masqueraded", node: "worker",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, h137MasqMarked) },
			check: CheckMasquerading, contains: "masquerading chain has no rule `meta mark & 0x00004000 != 0 ... masquerade`",
		},
		{
			name: "masquerade without the mark test", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				_, b := d.body(t, "rule", "handle", h137MasqMarked)
				b["expr"] = b["expr"].([]any)[1:]
			},
			check: CheckMasquerading, contains: "masquerades without testing the mark 0x00004000 or @hairpin-connections",
		},
		{
			name: "off-cluster ClusterIP traffic not marked", node: "worker",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, h137ClusterIPMark) },
			check: CheckClusterMasq, contains: "chain services has no rule `ip daddr @cluster-ips ip saddr != <cluster CIDR> meta mark set meta mark | 0x00004000`",
		},
		{
			name: "ClusterIP masquerade names another CIDR", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				d.rule(t, h137ClusterIPMark)[1].(map[string]any)["match"].(map[string]any)["right"].(map[string]any)["prefix"].(map[string]any)["addr"] = "10.245.0.0"
			},
			check: CheckClusterMasq, contains: "marks ClusterIP traffic from outside 10.245.0.0/16 for masquerade, want from outside the cluster CIDR 10.244.0.0/16",
		},
		{
			name: "DNAT map misses an endpoint", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				_, data := dnatMapOf(t, d.rule(t, h137BackendDNAT))
				data["set"] = data["set"].([]any)[:1]
			},
			check: CheckServiceChain, contains: "dnat over mod 2 to 10.244.1.11:3000, want mod 2 over 2 endpoints 10.244.1.11:3000,10.244.2.10:3000",
		},
		{
			name: "DNAT map with the wrong modulus", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				ng, _ := dnatMapOf(t, d.rule(t, h137BackendDNAT))
				ng["mod"] = json.Number("3")
			},
			check: CheckServiceChain, contains: "dnat over mod 3 to 10.244.1.11:3000,10.244.2.10:3000, want mod 2",
		},
		{
			name: "DNAT map leaves a number uncovered", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				_, data := dnatMapOf(t, d.rule(t, h137BackendDNAT))
				data["set"].([]any)[1].([]any)[0] = json.Number("5")
			},
			check: CheckServiceChain, contains: "numgen random mod 2 but its map covers 1 values",
		},
		{
			name: "Service chain without DNAT", node: "worker",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, h137BackendDNAT) },
			check: CheckServiceChain, contains: "chain service-NVFXXSGO-nc-capture-829513/backend-service/tcp/http has no dnat rule; want it to DNAT to 10.244.1.11:3000,10.244.2.10:3000",
		},
		{
			name: "local chain DNATs to another node's endpoint", node: "worker",
			dump: func(t *testing.T, d *dumpDoc) {
				d.rule(t, h137FooLocalDNAT)[1].(map[string]any)["dnat"].(map[string]any)["addr"] = "10.244.2.15"
			},
			check: CheckLocalChain, contains: "dnat over mod 1 to 10.244.2.15:8080, want mod 1 over 1 endpoints on node netconform-v1-37-nftables-worker 10.244.1.14:8080",
		},
		{
			name: "Cluster-policy external chain does not mark", node: "worker",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, h137FrontendMark) },
			check: CheckExternalChain, contains: "does not set meta mark | 0x00004000 for externalTrafficPolicy Cluster",
		},
		{
			name: "Local-policy external chain does not mark host traffic", node: "worker",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, h137FooFibMark) },
			check: CheckExternalChain, contains: "lacks the `fib saddr type local` rules",
		},
		{
			name: "NodePort element dropped", node: "worker2",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "map", "service-nodeports", "30530") },
			check: CheckNodePorts, contains: "service-nodeports has no element for tcp . 30530 (want : goto external-PMTCI6L7-nc-capture-829513/frontend-nodeport-service/tcp/frontend)",
		},
		{
			name: "LoadBalancer IP element dropped", node: "worker",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "map", "service-ips", `"172.18.245.201"`) },
			check: CheckServiceIPs, contains: "service-ips has no element for 172.18.245.201 . tcp . 5678 (want : goto external-TQMY752Z-nc-capture-829513/foo-service/tcp/http)",
		},
		{
			name: "Local node port without local endpoint not dropped", node: "control-plane",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "map", "no-endpoint-nodeports", "30294") },
			check: CheckNoEndpoints, contains: "no-endpoint-nodeports has no element for tcp . 30294 (want : drop)",
		},
		{
			name: "loadBalancerSourceRanges not enforced", node: "worker",
			objects: func(t *testing.T, c *Cluster) {
				for i := range c.Services {
					if c.Services[i].Name == "foo-service" {
						c.Services[i].Spec.LoadBalancerSourceRanges = []string{"172.18.0.0/16"}
					}
				}
			},
			check: CheckFirewall, contains: "firewall-ips has no element for 172.18.245.201 . tcp . 5678",
		},
		{
			name: "ClientIP affinity not programmed", node: "worker",
			objects: func(t *testing.T, c *Cluster) {
				for i := range c.Services {
					if c.Services[i].Name == "backend-service" {
						c.Services[i].Spec.SessionAffinity = corev1.ServiceAffinityClientIP
					}
				}
			},
			check: CheckServiceChain, contains: "chain service-NVFXXSGO-nc-capture-829513/backend-service/tcp/http has no numgen rule",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := loadV137Doc(t, tc.node)
			if tc.dump != nil {
				tc.dump(t, d)
			}
			c := v137Cluster(t, tc.node)
			if tc.objects != nil {
				tc.objects(t, &c)
			}
			fs := Check(d.ruleset(t), c)
			for _, f := range fs {
				if f.Check == tc.check && strings.Contains(f.Message, tc.contains) {
					return
				}
			}
			t.Errorf("no [%s] finding containing %q; got:\n%s", tc.check, tc.contains, findingList(fs))
		})
	}
}
