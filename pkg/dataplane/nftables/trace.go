package nftables

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/netconform/netconform/pkg/dataplane"
)

// Limits that keep a trace of a hostile or looping ruleset finite. The
// kernel itself allows 16 nested jumps; gotos do not nest there but do here.
const (
	maxChainDepth = 64
	maxBranches   = 4096
	maxSteps      = 1 << 20
)

// NewTracer returns a Tracer over rs for a node owning nodeIPs. The node IPs
// decide `fib ... type local` and whether a packet is delivered locally
// (input) or forwarded.
func NewTracer(rs *Ruleset, nodeIPs []netip.Addr) dataplane.Tracer {
	t := &tracer{rs: rs, index: map[*Set]map[string]int{}}
	for _, ip := range nodeIPs {
		t.nodeIPs = append(t.nodeIPs, ip.Unmap())
	}
	for _, tb := range rs.Tables {
		if tb.Name != KubeProxyTable {
			continue
		}
		for _, s := range tb.Sets {
			t.index[s] = buildIndex(s)
		}
	}
	return t
}

// buildIndex maps exact element keys to their position so the lookup in a
// 10,000-element service-ips map is a hash probe; nil means the set has
// prefixes or ranges and is scanned instead.
func buildIndex(s *Set) map[string]int {
	idx := make(map[string]int, len(s.Elements))
	for i, el := range s.Elements {
		k, ok := exactKey(el.Key)
		if !ok {
			return nil
		}
		if _, dup := idx[k]; !dup {
			idx[k] = i
		}
	}
	return idx
}

type tracer struct {
	rs      *Ruleset
	nodeIPs []netip.Addr
	// index is read-only after NewTracer, so Trace is safe for
	// concurrent use.
	index map[*Set]map[string]int
}

// branch is one way the packet may go, with the state the rules gave it.
type branch struct {
	src, dst netip.Addr
	dport    uint16
	l4proto  uint64
	proto    string
	mark     uint64
	dnat     bool
	masq     bool
	prob     float64
	path     []string
	via      string // the map element that led into the current chain
}

func (b *branch) fork(prob float64) *branch {
	c := *b
	c.prob = prob
	c.path = slices.Clone(b.path)
	return &c
}

// final is a branch whose fate is sealed: accepted after the last hook, or
// dropped or rejected by rule.
type final struct {
	b       *branch
	verdict dataplane.Verdict
	rule    string
}

// run is the state of one Trace call.
type run struct {
	t      *tracer
	tables []*Table
	v6     bool
	steps  int
	finals []final
	forks  int // branches created so far, against maxBranches
}

func (t *tracer) Trace(p dataplane.Packet) (dataplane.Result, error) {
	if err := validate(p); err != nil {
		return dataplane.Result{}, fmt.Errorf("tracing %v: %w", p, err)
	}
	r := &run{t: t, v6: p.Dst.Unmap().Is6()}
	for _, tb := range t.rs.Tables {
		if tb.Name != KubeProxyTable {
			continue
		}
		if tb.Family == "inet" || (tb.Family == "ip" && !r.v6) || (tb.Family == "ip6" && r.v6) {
			r.tables = append(r.tables, tb)
		}
	}
	if len(r.tables) == 0 {
		fam := "ip"
		if r.v6 {
			fam = "ip6"
		}
		return dataplane.Result{}, fmt.Errorf("tracing %v: the dump has no %s %s table", p, fam, KubeProxyTable)
	}
	start := &branch{
		src: p.Src.Unmap(), dst: p.Dst.Unmap(), dport: p.DPort,
		proto: p.Proto, l4proto: ipProtocols[p.Proto], prob: 1,
	}
	r.forks = 1
	if err := r.walk(p.From, start); err != nil {
		return dataplane.Result{}, fmt.Errorf("tracing %v: %w", p, err)
	}
	return r.result(), nil
}

