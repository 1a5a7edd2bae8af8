package iptables

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestChainNamesFromTheBrief(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ServiceChainName(PrefixService, "default/frontend-nodeport-service:frontend", "tcp"), "KUBE-SVC-L2KBDCMJUD65WX3D"},
		{ServiceChainName(PrefixExternal, "default/foo-service", "TCP"), "KUBE-EXT-L6225SIXICQL5TGT"},
		{EndpointChainName("default/foo-service", "tcp", "10.244.0.6:8080"), "KUBE-SEP-64C5L6OBKJDJMM6K"},
		{ServicePortName("default", "foo-service", ""), "default/foo-service"},
		{ServicePortName("kube-system", "kube-dns", "dns-tcp"), "kube-system/kube-dns:dns-tcp"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

// TestChainNamesMatchSeedDump computes every per-Service and per-endpoint
// chain name from the seed API objects and finds each in the dump, and
// finds no kube-proxy chain in the dump that the objects do not explain.
func TestChainNamesMatchSeedDump(t *testing.T) {
	rs := parseDump(t)
	objs := readObjects(t)
	node := readNode(t)
	nat := rs.Table("nat")

	explained := map[string]bool{}
	for i := range objs.Services {
		svc := &objs.Services[i]
		ports, err := ServicePorts(svc, objs.EndpointSlices, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, sp := range ports {
			t.Run(sp.Name+"/"+sp.Protocol, func(t *testing.T) {
				cat := sp.Categorize(node.Name)
				if !cat.HasAny {
					// Only REJECT rules, which carry the name in a comment.
					if !ruleCommented(rs, "filter", "KUBE-SERVICES", sp.Name+" has no endpoints") {
						t.Errorf("no REJECT rule commented %q", sp.Name+" has no endpoints")
					}
					return
				}
				want := map[string]string{}
				if sp.UsesClusterEndpoints() {
					want[sp.Chain(PrefixService)] = "cluster policy"
				}
				if sp.UsesLocalEndpoints() && len(cat.Local) > 0 {
					want[sp.Chain(PrefixLocal)] = "local policy"
				}
				if sp.ExternallyAccessible() {
					want[sp.Chain(PrefixExternal)] = "external"
				}
				if len(sp.LoadBalancerIPs) > 0 && len(sp.SourceRanges) > 0 {
					want[sp.Chain(PrefixFirewall)] = "firewall"
				}
				for _, e := range cat.Reachable {
					want[sp.EndpointChain(e)] = "endpoint " + e.String()
				}
				for name, why := range want {
					explained[name] = true
					c := nat.Chain(name)
					if c == nil {
						t.Errorf("%s chain %s not in dump", why, name)
						continue
					}
					// The SEP chains carry the servicePortName in their
					// comments, which ties the name format to the dump.
					if strings.HasPrefix(name, PrefixEndpoint) && (len(c.Rules) == 0 || c.Rules[0].Comment() != sp.Name) {
						t.Errorf("%s: first rule comment is not %q", name, sp.Name)
					}
				}
				t.Logf("%d chains: %v", len(want), slices.Sorted(maps.Keys(want)))
			})
		}
	}
	for _, c := range nat.Chains {
		if IsServiceChain(c.Name) && !explained[c.Name] {
			t.Errorf("dump chain %s is not computed from any Service", c.Name)
		}
	}
}

func ruleCommented(rs *Ruleset, table, chain, comment string) bool {
	c := rs.Chain(table, chain)
	if c == nil {
		return false
	}
	for _, r := range c.Rules {
		if r.Comment() == comment {
			return true
		}
	}
	return false
}
