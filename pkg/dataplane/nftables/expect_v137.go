package nftables

// Check's expectations for kube-proxy v1.37's table (LayoutV137).

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// hairpinSet is the set of "ip . ip . proto . port" of the node's own
// endpoints whose DNATed connections v1.37's masquerading chain
// masquerades.
const hairpinSet = "hairpin-connections"

// marksForMasquerade reports whether r marks the packet for masquerade:
// v1.34 jumps to mark-for-masquerade, v1.37 sets the mark itself.
func (ck *checker) marksForMasquerade(r *Rule, mark uint64) bool {
	if v, ok := lastVerdict(r); ok && v.Kind == "jump" && v.Target == "mark-for-masquerade" {
		return true
	}
	return setsMark(r, "|", mark)
}

// markWords says how the table's layout marks for masquerade, for findings.
func (ck *checker) markWords() string {
	if ck.layout == LayoutV137 {
		return "set meta mark | " + hexMark(uint64(ck.c.MasqueradeMark))
	}
	return "jump to mark-for-masquerade"
}

func hexMark(m uint64) string { return hexIfMark(Meta{Key: "mark"}, Number(m)) }

// masqueradingV137 checks v1.37's masquerading chain: marked packets are
// masqueraded (and unmarked), and DNATed connections found in
// @hairpin-connections are masqueraded; nothing else is.
func (ck *checker) masqueradingV137(mark uint64) {
	c := ck.tb.Chain("masquerading")
	if c == nil {
		return
	}
	guarded, hairpin := false, false
	for _, r := range c.Rules {
		if !slices.ContainsFunc(r.Stmts, func(s Stmt) bool { n, ok := s.(NAT); return ok && n.Kind == "masquerade" }) {
			continue
		}
		switch {
		case testsMarkSet(r, mark):
			guarded = true
		case ck.isHairpinRule(r):
			hairpin = true
		default:
			ck.report(CheckMasquerading, nil, "masquerading chain masquerades without testing the mark %s or @%s: %s", hexMark(mark), hairpinSet, r)
		}
	}
	if !guarded {
		ck.report(CheckMasquerading, nil, "masquerading chain has no rule `meta mark & %s != 0 ... masquerade`", hexMark(mark))
	}
	if !hairpin {
		ck.report(CheckHairpin, nil, "masquerading chain has no rule `ct status dnat %s saddr . %s daddr . meta l4proto . th dport @%s masquerade`; an endpoint reaching itself through its Service would see its own address",
			ck.ipX(), ck.ipX(), hairpinSet)
	}
}

// testsMarkSet reports whether r matches `meta mark & mark != 0`.
func testsMarkSet(r *Rule, mark uint64) bool {
	return slices.ContainsFunc(matchesOf(r), func(m Match) bool {
		b, ok := m.Left.(Binop)
		return ok && m.Op == "!=" && m.Right == Number(0) && b.Op == "&" && b.Left == (Meta{Key: "mark"}) && b.Right == Number(mark)
	})
}

// isHairpinRule reports whether r is `ct status dnat ip saddr . ip daddr .
// meta l4proto . th dport @hairpin-connections ...`.
func (ck *checker) isHairpinRule(r *Rule) bool {
	ms := matchesOf(r)
	dnat := slices.ContainsFunc(ms, func(m Match) bool {
		ct, ok := m.Left.(CT)
		return ok && ct.Key == "status" && (m.Op == "in" || m.Op == "==") && m.Right == String("dnat")
	})
	want := ck.ipX() + " saddr . " + ck.ipX() + " daddr . meta l4proto . th dport"
	member := slices.ContainsFunc(ms, func(m Match) bool {
		return m.Op == "==" && m.Right == SetRef(hairpinSet) && exprString(m.Left) == want
	})
	return dnat && member
}

// clusterIPMasquerade checks v1.37's services chain: before the service-ips
// dispatch, traffic to a ClusterIP from outside the cluster CIDR (or all of
// it, with --masquerade-all) is marked for masquerade.
func (ck *checker) clusterIPMasquerade(mark uint64) {
	c := ck.tb.Chain("services")
	if c == nil {
		return
	}
	for _, r := range c.Rules {
		if slices.ContainsFunc(r.Stmts, func(s Stmt) bool { vm, ok := s.(VMap); return ok && vm.Data == SetRef("service-ips") }) {
			break // too late: the dispatch has gone to the Service chain
		}
		if !setsMark(r, "|", mark) {
			continue
		}
		daddr, saddrNot := false, []netip.Prefix(nil)
		for _, m := range matchesOf(r) {
			switch {
			case m.Op == "==" && exprString(m.Left) == ck.ipX()+" daddr":
				daddr = m.Right == SetRef("cluster-ips")
			case m.Op == "!=" && exprString(m.Left) == ck.ipX()+" saddr":
				saddrNot = prefixesOf(m.Right)
			}
		}
		if !daddr {
			continue
		}
		if len(ck.c.ClusterCIDRs) > 0 && saddrNot != nil && !samePrefixes(saddrNot, ck.c.ClusterCIDRs) {
			ck.report(CheckClusterMasq, nil, "chain services marks ClusterIP traffic from outside %s for masquerade, want from outside the cluster CIDR %s",
				prefixList(saddrNot), prefixList(ck.c.ClusterCIDRs))
		}
		return
	}
	ck.report(CheckClusterMasq, nil, "chain services has no rule `%s daddr @cluster-ips %s saddr != <cluster CIDR> meta mark set meta mark | %s` before its service-ips dispatch; off-cluster clients of ClusterIPs would not be masqueraded",
		ck.ipX(), ck.ipX(), hexMark(mark))
}