func validate(p dataplane.Packet) error {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return errors.New("source and destination must be set")
	}
	if p.Src.Unmap().Is4() != p.Dst.Unmap().Is4() {
		return errors.New("source and destination are of different IP families")
	}
	switch p.Proto {
	case "tcp", "udp", "sctp":
	default:
		return fmt.Errorf("protocol %q is not tcp, udp or sctp", p.Proto)
	}
	switch p.From {
	case dataplane.FromPod, dataplane.FromExternal, dataplane.FromLocal:
	default:
		return fmt.Errorf("unknown origin %q", p.From)
	}
	return nil
}

// walk sends the packet through the hooks its origin and routing decide.
func (r *run) walk(from dataplane.Origin, b *branch) error {
	first := "prerouting"
	if from == dataplane.FromLocal {
		first = "output"
	}
	passed, err := r.hook(first, []*branch{b})
	if err != nil {
		return err
	}
	var local, routed []*branch
	for _, b := range passed {
		if r.isLocal(b.dst) {
			local = append(local, b)
		} else {
			routed = append(routed, b)
		}
	}
	if from == dataplane.FromLocal {
		// Locally generated packets meet postrouting whatever their
		// destination, then input if they loop back to this node.
		local, routed = nil, passed
	} else if routed, err = r.hook("forward", routed); err != nil {
		return err
	}
	if routed, err = r.hook("postrouting", routed); err != nil {
		return err
	}
	if from == dataplane.FromLocal {
		for _, b := range routed {
			if r.isLocal(b.dst) {
				local = append(local, b)
			} else {
				r.finish(b, dataplane.Accept, "")
			}
		}
	} else {
		for _, b := range routed {
			r.finish(b, dataplane.Accept, "")
		}
	}
	delivered, err := r.hook("input", local)
	if err != nil {
		return err
	}
	for _, b := range delivered {
		r.finish(b, dataplane.Accept, "")
	}
	return nil
}

func (r *run) finish(b *branch, v dataplane.Verdict, rule string) {
	r.finals = append(r.finals, final{b: b, verdict: v, rule: rule})
}

func (r *run) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	return slices.Contains(r.t.nodeIPs, a)
}

// hook runs the base chains of every traced table attached to hook, lowest
// priority first, and returns the branches that pass all of them.
func (r *run) hook(name string, in []*branch) ([]*branch, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var chains []*Chain
	for _, tb := range r.tables {
		chains = append(chains, tb.BaseChains(name)...)
	}
	sort.SliceStable(chains, func(i, j int) bool { return chains[i].Priority < chains[j].Priority })
	cur := in
	for _, c := range chains {
		for _, b := range cur {
			b.via = ""
		}
		cont, done, err := r.chain(r.tableOf(c), c, cur, 0)
		if err != nil {
			return nil, err
		}
		var next []*branch
		for _, b := range cont {
			if c.Policy == "drop" {
				r.finish(b, dataplane.Drop, fmt.Sprintf("%s: policy drop", c.Name))
				continue
			}
			next = append(next, b)
		}
		for _, d := range done {
			switch d.kind {
			case outAccept, outNAT:
				next = append(next, d.b)
			case outDrop:
				r.finish(d.b, dataplane.Drop, d.rule)
			case outReject:
				r.finish(d.b, dataplane.Reject, d.rule)
			}
		}
		cur = next
	}
	return cur, nil
}

func (r *run) tableOf(c *Chain) *Table {
	for _, tb := range r.tables {
		if tb.Family == c.Family && tb.Name == c.Table {
			return tb
		}
	}
	return nil
}

type outKind uint8

const (
	outNext   outKind = iota // the rule did not match or ended without verdict
	outMatch                 // the statement matched: evaluate the next one
	outReturn                // return to the calling chain
	outJump
	outGoto
	outAccept
	outNAT // a NAT statement ran: accept for this base chain
	outDrop
	outReject
)

// out is what one rule (or chain) did to one branch.
type out struct {
	b      *branch
	kind   outKind
	target string
	rule   string // the deciding rule, for drop and reject
	via    string // for jump and goto taken from a map element
}

