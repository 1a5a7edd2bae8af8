package nftables

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseJSON reads the output of `nft -j list ruleset` (or `nft -j list table
// ...`). Every table is kept; kube-proxy's are what the Tracer and Check use.
//
// The result is checked for internal consistency — every rule's chain, every
// jump or goto target and every @set reference must exist in its table —
// because a dump that fails this cannot have come from nft, and tracing it
// would give a confident wrong answer.
func ParseJSON(r io.Reader) (*Ruleset, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("nft json: decoding document: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("nft json: trailing data after the document")
	}
	top, err := asObj(doc, &path{text: "document"})
	if err != nil {
		return nil, err
	}
	root := &path{text: "nftables"}
	itemsV, ok := top.m["nftables"]
	if !ok {
		return nil, errAt(&path{text: "document"}, `missing "nftables"`)
	}
	items, ok := itemsV.([]any)
	if !ok {
		return nil, errAt(root, "want a list, got %s", jsonKind(itemsV))
	}

	b := builder{rs: &Ruleset{Others: map[string]int{}}, tables: map[string]*Table{}}
	for i, item := range items {
		if err := b.item(item, root.index(i)); err != nil {
			return nil, err
		}
	}
	if err := b.checkRefs(); err != nil {
		return nil, err
	}
	return b.rs, nil
}

// builder assembles the Ruleset item by item. nft lists a table before its
// contents and a chain before its rules, and the builder relies on it.
type builder struct {
	rs     *Ruleset
	tables map[string]*Table // by "family name"
}

func (b *builder) item(v any, at *path) error {
	kind, body, err := single(v, at)
	if err != nil {
		return err
	}
	switch kind {
	case "metainfo":
		o, err := asObj(body, at.field("metainfo"))
		if err != nil {
			return err
		}
		b.rs.Version, err = o.str("version", false)
		return err
	case "table":
		return b.table(body, at)
	case "chain":
		return b.chain(body, at)
	case "rule":
		return b.rule(body, at)
	case "set", "map":
		return b.set(kind, body, at)
	case "element":
		return b.element(body, at)
	default:
		b.rs.Others[kind]++
		return nil
	}
}

func (b *builder) table(body any, at *path) error {
	o, err := asObj(body, at.field("table"))
	if err != nil {
		return err
	}
	t := &Table{chainIndex: map[string]*Chain{}, setIndex: map[string]*Set{}}
	if t.Family, err = o.str("family", true); err != nil {
		return err
	}
	if t.Name, err = o.str("name", true); err != nil {
		return err
	}
	if t.Handle, err = o.uint("handle", false); err != nil {
		return err
	}
	if t.Comment, err = o.str("comment", false); err != nil {
		return err
	}
	if t.Flags, err = o.strs("flags"); err != nil {
		return err
	}
	key := t.Family + " " + t.Name
	if _, dup := b.tables[key]; dup {
		return errAt(at, "table %s listed twice", key)
	}
	b.tables[key] = t
	b.rs.Tables = append(b.rs.Tables, t)
	return nil
}

// owner finds the table an object belongs to from its "family" and "table"
// fields.
func (b *builder) owner(o obj, tableKey string) (*Table, error) {
	family, err := o.str("family", true)
	if err != nil {
		return nil, err
	}
	name, err := o.str(tableKey, true)
	if err != nil {
		return nil, err
	}
	t := b.tables[family+" "+name]
	if t == nil {
		return nil, errAt(o.at, "table %s %s is not listed before it", family, name)
	}
	return t, nil
}

func (b *builder) chain(body any, at *path) error {
	o, err := asObj(body, at.field("chain"))
	if err != nil {
		return err
	}
	t, err := b.owner(o, "table")
	if err != nil {
		return err
	}
	c := &Chain{Family: t.Family, Table: t.Name}
	if c.Name, err = o.str("name", true); err != nil {
		return err
	}
	o.at = at.label("chain", t, c.Name)
	if c.Handle, err = o.uint("handle", false); err != nil {
		return err
	}
	if c.Comment, err = o.str("comment", false); err != nil {
		return err
	}
	if c.Type, err = o.str("type", false); err != nil {
		return err
	}
	if c.Hook, err = o.str("hook", false); err != nil {
		return err
	}
	if c.Policy, err = o.str("policy", false); err != nil {
		return err
	}
	if c.Device, err = o.str("dev", false); err != nil {
		return err
	}
	if c.Priority, err = priority(o); err != nil {
		return err
	}
	if c.Hook != "" && c.Policy == "" {
		c.Policy = "accept"
	}
	if _, dup := t.chainIndex[c.Name]; dup {
		return errAt(o.at, "chain listed twice in table %s", t)
	}
	t.chainIndex[c.Name] = c
	t.Chains = append(t.Chains, c)
	return nil
}

