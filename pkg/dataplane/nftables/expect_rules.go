package nftables

// Helpers with which Check reads rules, chains and map elements.

import (
	"net/netip"
	"slices"
	"strings"
)

// mapKey is an element key to look for, with its text for findings.
type mapKey struct {
	vals []value
	text string
}

func keyOf(vals []value) mapKey {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = v.String()
		// The protocol is the number after an address or first of two;
		// print it by name as nft does.
		if v.kind == vNum && ((len(vals) == 3 && i == 1) || (len(vals) == 2 && i == 0)) {
			for name, n := range ipProtocols {
				if n == v.num && name != "ipv6-icmp" {
					parts[i] = name
				}
			}
		}
	}
	return mapKey{vals: vals, text: strings.Join(parts, " . ")}
}

// find returns the element of set covering the key.
func (ck *checker) find(set *Set, vals ...value) (Element, bool) {
	idx, built := ck.index[set]
	if !built {
		idx = buildIndex(set)
		ck.index[set] = idx
	}
	if idx != nil {
		i, ok := idx[tupleKey(vals)]
		if !ok {
			return Element{}, false
		}
		return set.Elements[i], true
	}
	for _, el := range set.Elements {
		if ok, err := matchKey(el.Key, vals); err == nil && ok {
			return el, true
		}
	}
	return Element{}, false
}

// expect records that some Service accounts for this key of set.
func (ck *checker) expect(set *Set, vals ...value) {
	if ck.expected[set] == nil {
		ck.expected[set] = map[string]bool{}
	}
	ck.expected[set][tupleKey(vals)] = true
}

// element checks that map has an element for key whose value reads want.
func (ck *checker) element(sp *servicePort, id CheckID, mapName string, vals []value, want string) {
	set := ck.tb.Set(mapName)
	if set == nil {
		return // reported by table()
	}
	k := keyOf(vals)
	ck.expect(set, vals...)
	el, ok := ck.find(set, vals...)
	if !ok {
		ck.report(id, sp, "%s has no element for %s (want : %s)", mapName, k.text, want)
		return
	}
	if got := exprString(el.Value); got != want {
		ck.report(id, sp, "%s element %s : %s, want : %s", mapName, k.text, got, want)
	}
}

// absent checks that map has no element for key.
func (ck *checker) absent(sp *servicePort, id CheckID, mapName string, vals []value, why string) {
	set := ck.tb.Set(mapName)
	if set == nil {
		return
	}
	ck.expect(set, vals...)
	if el, ok := ck.find(set, vals...); ok {
		ck.report(id, sp, "%s has element %s although %s", mapName, el, why)
	}
}

// unexpected reports elements of the Service maps that no Service port on
// this node accounts for: leftovers of deleted Services or endpoints.
func (ck *checker) unexpected() {
	names := []string{"cluster-ips", "service-ips", "service-nodeports", "no-endpoint-services", "no-endpoint-nodeports", "firewall-ips"}
	if ck.layout == LayoutV137 {
		names = append(names, hairpinSet)
	}
	for _, name := range names {
		set := ck.tb.Set(name)
		if set == nil {
			continue
		}
		for _, el := range set.Elements {
			k, exact := exactKey(el.Key)
			if exact && ck.expected[set][k] {
				continue
			}
			ck.report(CheckUnexpected, nil, "%s element %s belongs to no Service port", name, el)
		}
	}
}

// lastVerdict returns a rule's closing verdict statement.
func lastVerdict(r *Rule) (VerdictStmt, bool) {
	if len(r.Stmts) == 0 {
		return VerdictStmt{}, false
	}
	v, ok := r.Stmts[len(r.Stmts)-1].(VerdictStmt)
	return v, ok
}

func matchesOf(r *Rule) []Match {
	var out []Match
	for _, s := range r.Stmts {
		if m, ok := s.(Match); ok {
			out = append(out, m)
		}
	}
	return out
}

// setsMark reports whether r is `meta mark set meta mark <op> mark`.
func setsMark(r *Rule, op string, mark uint64) bool {
	return slices.ContainsFunc(r.Stmts, func(s Stmt) bool {
		m, ok := s.(Mangle)
		if !ok || m.Key != (Meta{Key: "mark"}) {
			return false
		}
		b, ok := m.Value.(Binop)
		return ok && b.Op == op && b.Left == (Meta{Key: "mark"}) && b.Right == Number(mark)
	})
}