// chain evaluates a chain for a set of branches. cont holds branches that
// fell off its end or returned; done holds those that met a terminal
// verdict (accept, NAT, drop, reject) somewhere below.
func (r *run) chain(tb *Table, c *Chain, in []*branch, depth int) (cont []*branch, done []out, err error) {
	if depth > maxChainDepth {
		return nil, nil, fmt.Errorf("chain %q: jumps nested deeper than %d", c.Name, maxChainDepth)
	}
	active := in
	for _, b := range active {
		b.path = append(b.path, c.Name)
	}
	for _, rule := range c.Rules {
		var next []*branch
		for _, b := range active {
			outs, err := r.rule(tb, c, rule, b)
			if err != nil {
				return nil, nil, fmt.Errorf("chain %q rule %q: %w", c.Name, rule.String(), err)
			}
			for _, o := range outs {
				switch o.kind {
				case outNext:
					next = append(next, o.b)
				case outReturn:
					cont = append(cont, o.b)
				case outJump, outGoto:
					target := tb.Chain(o.target)
					if target == nil {
						return nil, nil, fmt.Errorf("chain %q: %s to missing chain %q", c.Name, kindWord(o.kind), o.target)
					}
					saved := o.b.via
					o.b.via = o.via
					subCont, subDone, err := r.chain(tb, target, []*branch{o.b}, depth+1)
					if err != nil {
						return nil, nil, err
					}
					for _, sb := range subCont {
						sb.via = saved
					}
					done = append(done, subDone...)
					if o.kind == outJump {
						next = append(next, subCont...)
					} else {
						cont = append(cont, subCont...)
					}
				default:
					done = append(done, o)
				}
			}
		}
		active = next
		if len(active) == 0 {
			break
		}
	}
	cont = append(cont, active...)
	return cont, done, nil
}

func kindWord(k outKind) string {
	if k == outJump {
		return "jump"
	}
	return "goto"
}

// rule evaluates one rule's statements left to right for one branch; a
// numgen vmap may fork it.
func (r *run) rule(tb *Table, c *Chain, rule *Rule, b *branch) ([]out, error) {
	r.steps++
	if r.steps > maxSteps {
		return nil, fmt.Errorf("more than %d rule evaluations; the ruleset loops", maxSteps)
	}
	active := []*branch{b}
	var outs []out
	for _, s := range rule.Stmts {
		var next []*branch
		for _, a := range active {
			res, err := r.stmt(tb, c, rule, s, a)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s, err)
			}
			for _, o := range res {
				if o.kind == outMatch {
					next = append(next, o.b)
					continue
				}
				outs = append(outs, o)
			}
		}
		active = next
		if len(active) == 0 {
			break
		}
	}
	for _, a := range active {
		outs = append(outs, out{b: a, kind: outNext})
	}
	return outs, nil
}

// goOn marks a branch that matched a statement and carries on with the next
// statement of the same rule; stop ends the rule and moves to the next one.
func goOn(b *branch) out { return out{b: b, kind: outMatch} }

func stop(b *branch) out { return out{b: b, kind: outNext} }

func (r *run) stmt(tb *Table, c *Chain, rule *Rule, s Stmt, b *branch) ([]out, error) {
	switch s := s.(type) {
	case Match:
		ok, err := r.match(tb, s, b)
		if err != nil {
			return nil, err
		}
		if ok {
			return []out{goOn(b)}, nil
		}
		return []out{stop(b)}, nil
	case VerdictStmt:
		return []out{r.verdict(VerdictExpr(s), b, describeRule(c, rule))}, nil
	case VMap:
		return r.vmap(tb, c, rule, s, b)
	case Mangle:
		meta, ok := s.Key.(Meta)
		if !ok || meta.Key != "mark" {
			return nil, fmt.Errorf("setting %s is not modelled", exprString(s.Key))
		}
		v, err := r.single(tb, s.Value, b)
		if err != nil {
			return nil, err
		}
		if v.kind != vNum || v.num > 0xffffffff {
			return nil, fmt.Errorf("mark value %s is not a 32-bit number", v)
		}
		b.mark = v.num
		return []out{goOn(b)}, nil
	case NAT:
		return r.nat(s, b, describeRule(c, rule))
	case Reject:
		return []out{{b: b, kind: outReject, rule: r.decider(c, rule, b)}}, nil
	case Counter:
		return []out{goOn(b)}, nil
	case SetStmt:
		// Affinity bookkeeping (`update @affinity-... { ip saddr }`)
		// changes later connections, not this packet.
		return []out{goOn(b)}, nil
	case XT:
		return nil, fmt.Errorf("iptables-nft compat statement %s cannot be evaluated from JSON", s)
	case OtherStmt:
		if s.Kind == "log" || s.Kind == "notrack" {
			return []out{goOn(b)}, nil
		}
		return nil, fmt.Errorf("statement %q is not modelled", s.Kind)
	}
	return nil, fmt.Errorf("statement %T is not modelled", s)
}