// standardPriorities are the names nft accepts for base chain priorities
// (for the ip, ip6 and inet families); nft -j prints numbers, but input
// written by hand may use the names.
var standardPriorities = map[string]int{
	"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100,
}

func priority(o obj) (int, error) {
	v, ok := o.m["prio"]
	if !ok || v == nil {
		return 0, nil
	}
	if s, ok := v.(string); ok {
		return namedPriority(s, o.path("prio"))
	}
	n, _, err := o.int("prio")
	if err != nil {
		return 0, err
	}
	if n < -1<<31 || n > 1<<31-1 {
		return 0, errAt(o.path("prio"), "priority %d out of range", n)
	}
	return int(n), nil
}

// namedPriority reads "dstnat", "dstnat - 10" or "filter+5".
func namedPriority(s string, at *path) (int, error) {
	name, rest := s, ""
	if i := strings.IndexAny(s, "+-"); i > 0 {
		name, rest = s[:i], s[i:]
	}
	base, ok := standardPriorities[strings.TrimSpace(name)]
	if !ok {
		return 0, errAt(at, "unknown priority %q", s)
	}
	rest = strings.ReplaceAll(rest, " ", "")
	if rest == "" {
		return base, nil
	}
	off, err := strconv.ParseInt(rest, 10, 32)
	if err != nil {
		return 0, errAt(at, "bad priority offset in %q", s)
	}
	return base + int(off), nil
}

func (b *builder) rule(body any, at *path) error {
	o, err := asObj(body, at.field("rule"))
	if err != nil {
		return err
	}
	t, err := b.owner(o, "table")
	if err != nil {
		return err
	}
	chain, err := o.str("chain", true)
	if err != nil {
		return err
	}
	o.at = at.label("rule in", t, chain)
	c := t.chainIndex[chain]
	if c == nil {
		return errAt(o.at, "chain is not listed before the rule")
	}
	r := &Rule{Family: t.Family, Table: t.Name, Chain: chain}
	if r.Handle, err = o.uint("handle", false); err != nil {
		return err
	}
	if r.Comment, err = o.str("comment", false); err != nil {
		return err
	}
	exprV, ok := o.m["expr"]
	if !ok || exprV == nil {
		return errAt(o.at, `missing "expr"`)
	}
	list, ok := exprV.([]any)
	if !ok {
		return errAt(o.path("expr"), "want a list, got %s", jsonKind(exprV))
	}
	r.Stmts = make([]Stmt, 0, len(list))
	for i, sv := range list {
		s, err := parseStmt(sv, o.at.field("expr").index(i))
		if err != nil {
			return err
		}
		r.Stmts = append(r.Stmts, s)
	}
	c.Rules = append(c.Rules, r)
	r.at = o.at
	return nil
}

func (b *builder) set(kind string, body any, at *path) error {
	o, err := asObj(body, at.field(kind))
	if err != nil {
		return err
	}
	t, err := b.owner(o, "table")
	if err != nil {
		return err
	}
	s := &Set{Family: t.Family, Table: t.Name}
	if s.Name, err = o.str("name", true); err != nil {
		return err
	}
	o.at = at.label(kind, t, s.Name)
	if s.Handle, err = o.uint("handle", false); err != nil {
		return err
	}
	if s.Comment, err = o.str("comment", false); err != nil {
		return err
	}
	if s.Type, err = setType(o, "type"); err != nil {
		return err
	}
	mapTypes, err := setType(o, "map")
	if err != nil {
		return err
	}
	s.Map = strings.Join(mapTypes, " . ")
	if kind == "map" && s.Map == "" {
		return errAt(o.at, `map without "map" (value type)`)
	}
	if s.Flags, err = o.strs("flags"); err != nil {
		return err
	}
	if s.Timeout, err = o.uint("timeout", false); err != nil {
		return err
	}
	if s.Size, err = o.uint("size", false); err != nil {
		return err
	}
	if _, dup := t.setIndex[s.Name]; dup {
		return errAt(o.at, "set or map listed twice in table %s", t)
	}
	if s.Elements, err = parseElements(o, s.IsMap()); err != nil {
		return err
	}
	t.setIndex[s.Name] = s
	t.Sets = append(t.Sets, s)
	s.at = o.at
	return nil
}

