package nftables

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Expr is an nft expression: something that yields a value (a packet field,
// a literal, a set reference, a concatenation ...). The concrete types below
// mirror the objects of libnftables-json(5) that kube-proxy's rules use;
// anything else is kept as OtherExpr so that foreign rules still parse.
type Expr interface {
	fmt.Stringer
	isExpr()
}

// String is an immediate string: an address ("10.96.0.1"), a symbolic
// constant ("tcp", "new", "local") or anything nft printed as a string.
type String string

// Number is an immediate unsigned integer (ports, marks, numgen keys).
type Number uint64

// Bool is an immediate boolean (e.g. `exthdr ... exists`).
type Bool bool

// SetRef names a set or map of the same table ("@service-ips" in the dump).
type SetRef string

// Payload is a packet header field: "ip daddr", "th dport", "tcp dport".
// Raw payload expressions (base/offset/len) keep Protocol empty.
type Payload struct {
	Protocol string
	Field    string
	Base     string
	Offset   uint64
	Len      uint64
}

// Meta is `meta <key>` ("l4proto", "mark", "iifname", ...).
type Meta struct{ Key string }

// CT is `ct [dir] <key>` ("state", "status", "mark", ...).
type CT struct {
	Key    string
	Family string
	Dir    string
}

// Fib is `fib <flags> <result>`, e.g. `fib saddr type`.
type Fib struct {
	Result string
	Flags  []string
}

// Numgen is `numgen <mode> mod <Mod> [offset <Offset>]`; kube-proxy uses it
// as the key of an anonymous verdict map to pick an endpoint at random.
type Numgen struct {
	Mode   string
	Mod    uint64
	Offset uint64
}

// MapLookup is `<key> map <data>`: the value of the element of a map
// (a SetRef) or anonymous map (an AnonSet) whose key covers Key. kube-proxy
// v1.37 DNATs through one, `dnat ip to numgen random mod N map { 0 : ip .
// port, ... }`, whose values are address . port concatenations.
type MapLookup struct {
	Key  Expr
	Data Expr
}

// Concat is `a . b . c`, the key of kube-proxy's service maps.
type Concat []Expr

// Binop is a bitwise operation: "&", "|", "^", "<<", ">>".
type Binop struct {
	Op          string
	Left, Right Expr
}

// Prefix is an address with a prefix length, "10.244.0.0/16".
type Prefix struct {
	Addr Expr
	Len  int
}

// Range is `lo-hi`.
type Range struct{ Lo, Hi Expr }

// AnonSet is an anonymous set `{ a, b }` or, when its items carry values, an
// anonymous map `{ 0 : goto x, 1 : goto y }`.
type AnonSet []Element

// Elem wraps a set element that carries options (comment, timeout).
type Elem struct {
	Val     Expr
	Comment string
	Timeout uint64
	Expires uint64
}

// VerdictExpr is a verdict used as data, e.g. the value of a vmap element.
// Kind is accept, drop, continue, return, jump or goto; Target names the
// chain of jump and goto.
type VerdictExpr struct {
	Kind   string
	Target string
}

// OtherExpr is an expression this package does not model, kept verbatim.
type OtherExpr struct {
	Kind string
	Raw  json.RawMessage
}

func (String) isExpr()      {}
func (Number) isExpr()      {}
func (Bool) isExpr()        {}
func (SetRef) isExpr()      {}
func (Payload) isExpr()     {}
func (Meta) isExpr()        {}
func (CT) isExpr()          {}
func (Fib) isExpr()         {}
func (Numgen) isExpr()      {}
func (Concat) isExpr()      {}
func (MapLookup) isExpr()   {}
func (Binop) isExpr()       {}
func (Prefix) isExpr()      {}
func (Range) isExpr()       {}
func (AnonSet) isExpr()     {}
func (Elem) isExpr()        {}
func (VerdictExpr) isExpr() {}
func (OtherExpr) isExpr()   {}

func (s String) String() string {
	if s == "" || strings.ContainsAny(string(s), " \t\"{},") {
		return strconv.Quote(string(s))
	}
	return string(s)
}

func (n Number) String() string { return strconv.FormatUint(uint64(n), 10) }
func (b Bool) String() string {
	if b {
		return "exists"
	}
	return "missing"
}
func (s SetRef) String() string { return "@" + string(s) }

func (p Payload) String() string {
	if p.Protocol == "" {
		return fmt.Sprintf("@%s,%d,%d", p.Base, p.Offset, p.Len)
	}
	return p.Protocol + " " + p.Field
}

func (m Meta) String() string { return "meta " + m.Key }

func (c CT) String() string {
	parts := []string{"ct"}
	if c.Dir != "" {
		parts = append(parts, c.Dir)
	}
	if c.Family != "" {
		parts = append(parts, c.Family)
	}
	return strings.Join(append(parts, c.Key), " ")
}

func (f Fib) String() string {
	return "fib " + strings.Join(f.Flags, " . ") + " " + f.Result
}

func (n Numgen) String() string {
	s := fmt.Sprintf("numgen %s mod %d", n.Mode, n.Mod)
	if n.Offset != 0 {
		s += fmt.Sprintf(" offset %d", n.Offset)
	}
	return s
}

func (m MapLookup) String() string { return exprString(m.Key) + " map " + exprString(m.Data) }

func (c Concat) String() string {
	parts := make([]string, len(c))
	for i, e := range c {
		parts[i] = exprString(e)
	}
	return strings.Join(parts, " . ")
}

// markLike reports whether an expression is a packet or conntrack mark,
// which nft prints in zero-padded hexadecimal.
func markLike(e Expr) bool {
	switch e := e.(type) {
	case Meta:
		return e.Key == "mark"
	case CT:
		return e.Key == "mark"
	case Binop:
		return markLike(e.Left)
	}
	return false
}

func hexIfMark(ctx, e Expr) string {
	if n, ok := e.(Number); ok && markLike(ctx) {
		return fmt.Sprintf("0x%08x", uint64(n))
	}
	return exprString(e)
}

func (b Binop) String() string {
	return exprString(b.Left) + " " + b.Op + " " + hexIfMark(b.Left, b.Right)
}

func (p Prefix) String() string { return fmt.Sprintf("%s/%d", exprString(p.Addr), p.Len) }
func (r Range) String() string  { return exprString(r.Lo) + "-" + exprString(r.Hi) }

func (s AnonSet) String() string {
	parts := make([]string, len(s))
	for i, el := range s {
		parts[i] = el.String()
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func (e Elem) String() string {
	s := exprString(e.Val)
	if e.Timeout != 0 {
		s += fmt.Sprintf(" timeout %ds", e.Timeout)
	}
	if e.Comment != "" {
		s += " comment " + strconv.Quote(e.Comment)
	}
	return s
}

func (v VerdictExpr) String() string {
	if v.Target != "" {
		return v.Kind + " " + v.Target
	}
	return v.Kind
}

func (o OtherExpr) String() string { return fmt.Sprintf("<%s %s>", o.Kind, string(o.Raw)) }

// exprString renders nil safely: a missing expression is a parser bug, but
// rendering must never panic while reporting it.
func exprString(e Expr) string {
	if e == nil {
		return "<nil>"
	}
	return e.String()
}

// Stmt is one statement of a rule: a match, a verdict, a NAT, ...
type Stmt interface {
	fmt.Stringer
	isStmt()
}

// Match is `left op right`; op is "==", "!=", "<", ">", "<=", ">=" or "in"
// (flag test, as in `ct state new`).
type Match struct {
	Op          string
	Left, Right Expr
}

// VerdictStmt is accept, drop, continue, return, jump <chain> or
// goto <chain>.
type VerdictStmt VerdictExpr

// VMap is `<key> vmap <data>`; Data is a SetRef to a verdict map or an
// AnonSet with verdict values.
type VMap struct {
	Key  Expr
	Data Expr
}

// Mangle is `<key> set <value>`, e.g. `meta mark set meta mark | 0x4000`.
type Mangle struct {
	Key, Value Expr
}

// NAT is dnat, snat, masquerade or redirect. Addr and Port are nil when
// absent (masquerade usually has neither).
type NAT struct {
	Kind   string
	Addr   Expr
	Port   Expr
	Family string
	Flags  []string
}

// Reject is `reject [with <type> <expr>]`.
type Reject struct {
	Type string
	Expr string
}

// Counter is `counter packets N bytes M`, or a named counter reference.
type Counter struct {
	Packets, Bytes uint64
	Name           string
}

// SetStmt is `add|update|delete @set { elem }`, used by session affinity.
type SetStmt struct {
	Op   string
	Elem Expr
	Set  string
}

// XT is an iptables-nft compat statement (`xt target DNAT`); the JSON does
// not carry its arguments, so it can only be named.
type XT struct {
	Type, Name string
}

// OtherStmt is a statement this package does not model, kept verbatim.
type OtherStmt struct {
	Kind string
	Raw  json.RawMessage
}

func (Match) isStmt()       {}
func (VerdictStmt) isStmt() {}
func (VMap) isStmt()        {}
func (Mangle) isStmt()      {}
func (NAT) isStmt()         {}
func (Reject) isStmt()      {}
func (Counter) isStmt()     {}
func (SetStmt) isStmt()     {}
func (XT) isStmt()          {}
func (OtherStmt) isStmt()   {}

func (m Match) String() string {
	right := hexIfMark(m.Left, m.Right)
	switch m.Op {
	case "==", "in":
		if _, isBinop := m.Left.(Binop); isBinop && m.Op == "==" {
			// nft spells out "==" after a binop, or it would read as
			// part of the operand.
			return exprString(m.Left) + " == " + right
		}
		return exprString(m.Left) + " " + right
	default:
		return exprString(m.Left) + " " + m.Op + " " + right
	}
}

func (v VerdictStmt) String() string { return VerdictExpr(v).String() }

func (v VMap) String() string { return exprString(v.Key) + " vmap " + exprString(v.Data) }

func (m Mangle) String() string {
	key := exprString(m.Key)
	if meta, ok := m.Key.(Meta); ok {
		key = "meta " + meta.Key
	}
	return key + " set " + exprString(m.Value)
}

func (n NAT) String() string {
	s := n.Kind
	if _, isMap := n.Addr.(MapLookup); isMap && n.Family != "" {
		// nft names the family of a mapped address: `dnat ip to ...`.
		s += " " + n.Family
	}
	if n.Addr != nil || n.Port != nil {
		s += " to "
		if n.Addr != nil {
			a := exprString(n.Addr)
			if str, ok := n.Addr.(String); ok && n.Port != nil {
				if ip, err := netip.ParseAddr(string(str)); err == nil && ip.Is6() {
					a = "[" + a + "]"
				}
			}
			s += a
		}
		if n.Port != nil {
			s += ":" + exprString(n.Port)
		}
	}
	if len(n.Flags) > 0 {
		s += " " + strings.Join(n.Flags, ",")
	}
	return s
}

func (r Reject) String() string {
	switch {
	case r.Type == "" && r.Expr == "":
		return "reject"
	case r.Expr == "port-unreachable" && (r.Type == "icmp" || r.Type == "icmpv6" || r.Type == "icmpx"):
		return "reject"
	case r.Type == "tcp reset":
		return "reject with tcp reset"
	default:
		return strings.TrimSpace("reject with " + r.Type + " " + r.Expr)
	}
}

func (c Counter) String() string {
	if c.Name != "" {
		return "counter name " + strconv.Quote(c.Name)
	}
	return fmt.Sprintf("counter packets %d bytes %d", c.Packets, c.Bytes)
}

func (s SetStmt) String() string {
	return fmt.Sprintf("%s @%s { %s }", s.Op, s.Set, exprString(s.Elem))
}

func (x XT) String() string { return "xt " + x.Type + " " + x.Name }

func (o OtherStmt) String() string { return fmt.Sprintf("<%s %s>", o.Kind, string(o.Raw)) }
