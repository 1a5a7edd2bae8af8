package nftables

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Cluster is what Check compares a node's dump against: the node the dump
// was taken on and the API objects kube-proxy saw.
type Cluster struct {
	Node           *corev1.Node
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	// ClusterCIDRs is kube-proxy's --cluster-cidr, which its local-traffic
	// detector writes into masquerade and short-circuit rules. When empty,
	// those rules are checked for their shape but any source prefix goes.
	ClusterCIDRs []netip.Prefix
	// MasqueradeMark is 1 << --masquerade-bit; zero means kube-proxy's
	// default 0x4000.
	MasqueradeMark uint32
}

// Layout is the shape of kube-proxy's nftables table, which changed between
// releases.
type Layout string

const (
	// LayoutV134 is kube-proxy v1.34's table: Service chains balance with
	// `numgen random mod N vmap { i : goto endpoint-... }`, endpoint
	// chains mark hairpin traffic and DNAT, marking goes through the
	// mark-for-masquerade chain.
	LayoutV134 Layout = "v1.34"
	// LayoutV137 is kube-proxy v1.37's table: Service chains DNAT
	// themselves, `dnat ip to numgen random mod N map { i : addr . port }`
	// (or `dnat to addr:port` for one endpoint), endpoint chains exist
	// only for ClientIP affinity, masquerade marks are set inline, and
	// hairpin traffic is masqueraded through @hairpin-connections.
	LayoutV137 Layout = "v1.37"
)

// DetectLayout tells which layout a kube-proxy table has: v1.37 when it has
// the hairpin-connections set, or, lacking the mark-for-masquerade chain,
// when some chain DNATs through a map; v1.34 otherwise.
func DetectLayout(tb *Table) Layout {
	if tb.Set("hairpin-connections") != nil {
		return LayoutV137
	}
	if tb.Chain("mark-for-masquerade") != nil {
		return LayoutV134
	}
	for _, c := range tb.Chains {
		for _, r := range c.Rules {
			for _, st := range r.Stmts {
				if n, ok := st.(NAT); ok && n.Kind == "dnat" {
					if _, isMap := n.Addr.(MapLookup); isMap {
						return LayoutV137
					}
				}
			}
		}
	}
	return LayoutV134
}

// CheckID names one expectation, so a report can group findings and a test
// can prove that each check can fail.
type CheckID string

// The checks Check runs. Each finding carries one.
const (
	CheckTable         CheckID = "table"               // the kube-proxy table or one of its fixed chains/sets is missing
	CheckDispatch      CheckID = "dispatch"            // base chains and the services chain do not reach the maps
	CheckMarkForMasq   CheckID = "mark-for-masquerade" // the chain does not set the masquerade mark
	CheckMasquerading  CheckID = "masquerading"        // postrouting masquerades without checking the mark
	CheckClusterIPs    CheckID = "cluster-ips"         // ClusterIP missing from @cluster-ips
	CheckServiceIPs    CheckID = "service-ips"         // ClusterIP, LoadBalancer or external IP element missing or wrong
	CheckNodePorts     CheckID = "service-nodeports"   // NodePort element missing or wrong
	CheckNodePortIPs   CheckID = "nodeport-ips"        // node address missing from @nodeport-ips
	CheckNoEndpoints   CheckID = "no-endpoints"        // reject/drop element missing for a Service without endpoints
	CheckServiceChain  CheckID = "service-chain"       // a Service chain is missing or balances over the wrong endpoints
	CheckClusterMasq   CheckID = "cluster-masquerade"  // Service chain does not masquerade off-cluster sources
	CheckLocalChain    CheckID = "local-chain"         // Local-policy chain missing or not limited to this node's endpoints
	CheckExternalChain CheckID = "external-chain"      // external chain does not apply the external traffic policy
	CheckEndpointChain CheckID = "endpoint-chain"      // endpoint chain missing or DNATs elsewhere
	CheckHairpin       CheckID = "hairpin"             // an endpoint's own traffic through its Service is not masqueraded
	CheckFirewall      CheckID = "firewall"            // loadBalancerSourceRanges not enforced
	CheckAffinity      CheckID = "affinity"            // ClientIP session affinity not programmed
	CheckUnexpected    CheckID = "unexpected"          // a map element no Service accounts for
	CheckDerive        CheckID = "derive"              // the API objects could not be read
)

