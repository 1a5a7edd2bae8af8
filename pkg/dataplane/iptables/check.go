package iptables

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Finding is one way a dump differs from what kube-proxy must have written.
type Finding struct {
	// Service is the servicePortName ("ns/name[:port]"), or "" for the
	// node-wide rules every kube-proxy writes.
	Service string
	// Check names the expectation that failed; see the Check* constants.
	Check string
	// Message says what is wrong and what was wanted, naming chains, rules
	// and endpoints, so it can stand alone in a report.
	Message string
}

func (f Finding) String() string { return f.Message }

// The expectations Check verifies. Each is exercised, failing, by the
// package's mutation tests.
const (
	CheckHookJump        = "hook-jump"        // builtin chains jump to kube-proxy's chains
	CheckMarkMasq        = "mark-masq"        // KUBE-MARK-MASQ sets 0x4000
	CheckPostrouting     = "postrouting-masq" // KUBE-POSTROUTING masquerades 0x4000, only it
	CheckForwardAccept   = "forward-accept"   // filter KUBE-FORWARD accepts marked packets
	CheckNodePortsLast   = "nodeports-last"   // nat KUBE-SERVICES ends with the KUBE-NODEPORTS jump
	CheckForwardOrder    = "forward-order"    // nothing accepts new forwarded connections ahead of kube-proxy's jumps
	CheckClusterIP       = "clusterip-capture"
	CheckClusterIPFilter = "clusterip-filter"
	CheckMasqRule        = "svc-masq"
	CheckChain           = "chain-missing"
	CheckEndpointJumps   = "endpoint-jumps"
	CheckProbability     = "endpoint-probability"
	CheckAffinity        = "affinity"
	CheckSEPHairpin      = "sep-hairpin"
	CheckSEPDNAT         = "sep-dnat"
	CheckNodePort        = "nodeport-capture"
	CheckNodePortFilter  = "nodeport-filter"
	CheckEXT             = "ext-chain"
	CheckLB              = "lb-capture"
	CheckLBFilter        = "lb-filter"
	CheckExternalIP      = "externalip-capture"
	CheckExternalFilter  = "externalip-filter"
	CheckFW              = "fw-chain"
	CheckFWDrop          = "fw-drop"
	CheckHealthCheck     = "healthcheck"
	CheckStale           = "stale-chain"
)

// AllChecks lists every check, for tests and reports that count coverage.
var AllChecks = []string{
	CheckHookJump, CheckMarkMasq, CheckPostrouting, CheckForwardAccept, CheckNodePortsLast, CheckForwardOrder,
	CheckClusterIP, CheckClusterIPFilter, CheckMasqRule, CheckChain, CheckEndpointJumps,
	CheckProbability, CheckAffinity, CheckSEPHairpin, CheckSEPDNAT, CheckNodePort,
	CheckNodePortFilter, CheckEXT, CheckLB, CheckLBFilter, CheckExternalIP, CheckExternalFilter,
	CheckFW, CheckFWDrop, CheckHealthCheck, CheckStale,
}

// masqMark is the bit kube-proxy's KUBE-MARK-MASQ sets (--masquerade-bit 14).
const masqMark = 0x4000

// Check compares a node's dump with everything kube-proxy must have written
// for the given API objects: the node-wide rules, each Service port's rules,
// and no per-Service chain that no Service explains.
func Check(rs *Ruleset, node *corev1.Node, objs *APIObjects, opts Options) ([]Finding, error) {
	findings := CheckNode(rs)
	expected := map[string]bool{}
	for i := range objs.Services {
		exps, err := Expect(&objs.Services[i], objs.EndpointSlices, node, opts)
		if err != nil {
			return nil, err
		}
		for j := range exps {
			findings = append(findings, exps[j].Check(rs, opts)...)
			for _, c := range exps[j].Chains() {
				expected[c] = true
			}
		}
	}
	if nat := rs.Table("nat"); nat != nil {
		for _, c := range nat.Chains {
			if IsServiceChain(c.Name) && !expected[c.Name] {
				findings = append(findings, Finding{Check: CheckStale,
					Message: fmt.Sprintf("nat chain %s (line %d) belongs to no Service port with endpoints on this node", c.Name, c.Line)})
			}
		}
	}
	return findings, nil
}

