package iptables

import (
	"net/netip"
)

// Ruleset is one iptables-save dump: its tables in the order they appear.
type Ruleset struct {
	Tables []*Table
}

// Table returns the named table ("nat", "filter", ...) or nil.
func (rs *Ruleset) Table(name string) *Table {
	for _, t := range rs.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Chain returns a chain of a table, or nil when either is absent; it saves
// callers a nil check on the table.
func (rs *Ruleset) Chain(table, chain string) *Chain {
	t := rs.Table(table)
	if t == nil {
		return nil
	}
	return t.Chain(chain)
}

// Table is one "*name ... COMMIT" block.
type Table struct {
	Name   string
	Line   int      // line of the "*name" header
	Chains []*Chain // in declaration order
	byName map[string]*Chain
}

// Chain returns the named chain of the table, or nil.
func (t *Table) Chain(name string) *Chain {
	return t.byName[name]
}

// Chain is a builtin chain (with a policy) or a user chain (Policy "").
type Chain struct {
	Name string
	// Policy is ACCEPT or DROP for builtin chains and empty for user chains,
	// which iptables-save declares with "-".
	Policy   string
	Counters Counters
	Line     int    // line of the ":NAME POLICY [p:b]" declaration
	Decl     string // that line, as it reads in the dump
	Rules    []*Rule
}

// Builtin reports whether the chain is one of the table's hooks.
func (c *Chain) Builtin() bool { return c.Policy != "" }

// Counters are packet and byte counts, from a chain declaration or a rule's
// "[p:b]" prefix (iptables-save -c).
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// Rule is one "-A CHAIN ..." line.
type Rule struct {
	Chain string
	Line  int
	// Text is the line as it reads in the dump, so a trace or a finding can
	// quote the rule exactly.
	Text string
	// Counters is nil unless the line carried a "[p:b]" prefix or "-c p b".
	Counters *Counters

	Source      AddrMatch
	Destination AddrMatch
	InIface     IfaceMatch
	OutIface    IfaceMatch
	Protocol    ProtoMatch
	// Fragment is set by "-f" (negated by "! -f").
	Fragment *bool

	// Matches are the "-m module --opt ..." groups in order, including any
	// options that belong to a protocol's implicit match.
	Matches []Match
	Target  Target
}

// Comment returns the rule's first -m comment text, or "".
func (r *Rule) Comment() string {
	for i := range r.Matches {
		if c, ok := r.Matches[i].Spec.(*CommentMatch); ok {
			return c.Text
		}
	}
	return ""
}

// Match returns the rule's first match of the given module, or nil.
func (r *Rule) Match(module string) *Match {
	for i := range r.Matches {
		if r.Matches[i].Module == module {
			return &r.Matches[i]
		}
	}
	return nil
}

// DPorts returns the destination ports the rule matches on (from tcp, udp,
// sctp or multiport), or nil when it does not match on one.
func (r *Rule) DPorts() *PortSet {
	for i := range r.Matches {
		if p, ok := r.Matches[i].Spec.(*PortsMatch); ok && p.DPorts != nil {
			return p.DPorts
		}
	}
	return nil
}

// Statistic returns the rule's statistic match, or nil.
func (r *Rule) Statistic() *StatisticMatch {
	for i := range r.Matches {
		if s, ok := r.Matches[i].Spec.(*StatisticMatch); ok {
			return s
		}
	}
	return nil
}

// AddrMatch is -s or -d. A zero AddrMatch (Set false) matches everything.
type AddrMatch struct {
	Set    bool
	Prefix netip.Prefix
	Negate bool
}

// IfaceMatch is -i or -o; Name may end in "+" (prefix wildcard).
type IfaceMatch struct {
	Name   string
	Negate bool
}

// ProtoMatch is -p; Name is lower case ("tcp", "udp", "sctp", "icmp", or a
// number iptables printed as such). Empty Name matches every protocol.
type ProtoMatch struct {
	Name   string
	Negate bool
}

// Match is one -m group. Options holds every option as written, so nothing
// is lost; Spec is a typed view for the modules the tracer understands and
// nil for the rest (set, physdev, ...), which a trace reaching them refuses
// to guess about.
type Match struct {
	Module  string
	Options []Option
	Spec    MatchSpec
}

// Option is one "[!] --name [args...]" of a match or target.
type Option struct {
	Name   string // with its leading dashes, e.g. "--dport"
	Negate bool
	Args   []string
}

// Option returns the match's first option of that name.
func (m *Match) Option(name string) (Option, bool) {
	for _, o := range m.Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// TargetKind classifies a rule's -j/-g.
type TargetKind int

const (
	// TargetNone is a rule without -j/-g: it only counts packets.
	TargetNone TargetKind = iota
	// TargetJump is -j to a user chain of the same table.
	TargetJump
	// TargetGoto is -g to a user chain: a RETURN from it returns from the
	// calling chain too.
	TargetGoto
	// TargetBuiltin is a verdict (ACCEPT, DROP, RETURN) or an extension
	// target (DNAT, MARK, REJECT, ...); Name says which.
	TargetBuiltin
)

// Target is what a matching rule does.
type Target struct {
	Kind    TargetKind
	Name    string // chain or target name; empty for TargetNone
	Options []Option
	Spec    TargetSpec // typed view for known extensions, nil otherwise
}
