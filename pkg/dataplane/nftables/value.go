package nftables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// value is one runtime value: an address, an unsigned number or a symbol.
// Literals from the dump and fields of the packet are both turned into
// values, so that "tcp" in a map element equals a packet's l4proto 6 and
// "10.96.0.1" equals the packet's netip.Addr.
type value struct {
	kind valueKind
	addr netip.Addr
	num  uint64
	str  string
}

type valueKind uint8

const (
	vNum valueKind = iota + 1
	vAddr
	vStr
)

func numValue(n uint64) value      { return value{kind: vNum, num: n} }
func addrValue(a netip.Addr) value { return value{kind: vAddr, addr: a} }
func strValue(s string) value      { return value{kind: vStr, str: s} }

func (v value) String() string {
	switch v.kind {
	case vNum:
		return strconv.FormatUint(v.num, 10)
	case vAddr:
		return v.addr.String()
	default:
		return v.str
	}
}

func (v value) equal(w value) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case vNum:
		return v.num == w.num
	case vAddr:
		return v.addr == w.addr
	default:
		return v.str == w.str
	}
}

// compare orders two values of the same kind; ok is false across kinds.
func (v value) compare(w value) (int, bool) {
	if v.kind != w.kind {
		return 0, false
	}
	switch v.kind {
	case vNum:
		switch {
		case v.num < w.num:
			return -1, true
		case v.num > w.num:
			return 1, true
		}
		return 0, true
	case vAddr:
		if v.addr.Is4() != w.addr.Is4() {
			return 0, false
		}
		return v.addr.Compare(w.addr), true
	default:
		return strings.Compare(v.str, w.str), true
	}
}

// ipProtocols maps the protocol names nft prints for inet_proto to their
// numbers, so names and numbers compare equal.
var ipProtocols = map[string]uint64{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
	"icmpv6": 58, "ipv6-icmp": 58, "dccp": 33, "sctp": 132, "udplite": 136,
}

// literal turns a constant expression into a value. ok is false for
// anything that is not a constant (packet fields, sets, prefixes ...).
func literal(e Expr) (value, bool) {
	switch e := e.(type) {
	case Number:
		return numValue(uint64(e)), true
	case Bool:
		if e {
			return numValue(1), true
		}
		return numValue(0), true
	case String:
		s := string(e)
		if a, err := netip.ParseAddr(s); err == nil {
			return addrValue(a.Unmap()), true
		}
		if n, ok := ipProtocols[s]; ok {
			return numValue(n), true
		}
		if strings.HasPrefix(s, "0x") {
			if n, err := strconv.ParseUint(s[2:], 16, 64); err == nil {
				return numValue(n), true
			}
		}
		return strValue(s), true
	}
	return value{}, false
}

// exactKey renders a constant key (literal or concatenation of literals) as
// a lookup string; ok is false when the key holds prefixes or ranges and has
// to be matched element by element.
func exactKey(e Expr) (string, bool) {
	var b strings.Builder
	parts := []Expr{e}
	if c, isConcat := e.(Concat); isConcat {
		parts = c
	}
	for _, p := range parts {
		v, ok := literal(p)
		if !ok {
			return "", false
		}
		writeKey(&b, v)
	}
	return b.String(), true
}

func tupleKey(vals []value) string {
	var b strings.Builder
	for _, v := range vals {
		writeKey(&b, v)
	}
	return b.String()
}

func writeKey(b *strings.Builder, v value) {
	b.WriteByte(byte('0' + v.kind))
	b.WriteString(v.String())
	b.WriteByte(0)
}

// matchKey reports whether an element key (or the right-hand side of a
// match) covers the tuple: literals must be equal, prefixes contain, ranges
// include.
func matchKey(key Expr, vals []value) (bool, error) {
	parts := []Expr{key}
	if c, isConcat := key.(Concat); isConcat {
		parts = c
	}
	if len(parts) != len(vals) {
		return false, fmt.Errorf("key %s has %d parts, the packet side %d", exprString(key), len(parts), len(vals))
	}
	for i, p := range parts {
		ok, err := matchOne(p, vals[i])
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func matchOne(e Expr, v value) (bool, error) {
	if lit, ok := literal(e); ok {
		return lit.equal(v), nil
	}
	switch e := e.(type) {
	case Prefix:
		base, ok := literal(e.Addr)
		if !ok || base.kind != vAddr {
			return false, fmt.Errorf("prefix %s is not an address prefix", e)
		}
		p, err := base.addr.Prefix(e.Len)
		if err != nil {
			return false, fmt.Errorf("prefix %s: %w", e, err)
		}
		return v.kind == vAddr && p.Contains(v.addr), nil
	case Range:
		lo, ok1 := literal(e.Lo)
		hi, ok2 := literal(e.Hi)
		if !ok1 || !ok2 {
			return false, fmt.Errorf("range %s has non-constant bounds", e)
		}
		c1, ok1 := lo.compare(v)
		c2, ok2 := v.compare(hi)
		return ok1 && ok2 && c1 <= 0 && c2 <= 0, nil
	case Elem:
		return matchOne(e.Val, v)
	}
	return false, fmt.Errorf("cannot match a packet against %s", exprString(e))
}