func (r *run) decider(c *Chain, rule *Rule, b *branch) string {
	d := describeRule(c, rule)
	if b.via != "" {
		d += " (via " + b.via + ")"
	}
	return d
}

func (r *run) verdict(v VerdictExpr, b *branch, rule string) out {
	switch v.Kind {
	case "accept":
		return out{b: b, kind: outAccept}
	case "drop":
		if b.via != "" {
			rule += " (via " + b.via + ")"
		}
		return out{b: b, kind: outDrop, rule: rule}
	case "return":
		return out{b: b, kind: outReturn}
	case "jump":
		return out{b: b, kind: outJump, target: v.Target, via: b.via}
	case "goto":
		return out{b: b, kind: outGoto, target: v.Target, via: b.via}
	default: // continue
		return stop(b)
	}
}

func (r *run) nat(n NAT, b *branch, rule string) ([]out, error) {
	switch n.Kind {
	case "dnat":
		if n.Addr == nil {
			return nil, errors.New("dnat without an address")
		}
		a, ok := literal(n.Addr)
		if !ok || a.kind != vAddr {
			return nil, fmt.Errorf("dnat address %s is not a constant address", exprString(n.Addr))
		}
		if a.addr.Is4() != b.dst.Is4() {
			return nil, fmt.Errorf("dnat to %s changes the address family", a.addr)
		}
		b.dst = a.addr
		if n.Port != nil {
			p, ok := literal(n.Port)
			if !ok || p.kind != vNum || p.num > 0xffff {
				return nil, fmt.Errorf("dnat port %s is not a constant port", exprString(n.Port))
			}
			b.dport = uint16(p.num)
		}
		b.dnat = true
	case "snat", "masquerade":
		// Either way the source is rewritten to a node address, which
		// is what Destination.Masquerade reports.
		b.masq = true
	default:
		return nil, fmt.Errorf("%s is not modelled", n.Kind)
	}
	return []out{{b: b, kind: outNAT, rule: rule}}, nil
}

// vmap looks the key up in a verdict map and follows the element's verdict;
// with a numgen key every element is a branch of its own.
func (r *run) vmap(tb *Table, c *Chain, rule *Rule, v VMap, b *branch) ([]out, error) {
	elems, name, err := r.mapElements(tb, v.Data)
	if err != nil {
		return nil, err
	}
	if ng, ok := v.Key.(Numgen); ok {
		return r.numgen(c, rule, ng, elems, b)
	}
	key, absent, err := r.eval(tb, v.Key, b)
	if err != nil {
		return nil, err
	}
	if absent {
		return []out{stop(b)}, nil
	}
	el, found, err := r.lookup(tb, v.Data, elems, key)
	if err != nil {
		return nil, err
	}
	if !found {
		return []out{stop(b)}, nil
	}
	ve, ok := el.Value.(VerdictExpr)
	if !ok {
		return nil, fmt.Errorf("element %s of %s has no verdict", el.Key, name)
	}
	via := name + " element " + el.String()
	saved := b.via
	b.via = via
	o := r.verdict(ve, b, describeRule(c, rule))
	b.via = saved
	o.via = via
	return []out{o}, nil
}

func (r *run) mapElements(tb *Table, data Expr) ([]Element, string, error) {
	switch d := data.(type) {
	case SetRef:
		s := tb.Set(string(d))
		if s == nil {
			return nil, "", fmt.Errorf("map %s does not exist", d)
		}
		return s.Elements, d.String(), nil
	case AnonSet:
		return d, "anonymous map", nil
	}
	return nil, "", fmt.Errorf("%s is not a map", exprString(data))
}

