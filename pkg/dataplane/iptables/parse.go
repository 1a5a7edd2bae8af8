package iptables

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseError says which line of a dump could not be read and why.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// maxLine bounds one line of a dump; kube-proxy's longest rules are a few
// hundred bytes, so this only stops a runaway input.
const maxLine = 1 << 20

// Parse reads iptables-save output (with or without -c counters) into a
// Ruleset. Every rule is kept, including matches and targets the package
// does not model; input it cannot read gives a *ParseError naming the line.
func Parse(r io.Reader) (*Ruleset, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLine)
	p := &parser{rs: &Ruleset{}}
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				return nil, pe
			}
			return nil, &ParseError{Line: p.line, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{Line: p.line + 1, Err: fmt.Errorf("reading dump: %w", err)}
	}
	if p.table != nil {
		return nil, &ParseError{Line: p.line, Err: fmt.Errorf("table %s has no COMMIT", p.table.Name)}
	}
	return p.rs, nil
}

// ParseString is Parse over a string, for tests and small callers.
func ParseString(s string) (*Ruleset, error) { return Parse(strings.NewReader(s)) }

// ParseBytes is Parse over a byte slice.
func ParseBytes(b []byte) (*Ruleset, error) { return Parse(bytes.NewReader(b)) }

type parser struct {
	rs    *Ruleset
	table *Table // open table, nil between COMMIT and the next "*name"
	line  int
}

func (p *parser) parseLine(raw string) error {
	line := strings.TrimRight(raw, "\r")
	trimmed := strings.TrimSpace(line)
	switch {
	case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		return nil
	case strings.HasPrefix(trimmed, "*"):
		return p.openTable(strings.TrimSpace(trimmed[1:]))
	case trimmed == "COMMIT":
		if p.table == nil {
			return errors.New("COMMIT outside a table")
		}
		if err := resolveTargets(p.table); err != nil {
			return err
		}
		p.table = nil
		return nil
	case strings.HasPrefix(trimmed, ":"):
		return p.declareChain(trimmed)
	default:
		return p.addRule(trimmed)
	}
}

func (p *parser) openTable(name string) error {
	if p.table != nil {
		return fmt.Errorf("table %s opened before table %s was committed", name, p.table.Name)
	}
	if name == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("bad table name %q", name)
	}
	if p.rs.Table(name) != nil {
		return fmt.Errorf("table %s appears twice", name)
	}
	p.table = &Table{Name: name, Line: p.line, byName: map[string]*Chain{}}
	p.rs.Tables = append(p.rs.Tables, p.table)
	return nil
}

// declareChain reads ":NAME POLICY [packets:bytes]"; POLICY is "-" for a
// user chain.
func (p *parser) declareChain(line string) error {
	if p.table == nil {
		return errors.New("chain declared outside a table")
	}
	f := strings.Fields(line[1:])
	if len(f) < 2 || len(f) > 3 {
		return fmt.Errorf("bad chain declaration %q", line)
	}
	name, policy := f[0], f[1]
	if p.table.byName[name] != nil {
		return fmt.Errorf("chain %s declared twice in table %s", name, p.table.Name)
	}
	c := &Chain{Name: name, Line: p.line, Decl: line}
	switch policy {
	case "-":
	case "ACCEPT", "DROP":
		c.Policy = policy
	default:
		return fmt.Errorf("chain %s has unknown policy %q", name, policy)
	}
	if len(f) == 3 {
		cnt, err := parseCounters(f[2])
		if err != nil {
			return fmt.Errorf("chain %s: %w", name, err)
		}
		c.Counters = cnt
	}
	p.table.Chains = append(p.table.Chains, c)
	p.table.byName[name] = c
	return nil
}

// parseCounters reads "[packets:bytes]".
func parseCounters(s string) (Counters, error) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return Counters{}, fmt.Errorf("bad counters %q", s)
	}
	ps, bs, ok := strings.Cut(s[1:len(s)-1], ":")
	if !ok {
		return Counters{}, fmt.Errorf("bad counters %q", s)
	}
	pk, err1 := strconv.ParseUint(ps, 10, 64)
	by, err2 := strconv.ParseUint(bs, 10, 64)
	if err1 != nil || err2 != nil {
		return Counters{}, fmt.Errorf("bad counters %q", s)
	}
	return Counters{Packets: pk, Bytes: by}, nil
}

func (p *parser) addRule(line string) error {
	if p.table == nil {
		return fmt.Errorf("rule outside a table: %q", line)
	}
	toks, err := tokenize(line)
	if err != nil {
		return err
	}
	r := &Rule{Line: p.line, Text: line}
	if len(toks) > 0 && !toks[0].quoted && strings.HasPrefix(toks[0].text, "[") {
		c, err := parseCounters(toks[0].text)
		if err != nil {
			return err
		}
		r.Counters = &c
		toks = toks[1:]
	}
	if len(toks) < 2 || toks[0].quoted || (toks[0].text != "-A" && toks[0].text != "--append") {
		return fmt.Errorf("expected -A CHAIN, got %q", line)
	}
	r.Chain = toks[1].text
	c := p.table.byName[r.Chain]
	if c == nil {
		return fmt.Errorf("rule for undeclared chain %s in table %s", r.Chain, p.table.Name)
	}
	if err := parseRuleArgs(r, toks[2:]); err != nil {
		return fmt.Errorf("chain %s: %w", r.Chain, err)
	}
	c.Rules = append(c.Rules, r)
	return nil
}

// resolveTargets decides, once a table's chains are all known, whether each
// -j names one of its chains (a jump) or an extension target. -g must name
// a chain.
func resolveTargets(t *Table) error {
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			tg := &r.Target
			switch tg.Kind {
			case TargetGoto:
				ch := t.byName[tg.Name]
				if ch == nil {
					return &ParseError{Line: r.Line, Err: fmt.Errorf("goto to unknown chain %s", tg.Name)}
				}
				if ch.Builtin() {
					return &ParseError{Line: r.Line, Err: fmt.Errorf("goto to builtin chain %s", tg.Name)}
				}
			case TargetBuiltin:
				ch := t.byName[tg.Name]
				if ch == nil {
					continue
				}
				if ch.Builtin() {
					return &ParseError{Line: r.Line, Err: fmt.Errorf("jump to builtin chain %s", tg.Name)}
				}
				if len(tg.Options) > 0 {
					return &ParseError{Line: r.Line, Err: fmt.Errorf("jump to chain %s with target options", tg.Name)}
				}
				tg.Kind, tg.Spec = TargetJump, nil
			}
		}
	}
	return nil
}