// CheckNode verifies the rules kube-proxy writes once per node: the jumps
// from the builtin chains and the masquerade machinery.
func CheckNode(rs *Ruleset) []Finding {
	var out []Finding
	add := func(check, format string, args ...any) {
		out = append(out, Finding{Check: check, Message: fmt.Sprintf(format, args...)})
	}
	for _, j := range []struct{ table, from, to string }{
		{"nat", "PREROUTING", "KUBE-SERVICES"},
		{"nat", "OUTPUT", "KUBE-SERVICES"},
		{"nat", "POSTROUTING", "KUBE-POSTROUTING"},
		{"filter", "INPUT", "KUBE-PROXY-FIREWALL"},
		{"filter", "INPUT", "KUBE-NODEPORTS"},
		{"filter", "INPUT", "KUBE-EXTERNAL-SERVICES"},
		{"filter", "FORWARD", "KUBE-PROXY-FIREWALL"},
		{"filter", "FORWARD", "KUBE-FORWARD"},
		{"filter", "FORWARD", "KUBE-SERVICES"},
		{"filter", "FORWARD", "KUBE-EXTERNAL-SERVICES"},
		{"filter", "OUTPUT", "KUBE-PROXY-FIREWALL"},
		{"filter", "OUTPUT", "KUBE-SERVICES"},
	} {
		if firstRule(rs.Chain(j.table, j.from), func(r *Rule) bool { return r.Target.Kind == TargetJump && r.Target.Name == j.to }) == nil {
			add(CheckHookJump, "%s %s does not jump to %s", j.table, j.from, j.to)
		}
	}

	if firstRule(rs.Chain("nat", "KUBE-MARK-MASQ"), func(r *Rule) bool {
		mt, ok := r.Target.Spec.(*MarkTarget)
		return ok && unconditional(r) && mt.Apply(0)&masqMark != 0
	}) == nil {
		add(CheckMarkMasq, "nat KUBE-MARK-MASQ has no unconditional MARK rule setting 0x%x", masqMark)
	}

	// Walk KUBE-POSTROUTING with and without the mark rather than match
	// its rules' text: what matters is what it does.
	if c := rs.Chain("nat", "KUBE-POSTROUTING"); c == nil {
		add(CheckPostrouting, "nat has no KUBE-POSTROUTING chain")
	} else {
		for _, marked := range []bool{true, false} {
			masq, err := postroutingMasquerades(rs, c, marked)
			switch {
			case err != nil:
				add(CheckPostrouting, "nat KUBE-POSTROUTING cannot be evaluated: %v", err)
			case marked && !masq:
				add(CheckPostrouting, "nat KUBE-POSTROUTING does not masquerade packets marked 0x%x", masqMark)
			case !marked && masq:
				add(CheckPostrouting, "nat KUBE-POSTROUTING masquerades packets without mark 0x%x", masqMark)
			}
		}
	}

	if firstRule(rs.Chain("filter", "KUBE-FORWARD"), func(r *Rule) bool {
		m, ok := ruleMatch[*MarkMatch](r)
		return ok && !m.Negate && m.Value&masqMark != 0 && m.Mask&masqMark != 0 && r.Target.Name == "ACCEPT"
	}) == nil {
		add(CheckForwardAccept, "filter KUBE-FORWARD does not accept packets marked 0x%x", masqMark)
	}

	if c := rs.Chain("nat", "KUBE-SERVICES"); c == nil || len(c.Rules) == 0 || c.Rules[len(c.Rules)-1].Target.Name != "KUBE-NODEPORTS" {
		add(CheckNodePortsLast, "nat KUBE-SERVICES does not end with the jump to KUBE-NODEPORTS")
	}
	return append(out, ForwardOrder(rs)...)
}

// ForwardOrder is the forward-order check alone (CheckNode includes it), for
// callers that report it apart from kube-proxy's own rules.
func ForwardOrder(rs *Ruleset) []Finding {
	var out []Finding
	for _, f := range forwardBypass(rs.Chain("filter", "FORWARD")) {
		out = append(out, Finding{Check: CheckForwardOrder, Message: f})
	}
	return out
}

// forwardJumps are kube-proxy's jumps from filter FORWARD: the firewall
// (loadBalancerSourceRanges), the accept of marked traffic, and the chains
// holding the REJECT for Services without endpoints and the DROP for
// internalTrafficPolicy Local without a local endpoint.
var forwardJumps = []string{"KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"}