// numgen forks b over the elements of an anonymous map keyed by a random
// number in [offset, offset+mod): each element's share is the count of
// numbers it covers over mod; numbers no element covers fall through.
func (r *run) numgen(c *Chain, rule *Rule, ng Numgen, elems []Element, b *branch) ([]out, error) {
	if ng.Mode != "random" && ng.Mode != "inc" {
		return nil, fmt.Errorf("numgen mode %q is not modelled", ng.Mode)
	}
	if ng.Mod == 0 {
		return nil, errors.New("numgen mod 0")
	}
	lo, hi := ng.Offset, ng.Offset+ng.Mod-1
	type span struct {
		from, to uint64
		el       Element
	}
	var spans []span
	for _, el := range elems {
		from, to, err := numSpan(el.Key)
		if err != nil {
			return nil, err
		}
		from, to = max(from, lo), min(to, hi)
		if from > to {
			continue
		}
		spans = append(spans, span{from, to, el})
	}
	sorted := slices.Clone(spans)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].from < sorted[j].from })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].from <= sorted[i-1].to {
			return nil, fmt.Errorf("numgen map elements %s and %s overlap", sorted[i-1].el.Key, sorted[i].el.Key)
		}
	}
	r.forks += len(spans)
	if r.forks > maxBranches {
		return nil, fmt.Errorf("more than %d branches", maxBranches)
	}
	var outs []out
	covered := uint64(0)
	for _, sp := range spans {
		n := sp.to - sp.from + 1
		covered += n
		child := b.fork(b.prob * float64(n) / float64(ng.Mod))
		ve, ok := sp.el.Value.(VerdictExpr)
		if !ok {
			return nil, fmt.Errorf("numgen element %s has no verdict", sp.el.Key)
		}
		outs = append(outs, r.verdict(ve, child, describeRule(c, rule)))
	}
	if covered < ng.Mod {
		outs = append(outs, stop(b.fork(b.prob*float64(ng.Mod-covered)/float64(ng.Mod))))
	}
	return outs, nil
}

func numSpan(key Expr) (uint64, uint64, error) {
	if v, ok := literal(key); ok && v.kind == vNum {
		return v.num, v.num, nil
	}
	if rg, ok := key.(Range); ok {
		lo, ok1 := literal(rg.Lo)
		hi, ok2 := literal(rg.Hi)
		if ok1 && ok2 && lo.kind == vNum && hi.kind == vNum && lo.num <= hi.num {
			return lo.num, hi.num, nil
		}
	}
	return 0, 0, fmt.Errorf("numgen map key %s is not a number or range", exprString(key))
}

// lookup finds the element of a set or map covering key.
func (r *run) lookup(tb *Table, data Expr, elems []Element, key []value) (Element, bool, error) {
	if ref, ok := data.(SetRef); ok {
		if idx := r.t.index[tb.Set(string(ref))]; idx != nil {
			i, found := idx[tupleKey(key)]
			if !found {
				return Element{}, false, nil
			}
			return elems[i], true, nil
		}
	}
	for _, el := range elems {
		ok, err := matchKey(el.Key, key)
		if err != nil {
			return Element{}, false, err
		}
		if ok {
			return el, true, nil
		}
	}
	return Element{}, false, nil
}

// match evaluates `left op right`. A left side that does not exist for this
// packet (tcp dport of a udp packet, ip daddr of an IPv6 packet) fails the
// match whatever the operator, as nft's implicit dependencies do.
func (r *run) match(tb *Table, m Match, b *branch) (bool, error) {
	left, absent, err := r.eval(tb, m.Left, b)
	if err != nil || absent {
		return false, err
	}
	var in bool
	switch right := m.Right.(type) {
	case SetRef, AnonSet:
		elems, _, err := r.mapElements(tb, right)
		if err != nil {
			return false, err
		}
		_, in, err = r.lookup(tb, right, elems, left)
		if err != nil {
			return false, err
		}
	default:
		switch m.Op {
		case "<", ">", "<=", ">=":
			return compareOp(m, left)
		case "in":
			return flagTest(m, left)
		}
		in, err = matchKey(m.Right, left)
		if err != nil {
			return false, err
		}
	}
	switch m.Op {
	case "==", "in":
		return in, nil
	case "!=":
		return !in, nil
	}
	return false, fmt.Errorf("operator %q against a set", m.Op)
}