// setType reads a set's key or value type: a name, a list of names for a
// concatenation, or a {"typeof": ...} object, which is kept as its JSON.
func setType(o obj, key string) ([]string, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil, nil
	}
	if m, ok := v.(map[string]any); ok {
		return []string{string(raw(m))}, nil
	}
	return o.strs(key)
}

// element handles a top-level {"element": {...}} item, which adds elements
// to a set listed earlier.
func (b *builder) element(body any, at *path) error {
	o, err := asObj(body, at.field("element"))
	if err != nil {
		return err
	}
	t, err := b.owner(o, "table")
	if err != nil {
		return err
	}
	name, err := o.str("name", true)
	if err != nil {
		return err
	}
	s := t.setIndex[name]
	if s == nil {
		return errAt(o.at, "set %q is not listed before its elements", name)
	}
	els, err := parseElements(o, s.IsMap())
	if err != nil {
		return err
	}
	s.Elements = append(s.Elements, els...)
	return nil
}

func parseElements(o obj, isMap bool) ([]Element, error) {
	v, ok := o.m["elem"]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		// nft prints a one-element list as the element itself.
		list = []any{v}
	}
	out := make([]Element, 0, len(list))
	for i, item := range list {
		at := o.at.field("elem").index(i)
		var el Element
		var err error
		if isMap {
			el, err = parseMapItem(item, at)
		} else {
			el, err = parseSetItem(item, at)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, el)
	}
	return out, nil
}

// checkRefs verifies that every chain and set a rule or map element names
// exists in its table, so the Tracer can follow them without checking.
func (b *builder) checkRefs() error {
	for _, t := range b.rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for i, s := range r.Stmts {
					at := r.at.field("expr").index(i)
					if err := checkStmtRefs(t, s, at); err != nil {
						return err
					}
				}
			}
		}
		for _, s := range t.Sets {
			for i, el := range s.Elements {
				at := s.at.field("elem").index(i)
				if err := checkExprRefs(t, el.Value, at); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkStmtRefs(t *Table, s Stmt, at *path) error {
	switch s := s.(type) {
	case VerdictStmt:
		return checkExprRefs(t, VerdictExpr(s), at)
	case Match:
		if err := checkExprRefs(t, s.Left, at); err != nil {
			return err
		}
		return checkExprRefs(t, s.Right, at)
	case VMap:
		if err := checkExprRefs(t, s.Key, at); err != nil {
			return err
		}
		if ref, ok := s.Data.(SetRef); ok {
			if set := t.Set(string(ref)); set != nil && !set.IsVerdictMap() {
				what := "a set"
				if set.IsMap() {
					what = "a map of " + set.Map
				}
				return errAt(at, "vmap uses %s, which is %s, not a verdict map", ref, what)
			}
		}
		return checkExprRefs(t, s.Data, at)
	case Mangle:
		if err := checkExprRefs(t, s.Key, at); err != nil {
			return err
		}
		return checkExprRefs(t, s.Value, at)
	case NAT:
		if err := checkExprRefs(t, s.Addr, at); err != nil {
			return err
		}
		return checkExprRefs(t, s.Port, at)
	case SetStmt:
		if t.Set(s.Set) == nil {
			return errAt(at, "set @%s does not exist in table %s", s.Set, t)
		}
		return checkExprRefs(t, s.Elem, at)
	}
	return nil
}

func checkExprRefs(t *Table, e Expr, at *path) error {
	switch e := e.(type) {
	case nil:
		return nil
	case SetRef:
		if t.Set(string(e)) == nil {
			return errAt(at, "set or map %s does not exist in table %s", e, t)
		}
	case VerdictExpr:
		if (e.Kind == "jump" || e.Kind == "goto") && t.Chain(e.Target) == nil {
			return errAt(at, "%s target chain %q does not exist in table %s", e.Kind, e.Target, t)
		}
	case Concat:
		for _, sub := range e {
			if err := checkExprRefs(t, sub, at); err != nil {
				return err
			}
		}
	case Binop:
		if err := checkExprRefs(t, e.Left, at); err != nil {
			return err
		}
		return checkExprRefs(t, e.Right, at)
	case AnonSet:
		for _, el := range e {
			if err := checkExprRefs(t, el.Key, at); err != nil {
				return err
			}
			if err := checkExprRefs(t, el.Value, at); err != nil {
				return err
			}
		}
	case Elem:
		return checkExprRefs(t, e.Val, at)
	}
	return nil
}