// forwardBypass lists the rules of filter FORWARD that accept a new
// connection before kube-proxy's jumps are reached. iptables stops at the
// first ACCEPT, so forwarded traffic such a rule matches never meets
// kube-proxy's REJECT and DROP rules: a pod on a node without a local
// endpoint then reaches a Service it must not (kube-router v2.1.0 inserts
// "-i kube-bridge -j ACCEPT" and friends at the top of FORWARD). Rules
// limited to established or related traffic are harmless: kube-proxy only
// filters new connections.
func forwardBypass(fwd *Chain) []string {
	if fwd == nil {
		return nil
	}
	last := -1
	for i, r := range fwd.Rules {
		for _, j := range forwardJumps {
			if r.Target.Kind == TargetJump && r.Target.Name == j {
				last = i
			}
		}
	}
	var out []string
	for i := 0; i < last; i++ {
		r := fwd.Rules[i]
		if r.Target.Name != "ACCEPT" || !acceptsNew(r) {
			continue
		}
		var skipped []string
		for _, later := range fwd.Rules[i+1:] {
			for _, j := range forwardJumps {
				if later.Target.Kind == TargetJump && later.Target.Name == j {
					skipped = append(skipped, j)
				}
			}
		}
		out = append(out, fmt.Sprintf("filter FORWARD rule %d %q accepts new connections ahead of kube-proxy's jump%s to %s: forwarded traffic it matches skips kube-proxy's REJECT for Services without endpoints and its DROP for internalTrafficPolicy Local",
			i+1, r.Text, plural(len(skipped)), strings.Join(skipped, ", ")))
	}
	return out
}

// acceptsNew: r can match a connection's first packet, i.e. it has no
// conntrack state match or one that admits NEW.
func acceptsNew(r *Rule) bool {
	m, ok := ruleMatch[*ConntrackMatch](r)
	if !ok {
		return true
	}
	hasNew := false
	for _, st := range m.States {
		hasNew = hasNew || st == "NEW"
	}
	return hasNew != m.Negate
}

// postroutingMasquerades walks KUBE-POSTROUTING for a packet with or
// without the masquerade mark and says whether it is masqueraded.
func postroutingMasquerades(rs *Ruleset, c *Chain, marked bool) (bool, error) {
	w := &walker{t: NewTracer(rs, nil), curHook: "POSTROUTING"}
	f := flow{mass: 1, src: netip.MustParseAddr("10.0.0.1"), dst: netip.MustParseAddr("10.0.0.2"), proto: "tcp", dport: 80}
	if marked {
		f.mark = masqMark
	}
	var outs []outcome
	if err := w.walk(rs.Table("nat"), c, c.Name, f, 0, &outs); err != nil {
		return false, err
	}
	for _, o := range outs {
		if o.f.snat {
			return true, nil
		}
	}
	return false, nil
}

// Check compares one Service port's expectation with the dump.
func (e *Expectation) Check(rs *Ruleset, opts Options) []Finding {
	c := &checker{e: e, rs: rs, opts: opts}
	c.clusterIP()
	c.policyChain(e.SVC, e.Endpoints.Cluster, "ready endpoints")
	c.policyChain(e.SVL, e.Endpoints.Local, "ready endpoints on "+e.NodeName)
	c.endpointChains()
	c.nodePort()
	c.extChain()
	c.loadBalancer()
	c.externalIPs()
	c.firewall()
	c.healthCheck()
	return c.out
}

type checker struct {
	e    *Expectation
	rs   *Ruleset
	opts Options
	out  []Finding
}

func (c *checker) add(check, format string, args ...any) {
	c.out = append(c.out, Finding{Service: c.e.Port.Name, Check: check, Message: fmt.Sprintf(format, args...)})
}

// chain returns the nat chain, reporting it when missing.
func (c *checker) chain(name, why string) *Chain {
	ch := c.rs.Chain("nat", name)
	if ch == nil {
		c.add(CheckChain, "nat chain %s (%s of %s) is missing", name, why, c.e.Port.Name)
	}
	return ch
}

