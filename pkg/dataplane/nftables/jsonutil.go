package nftables

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseError says where in the dump the parser gave up: Where is a JSON
// path such as `nftables[57] (rule in ip kube-proxy chain "services").expr[0].vmap.key`.
type ParseError struct {
	Where string
	Err   error
}

func (e *ParseError) Error() string { return "nft json: " + e.Where + ": " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

func errAt(at *path, format string, args ...any) error {
	return &ParseError{Where: at.String(), Err: fmt.Errorf(format, args...)}
}

// path locates a value in the document. It is rendered only when an error
// is reported, so that the parser does no string formatting for the
// hundreds of thousands of values of a large, valid dump.
type path struct {
	parent *path
	text   string // a field name, or the root's name, or a label's kind
	pos    int    // list index, when kind is pathIndex
	kind   pathKind
	table  *Table // for a label: the item's table and name
	name   string
}

type pathKind uint8

const (
	pathRoot pathKind = iota
	pathField
	pathIndex
	pathLabel
)

func (p *path) field(name string) *path { return &path{parent: p, text: name, kind: pathField} }
func (p *path) index(i int) *path       { return &path{parent: p, pos: i, kind: pathIndex} }

// label describes the item at p, as in `nftables[57] (rule in ip
// kube-proxy chain "services")`.
func (p *path) label(what string, t *Table, name string) *path {
	return &path{parent: p, text: what, table: t, name: name, kind: pathLabel}
}

func (p *path) String() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	p.write(&b)
	return b.String()
}

func (p *path) write(b *strings.Builder) {
	if p.parent != nil {
		p.parent.write(b)
	}
	switch p.kind {
	case pathRoot:
		b.WriteString(p.text)
	case pathField:
		b.WriteString("." + p.text)
	case pathIndex:
		b.WriteString("[" + strconv.Itoa(p.pos) + "]")
	case pathLabel:
		sep := " "
		if p.text == "rule in" {
			sep = " chain "
		}
		b.WriteString(" (" + p.text + " " + p.table.String() + sep + strconv.Quote(p.name) + ")")
	}
}

// obj is a decoded JSON object with the path it was found at, so that every
// accessor can say where a field is missing or of the wrong type.
type obj struct {
	m  map[string]any
	at *path
}

func asObj(v any, at *path) (obj, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return obj{}, errAt(at, "want an object, got %s", jsonKind(v))
	}
	return obj{m: m, at: at}, nil
}

// single returns the only key of an object such as {"match": {...}}: nft
// wraps every statement, expression and top-level item that way.
func single(v any, at *path) (string, any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", nil, errAt(at, "want an object, got %s", jsonKind(v))
	}
	if len(m) != 1 {
		return "", nil, errAt(at, "want an object with exactly one key, got %d keys", len(m))
	}
	for k, val := range m {
		return k, val, nil
	}
	return "", nil, errAt(at, "empty object")
}

func (o obj) path(key string) *path { return o.at.field(key) }

func (o obj) has(key string) bool {
	v, ok := o.m[key]
	return ok && v != nil
}

func (o obj) str(key string, required bool) (string, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		if required {
			return "", errAt(o.at, "missing %q", key)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", errAt(o.path(key), "want a string, got %s", jsonKind(v))
	}
	if required && s == "" {
		return "", errAt(o.path(key), "empty")
	}
	return s, nil
}

func (o obj) uint(key string, required bool) (uint64, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		if required {
			return 0, errAt(o.at, "missing %q", key)
		}
		return 0, nil
	}
	return toUint(v, o.path(key))
}

func (o obj) int(key string) (int64, bool, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, false, errAt(o.path(key), "want a number, got %s", jsonKind(v))
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, false, errAt(o.path(key), "want an integer: %v", unwrapNum(err))
	}
	return i, true, nil
}

// strs reads a field nft writes either as one string or as a list of
// strings (flags, set types, fib flags).
func (o obj) strs(key string) ([]string, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, len(v))
		for i, item := range v {
			s, ok := item.(string)
			if !ok {
				return nil, errAt(o.path(key).index(i), "want a string, got %s", jsonKind(item))
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, errAt(o.path(key), "want a string or a list of strings, got %s", jsonKind(v))
	}
}

func toUint(v any, at *path) (uint64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errAt(at, "want a number, got %s", jsonKind(v))
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		return 0, errAt(at, "want an unsigned integer: %v", unwrapNum(err))
	}
	return u, nil
}

func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("%q: %w", ne.Num, ne.Err)
	}
	return err
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// raw re-encodes a decoded value for OtherExpr and OtherStmt. It cannot
// fail on values produced by encoding/json, but must not panic if it did.
func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(strconv.Quote(err.Error()))
	}
	return b
}
