package nftables

// Chain and statement evaluation for the Tracer: verdicts, NAT, verdict
// maps and numgen forks.

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

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
	var outs []out
	for _, rule := range c.Rules {
		var next []*branch
		for _, b := range active {
			var err error
			outs, err = r.rule(tb, c, rule, b, outs[:0])
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

// rule evaluates one rule for one branch and appends what became of it
// (or of its forks) to outs; the caller's buffer is reused across rules,
// which keeps a trace of a large ruleset from allocating per statement.
func (r *run) rule(tb *Table, c *Chain, rule *Rule, b *branch, outs []out) ([]out, error) {
	r.steps++
	if r.steps > maxSteps {
		return nil, fmt.Errorf("more than %d rule evaluations; the ruleset loops", maxSteps)
	}
	return r.ruleFrom(tb, c, rule, 0, b, outs)
}

// ruleFrom evaluates a rule's statements from the i-th on, left to right;
// a numgen vmap forks the branch, and each fork finishes the rule alone.
func (r *run) ruleFrom(tb *Table, c *Chain, rule *Rule, i int, b *branch, outs []out) ([]out, error) {
	for ; i < len(rule.Stmts); i++ {
		s := rule.Stmts[i]
		one, forks, err := r.stmt(tb, c, rule, s, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		if forks == nil {
			if one.kind == outMatch {
				continue
			}
			return append(outs, one), nil
		}
		for _, o := range forks {
			if o.kind != outMatch {
				outs = append(outs, o)
				continue
			}
			if outs, err = r.ruleFrom(tb, c, rule, i+1, o.b, outs); err != nil {
				return nil, err
			}
		}
		return outs, nil
	}
	return append(outs, stop(b)), nil
}

// goOn marks a branch that matched a statement and carries on with the next
// statement of the same rule; stop ends the rule and moves to the next one.
func goOn(b *branch) out { return out{b: b, kind: outMatch} }

func stop(b *branch) out { return out{b: b, kind: outNext} }

// stmt evaluates one statement. It returns one outcome, or forks (non-nil)
// when the statement split the branch.
func (r *run) stmt(tb *Table, c *Chain, rule *Rule, s Stmt, b *branch) (out, []out, error) {
	switch s := s.(type) {
	case Match:
		ok, err := r.match(tb, s, b)
		if err != nil {
			return out{}, nil, err
		}
		if ok {
			return goOn(b), nil, nil
		}
		return stop(b), nil, nil
	case VerdictStmt:
		return r.verdict(VerdictExpr(s), b, c, rule), nil, nil
	case VMap:
		return r.vmap(tb, c, rule, s, b)
	case Mangle:
		meta, ok := s.Key.(Meta)
		if !ok || meta.Key != "mark" {
			return out{}, nil, fmt.Errorf("setting %s is not modelled", exprString(s.Key))
		}
		v, err := r.single(tb, s.Value, b)
		if err != nil {
			return out{}, nil, err
		}
		if v.kind != vNum || v.num > 0xffffffff {
			return out{}, nil, fmt.Errorf("mark value %s is not a 32-bit number", v)
		}
		b.mark = v.num
		return goOn(b), nil, nil
	case NAT:
		return r.nat(tb, c, rule, s, b)
	case Reject:
		return out{b: b, kind: outReject, dec: decision{c: c, r: rule, via: b.via}}, nil, nil
	case Counter:
		return goOn(b), nil, nil
	case SetStmt:
		// Affinity bookkeeping (`update @affinity-... { ip saddr }`)
		// changes later connections, not this packet.
		return goOn(b), nil, nil
	case XT:
		return out{}, nil, fmt.Errorf("iptables-nft compat statement %s cannot be evaluated from JSON", s)
	case OtherStmt:
		if s.Kind == "log" || s.Kind == "notrack" {
			return goOn(b), nil, nil
		}
		return out{}, nil, fmt.Errorf("statement %q is not modelled", s.Kind)
	}
	return out{}, nil, fmt.Errorf("statement %T is not modelled", s)
}

func (r *run) verdict(v VerdictExpr, b *branch, c *Chain, rule *Rule) out {
	switch v.Kind {
	case "accept":
		return out{b: b, kind: outAccept}
	case "drop":
		return out{b: b, kind: outDrop, dec: decision{c: c, r: rule, via: b.via}}
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

func (r *run) nat(tb *Table, c *Chain, rule *Rule, n NAT, b *branch) (out, []out, error) {
	switch n.Kind {
	case "dnat":
		if n.Addr == nil {
			return out{}, nil, errors.New("dnat without an address")
		}
		if ml, ok := n.Addr.(MapLookup); ok {
			return r.dnatMap(tb, c, rule, n, ml, b)
		}
		if err := dnatTo(b, n.Addr, n.Port); err != nil {
			return out{}, nil, err
		}
	case "snat", "masquerade":
		// Either way the source is rewritten to a node address, which
		// is what Destination.Masquerade reports.
		b.masq = true
	default:
		return out{}, nil, fmt.Errorf("%s is not modelled", n.Kind)
	}
	return out{b: b, kind: outNAT}, nil, nil
}

// dnatTo rewrites b's destination to addr (a constant address, or the
// `address . port` concatenation a DNAT map yields) and port, if given.
func dnatTo(b *branch, addr, port Expr) error {
	if cc, ok := addr.(Concat); ok {
		if len(cc) != 2 {
			return fmt.Errorf("dnat to %s: want address . port", exprString(addr))
		}
		if port != nil {
			return fmt.Errorf("dnat to %s with port %s: two ports", exprString(addr), exprString(port))
		}
		addr, port = cc[0], cc[1]
	}
	a, ok := literal(addr)
	if !ok || a.kind != vAddr {
		return fmt.Errorf("dnat address %s is not a constant address", exprString(addr))
	}
	if a.addr.Is4() != b.dst.Is4() {
		return fmt.Errorf("dnat to %s changes the address family", a.addr)
	}
	if port != nil {
		p, ok := literal(port)
		if !ok || p.kind != vNum || p.num > 0xffff {
			return fmt.Errorf("dnat port %s is not a constant port", exprString(port))
		}
		b.dport = uint16(p.num)
	}
	b.dst = a.addr
	b.dnat = true
	return nil
}

// dnatMap is `dnat to <key> map <data>`: the element covering the key
// gives the new destination. A numgen key forks the branch over the
// elements, as a numgen vmap does; a key no element covers ends the rule
// without DNAT, as nft's failed lookup does.
func (r *run) dnatMap(tb *Table, c *Chain, rule *Rule, n NAT, ml MapLookup, b *branch) (out, []out, error) {
	elems, name, err := r.mapElements(tb, ml.Data)
	if err != nil {
		return out{}, nil, err
	}
	if ng, ok := ml.Key.(Numgen); ok {
		shares, covered, err := r.numgenShares(ng, elems)
		if err != nil {
			return out{}, nil, err
		}
		var outs []out
		for _, sh := range shares {
			child := b.fork(b.prob * float64(sh.n) / float64(ng.Mod))
			if sh.el.Value == nil {
				return out{}, nil, fmt.Errorf("numgen element %s has no value", sh.el.Key)
			}
			if err := dnatTo(child, sh.el.Value, n.Port); err != nil {
				return out{}, nil, fmt.Errorf("element %s: %w", sh.el.Key, err)
			}
			outs = append(outs, out{b: child, kind: outNAT})
		}
		if covered < ng.Mod {
			outs = append(outs, stop(b.fork(b.prob*float64(ng.Mod-covered)/float64(ng.Mod))))
		}
		return out{}, outs, nil
	}
	key, absent, err := r.eval(tb, ml.Key, b)
	if err != nil {
		return out{}, nil, err
	}
	if absent {
		return stop(b), nil, nil
	}
	el, found, err := r.lookup(tb, ml.Data, elems, key)
	if err != nil {
		return out{}, nil, err
	}
	if !found {
		return stop(b), nil, nil
	}
	if el.Value == nil {
		return out{}, nil, fmt.Errorf("element %s of %s has no value", el.Key, name)
	}
	if err := dnatTo(b, el.Value, n.Port); err != nil {
		return out{}, nil, fmt.Errorf("element %s of %s: %w", el.Key, name, err)
	}
	return out{b: b, kind: outNAT}, nil, nil
}

// vmap looks the key up in a verdict map and follows the element's verdict;
// with a numgen key every element is a branch of its own.
func (r *run) vmap(tb *Table, c *Chain, rule *Rule, v VMap, b *branch) (out, []out, error) {
	elems, name, err := r.mapElements(tb, v.Data)
	if err != nil {
		return out{}, nil, err
	}
	if ng, ok := v.Key.(Numgen); ok {
		forks, err := r.numgen(c, rule, ng, elems, b)
		return out{}, forks, err
	}
	key, absent, err := r.eval(tb, v.Key, b)
	if err != nil {
		return out{}, nil, err
	}
	if absent {
		return stop(b), nil, nil
	}
	el, found, err := r.lookup(tb, v.Data, elems, key)
	if err != nil {
		return out{}, nil, err
	}
	if !found {
		return stop(b), nil, nil
	}
	ve, ok := el.Value.(VerdictExpr)
	if !ok {
		return out{}, nil, fmt.Errorf("element %s of %s has no verdict", el.Key, name)
	}
	via := viaRef{mapName: name, el: el}
	saved := b.via
	b.via = via
	o := r.verdict(ve, b, c, rule)
	b.via = saved
	o.via = via
	return o, nil, nil
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

// numgenShare is an element of a numgen-keyed map with the count of
// numbers in [offset, offset+mod) it covers.
type numgenShare struct {
	el Element
	n  uint64
}

// numgenShares reads the elements of a map keyed by a random number in
// [offset, offset+mod): each element's share is the count of numbers it
// covers; covered is their sum, the rest falls through. It counts the
// branches the shares will become against maxBranches.
func (r *run) numgenShares(ng Numgen, elems []Element) ([]numgenShare, uint64, error) {
	if ng.Mode != "random" && ng.Mode != "inc" {
		return nil, 0, fmt.Errorf("numgen mode %q is not modelled", ng.Mode)
	}
	if ng.Mod == 0 {
		return nil, 0, errors.New("numgen mod 0")
	}
	lo, hi := ng.Offset, ng.Offset+ng.Mod-1
	if hi < lo {
		return nil, 0, fmt.Errorf("numgen offset %d mod %d overflows", ng.Offset, ng.Mod)
	}
	type span struct {
		from, to uint64
		el       Element
	}
	var spans []span
	for _, el := range elems {
		from, to, err := numSpan(el.Key)
		if err != nil {
			return nil, 0, err
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
			return nil, 0, fmt.Errorf("numgen map elements %s and %s overlap", sorted[i-1].el.Key, sorted[i].el.Key)
		}
	}
	r.forks += len(spans)
	if r.forks > maxBranches {
		return nil, 0, fmt.Errorf("more than %d branches", maxBranches)
	}
	shares := make([]numgenShare, len(spans))
	covered := uint64(0)
	for i, sp := range spans {
		shares[i] = numgenShare{el: sp.el, n: sp.to - sp.from + 1}
		covered += shares[i].n
	}
	return shares, covered, nil
}

// numgen forks b over the elements of an anonymous verdict map keyed by a
// random number: each element's share of mod is its probability; numbers
// no element covers fall through.
func (r *run) numgen(c *Chain, rule *Rule, ng Numgen, elems []Element, b *branch) ([]out, error) {
	shares, covered, err := r.numgenShares(ng, elems)
	if err != nil {
		return nil, err
	}
	var outs []out
	for _, sh := range shares {
		child := b.fork(b.prob * float64(sh.n) / float64(ng.Mod))
		ve, ok := sh.el.Value.(VerdictExpr)
		if !ok {
			return nil, fmt.Errorf("numgen element %s has no verdict", sh.el.Key)
		}
		outs = append(outs, r.verdict(ve, child, c, rule))
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
