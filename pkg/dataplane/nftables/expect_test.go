package nftables

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestCheckSeedDumpIsClean(t *testing.T) {
	rs := loadDump(t)
	c := seedCluster(t)
	if fs := Check(rs, c); len(fs) != 0 {
		t.Errorf("findings on the unmodified dump:\n%s", findingList(fs))
	}
	// Without the cluster CIDR the masquerade rules are checked for
	// shape only, and still hold.
	c.ClusterCIDRs = nil
	if fs := Check(rs, c); len(fs) != 0 {
		t.Errorf("findings without ClusterCIDRs:\n%s", findingList(fs))
	}
}

// dumpDoc is the JSON dump as generic values, to mutate the way a broken
// kube-proxy or a stale sync would.
type dumpDoc struct{ items []any }

func loadDoc(t *testing.T) *dumpDoc {
	t.Helper()
	b, err := os.ReadFile(dumpDir + "nft-list-ruleset.json")
	if err != nil {
		t.Fatal(err)
	}
	return decodeDoc(t, b)
}

func decodeDoc(t *testing.T, b []byte) *dumpDoc {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc struct {
		Nftables []any `json:"nftables"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return &dumpDoc{items: doc.Nftables}
}

func (d *dumpDoc) bytes(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"nftables": d.items})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (d *dumpDoc) ruleset(t *testing.T) *Ruleset {
	t.Helper()
	rs, err := ParseJSON(bytes.NewReader(d.bytes(t)))
	if err != nil {
		t.Fatalf("mutated dump does not parse: %v", err)
	}
	return rs
}

// body returns the object of the ip kube-proxy item of that kind whose
// field has that value (a name, or a rule handle).
func (d *dumpDoc) body(t *testing.T, kind, field string, val any) (int, map[string]any) {
	t.Helper()
	for i, it := range d.items {
		b, ok := it.(map[string]any)[kind].(map[string]any)
		if !ok || b["family"] != "ip" || (b["table"] != KubeProxyTable && kind != "table") {
			continue
		}
		if fmt.Sprint(b[field]) == fmt.Sprint(val) {
			return i, b
		}
	}
	t.Fatalf("no %s with %s %v", kind, field, val)
	return 0, nil
}

func (d *dumpDoc) dropRule(t *testing.T, handle int) {
	i, _ := d.body(t, "rule", "handle", handle)
	d.items = append(d.items[:i], d.items[i+1:]...)
}

func (d *dumpDoc) rule(t *testing.T, handle int) []any {
	_, b := d.body(t, "rule", "handle", handle)
	return b["expr"].([]any)
}

// dropElem removes the elements of a set or map whose JSON contains text.
func (d *dumpDoc) dropElem(t *testing.T, kind, name, text string) {
	_, b := d.body(t, kind, "name", name)
	var kept []any
	for _, el := range b["elem"].([]any) {
		j, _ := json.Marshal(el)
		if !strings.Contains(string(j), text) {
			kept = append(kept, el)
		}
	}
	if len(kept) == len(b["elem"].([]any)) {
		t.Fatalf("no element of %s contains %s", name, text)
	}
	b["elem"] = kept
}

func (d *dumpDoc) addElem(t *testing.T, kind, name, elemJSON string) {
	_, b := d.body(t, kind, "name", name)
	dec := json.NewDecoder(strings.NewReader(elemJSON))
	dec.UseNumber()
	var el any
	if err := dec.Decode(&el); err != nil {
		t.Fatal(err)
	}
	elems, _ := b["elem"].([]any)
	b["elem"] = append(elems, el)
}

// replace rewrites the dump's JSON text: a blunt tool for renaming chains
// everywhere they are named, or changing one value.
func (d *dumpDoc) replace(t *testing.T, old, new string) {
	b := d.bytes(t)
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("dump has no %s", old)
	}
	*d = *decodeDoc(t, bytes.ReplaceAll(b, []byte(old), []byte(new)))
}

// numgen returns the numgen vmap of a rule.
func numgenOf(t *testing.T, expr []any) (map[string]any, []any) {
	vm := expr[0].(map[string]any)["vmap"].(map[string]any)
	return vm["key"].(map[string]any)["numgen"].(map[string]any), vm["data"].(map[string]any)["set"].([]any)
}

func setNumgen(t *testing.T, expr []any, mod int, elems []any) {
	ng, _ := numgenOf(t, expr)
	ng["mod"] = json.Number(fmt.Sprint(mod))
	expr[0].(map[string]any)["vmap"].(map[string]any)["data"].(map[string]any)["set"] = elems
}

func findingList(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

// Rule handles and names of the v1.34.4 dump used below.
const (
	hBackendMasq   = 120 // service-TTACPZBM: ip daddr 10.96.85.230 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
	hBackendLB     = 122 // service-TTACPZBM: numgen random mod 2 vmap {...}
	hBackend5Mark  = 125 // endpoint-DY7CHKFN: ip saddr 10.244.0.5 jump mark-for-masquerade
	hBackend5DNAT  = 126 // endpoint-DY7CHKFN: meta l4proto tcp dnat to 10.244.0.5:3000
	hFrontendMark  = 130 // external-WSSLWGAI: jump mark-for-masquerade
	hLocalToLocal  = 201 // external-36AIK6QE: goto local-36AIK6QE
	hFirewallDrop  = 202 // firewall-36AIK6QE: ip saddr != 192.168.0.0/16 drop
	hAffinityLook4 = 159 // service-AT7S2JU6: ip saddr @affinity-DH42Q33Z... goto endpoint-DH42Q33Z...
	hNatPreJump    = 28  // nat-prerouting: jump services
	hMasqGuard     = 36  // masquerading: meta mark & 0x4000 == 0 return
	hMarkSet       = 35  // mark-for-masquerade: meta mark set meta mark | 0x4000
	hClusterIPsRej = 40  // cluster-ips-check: ip daddr @cluster-ips reject
)

// TestCheckMutations breaks the dump (or the API objects) one way at a time
// and requires the precise finding. Together the cases make every CheckID
// fail at least once (see the coverage check at the end).
func TestCheckMutations(t *testing.T) {
	type mutation struct {
		name     string
		dump     func(t *testing.T, d *dumpDoc)
		objects  func(t *testing.T, c *Cluster)
		check    CheckID
		contains string
	}
	endpointsOnOtherNode := func(svc string, ips ...string) func(t *testing.T, c *Cluster) {
		return func(t *testing.T, c *Cluster) {
			other := "other-node"
			for i := range c.EndpointSlices {
				es := &c.EndpointSlices[i]
				if es.Labels[discoveryv1.LabelServiceName] != svc {
					continue
				}
				for j := range es.Endpoints {
					for _, ip := range ips {
						if es.Endpoints[j].Addresses[0] == ip {
							es.Endpoints[j].NodeName = &other
						}
					}
				}
			}
		}
	}
	cases := []mutation{
		{
			name:  "reject-chain renamed",
			dump:  func(t *testing.T, d *dumpDoc) { d.replace(t, `"reject-chain"`, `"reject-chain-old"`) },
			check: CheckTable, contains: "chain reject-chain is missing",
		},
		{
			name:  "nat-prerouting no longer jumps to services",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, hNatPreJump) },
			check: CheckDispatch, contains: "no prerouting base chain jumps to services",
		},
		{
			name: "mark-for-masquerade sets the wrong bit",
			dump: func(t *testing.T, d *dumpDoc) {
				d.rule(t, hMarkSet)[0].(map[string]any)["mangle"].(map[string]any)["value"].(map[string]any)["|"].([]any)[1] = json.Number("8192")
			},
			check: CheckMarkForMasq, contains: "mark-for-masquerade does not set meta mark | 0x00004000",
		},
		{
			name:  "masquerading without the mark check",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, hMasqGuard) },
			check: CheckMasquerading, contains: "masquerades without first returning packets whose mark lacks 0x00004000",
		},
		{
			name:  "ClusterIP missing from cluster-ips",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "set", "cluster-ips", `"10.96.85.230"`) },
			check: CheckClusterIPs, contains: "cluster-ips has no element for 10.96.85.230",
		},
		{
			name:  "service-ips element dropped",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "map", "service-ips", `"10.96.85.230"`) },
			check: CheckServiceIPs, contains: "service-ips has no element for 10.96.85.230 . tcp . 3000 (want : goto service-TTACPZBM-default/backend-service/tcp/backend)",
		},
		{
			name: "LoadBalancer IP goes to the cluster chain",
			dump: func(t *testing.T, d *dumpDoc) {
				d.dropElem(t, "map", "service-ips", `"172.18.255.10"`)
				d.addElem(t, "map", "service-ips", `[{"concat": ["172.18.255.10", "tcp", 5678]}, {"goto": {"target": "service-QNAY5FRZ-default/foo-service/tcp/"}}]`)
			},
			check: CheckServiceIPs, contains: "service-ips element 172.18.255.10 . tcp . 5678 : goto service-QNAY5FRZ-default/foo-service/tcp/, want : goto external-QNAY5FRZ-default/foo-service/tcp/",
		},
		{
			name:  "NodePort element dropped",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "map", "service-nodeports", "30000") },
			check: CheckNodePorts, contains: "service-nodeports has no element for tcp . 30000 (want : goto external-WSSLWGAI-default/frontend-nodeport-service/tcp/frontend)",
		},
		{
			name:  "nodeport-ips holds another address",
			dump:  func(t *testing.T, d *dumpDoc) { d.replace(t, `"elem":["172.18.0.2"]`, `"elem":["172.18.0.3"]`) },
			check: CheckNodePortIPs, contains: "nodeport-ips has no element for node address 172.18.0.2",
		},
		{
			name:  "no-endpoint Service not rejected",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "map", "no-endpoint-services", "10.96.134.101") },
			check: CheckNoEndpoints, contains: "no-endpoint-services has no element for 10.96.134.101 . tcp . 9999 (want : goto reject-chain)",
		},
		{
			name: "no-endpoint Service still dispatched",
			dump: func(t *testing.T, d *dumpDoc) {
				d.addElem(t, "map", "service-ips", `[{"concat": ["10.96.134.101", "tcp", 9999]}, {"goto": {"target": "service-TTACPZBM-default/backend-service/tcp/backend"}}]`)
			},
			check: CheckServiceIPs, contains: "service-ips has element 10.96.134.101 . tcp . 9999 : goto service-TTACPZBM-default/backend-service/tcp/backend although the Service has no endpoints for it",
		},
		{
			name: "numgen mod 1 for two endpoints",
			dump: func(t *testing.T, d *dumpDoc) {
				expr := d.rule(t, hBackendLB)
				_, elems := numgenOf(t, expr)
				setNumgen(t, expr, 1, elems[:1])
			},
			check: CheckServiceChain, contains: "chain service-TTACPZBM-default/backend-service/tcp/backend: numgen random mod 1 over 10.244.0.4:3000, want mod 2 over 2 endpoints 10.244.0.4:3000,10.244.0.5:3000",
		},
		{
			name: "numgen mod 3 for two endpoints",
			dump: func(t *testing.T, d *dumpDoc) {
				expr := d.rule(t, hBackendLB)
				_, elems := numgenOf(t, expr)
				setNumgen(t, expr, 3, elems)
			},
			check: CheckServiceChain, contains: "numgen random mod 3 over 10.244.0.4:3000,10.244.0.5:3000, want mod 2",
		},
		{
			name: "numgen map with a hole",
			dump: func(t *testing.T, d *dumpDoc) {
				_, elems := numgenOf(t, d.rule(t, hBackendLB))
				elems[1].([]any)[0] = json.Number("7")
			},
			check: CheckServiceChain, contains: "numgen random mod 2 but its map covers 1 values",
		},
		{
			name: "Service chain renamed",
			dump: func(t *testing.T, d *dumpDoc) {
				d.replace(t, `"service-TTACPZBM-default/backend-service/tcp/backend"`, `"service-XXXXXXXX-default/backend-service/tcp/backend"`)
			},
			check: CheckServiceChain, contains: "chain service-TTACPZBM-default/backend-service/tcp/backend is missing; want it to balance over 10.244.0.4:3000,10.244.0.5:3000",
		},
		{
			name:  "Service chain does not masquerade off-cluster traffic",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, hBackendMasq) },
			check: CheckClusterMasq, contains: "chain service-TTACPZBM-default/backend-service/tcp/backend has no rule `ip daddr 10.96.85.230 ... jump mark-for-masquerade`",
		},
		{
			name: "Service chain masquerades by the wrong pod CIDR",
			dump: func(t *testing.T, d *dumpDoc) {
				pfx := d.rule(t, hBackendMasq)[1].(map[string]any)["match"].(map[string]any)["right"].(map[string]any)["prefix"].(map[string]any)
				pfx["addr"], pfx["len"] = "10.0.0.0", json.Number("8")
			},
			check: CheckClusterMasq, contains: "masquerades sources outside 10.0.0.0/8, want outside the cluster CIDR 10.244.0.0/16",
		},
		{
			name:    "Local chain balances over an endpoint of another node",
			objects: endpointsOnOtherNode("local-service", "10.244.0.9"),
			check:   CheckLocalChain, contains: "chain local-36AIK6QE-default/local-service/tcp/: numgen random mod 2 over 10.244.0.10:8080,10.244.0.9:8080, want mod 1 over 1 endpoints on node nft-control-plane 10.244.0.10:8080",
		},
		{
			name:    "Local policy without local endpoints does not drop",
			objects: endpointsOnOtherNode("local-service", "10.244.0.9", "10.244.0.10"),
			check:   CheckNoEndpoints, contains: "no-endpoint-nodeports has no element for tcp . 31990 (want : drop)",
		},
		{
			name:    "Local policy without local endpoints still falls through",
			objects: endpointsOnOtherNode("local-service", "10.244.0.9", "10.244.0.10"),
			check:   CheckExternalChain, contains: "with no endpoint on this node: chain external-36AIK6QE-default/local-service/tcp/ goes to \"local-36AIK6QE-default/local-service/tcp/\", want no fall-through",
		},
		{
			name:  "externalTrafficPolicy Cluster without masquerade",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, hFrontendMark) },
			check: CheckExternalChain, contains: "chain external-WSSLWGAI-default/frontend-nodeport-service/tcp/frontend does not jump to mark-for-masquerade",
		},
		{
			name: "externalTrafficPolicy Local goes to all endpoints",
			dump: func(t *testing.T, d *dumpDoc) {
				d.rule(t, hLocalToLocal)[0].(map[string]any)["goto"].(map[string]any)["target"] = "service-36AIK6QE-default/local-service/tcp/"
			},
			check: CheckExternalChain, contains: "externalTrafficPolicy Local: chain external-36AIK6QE-default/local-service/tcp/ goes to \"service-36AIK6QE-default/local-service/tcp/\", want local-36AIK6QE-default/local-service/tcp/ (endpoints on this node only)",
		},
		{
			name: "endpoint chain DNATs to the wrong port",
			dump: func(t *testing.T, d *dumpDoc) {
				d.rule(t, hBackend5DNAT)[1].(map[string]any)["dnat"].(map[string]any)["port"] = json.Number("3001")
			},
			check: CheckEndpointChain, contains: `chain endpoint-DY7CHKFN-default/backend-service/tcp/backend__10.244.0.5/3000 DNATs to "10.244.0.5:3001", want 10.244.0.5:3000`,
		},
		{
			name:  "endpoint chain without hairpin masquerade",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, hBackend5Mark) },
			check: CheckHairpin, contains: "chain endpoint-DY7CHKFN-default/backend-service/tcp/backend__10.244.0.5/3000 does not mark traffic from 10.244.0.5 itself for masquerade (hairpin)",
		},
		{
			name: "firewall allows the wrong range",
			dump: func(t *testing.T, d *dumpDoc) {
				d.rule(t, hFirewallDrop)[0].(map[string]any)["match"].(map[string]any)["right"].(map[string]any)["prefix"].(map[string]any)["len"] = json.Number("24")
			},
			check: CheckFirewall, contains: "drops sources outside 192.168.0.0/24, want outside 192.168.0.0/16",
		},
		{
			name:  "firewall-ips element dropped",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropElem(t, "map", "firewall-ips", "172.18.255.11") },
			check: CheckFirewall, contains: "firewall-ips has no element for 172.18.255.11 . tcp . 80 (want : goto firewall-36AIK6QE-default/local-service/tcp/)",
		},
		{
			name:  "affinity lookup dropped",
			dump:  func(t *testing.T, d *dumpDoc) { d.dropRule(t, hAffinityLook4) },
			check: CheckAffinity, contains: "chain service-AT7S2JU6-default/affinity-service/tcp/ has no `ip saddr @affinity-DH42Q33Z-default/affinity-service/tcp/__10.244.0.4/3000 goto endpoint-DH42Q33Z-default/affinity-service/tcp/__10.244.0.4/3000`",
		},
		{
			name: "affinity timeout differs",
			dump: func(t *testing.T, d *dumpDoc) {
				_, b := d.body(t, "set", "name", "affinity-DVIXU6UP-default/affinity-service/tcp/__10.244.0.5/3000")
				b["timeout"] = json.Number("60")
			},
			check: CheckAffinity, contains: "times out after 60s, want 10800s",
		},
		{
			name: "stale element of a deleted Service",
			dump: func(t *testing.T, d *dumpDoc) {
				d.addElem(t, "map", "service-ips", `[{"concat": ["10.96.1.1", "tcp", 80]}, {"goto": {"target": "service-TTACPZBM-default/backend-service/tcp/backend"}}]`)
			},
			check: CheckUnexpected, contains: "service-ips element 10.96.1.1 . tcp . 80 : goto service-TTACPZBM-default/backend-service/tcp/backend belongs to no Service port",
		},
		{
			name:    "unreadable ClusterIP",
			objects: func(t *testing.T, c *Cluster) { c.Services[1].Spec.ClusterIPs = []string{"10.96.85.x"} },
			check:   CheckDerive, contains: `Service default/backend-service: bad ClusterIP "10.96.85.x"`,
		},
		{
			name: "IPv4 table missing",
			dump: func(t *testing.T, d *dumpDoc) {
				var kept []any
				for _, it := range d.items {
					for _, b := range it.(map[string]any) {
						if m, ok := b.(map[string]any); ok && m["family"] == "ip" && (m["table"] == KubeProxyTable || m["name"] == KubeProxyTable) {
							goto skip
						}
					}
					kept = append(kept, it)
				skip:
				}
				d.items = kept
			},
			check: CheckTable, contains: "table is missing but 10 Service ports need it",
		},
	}

	seen := map[CheckID]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := loadDoc(t)
			if tc.dump != nil {
				tc.dump(t, d)
			}
			c := seedCluster(t)
			if tc.objects != nil {
				tc.objects(t, &c)
			}
			fs := Check(d.ruleset(t), c)
			for _, f := range fs {
				if f.Check == tc.check && strings.Contains(f.Message, tc.contains) {
					seen[tc.check] = true
					return
				}
			}
			t.Errorf("no [%s] finding containing %q; got:\n%s", tc.check, tc.contains, findingList(fs))
		})
	}
	for _, id := range AllChecks {
		if !seen[id] {
			t.Errorf("check %q never seen to fail", id)
		}
	}
}

// TestCheckWithoutNode: with no Node nothing is local, so the Local-policy
// Service looks as if its endpoints were elsewhere; Check must say so
// rather than fail.
func TestCheckWithoutNode(t *testing.T) {
	c := seedCluster(t)
	c.Node = nil
	fs := Check(loadDump(t), c)
	found := false
	for _, f := range fs {
		if f.Check == CheckExternalChain && f.Service == "default/local-service:/tcp" {
			found = true
		}
	}
	if !found {
		t.Errorf("no external-chain finding for local-service without a node; got:\n%s", findingList(fs))
	}
}