// returnsUnlessMarked reports whether r is `meta mark & mark == 0 return`.
func returnsUnlessMarked(r *Rule, mark uint64) bool {
	v, ok := lastVerdict(r)
	if !ok || v.Kind != "return" {
		return false
	}
	ms := matchesOf(r)
	if len(ms) != 1 || ms[0].Op != "==" || ms[0].Right != Number(0) {
		return false
	}
	b, ok := ms[0].Left.(Binop)
	return ok && b.Op == "&" && b.Left == (Meta{Key: "mark"}) && b.Right == Number(mark)
}

func isFibSaddrLocal(ms []Match) bool {
	if len(ms) != 1 {
		return false
	}
	f, ok := ms[0].Left.(Fib)
	return ok && f.Result == "type" && slices.Equal(f.Flags, []string{"saddr"}) && ms[0].Right == String("local")
}

// prefixesOf reads the right side of a source match: one address or prefix,
// or an anonymous set of them. Addresses become full-length prefixes.
func prefixesOf(e Expr) []netip.Prefix {
	var items []Expr
	if s, ok := e.(AnonSet); ok {
		for _, el := range s {
			items = append(items, el.Key)
		}
	} else {
		items = []Expr{e}
	}
	out := []netip.Prefix{}
	for _, it := range items {
		switch it := it.(type) {
		case Prefix:
			if a, ok := literal(it.Addr); ok && a.kind == vAddr {
				if p, err := a.addr.Prefix(it.Len); err == nil {
					out = append(out, p)
				}
			}
		default:
			if a, ok := literal(it); ok && a.kind == vAddr {
				out = append(out, netip.PrefixFrom(a.addr, a.addr.BitLen()))
			}
		}
	}
	return out
}

func samePrefixes(a, b []netip.Prefix) bool {
	x, y := prefixList(a), prefixList(b)
	return x == y
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Masked().String()
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

func endpointList(eps []endpoint) string {
	if len(eps) == 0 {
		return "no endpoints"
	}
	s := make([]string, len(eps))
	for i, e := range eps {
		s[i] = e.String()
	}
	return strings.Join(s, ",")
}

// lbRule describes a chain's `numgen random mod N vmap { ... }`.
type lbRule struct {
	mod, covered uint64
	targets      []string // chain names, in element order
}

func loadBalancer(c *Chain) (lbRule, bool) {
	for _, r := range c.Rules {
		for _, s := range r.Stmts {
			vm, ok := s.(VMap)
			if !ok {
				continue
			}
			ng, ok := vm.Key.(Numgen)
			data, isAnon := vm.Data.(AnonSet)
			if !ok || !isAnon {
				continue
			}
			lb := lbRule{mod: ng.Mod}
			for _, el := range data {
				if lo, hi, err := numSpan(el.Key); err == nil && hi >= ng.Offset && lo < ng.Offset+ng.Mod {
					lb.covered += min(hi, ng.Offset+ng.Mod-1) - max(lo, ng.Offset) + 1
				}
				if v, ok := el.Value.(VerdictExpr); ok && (v.Kind == "goto" || v.Kind == "jump") {
					lb.targets = append(lb.targets, v.Target)
				}
			}
			return lb, true
		}
	}
	return lbRule{}, false
}

// dnatOf returns "ip:port" of a chain's DNAT statement.
func dnatOf(c *Chain) (string, bool) {
	for _, r := range c.Rules {
		for _, s := range r.Stmts {
			n, ok := s.(NAT)
			if !ok || n.Kind != "dnat" || n.Addr == nil || n.Port == nil {
				continue
			}
			a, ok1 := literal(n.Addr)
			p, ok2 := literal(n.Port)
			if !ok1 || !ok2 || a.kind != vAddr || p.kind != vNum || p.num > 0xffff {
				return n.String(), false
			}
			return netip.AddrPortFrom(a.addr, uint16(p.num)).String(), true
		}
	}
	return "", false
}