func compareOp(m Match, left []value) (bool, error) {
	rv, ok := literal(m.Right)
	if !ok || len(left) != 1 {
		return false, fmt.Errorf("cannot order %s against %s", exprString(m.Left), exprString(m.Right))
	}
	c, ok := left[0].compare(rv)
	if !ok {
		return false, fmt.Errorf("cannot order %s against %s", left[0], rv)
	}
	switch m.Op {
	case "<":
		return c < 0, nil
	case ">":
		return c > 0, nil
	case "<=":
		return c <= 0, nil
	}
	return c >= 0, nil
}

// flagTest is the "in" operator: a bit test for numbers, membership for
// symbolic flags such as ct state.
func flagTest(m Match, left []value) (bool, error) {
	rv, ok := literal(m.Right)
	if !ok || len(left) != 1 {
		return false, fmt.Errorf("cannot test flags of %s against %s", exprString(m.Left), exprString(m.Right))
	}
	if left[0].kind == vNum && rv.kind == vNum {
		return left[0].num&rv.num != 0, nil
	}
	return left[0].equal(rv), nil
}

// single evaluates an expression that must yield one value.
func (r *run) single(tb *Table, e Expr, b *branch) (value, error) {
	vals, absent, err := r.eval(tb, e, b)
	if err != nil {
		return value{}, err
	}
	if absent || len(vals) != 1 {
		return value{}, fmt.Errorf("%s does not yield one value", exprString(e))
	}
	return vals[0], nil
}

// eval computes the packet side of a match or lookup. absent is true when
// the field does not exist for this packet.
func (r *run) eval(tb *Table, e Expr, b *branch) (vals []value, absent bool, err error) {
	if lit, ok := literal(e); ok {
		return []value{lit}, false, nil
	}
	switch e := e.(type) {
	case Concat:
		out := make([]value, 0, len(e))
		for _, part := range e {
			v, absent, err := r.eval(tb, part, b)
			if err != nil || absent {
				return nil, absent, err
			}
			out = append(out, v...)
		}
		return out, false, nil
	case Payload:
		return r.payload(e, b)
	case Meta:
		switch e.Key {
		case "l4proto":
			return []value{numValue(b.l4proto)}, false, nil
		case "mark":
			return []value{numValue(b.mark)}, false, nil
		case "nfproto":
			if b.dst.Is6() {
				return []value{strValue("ipv6")}, false, nil
			}
			return []value{strValue("ipv4")}, false, nil
		case "protocol":
			if b.dst.Is6() {
				return []value{strValue("ip6")}, false, nil
			}
			return []value{strValue("ip")}, false, nil
		}
		return nil, false, fmt.Errorf("meta %s is not known for a traced packet", e.Key)
	case CT:
		switch e.Key {
		case "state":
			return []value{strValue("new")}, false, nil
		case "status":
			if b.dnat {
				return []value{strValue("dnat")}, false, nil
			}
			return []value{strValue("")}, false, nil
		case "direction":
			return []value{strValue("original")}, false, nil
		}
		return nil, false, fmt.Errorf("ct %s is not known for a traced packet", e.Key)
	case Fib:
		if e.Result != "type" {
			return nil, false, fmt.Errorf("fib result %q is not modelled", e.Result)
		}
		var a netip.Addr
		switch {
		case slices.Contains(e.Flags, "saddr"):
			a = b.src
		case slices.Contains(e.Flags, "daddr"):
			a = b.dst
		default:
			return nil, false, fmt.Errorf("fib without saddr or daddr is not modelled")
		}
		if r.isLocal(a) {
			return []value{strValue("local")}, false, nil
		}
		return []value{strValue("unicast")}, false, nil
	case Binop:
		l, err := r.single(tb, e.Left, b)
		if err != nil {
			return nil, false, err
		}
		rv, err := r.single(tb, e.Right, b)
		if err != nil {
			return nil, false, err
		}
		if l.kind != vNum || rv.kind != vNum {
			return nil, false, fmt.Errorf("%s on non-numbers", e.Op)
		}
		var n uint64
		switch e.Op {
		case "&":
			n = l.num & rv.num
		case "|":
			n = l.num | rv.num
		case "^":
			n = l.num ^ rv.num
		case "<<":
			n = l.num << (rv.num & 63)
		case ">>":
			n = l.num >> (rv.num & 63)
		default:
			return nil, false, fmt.Errorf("operator %q is not modelled", e.Op)
		}
		return []value{numValue(n)}, false, nil
	case Numgen:
		return nil, false, errors.New("numgen is modelled only as the key of a verdict map")
	}
	return nil, false, fmt.Errorf("cannot evaluate %s for a packet", exprString(e))
}