func (c *checker) clusterIP() {
	sp := &c.e.Port
	what := fmt.Sprintf("%s cluster IP %s", sp.Name, netip.AddrPortFrom(sp.ClusterIP, sp.Port))
	capture := captureRule(c.rs.Chain("nat", "KUBE-SERVICES"), sp.ClusterIP, sp.Protocol, sp.Port)
	if c.e.InternalChain != "" {
		switch {
		case capture == nil:
			c.add(CheckClusterIP, "nat KUBE-SERVICES has no rule for %s/%s, want -j %s", what, sp.Protocol, c.e.InternalChain)
		case capture.Target.Name != c.e.InternalChain:
			c.add(CheckClusterIP, "nat KUBE-SERVICES sends %s/%s to %s, want %s (line %d)", what, sp.Protocol, capture.Target.Name, c.e.InternalChain, capture.Line)
		}
		c.masqRule()
	} else if capture != nil {
		c.add(CheckClusterIP, "nat KUBE-SERVICES captures %s/%s (line %d) though it has no usable endpoints", what, sp.Protocol, capture.Line)
	}
	if c.e.InternalFilter != "" {
		r := captureRule(c.rs.Chain("filter", "KUBE-SERVICES"), sp.ClusterIP, sp.Protocol, sp.Port)
		switch {
		case r == nil:
			c.add(CheckClusterIPFilter, "filter KUBE-SERVICES has no %s rule for %s/%s (%s)", c.e.InternalFilter, what, sp.Protocol, c.noEndpointsReason(false))
		case r.Target.Name != c.e.InternalFilter:
			c.add(CheckClusterIPFilter, "filter KUBE-SERVICES %ss %s/%s, want %s (line %d)", r.Target.Name, what, sp.Protocol, c.e.InternalFilter, r.Line)
		}
	}
}

func (c *checker) noEndpointsReason(external bool) string {
	if !c.e.Endpoints.HasAny {
		return "no ready endpoints"
	}
	if external {
		return "externalTrafficPolicy Local and no ready endpoints on " + c.e.NodeName
	}
	return "internalTrafficPolicy Local and no ready endpoints on " + c.e.NodeName
}

// masqRule checks the "! -s ClusterCIDR -d ClusterIP ... -j KUBE-MARK-MASQ"
// rule that masquerades off-cluster traffic to the ClusterIP.
func (c *checker) masqRule() {
	cidr := c.opts.ClusterCIDR
	if !cidr.IsValid() {
		return
	}
	sp := &c.e.Port
	ch := c.rs.Chain("nat", c.e.InternalChain)
	if ch == nil {
		return // reported by policyChain
	}
	if firstRule(ch, func(r *Rule) bool {
		return r.Target.Name == "KUBE-MARK-MASQ" && r.Source.Set && r.Source.Negate && r.Source.Prefix == cidr &&
			isHost(r.Destination, sp.ClusterIP) && hasPort(r, sp.Protocol, sp.Port)
	}) == nil {
		c.add(CheckMasqRule, "%s for %s has no rule marking traffic from outside %s to %s for masquerade",
			c.e.InternalChain, sp.Name, cidr, netip.AddrPortFrom(sp.ClusterIP, sp.Port))
	}
}

// policyChain checks a KUBE-SVC or KUBE-SVL chain: one KUBE-SEP jump per
// endpoint, kube-proxy's 1/n, 1/(n-1), ... probabilities, the last jump
// unconditional, and the affinity look-ups before them.
func (c *checker) policyChain(name string, eps []Endpoint, which string) {
	if name == "" {
		return
	}
	ch := c.chain(name, "endpoint selection")
	if ch == nil {
		return
	}
	sp := &c.e.Port
	want := map[string]Endpoint{}
	var wantList []string
	for _, e := range eps {
		want[sp.EndpointChain(e)] = e
		wantList = append(wantList, e.String())
	}
	var jumps, affinity []*Rule
	for _, r := range ch.Rules {
		if r.Target.Kind != TargetJump || !strings.HasPrefix(r.Target.Name, PrefixEndpoint) {
			continue
		}
		if r.Match("recent") != nil {
			affinity = append(affinity, r)
		} else {
			jumps = append(jumps, r)
		}
	}
	if len(jumps) != len(eps) {
		c.add(CheckEndpointJumps, "%s for %s has %d KUBE-SEP jump%s, want %d (%s %s)",
			name, sp.Name, len(jumps), plural(len(jumps)), len(eps), which, strings.Join(wantList, ", "))
	}
	seen := map[string]bool{}
	for _, r := range jumps {
		if _, ok := want[r.Target.Name]; !ok {
			c.add(CheckEndpointJumps, "%s for %s jumps to %s (line %d), which is none of its %s (%s)",
				name, sp.Name, r.Target.Name, r.Line, which, strings.Join(wantList, ", "))
		}
		seen[r.Target.Name] = true
	}
	for _, e := range eps {
		if sep := sp.EndpointChain(e); !seen[sep] {
			c.add(CheckEndpointJumps, "%s for %s has no jump to %s for endpoint %s", name, sp.Name, sep, e)
		}
	}
	n := len(jumps)
	for i, r := range jumps {
		st := r.Statistic()
		if i == n-1 {
			if st != nil {
				c.add(CheckProbability, "%s for %s: last KUBE-SEP jump (to %s, line %d) has probability %.11f, want none (unconditional)",
					name, sp.Name, r.Target.Name, r.Line, st.Probability)
			}
			continue
		}
		wantP := 1 / float64(n-i)
		switch {
		case st == nil || st.Mode != "random" || st.Negate:
			c.add(CheckProbability, "%s for %s: KUBE-SEP jump %d of %d (to %s, line %d) has no random probability, want %.10f",
				name, sp.Name, i+1, n, r.Target.Name, r.Line, wantP)
		case math.Abs(st.Probability-wantP) > 1e-6:
			c.add(CheckProbability, "%s for %s: KUBE-SEP jump %d of %d (to %s, line %d) has probability %.11f, want %.10f",
				name, sp.Name, i+1, n, r.Target.Name, r.Line, st.Probability, wantP)
		}
	}
	c.affinityLookups(name, eps, affinity)
}

