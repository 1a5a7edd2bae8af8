package nftables

// Evaluation of match expressions and packet fields for the Tracer.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

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