// AllChecks lists every CheckID Check may report.
var AllChecks = []CheckID{
	CheckTable, CheckDispatch, CheckMarkForMasq, CheckMasquerading, CheckClusterIPs,
	CheckServiceIPs, CheckNodePorts, CheckNodePortIPs, CheckNoEndpoints, CheckServiceChain,
	CheckClusterMasq, CheckLocalChain, CheckExternalChain, CheckEndpointChain, CheckHairpin,
	CheckFirewall, CheckAffinity, CheckUnexpected, CheckDerive,
}

// Finding is one thing the dump lacks or gets wrong.
type Finding struct {
	Check CheckID
	// Table is the nft table, "ip kube-proxy" or "ip6 kube-proxy".
	Table string
	// Service is "namespace/name:port/protocol", empty for table-wide
	// findings.
	Service string
	Message string
}

func (f Finding) String() string {
	where := f.Table
	if f.Service != "" {
		where += " " + f.Service
	}
	return fmt.Sprintf("[%s] %s: %s", f.Check, where, f.Message)
}

// Check derives what kube-proxy in nftables mode must have written for
// every Service port on c.Node and compares it with rs, in the layout
// (DetectLayout) of each kube-proxy table: v1.34's or v1.37's. An empty
// result means the dump holds everything expected (it may hold more; extra
// map elements are reported, extra chains are not, since kube-proxy
// deletes stale chains only after a delay).
func Check(rs *Ruleset, c Cluster) []Finding {
	if c.MasqueradeMark == 0 {
		c.MasqueradeMark = 0x4000
	}
	var out []Finding
	derived := map[string]bool{}
	for _, v6 := range []bool{false, true} {
		family := "ip"
		if v6 {
			family = "ip6"
		}
		ports, errs := servicePorts(&c, v6)
		for _, err := range errs {
			// The same object fails for both families; say it once.
			if msg := err.Error(); !derived[msg] {
				derived[msg] = true
				out = append(out, Finding{Check: CheckDerive, Table: family + " " + KubeProxyTable, Message: msg})
			}
		}
		tb := rs.Table(family, KubeProxyTable)
		if tb == nil {
			if len(ports) > 0 {
				out = append(out, Finding{Check: CheckTable, Table: family + " " + KubeProxyTable,
					Message: fmt.Sprintf("table is missing but %d Service ports need it", len(ports))})
			}
			continue
		}
		ck := &checker{tb: tb, c: &c, v6: v6, layout: DetectLayout(tb), expected: map[*Set]map[string]bool{}, index: map[*Set]map[string]int{}}
		ck.table(ports)
		for _, sp := range ports {
			ck.service(sp)
		}
		ck.unexpected()
		out = append(out, ck.findings...)
	}
	return out
}

// checker holds the state of checking one table.
type checker struct {
	tb       *Table
	c        *Cluster
	v6       bool
	layout   Layout
	findings []Finding
	// expected records, per map, the keys some Service accounts for.
	expected map[*Set]map[string]bool
	index    map[*Set]map[string]int
}

func (ck *checker) report(id CheckID, sp *servicePort, format string, args ...any) {
	f := Finding{Check: id, Table: ck.tb.String(), Message: fmt.Sprintf(format, args...)}
	if sp != nil {
		f.Service = sp.id()
	}
	ck.findings = append(ck.findings, f)
}

func (ck *checker) ipX() string {
	if ck.v6 {
		return "ip6"
	}
	return "ip"
}

func (ck *checker) nodeName() string {
	if ck.c.Node == nil {
		return "(unknown)"
	}
	return ck.c.Node.Name
}