// affinityLookups checks the --rcheck rules of ClientIP affinity: one per
// endpoint, with the Service's timeout, before any statistic jump.
func (c *checker) affinityLookups(name string, eps []Endpoint, rules []*Rule) {
	sp := &c.e.Port
	if !sp.ClientIPAffinity {
		for _, r := range rules {
			c.add(CheckAffinity, "%s for %s has a session-affinity look-up (line %d) but the Service has no ClientIP affinity", name, sp.Name, r.Line)
		}
		return
	}
	ch := c.rs.Chain("nat", name)
	firstStat := len(ch.Rules)
	for i, r := range ch.Rules {
		if r.Target.Kind == TargetJump && strings.HasPrefix(r.Target.Name, PrefixEndpoint) && r.Match("recent") == nil {
			firstStat = i
			break
		}
	}
	for _, e := range eps {
		sep := sp.EndpointChain(e)
		found := false
		for i, r := range ch.Rules {
			rec, ok := ruleMatch[*RecentMatch](r)
			if !ok || r.Target.Name != sep || rec.Name != sep || rec.Action != "rcheck" || rec.Negate || rec.Side != "rsource" {
				continue
			}
			found = true
			if rec.Seconds != uint64(sp.AffinitySeconds) {
				c.add(CheckAffinity, "%s for %s: affinity look-up for %s (line %d) lasts %ds, want %ds", name, sp.Name, e, r.Line, rec.Seconds, sp.AffinitySeconds)
			}
			if i > firstStat {
				c.add(CheckAffinity, "%s for %s: affinity look-up for %s (line %d) comes after the load-balancing jumps", name, sp.Name, e, r.Line)
			}
		}
		if !found {
			c.add(CheckAffinity, "%s for %s has no session-affinity look-up (-m recent --rcheck --name %s) for endpoint %s", name, sp.Name, sep, e)
		}
	}
}

// endpointChains checks each KUBE-SEP chain: the hairpin masquerade for the
// endpoint's own address, and the DNAT (recording the client for affinity).
func (c *checker) endpointChains() {
	sp := &c.e.Port
	for _, e := range c.e.Endpoints.Reachable {
		name := sp.EndpointChain(e)
		ch := c.chain(name, "endpoint "+e.String())
		if ch == nil {
			continue
		}
		if firstRule(ch, func(r *Rule) bool { return r.Target.Name == "KUBE-MARK-MASQ" && isHost(r.Source, e.Addr.Addr()) }) == nil {
			c.add(CheckSEPHairpin, "%s for %s has no rule marking traffic from %s itself for masquerade (hairpin)", name, sp.Name, e.Addr.Addr())
		}
		dnat := firstRule(ch, func(r *Rule) bool { return r.Target.Name == "DNAT" })
		if dnat == nil {
			c.add(CheckSEPDNAT, "%s for %s has no DNAT rule, want --to-destination %s", name, sp.Name, e)
			continue
		}
		d, ok := dnat.Target.Spec.(*DNATTarget)
		if !ok || netip.AddrPortFrom(d.Addr, d.Port) != e.Addr || dnat.Protocol.Name != sp.Protocol || dnat.Protocol.Negate {
			c.add(CheckSEPDNAT, "%s for %s DNATs with %q (line %d), want -p %s -j DNAT --to-destination %s", name, sp.Name, dnat.Text, dnat.Line, sp.Protocol, e)
		}
		rec, hasRec := ruleMatch[*RecentMatch](dnat)
		switch {
		case sp.ClientIPAffinity && (!hasRec || rec.Action != "set" || rec.Name != name):
			c.add(CheckAffinity, "%s for %s: DNAT rule (line %d) does not record the client (-m recent --set --name %s)", name, sp.Name, dnat.Line, name)
		case !sp.ClientIPAffinity && hasRec:
			c.add(CheckAffinity, "%s for %s: DNAT rule (line %d) records clients but the Service has no ClientIP affinity", name, sp.Name, dnat.Line)
		}
	}
}

