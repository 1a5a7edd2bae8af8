package nftables

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// KubeProxyTable is the table kube-proxy's nftables mode owns, in both the
// ip and ip6 families.
const KubeProxyTable = "kube-proxy"

// Ruleset is a whole `nft -j list ruleset` dump.
type Ruleset struct {
	// Version is the nft version from the dump's metainfo, when present.
	Version string
	Tables  []*Table
	// Others counts top-level objects this package does not model
	// (flowtables, counters, quotas, ct helpers ...), by kind.
	Others map[string]int
}

// Table returns the table of that family and name, or nil.
func (rs *Ruleset) Table(family, name string) *Table {
	for _, t := range rs.Tables {
		if t.Family == family && t.Name == name {
			return t
		}
	}
	return nil
}

// Table is one nft table with its chains, sets and maps.
type Table struct {
	Family  string
	Name    string
	Handle  uint64
	Comment string
	Flags   []string

	// Chains in dump order; chainIndex finds them by name.
	Chains     []*Chain
	chainIndex map[string]*Chain
	// Sets holds sets and maps (a map has Set.Map set) in dump order.
	Sets     []*Set
	setIndex map[string]*Set
}

// Chain returns the chain of that name, or nil.
func (t *Table) Chain(name string) *Chain { return t.chainIndex[name] }

// Set returns the set or map of that name, or nil.
func (t *Table) Set(name string) *Set { return t.setIndex[name] }

// BaseChains returns the chains attached to hook, lowest priority first;
// chains of equal priority keep handle order, as the kernel registers them.
func (t *Table) BaseChains(hook string) []*Chain {
	var out []*Chain
	for _, c := range t.Chains {
		if c.Hook == hook {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority < out[j].Priority
		}
		return out[i].Handle < out[j].Handle
	})
	return out
}

func (t *Table) String() string { return t.Family + " " + t.Name }

// Chain is a base chain (Hook set) or a regular chain.
type Chain struct {
	Family  string
	Table   string
	Name    string
	Handle  uint64
	Comment string

	// Base chain properties; Hook is empty for a regular chain.
	Type     string
	Hook     string
	Priority int
	Policy   string
	Device   string

	Rules []*Rule
}

// IsBase reports whether the chain is attached to a netfilter hook.
func (c *Chain) IsBase() bool { return c.Hook != "" }

// Rule is one rule: statements evaluated left to right.
type Rule struct {
	Family  string
	Table   string
	Chain   string
	Handle  uint64
	Comment string
	Stmts   []Stmt

	at *path // where the dump lists it, for errors found after parsing
}

// String renders the rule as `nft list ruleset` prints it (without the
// chain), which is how findings and trace results quote rules.
func (r *Rule) String() string {
	parts := make([]string, 0, len(r.Stmts)+1)
	for _, s := range r.Stmts {
		parts = append(parts, s.String())
	}
	if r.Comment != "" {
		parts = append(parts, "comment "+strconv.Quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

// Set is a named set, or a map when Map is non-empty ("verdict" for a
// verdict map such as service-ips).
type Set struct {
	Family  string
	Table   string
	Name    string
	Handle  uint64
	Comment string
	// Type lists the key types; more than one means a concatenation
	// ("ipv4_addr . inet_proto . inet_service").
	Type    []string
	Map     string
	Flags   []string
	Timeout uint64
	Size    uint64

	Elements []Element

	at *path
}

// IsMap reports whether the set is a map.
func (s *Set) IsMap() bool { return s.Map != "" }

// IsVerdictMap reports whether the map's values are verdicts.
func (s *Set) IsVerdictMap() bool { return s.Map == "verdict" }

// Element is a set element (Value nil) or a map element. Comment is the
// element's own comment, unwrapped from an Elem for convenience.
type Element struct {
	Key     Expr
	Value   Expr
	Comment string
}

func (e Element) String() string {
	s := exprString(e.Key)
	if e.Comment != "" {
		s += " comment " + strconv.Quote(e.Comment)
	}
	if e.Value != nil {
		s += " : " + exprString(e.Value)
	}
	return s
}

// describeRule names a rule by where it is, for errors and results.
func describeRule(c *Chain, r *Rule) string {
	return fmt.Sprintf("%s: %s", c.Name, r.String())
}