// nodeIPs are the node's InternalIPs of the table's family, the primary
// first.
func (ck *checker) nodeIPs() []netip.Addr {
	var out []netip.Addr
	if ck.c.Node == nil {
		return nil
	}
	for _, a := range ck.c.Node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Unmap().Is6() == ck.v6 {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// table checks what every Service relies on: the fixed chains, maps and
// the mark handling.
func (ck *checker) table(ports []*servicePort) {
	chains := []string{"services", "masquerading", "reject-chain",
		"service-endpoints-check", "nodeport-endpoints-check", "firewall-check", "cluster-ips-check"}
	if ck.layout == LayoutV134 {
		chains = append(chains, "mark-for-masquerade")
	}
	for _, name := range chains {
		if ck.tb.Chain(name) == nil {
			ck.report(CheckTable, nil, "chain %s is missing", name)
		}
	}
	for _, name := range []string{"service-ips", "service-nodeports", "no-endpoint-services", "no-endpoint-nodeports", "firewall-ips"} {
		if s := ck.tb.Set(name); s == nil || !s.IsVerdictMap() {
			ck.report(CheckTable, nil, "verdict map %s is missing", name)
		}
	}
	if ck.tb.Set("cluster-ips") == nil {
		ck.report(CheckTable, nil, "set cluster-ips is missing")
	}
	if ck.layout == LayoutV137 && ck.tb.Set("hairpin-connections") == nil {
		ck.report(CheckTable, nil, "set hairpin-connections is missing")
	}

	for _, j := range []struct{ hook, target string }{
		{"prerouting", "services"}, {"output", "services"}, {"postrouting", "masquerading"},
		{"prerouting", "firewall-check"}, {"output", "firewall-check"},
		{"input", "service-endpoints-check"}, {"forward", "service-endpoints-check"}, {"output", "service-endpoints-check"},
		{"input", "nodeport-endpoints-check"}, {"forward", "cluster-ips-check"}, {"output", "cluster-ips-check"},
	} {
		if !ck.hookJumps(j.hook, j.target) {
			ck.report(CheckDispatch, nil, "no %s base chain jumps to %s", j.hook, j.target)
		}
	}
	ck.dispatch("services", "service-ips", true)
	ck.dispatch("services", "service-nodeports", false)
	ck.dispatch("service-endpoints-check", "no-endpoint-services", true)
	ck.dispatch("nodeport-endpoints-check", "no-endpoint-nodeports", false)
	ck.dispatch("firewall-check", "firewall-ips", true)

	mark := uint64(ck.c.MasqueradeMark)
	if c := ck.tb.Chain("mark-for-masquerade"); c != nil && !slices.ContainsFunc(c.Rules, func(r *Rule) bool { return setsMark(r, "|", mark) }) {
		ck.report(CheckMarkForMasq, nil, "mark-for-masquerade does not set meta mark | 0x%08x", mark)
	}
	if ck.layout == LayoutV137 {
		ck.masqueradingV137(mark)
		ck.clusterIPMasquerade(mark)
	} else {
		ck.masquerading(mark)
	}

	if set := ck.tb.Set("nodeport-ips"); set != nil && slices.ContainsFunc(ports, func(sp *servicePort) bool { return sp.nodePort != 0 }) {
		for _, ip := range ck.nodeIPs() {
			if _, ok := ck.find(set, addrValue(ip)); !ok {
				ck.report(CheckNodePortIPs, nil, "nodeport-ips has no element for node address %s", ip)
			}
		}
	}
}

// hookJumps reports whether a base chain at hook jumps to target.
func (ck *checker) hookJumps(hook, target string) bool {
	for _, c := range ck.tb.BaseChains(hook) {
		for _, r := range c.Rules {
			if v, ok := lastVerdict(r); ok && v.Kind == "jump" && v.Target == target {
				return true
			}
		}
	}
	return false
}

// dispatch checks that chain looks map up with the packet's (address .)
// protocol . port, the key kube-proxy's elements are written for.
func (ck *checker) dispatch(chain, mapName string, withAddr bool) {
	c := ck.tb.Chain(chain)
	if c == nil {
		return
	}
	want := "meta l4proto . th dport"
	if withAddr {
		want = ck.ipX() + " daddr . " + want
	}
	for _, r := range c.Rules {
		for _, s := range r.Stmts {
			if vm, ok := s.(VMap); ok && vm.Data == SetRef(mapName) && exprString(vm.Key) == want {
				return
			}
		}
	}
	ck.report(CheckDispatch, nil, "chain %s has no rule `%s vmap @%s`", chain, want, mapName)
}

// masquerading checks that postrouting masquerades only marked packets and
// clears the mark, as kube-proxy's masquerading chain does.
func (ck *checker) masquerading(mark uint64) {
	c := ck.tb.Chain("masquerading")
	if c == nil {
		return
	}
	guarded := false
	for _, r := range c.Rules {
		if returnsUnlessMarked(r, mark) {
			guarded = true
			continue
		}
		for _, s := range r.Stmts {
			if n, ok := s.(NAT); ok && n.Kind == "masquerade" {
				if !guarded {
					ck.report(CheckMasquerading, nil, "masquerading chain masquerades without first returning packets whose mark lacks 0x%08x", mark)
				}
				return
			}
		}
	}
	ck.report(CheckMasquerading, nil, "masquerading chain has no masquerade statement")
}

// service checks one Service port.
func (ck *checker) service(sp *servicePort) {
	ck.clusterIP(sp)
	ck.externalAddrs(sp)
	ck.nodePort(sp)
	ck.firewall(sp)
	if sp.usesClusterChain() {
		ck.balance(sp, ServiceChainPrefix+sp.base(), sp.cluster, CheckServiceChain)
	}
	if sp.usesLocalChain() {
		ck.balance(sp, LocalChainPrefix+sp.base(), sp.local, CheckLocalChain)
	}
	if sp.hasInternal() && ck.layout == LayoutV134 {
		ck.clusterMasquerade(sp)
	}
	if sp.usesExternalChain() {
		ck.externalChain(sp)
	}
	if ck.layout == LayoutV137 {
		// Endpoint chains exist only for ClientIP affinity; hairpin
		// traffic is masqueraded through @hairpin-connections.
		for _, e := range sp.reachable {
			if sp.affinity {
				ck.endpointChain(sp, e)
			}
			if e.local {
				ck.hairpinElement(sp, e)
			}
		}
		return
	}
	for _, e := range sp.reachable {
		ck.endpointChain(sp, e)
	}
}

func (ck *checker) clusterIP(sp *servicePort) {
	key := []value{addrValue(sp.clusterIP), numValue(ipProtocols[sp.proto]), numValue(uint64(sp.port))}
	if set := ck.tb.Set("cluster-ips"); set != nil {
		ck.expect(set, addrValue(sp.clusterIP))
		if _, ok := ck.find(set, addrValue(sp.clusterIP)); !ok {
			ck.report(CheckClusterIPs, sp, "cluster-ips has no element for %s", sp.clusterIP)
		}
	}
	if sp.hasInternal() {
		ck.element(sp, CheckServiceIPs, "service-ips", key, "goto "+sp.internalChain())
		return
	}
	ck.absent(sp, CheckServiceIPs, "service-ips", key, "the Service has no endpoints for it")
	ck.element(sp, CheckNoEndpoints, "no-endpoint-services", key, sp.noEndpointVerdict())
}

// externalAddrs checks LoadBalancer and external IPs: they lead to the
// external chain, or to the no-endpoint map when nothing serves them.
func (ck *checker) externalAddrs(sp *servicePort) {
	for _, ip := range append(append([]netip.Addr{}, sp.externalIPs...), sp.lbIPs...) {
		key := []value{addrValue(ip), numValue(ipProtocols[sp.proto]), numValue(uint64(sp.port))}
		if sp.hasAny {
			ck.element(sp, CheckServiceIPs, "service-ips", key, "goto "+ExternalChainPrefix+sp.base())
		} else {
			ck.absent(sp, CheckServiceIPs, "service-ips", key, "the Service has no endpoints")
		}
		if !sp.hasExternal() {
			ck.element(sp, CheckNoEndpoints, "no-endpoint-services", key, sp.noEndpointVerdict())
		}
	}
}

func (ck *checker) nodePort(sp *servicePort) {
	if sp.nodePort == 0 {
		return
	}
	key := []value{numValue(ipProtocols[sp.proto]), numValue(uint64(sp.nodePort))}
	if sp.hasAny {
		ck.element(sp, CheckNodePorts, "service-nodeports", key, "goto "+ExternalChainPrefix+sp.base())
	} else {
		ck.absent(sp, CheckNodePorts, "service-nodeports", key, "the Service has no endpoints")
	}
	if !sp.hasExternal() {
		ck.element(sp, CheckNoEndpoints, "no-endpoint-nodeports", key, sp.noEndpointVerdict())
	}
}

// firewall checks loadBalancerSourceRanges: each LoadBalancer IP is looked
// up in @firewall-ips before DNAT, and the firewall chain drops every
// source outside the ranges (plus the LB IPs themselves when the node is
// inside a range, for VIPs that loop back with their own source).
func (ck *checker) firewall(sp *servicePort) {
	if len(sp.lbIPs) == 0 || len(sp.sourceRanges) == 0 {
		return
	}
	chain := FirewallChainPrefix + sp.base()
	for _, ip := range sp.lbIPs {
		key := []value{addrValue(ip), numValue(ipProtocols[sp.proto]), numValue(uint64(sp.port))}
		ck.element(sp, CheckFirewall, "firewall-ips", key, "goto "+chain)
	}
	want := slices.Clone(sp.sourceRanges)
	if nodeIPs := ck.nodeIPs(); len(nodeIPs) > 0 && slices.ContainsFunc(sp.sourceRanges, func(p netip.Prefix) bool { return p.Contains(nodeIPs[0]) }) {
		for _, ip := range sp.lbIPs {
			want = append(want, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	c := ck.tb.Chain(chain)
	if c == nil {
		ck.report(CheckFirewall, sp, "chain %s is missing", chain)
		return
	}
	for _, r := range c.Rules {
		if v, ok := lastVerdict(r); !ok || v.Kind != "drop" {
			continue
		}
		for _, m := range matchesOf(r) {
			if m.Op == "!=" && exprString(m.Left) == ck.ipX()+" saddr" {
				got := prefixesOf(m.Right)
				if samePrefixes(got, want) {
					return
				}
				ck.report(CheckFirewall, sp, "chain %s drops sources outside %s, want outside %s", chain, prefixList(got), prefixList(want))
				return
			}
		}
	}
	ck.report(CheckFirewall, sp, "chain %s has no rule `%s saddr != { %s } drop`", chain, ck.ipX(), prefixList(want))
}

// balance checks a Service or local chain's `numgen random mod N vmap`
// against the endpoints it must spread over.
func (ck *checker) balance(sp *servicePort, chain string, want []endpoint, id CheckID) {
	c := ck.tb.Chain(chain)
	if c == nil {
		ck.report(id, sp, "chain %s is missing; want it to balance over %s", chain, endpointList(want))
		return
	}
	if ck.layout == LayoutV137 && !sp.affinity {
		ck.balanceDNAT(sp, c, want, id)
		return
	}
	lb, ok := loadBalancer(c)
	if !ok {
		ck.report(id, sp, "chain %s has no numgen rule; want it to balance over %s", chain, endpointList(want))
		return
	}
	var got []string
	for _, target := range lb.targets {
		got = append(got, ck.dnatTarget(target))
	}
	wantS := make([]string, len(want))
	for i, e := range want {
		wantS[i] = e.String()
	}
	gotSorted := slices.Clone(got)
	sort.Strings(gotSorted)
	sort.Strings(wantS)
	if lb.mod != uint64(len(want)) || !slices.Equal(gotSorted, wantS) {
		what := "endpoints"
		if id == CheckLocalChain {
			what = "endpoints on node " + ck.nodeName()
		}
		ck.report(id, sp, "chain %s: numgen random mod %d over %s, want mod %d over %d %s %s",
			chain, lb.mod, strings.Join(got, ","), len(want), len(want), what, strings.Join(wantS, ","))
		return
	}
	if lb.covered != lb.mod {
		ck.report(id, sp, "chain %s: numgen random mod %d but its map covers %d values; the rest fall through", chain, lb.mod, lb.covered)
	}
	if sp.affinity {
		ck.affinity(sp, c, want)
	}
}

// dnatTarget names what an endpoint chain DNATs to, or the chain itself
// when it does not DNAT.
func (ck *checker) dnatTarget(chain string) string {
	if c := ck.tb.Chain(chain); c != nil {
		if d, ok := dnatOf(c); ok {
			return d
		}
	}
	return chain
}

// clusterMasquerade checks the internal chain's first rule: traffic to the
// ClusterIP from outside the pod network is marked for masquerade.
func (ck *checker) clusterMasquerade(sp *servicePort) {
	chain := sp.internalChain()
	c := ck.tb.Chain(chain)
	if c == nil {
		return // reported by balance
	}
	for _, r := range c.Rules {
		v, ok := lastVerdict(r)
		if !ok || v.Kind != "jump" || v.Target != "mark-for-masquerade" {
			continue
		}
		daddr, saddrNot := false, []netip.Prefix(nil)
		for _, m := range matchesOf(r) {
			switch {
			case m.Op == "==" && exprString(m.Left) == ck.ipX()+" daddr":
				lit, ok := literal(m.Right)
				daddr = ok && lit.equal(addrValue(sp.clusterIP))
			case m.Op == "!=" && exprString(m.Left) == ck.ipX()+" saddr":
				saddrNot = prefixesOf(m.Right)
			}
		}
		if !daddr {
			continue
		}
		if len(ck.c.ClusterCIDRs) > 0 && saddrNot != nil && !samePrefixes(saddrNot, ck.c.ClusterCIDRs) {
			ck.report(CheckClusterMasq, sp, "chain %s masquerades sources outside %s, want outside the cluster CIDR %s",
				chain, prefixList(saddrNot), prefixList(ck.c.ClusterCIDRs))
		}
		return
	}
	ck.report(CheckClusterMasq, sp, "chain %s has no rule `%s daddr %s ... jump mark-for-masquerade` for off-cluster sources",
		chain, ck.ipX(), sp.clusterIP)
}

// externalChain checks that external traffic meets the external traffic
// policy: Cluster masquerades and balances over all endpoints; Local keeps
// the source and goes to this node's endpoints, except for pod and
// host-originated traffic, which is short-circuited to the cluster chain.
func (ck *checker) externalChain(sp *servicePort) {
	name := ExternalChainPrefix + sp.base()
	c := ck.tb.Chain(name)
	if c == nil {
		ck.report(CheckExternalChain, sp, "chain %s is missing", name)
		return
	}
	clusterChain := ServiceChainPrefix + sp.base()
	localChain := LocalChainPrefix + sp.base()
	var uncondMasq, fibMasq, fibShort, podShort bool
	final := ""
	mark := uint64(ck.c.MasqueradeMark)
	for _, r := range c.Rules {
		ms := matchesOf(r)
		if ck.marksForMasquerade(r, mark) {
			switch {
			case len(ms) == 0:
				uncondMasq = true
			case isFibSaddrLocal(ms):
				fibMasq = true
			}
			continue
		}
		v, ok := lastVerdict(r)
		if !ok {
			continue
		}
		switch {
		case v.Kind == "goto" && v.Target == clusterChain && isFibSaddrLocal(ms):
			fibShort = true
		case v.Kind == "goto" && v.Target == clusterChain && len(ms) == 1 && ms[0].Op == "==" && exprString(ms[0].Left) == ck.ipX()+" saddr":
			podShort = len(ck.c.ClusterCIDRs) == 0 || samePrefixes(prefixesOf(ms[0].Right), ck.c.ClusterCIDRs)
		case v.Kind == "goto" && len(ms) == 0 && final == "":
			final = v.Target
		}
	}
	if !sp.etpLocal {
		if !uncondMasq {
			ck.report(CheckExternalChain, sp, "chain %s does not %s for externalTrafficPolicy Cluster", name, ck.markWords())
		}
		if final != clusterChain {
			ck.report(CheckExternalChain, sp, "chain %s goes to %q, want %s", name, final, clusterChain)
		}
		return
	}
	if uncondMasq {
		ck.report(CheckExternalChain, sp, "chain %s masquerades all traffic, which loses the client address externalTrafficPolicy Local preserves", name)
	}
	if !fibMasq || !fibShort {
		ck.report(CheckExternalChain, sp, "chain %s lacks the `fib saddr type local` rules that masquerade and short-circuit host traffic", name)
	}
	if len(ck.c.ClusterCIDRs) > 0 && !podShort {
		ck.report(CheckExternalChain, sp, "chain %s lacks the rule short-circuiting pod traffic (%s saddr %s) to %s", name, ck.ipX(), prefixList(ck.c.ClusterCIDRs), clusterChain)
	}
	switch {
	case sp.hasExternal() && final != localChain:
		ck.report(CheckExternalChain, sp, "externalTrafficPolicy Local: chain %s goes to %q, want %s (endpoints on this node only)", name, final, localChain)
	case !sp.hasExternal() && final != "":
		ck.report(CheckExternalChain, sp, "externalTrafficPolicy Local with no endpoint on this node: chain %s goes to %q, want no fall-through (the no-endpoint maps drop)", name, final)
	}
}

// endpointChain checks one endpoint chain: hairpin masquerade for traffic
// from the endpoint itself, and DNAT to the endpoint.
func (ck *checker) endpointChain(sp *servicePort, e endpoint) {
	name := sp.endpointChain(e)
	c := ck.tb.Chain(name)
	if c == nil {
		ck.report(CheckEndpointChain, sp, "chain %s is missing", name)
		return
	}
	if d, ok := dnatOf(c); !ok || d != e.String() {
		ck.report(CheckEndpointChain, sp, "chain %s DNATs to %q, want %s", name, d, e)
	}
	if ck.layout == LayoutV137 {
		return // hairpin: see hairpinElement
	}
	for _, r := range c.Rules {
		v, ok := lastVerdict(r)
		if !ok || v.Kind != "jump" || v.Target != "mark-for-masquerade" {
			continue
		}
		for _, m := range matchesOf(r) {
			if lit, ok := literal(m.Right); ok && m.Op == "==" && exprString(m.Left) == ck.ipX()+" saddr" && lit.equal(addrValue(e.ip)) {
				return
			}
		}
	}
	ck.report(CheckHairpin, sp, "chain %s does not mark traffic from %s itself for masquerade (hairpin)", name, e.ip)
}

// affinity checks ClientIP session affinity for the endpoints of one
// balancing chain: a timeout set per endpoint, a lookup rule before the
// numgen, and an update in the endpoint chain.
func (ck *checker) affinity(sp *servicePort, c *Chain, eps []endpoint) {
	for _, e := range eps {
		setName, epChain := sp.affinitySet(e), sp.endpointChain(e)
		if s := ck.tb.Set(setName); s == nil {
			ck.report(CheckAffinity, sp, "affinity set %s is missing", setName)
		} else if s.Timeout != sp.affinityTimeout {
			ck.report(CheckAffinity, sp, "affinity set %s times out after %ds, want %ds", setName, s.Timeout, sp.affinityTimeout)
		}
		if !slices.ContainsFunc(c.Rules, func(r *Rule) bool {
			v, ok := lastVerdict(r)
			return ok && v.Kind == "goto" && v.Target == epChain && slices.ContainsFunc(matchesOf(r), func(m Match) bool {
				return m.Right == SetRef(setName)
			})
		}) {
			ck.report(CheckAffinity, sp, "chain %s has no `%s saddr @%s goto %s`", c.Name, ck.ipX(), setName, epChain)
		}
		if ec := ck.tb.Chain(epChain); ec != nil && !slices.ContainsFunc(ec.Rules, func(r *Rule) bool {
			return slices.ContainsFunc(r.Stmts, func(s Stmt) bool {
				ss, ok := s.(SetStmt)
				return ok && ss.Set == setName && (ss.Op == "update" || ss.Op == "add")
			})
		}) {
			ck.report(CheckAffinity, sp, "chain %s does not record the client in @%s", epChain, setName)
		}
	}
}