func (c *checker) nodePort() {
	sp := &c.e.Port
	if sp.NodePort == 0 {
		return
	}
	nodePorts := c.rs.Chain("nat", "KUBE-NODEPORTS")
	r := firstRule(nodePorts, func(r *Rule) bool { return !r.Destination.Set && hasPort(r, sp.Protocol, sp.NodePort) })
	if c.e.EXT != "" {
		switch {
		case r == nil:
			c.add(CheckNodePort, "nat KUBE-NODEPORTS has no rule for %s node port %d/%s, want -j %s", sp.Name, sp.NodePort, sp.Protocol, c.e.EXT)
		case r.Target.Name != c.e.EXT:
			c.add(CheckNodePort, "nat KUBE-NODEPORTS sends %s node port %d/%s to %s (line %d), want %s", sp.Name, sp.NodePort, sp.Protocol, r.Target.Name, r.Line, c.e.EXT)
		}
	} else if r != nil {
		c.add(CheckNodePort, "nat KUBE-NODEPORTS captures %s node port %d/%s (line %d) though it has no endpoints", sp.Name, sp.NodePort, sp.Protocol, r.Line)
	}
	if c.e.ExternalFilter == "" {
		return
	}
	f := firstRule(c.rs.Chain("filter", "KUBE-EXTERNAL-SERVICES"), func(r *Rule) bool {
		at, ok := ruleMatch[*AddrTypeMatch](r)
		return ok && at.DstType == "LOCAL" && !at.DstNegate && hasPort(r, sp.Protocol, sp.NodePort)
	})
	switch {
	case f == nil:
		c.add(CheckNodePortFilter, "filter KUBE-EXTERNAL-SERVICES has no %s rule for %s node port %d/%s (%s)", c.e.ExternalFilter, sp.Name, sp.NodePort, sp.Protocol, c.noEndpointsReason(true))
	case f.Target.Name != c.e.ExternalFilter:
		c.add(CheckNodePortFilter, "filter KUBE-EXTERNAL-SERVICES %ss %s node port %d/%s (line %d), want %s", f.Target.Name, sp.Name, sp.NodePort, sp.Protocol, f.Line, c.e.ExternalFilter)
	}
}