var l4Names = map[string]bool{"tcp": true, "udp": true, "sctp": true, "udplite": true, "dccp": true}

func (r *run) payload(p Payload, b *branch) ([]value, bool, error) {
	switch {
	case p.Protocol == "ip" || p.Protocol == "ip6":
		if (p.Protocol == "ip6") != b.dst.Is6() {
			return nil, true, nil
		}
		switch p.Field {
		case "saddr":
			return []value{addrValue(b.src)}, false, nil
		case "daddr":
			return []value{addrValue(b.dst)}, false, nil
		case "protocol", "nexthdr":
			return []value{numValue(b.l4proto)}, false, nil
		}
	case p.Protocol == "th" || l4Names[p.Protocol]:
		if p.Protocol != "th" && p.Protocol != b.proto {
			return nil, true, nil
		}
		if p.Field == "dport" {
			return []value{numValue(uint64(b.dport))}, false, nil
		}
	}
	return nil, false, fmt.Errorf("%s is not known for a traced packet", p)
}

// result folds the finished branches into a dataplane.Result.
func (r *run) result() dataplane.Result {
	var accepted []final
	byVerdict := map[dataplane.Verdict]float64{}
	for _, f := range r.finals {
		byVerdict[f.verdict] += f.b.prob
		if f.verdict == dataplane.Accept {
			accepted = append(accepted, f)
		}
	}
	res := dataplane.Result{Verdict: dataplane.Accept}
	if len(accepted) == 0 {
		res.Verdict = dataplane.Drop
		if byVerdict[dataplane.Reject] > byVerdict[dataplane.Drop] {
			res.Verdict = dataplane.Reject
		}
	}
	res.Rule = r.deciders(res.Verdict)
	dnat := false
	for _, f := range accepted {
		dnat = dnat || f.b.dnat
	}
	if !dnat {
		return res
	}
	for _, f := range accepted {
		res.Destinations = append(res.Destinations, dataplane.Destination{
			IP: f.b.dst, Port: f.b.dport, Probability: f.b.prob,
			Masquerade: f.b.masq, Path: f.b.path,
		})
	}
	// Branches finish in an order that depends on which of them
	// returned early from a chain; sort so results are stable to read
	// and compare.
	sort.SliceStable(res.Destinations, func(i, j int) bool {
		a, b := res.Destinations[i], res.Destinations[j]
		if c := a.IP.Compare(b.IP); c != 0 {
			return c < 0
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return strings.Join(a.Path, " ") < strings.Join(b.Path, " ")
	})
	return res
}

// deciders names the rules that dropped or rejected branches: those of the
// result's verdict, or, when some branches were accepted, all of them.
func (r *run) deciders(v dataplane.Verdict) string {
	var rules []string
	for _, f := range r.finals {
		if f.verdict == dataplane.Accept || (v != dataplane.Accept && f.verdict != v) {
			continue
		}
		if !slices.Contains(rules, f.rule) {
			rules = append(rules, f.rule)
		}
	}
	return strings.Join(rules, "; ")
}