// dnatBalance describes a v1.37 Service or local chain's DNAT: through a
// `numgen random mod N map`, or to one constant address.
type dnatBalance struct {
	mod, covered uint64
	targets      []string // "ip:port", in element order
}

func dnatBalanceOf(c *Chain) (dnatBalance, bool) {
	for _, r := range c.Rules {
		for _, s := range r.Stmts {
			n, ok := s.(NAT)
			if !ok || n.Kind != "dnat" {
				continue
			}
			ml, isMap := n.Addr.(MapLookup)
			if !isMap {
				d, _ := dnatOf(c)
				if d == "" {
					d = n.String()
				}
				return dnatBalance{mod: 1, covered: 1, targets: []string{d}}, true
			}
			ng, isNumgen := ml.Key.(Numgen)
			data, isAnon := ml.Data.(AnonSet)
			if !isNumgen || !isAnon {
				return dnatBalance{targets: []string{n.String()}}, true
			}
			lb := dnatBalance{mod: ng.Mod}
			for _, el := range data {
				if lo, hi, err := numSpan(el.Key); err == nil && ng.Mod > 0 && hi >= ng.Offset && lo < ng.Offset+ng.Mod {
					lb.covered += min(hi, ng.Offset+ng.Mod-1) - max(lo, ng.Offset) + 1
				}
				lb.targets = append(lb.targets, addrPortText(el.Value))
			}
			return lb, true
		}
	}
	return dnatBalance{}, false
}

// addrPortText renders an `addr . port` map value as "addr:port".
func addrPortText(e Expr) string {
	if cc, ok := e.(Concat); ok && len(cc) == 2 {
		a, ok1 := literal(cc[0])
		p, ok2 := literal(cc[1])
		if ok1 && ok2 && a.kind == vAddr && p.kind == vNum && p.num <= 0xffff {
			return netip.AddrPortFrom(a.addr, uint16(p.num)).String()
		}
	}
	return exprString(e)
}

// balanceDNAT checks a v1.37 chain's DNAT against the endpoints it must
// spread over: every endpoint once in a map of modulus len(want) that
// covers the whole modulus, or the one endpoint as a constant.
func (ck *checker) balanceDNAT(sp *servicePort, c *Chain, want []endpoint, id CheckID) {
	lb, ok := dnatBalanceOf(c)
	if !ok {
		ck.report(id, sp, "chain %s has no dnat rule; want it to DNAT to %s", c.Name, endpointList(want))
		return
	}
	wantS := make([]string, len(want))
	for i, e := range want {
		wantS[i] = e.String()
	}
	got := slices.Clone(lb.targets)
	sort.Strings(got)
	sort.Strings(wantS)
	if lb.mod != uint64(len(want)) || !slices.Equal(got, wantS) {
		what := "endpoints"
		if id == CheckLocalChain {
			what = "endpoints on node " + ck.nodeName()
		}
		ck.report(id, sp, "chain %s: dnat over mod %d to %s, want mod %d over %d %s %s",
			c.Name, lb.mod, strings.Join(lb.targets, ","), len(want), len(want), what, strings.Join(wantS, ","))
		return
	}
	if lb.covered != lb.mod {
		ck.report(id, sp, "chain %s: numgen random mod %d but its map covers %d values; the rest fall through undnatted", c.Name, lb.mod, lb.covered)
	}
}

// hairpinElement checks that a local endpoint is in @hairpin-connections,
// so that its own connections through the Service are masqueraded.
func (ck *checker) hairpinElement(sp *servicePort, e endpoint) {
	set := ck.tb.Set(hairpinSet)
	if set == nil {
		return // reported by table()
	}
	vals := []value{addrValue(e.ip), addrValue(e.ip), numValue(ipProtocols[sp.proto]), numValue(uint64(e.port))}
	ck.expect(set, vals...)
	if _, ok := ck.find(set, vals...); !ok {
		ck.report(CheckHairpin, sp, "%s has no element %s . %s . %s . %d; the endpoint reaching itself through the Service would see its own address",
			hairpinSet, e.ip, e.ip, sp.proto, e.port)
	}
}