// extChain checks the KUBE-EXT chain: with Cluster policy it masquerades
// everything and goes to KUBE-SVC; with Local policy it keeps the client's
// address except for traffic from the node itself, which (like pod
// traffic) is short-circuited to KUBE-SVC.
func (c *checker) extChain() {
	if c.e.EXT == "" {
		return
	}
	sp := &c.e.Port
	ch := c.chain(c.e.EXT, "external traffic entry")
	if ch == nil {
		return
	}
	svc := sp.Chain(PrefixService)
	localSrc := func(r *Rule) bool {
		at, ok := ruleMatch[*AddrTypeMatch](r)
		return ok && at.SrcType == "LOCAL" && !at.SrcNegate && at.DstType == "" && onlyMatches(r, "addrtype")
	}
	markAll := firstIndex(ch, func(r *Rule) bool { return r.Target.Name == "KUBE-MARK-MASQ" && unconditional(r) })
	if !sp.ExternalPolicyLocal {
		toSVC := firstIndex(ch, func(r *Rule) bool { return r.Target.Name == svc && unconditional(r) })
		switch {
		case markAll < 0:
			c.add(CheckEXT, "%s for %s does not mark all external traffic for masquerade (externalTrafficPolicy Cluster)", c.e.EXT, sp.Name)
		case toSVC < 0:
			c.add(CheckEXT, "%s for %s does not send external traffic to %s", c.e.EXT, sp.Name, svc)
		case toSVC < markAll:
			c.add(CheckEXT, "%s for %s jumps to %s before marking for masquerade", c.e.EXT, sp.Name, svc)
		}
		return
	}
	if markAll >= 0 {
		c.add(CheckEXT, "%s for %s marks all external traffic for masquerade (line %d), losing client IPs under externalTrafficPolicy Local", c.e.EXT, sp.Name, ch.Rules[markAll].Line)
	}
	if cidr := c.opts.ClusterCIDR; cidr.IsValid() && firstIndex(ch, func(r *Rule) bool {
		return r.Target.Name == svc && r.Source.Set && !r.Source.Negate && r.Source.Prefix == cidr
	}) < 0 {
		c.add(CheckEXT, "%s for %s does not send pod traffic (-s %s) to %s", c.e.EXT, sp.Name, cidr, svc)
	}
	markLocal := firstIndex(ch, func(r *Rule) bool { return r.Target.Name == "KUBE-MARK-MASQ" && localSrc(r) })
	routeLocal := firstIndex(ch, func(r *Rule) bool { return r.Target.Name == svc && localSrc(r) })
	switch {
	case markLocal < 0:
		c.add(CheckEXT, "%s for %s does not mark traffic from the node (addrtype --src-type LOCAL) for masquerade", c.e.EXT, sp.Name)
	case routeLocal < 0:
		c.add(CheckEXT, "%s for %s does not send traffic from the node (addrtype --src-type LOCAL) to %s", c.e.EXT, sp.Name, svc)
	case routeLocal < markLocal:
		c.add(CheckEXT, "%s for %s sends traffic from the node to %s before marking it", c.e.EXT, sp.Name, svc)
	}
	if c.e.ExternalPolicyChain != "" {
		if n := len(ch.Rules); n == 0 || ch.Rules[n-1].Target.Name != c.e.ExternalPolicyChain || !unconditional(ch.Rules[n-1]) {
			c.add(CheckEXT, "%s for %s does not end with a jump to %s (externalTrafficPolicy Local)", c.e.EXT, sp.Name, c.e.ExternalPolicyChain)
		}
	}
}

// loadBalancer checks the capture (or, without endpoints, the filter rule)
// of each load-balancer IP.
func (c *checker) loadBalancer() {
	c.externalAddrs(c.e.Port.LoadBalancerIPs, "load-balancer IP", c.e.LBChain, CheckLB, CheckLBFilter)
}

func (c *checker) externalIPs() {
	c.externalAddrs(c.e.Port.ExternalIPs, "external IP", c.e.EXT, CheckExternalIP, CheckExternalFilter)
}

func (c *checker) externalAddrs(addrs []netip.Addr, kind, target, capCheck, filterCheck string) {
	sp := &c.e.Port
	for _, a := range addrs {
		what := fmt.Sprintf("%s %s %s/%s", sp.Name, kind, netip.AddrPortFrom(a, sp.Port), sp.Protocol)
		r := captureRule(c.rs.Chain("nat", "KUBE-SERVICES"), a, sp.Protocol, sp.Port)
		switch {
		case target != "" && r == nil:
			c.add(capCheck, "nat KUBE-SERVICES has no rule for %s, want -j %s", what, target)
		case target != "" && r.Target.Name != target:
			c.add(capCheck, "nat KUBE-SERVICES sends %s to %s (line %d), want %s", what, r.Target.Name, r.Line, target)
		case target == "" && r != nil:
			c.add(capCheck, "nat KUBE-SERVICES captures %s (line %d) though it has no endpoints", what, r.Line)
		}
		if c.e.ExternalFilter == "" {
			continue
		}
		f := captureRule(c.rs.Chain("filter", "KUBE-EXTERNAL-SERVICES"), a, sp.Protocol, sp.Port)
		switch {
		case f == nil:
			c.add(filterCheck, "filter KUBE-EXTERNAL-SERVICES has no %s rule for %s (%s)", c.e.ExternalFilter, what, c.noEndpointsReason(true))
		case f.Target.Name != c.e.ExternalFilter:
			c.add(filterCheck, "filter KUBE-EXTERNAL-SERVICES %ss %s (line %d), want %s", f.Target.Name, what, f.Line, c.e.ExternalFilter)
		}
	}
}

// firewall checks loadBalancerSourceRanges: KUBE-FW lets each range (and,
// when a range holds the node, the LB IPs themselves) on to KUBE-EXT, and
// filter KUBE-PROXY-FIREWALL drops what KUBE-FW did not DNAT.
func (c *checker) firewall() {
	if c.e.FW == "" {
		return
	}
	sp := &c.e.Port
	ch := c.chain(c.e.FW, "loadBalancerSourceRanges firewall")
	if ch == nil {
		return
	}
	allowed := append([]netip.Prefix(nil), sp.SourceRanges...)
	for _, r := range sp.SourceRanges {
		if c.e.NodeIP.IsValid() && r.Contains(c.e.NodeIP) {
			for _, a := range sp.LoadBalancerIPs {
				allowed = append(allowed, netip.PrefixFrom(a, a.BitLen()))
			}
			break
		}
	}
	for _, p := range allowed {
		if firstIndex(ch, func(r *Rule) bool {
			return r.Target.Name == c.e.EXT && r.Source.Set && !r.Source.Negate && r.Source.Prefix == p
		}) < 0 {
			c.add(CheckFW, "%s for %s does not let source %s through to %s", c.e.FW, sp.Name, p, c.e.EXT)
		}
	}
	for _, a := range sp.LoadBalancerIPs {
		if firstRule(c.rs.Chain("filter", "KUBE-PROXY-FIREWALL"), func(r *Rule) bool {
			return r.Target.Name == "DROP" && isHost(r.Destination, a) && hasPort(r, sp.Protocol, sp.Port)
		}) == nil {
			c.add(CheckFWDrop, "filter KUBE-PROXY-FIREWALL has no DROP for %s load-balancer IP %s/%s from outside its source ranges",
				sp.Name, netip.AddrPortFrom(a, sp.Port), sp.Protocol)
		}
	}
}

func (c *checker) healthCheck() {
	sp := &c.e.Port
	if sp.HealthCheckNodePort == 0 {
		return
	}
	if firstRule(c.rs.Chain("filter", "KUBE-NODEPORTS"), func(r *Rule) bool {
		return r.Target.Name == "ACCEPT" && hasPort(r, "tcp", sp.HealthCheckNodePort)
	}) == nil {
		c.add(CheckHealthCheck, "filter KUBE-NODEPORTS does not accept %s health check node port %d/tcp", sp.Name, sp.HealthCheckNodePort)
	}
}

// captureRule is a chain's first rule for exactly dst:port/proto, with no
// source condition (kube-proxy's KUBE-SERVICES shape).
func captureRule(ch *Chain, dst netip.Addr, proto string, port uint16) *Rule {
	return firstRule(ch, func(r *Rule) bool {
		return isHost(r.Destination, dst) && !r.Source.Set && hasPort(r, proto, port)
	})
}

func firstRule(ch *Chain, pred func(*Rule) bool) *Rule {
	if i := firstIndex(ch, pred); i >= 0 {
		return ch.Rules[i]
	}
	return nil
}

func firstIndex(ch *Chain, pred func(*Rule) bool) int {
	if ch == nil {
		return -1
	}
	for i, r := range ch.Rules {
		if pred(r) {
			return i
		}
	}
	return -1
}

// ruleMatch returns the rule's first typed match of type T.
func ruleMatch[T MatchSpec](r *Rule) (T, bool) {
	for i := range r.Matches {
		if s, ok := r.Matches[i].Spec.(T); ok {
			return s, true
		}
	}
	var zero T
	return zero, false
}

// isHost reports whether m is exactly "-d a/32" (or /128), not negated.
func isHost(m AddrMatch, a netip.Addr) bool {
	return m.Set && !m.Negate && m.Prefix.Addr() == a && m.Prefix.Bits() == a.BitLen()
}

// hasPort reports whether r matches exactly protocol proto, destination
// port port.
func hasPort(r *Rule, proto string, port uint16) bool {
	if r.Protocol.Name != proto || r.Protocol.Negate {
		return false
	}
	p, ok := r.DPorts().Single()
	return ok && p == port
}

// unconditional reports whether r matches every packet: no address,
// protocol or interface condition, and only comment/nfacct matches.
func unconditional(r *Rule) bool {
	return !r.Source.Set && !r.Destination.Set && r.Protocol.Name == "" && r.InIface.Name == "" &&
		r.OutIface.Name == "" && r.Fragment == nil && onlyMatches(r)
}

// onlyMatches reports whether r's matches are the given modules plus
// comment and nfacct.
func onlyMatches(r *Rule, modules ...string) bool {
	for _, m := range r.Matches {
		switch m.Module {
		case "comment", "nfacct":
			continue
		}
		ok := false
		for _, want := range modules {
			ok = ok || m.Module == want
		}
		if !ok {
			return false
		}
	}
	return true
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
