package nftables

import (
	"encoding/json"
	"strings"
)

// maxExprDepth bounds nesting so that hostile input cannot exhaust the
// stack; real rules nest three or four levels.
const maxExprDepth = 64

var verdictKinds = map[string]bool{
	"accept": true, "drop": true, "continue": true, "return": true, "jump": true, "goto": true,
}

func parseStmt(v any, at *path) (Stmt, error) {
	kind, body, err := single(v, at)
	if err != nil {
		return nil, err
	}
	at = at.field(kind)
	switch kind {
	case "match":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		op, err := o.str("op", false)
		if err != nil {
			return nil, err
		}
		if op == "" {
			op = "=="
		}
		switch op {
		case "==", "!=", "<", ">", "<=", ">=", "in":
		default:
			return nil, errAt(o.path("op"), "unknown match operator %q", op)
		}
		left, err := fieldExpr(o, "left", 0)
		if err != nil {
			return nil, err
		}
		right, err := fieldExpr(o, "right", 0)
		if err != nil {
			return nil, err
		}
		return Match{Op: op, Left: left, Right: right}, nil
	case "accept", "drop", "continue", "return", "jump", "goto":
		ve, err := parseVerdict(kind, body, at)
		return VerdictStmt(ve), err
	case "vmap":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		key, err := fieldExpr(o, "key", 0)
		if err != nil {
			return nil, err
		}
		data, err := fieldExpr(o, "data", 0)
		if err != nil {
			return nil, err
		}
		switch data.(type) {
		case SetRef, AnonSet:
		default:
			return nil, errAt(o.path("data"), "want a map reference or an anonymous map, got %s", exprString(data))
		}
		return VMap{Key: key, Data: data}, nil
	case "mangle":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		key, err := fieldExpr(o, "key", 0)
		if err != nil {
			return nil, err
		}
		val, err := fieldExpr(o, "value", 0)
		if err != nil {
			return nil, err
		}
		return Mangle{Key: key, Value: val}, nil
	case "dnat", "snat", "masquerade", "redirect":
		return parseNAT(kind, body, at)
	case "reject":
		if body == nil {
			return Reject{}, nil
		}
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var r Reject
		if r.Type, err = o.str("type", false); err != nil {
			return nil, err
		}
		if r.Expr, err = o.str("expr", false); err != nil {
			return nil, err
		}
		return r, nil
	case "counter":
		switch body := body.(type) {
		case nil:
			return Counter{}, nil
		case string:
			return Counter{Name: body}, nil
		}
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var c Counter
		if c.Packets, err = o.uint("packets", false); err != nil {
			return nil, err
		}
		if c.Bytes, err = o.uint("bytes", false); err != nil {
			return nil, err
		}
		return c, nil
	case "set":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var s SetStmt
		if s.Op, err = o.str("op", true); err != nil {
			return nil, err
		}
		name, err := o.str("set", true)
		if err != nil {
			return nil, err
		}
		s.Set = strings.TrimPrefix(name, "@")
		if s.Set == "" {
			return nil, errAt(o.path("set"), "empty set name")
		}
		if s.Elem, err = fieldExpr(o, "elem", 0); err != nil {
			return nil, err
		}
		return s, nil
	case "xt":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var x XT
		if x.Type, err = o.str("type", false); err != nil {
			return nil, err
		}
		if x.Name, err = o.str("name", false); err != nil {
			return nil, err
		}
		return x, nil
	default:
		return OtherStmt{Kind: kind, Raw: raw(body)}, nil
	}
}

func parseVerdict(kind string, body any, at *path) (VerdictExpr, error) {
	if kind != "jump" && kind != "goto" {
		if body != nil {
			return VerdictExpr{}, errAt(at, "want null, got %s", jsonKind(body))
		}
		return VerdictExpr{Kind: kind}, nil
	}
	o, err := asObj(body, at)
	if err != nil {
		return VerdictExpr{}, err
	}
	target, err := o.str("target", true)
	if err != nil {
		return VerdictExpr{}, err
	}
	return VerdictExpr{Kind: kind, Target: target}, nil
}

func parseNAT(kind string, body any, at *path) (Stmt, error) {
	n := NAT{Kind: kind}
	if body == nil {
		return n, nil
	}
	o, err := asObj(body, at)
	if err != nil {
		return nil, err
	}
	if o.has("addr") {
		if n.Addr, err = fieldExpr(o, "addr", 0); err != nil {
			return nil, err
		}
	}
	if o.has("port") {
		if n.Port, err = fieldExpr(o, "port", 0); err != nil {
			return nil, err
		}
	}
	if n.Family, err = o.str("family", false); err != nil {
		return nil, err
	}
	if n.Flags, err = o.strs("flags"); err != nil {
		return nil, err
	}
	return n, nil
}

// fieldExpr parses the expression held in a required field of o.
func fieldExpr(o obj, key string, depth int) (Expr, error) {
	v, ok := o.m[key]
	if !ok {
		return nil, errAt(o.at, "missing %q", key)
	}
	return parseExpr(v, o.path(key), depth+1)
}

func parseExpr(v any, at *path, depth int) (Expr, error) {
	if depth > maxExprDepth {
		return nil, errAt(at, "expressions nested deeper than %d", maxExprDepth)
	}
	switch v := v.(type) {
	case nil:
		return nil, errAt(at, "null expression")
	case string:
		if strings.HasPrefix(v, "@") {
			if len(v) == 1 {
				return nil, errAt(at, "empty set reference")
			}
			return SetRef(v[1:]), nil
		}
		return String(v), nil
	case json.Number:
		n, err := toUint(v, at)
		return Number(n), err
	case bool:
		return Bool(v), nil
	case []any:
		// A bare list is a flag list (`ct state established,related`);
		// treat it as the anonymous set it is matched like.
		out := make(AnonSet, 0, len(v))
		for i, item := range v {
			el, err := parseSetItemDepth(item, at.index(i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, el)
		}
		return out, nil
	}
	kind, body, err := single(v, at)
	if err != nil {
		return nil, err
	}
	at = at.field(kind)
	switch kind {
	case "payload":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var p Payload
		if o.has("protocol") {
			if p.Protocol, err = o.str("protocol", true); err != nil {
				return nil, err
			}
			if p.Field, err = o.str("field", true); err != nil {
				return nil, err
			}
			return p, nil
		}
		if p.Base, err = o.str("base", true); err != nil {
			return nil, err
		}
		if p.Offset, err = o.uint("offset", true); err != nil {
			return nil, err
		}
		if p.Len, err = o.uint("len", true); err != nil {
			return nil, err
		}
		return p, nil
	case "meta":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		key, err := o.str("key", true)
		return Meta{Key: key}, err
	case "ct":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var c CT
		if c.Key, err = o.str("key", true); err != nil {
			return nil, err
		}
		if c.Family, err = o.str("family", false); err != nil {
			return nil, err
		}
		if c.Dir, err = o.str("dir", false); err != nil {
			return nil, err
		}
		return c, nil
	case "fib":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var f Fib
		if f.Result, err = o.str("result", true); err != nil {
			return nil, err
		}
		if f.Flags, err = o.strs("flags"); err != nil {
			return nil, err
		}
		return f, nil
	case "numgen":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		var n Numgen
		if n.Mode, err = o.str("mode", true); err != nil {
			return nil, err
		}
		if n.Mod, err = o.uint("mod", true); err != nil {
			return nil, err
		}
		if n.Mod == 0 || n.Mod > 1<<32 {
			return nil, errAt(o.path("mod"), "modulus %d out of range 1..2^32", n.Mod)
		}
		if n.Offset, err = o.uint("offset", false); err != nil {
			return nil, err
		}
		if n.Offset >= 1<<32 {
			// The kernel's numgen offset is 32 bits; bounding it also
			// keeps offset+mod from overflowing.
			return nil, errAt(o.path("offset"), "offset %d over 2^32-1", n.Offset)
		}
		return n, nil
	case "concat":
		list, ok := body.([]any)
		if !ok {
			return nil, errAt(at, "want a list, got %s", jsonKind(body))
		}
		if len(list) == 0 {
			return nil, errAt(at, "empty concatenation")
		}
		out := make(Concat, len(list))
		for i, item := range list {
			if out[i], err = parseExpr(item, at.index(i), depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case "&", "|", "^", "<<", ">>":
		list, ok := body.([]any)
		if !ok || len(list) != 2 {
			return nil, errAt(at, "want a list of two operands")
		}
		l, err := parseExpr(list[0], at.index(0), depth+1)
		if err != nil {
			return nil, err
		}
		r, err := parseExpr(list[1], at.index(1), depth+1)
		if err != nil {
			return nil, err
		}
		return Binop{Op: kind, Left: l, Right: r}, nil
	case "prefix":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		addr, err := fieldExpr(o, "addr", depth)
		if err != nil {
			return nil, err
		}
		n, err := o.uint("len", true)
		if err != nil {
			return nil, err
		}
		if n > 128 {
			return nil, errAt(o.path("len"), "prefix length %d over 128", n)
		}
		return Prefix{Addr: addr, Len: int(n)}, nil
	case "range":
		list, ok := body.([]any)
		if !ok || len(list) != 2 {
			return nil, errAt(at, "want a list of two bounds")
		}
		lo, err := parseExpr(list[0], at.index(0), depth+1)
		if err != nil {
			return nil, err
		}
		hi, err := parseExpr(list[1], at.index(1), depth+1)
		if err != nil {
			return nil, err
		}
		return Range{Lo: lo, Hi: hi}, nil
	case "set":
		list, ok := body.([]any)
		if !ok {
			list = []any{body}
		}
		out := make(AnonSet, 0, len(list))
		for i, item := range list {
			el, err := parseAnonItem(item, at.index(i), depth+1)
			if err != nil {
				return nil, err
			}
			if i > 0 && (el.Value == nil) != (out[0].Value == nil) {
				return nil, errAt(at.index(i), "anonymous set mixes plain elements and key : value pairs")
			}
			out = append(out, el)
		}
		return out, nil
	case "map":
		o, err := asObj(body, at)
		if err != nil {
			return nil, err
		}
		key, err := fieldExpr(o, "key", depth)
		if err != nil {
			return nil, err
		}
		data, err := fieldExpr(o, "data", depth)
		if err != nil {
			return nil, err
		}
		switch d := data.(type) {
		case SetRef:
		case AnonSet:
			for i, el := range d {
				if el.Value == nil {
					return nil, errAt(o.path("data").index(i), "map lookup data is a set, not a map")
				}
			}
		default:
			return nil, errAt(o.path("data"), "want a map reference or an anonymous map, got %s", exprString(data))
		}
		return MapLookup{Key: key, Data: data}, nil
	case "elem":
		return parseElem(body, at, depth)
	case "accept", "drop", "continue", "return", "jump", "goto":
		return parseVerdict(kind, body, at)
	default:
		return OtherExpr{Kind: kind, Raw: raw(body)}, nil
	}
}

func parseElem(body any, at *path, depth int) (Elem, error) {
	o, err := asObj(body, at)
	if err != nil {
		return Elem{}, err
	}
	var e Elem
	if e.Val, err = fieldExpr(o, "val", depth); err != nil {
		return Elem{}, err
	}
	if _, nested := e.Val.(Elem); nested {
		return Elem{}, errAt(o.path("val"), "element inside element")
	}
	if e.Comment, err = o.str("comment", false); err != nil {
		return Elem{}, err
	}
	if e.Timeout, err = o.uint("timeout", false); err != nil {
		return Elem{}, err
	}
	if e.Expires, err = o.uint("expires", false); err != nil {
		return Elem{}, err
	}
	return e, nil
}

// element unwraps an Elem so that Element.Key is the bare key and the
// comment sits on the Element.
func element(key Expr) Element {
	if e, ok := key.(Elem); ok {
		return Element{Key: e.Val, Comment: e.Comment}
	}
	return Element{Key: key}
}

func parseSetItem(v any, at *path) (Element, error) { return parseSetItemDepth(v, at, 0) }

func parseSetItemDepth(v any, at *path, depth int) (Element, error) {
	if _, isList := v.([]any); isList {
		return Element{}, errAt(at, "a set element cannot be a list")
	}
	key, err := parseExpr(v, at, depth)
	if err != nil {
		return Element{}, err
	}
	if _, isSet := key.(AnonSet); isSet {
		return Element{}, errAt(at, "a set element cannot be a set")
	}
	return element(key), nil
}

func parseMapItem(v any, at *path) (Element, error) { return parseMapItemDepth(v, at, 0) }

func parseMapItemDepth(v any, at *path, depth int) (Element, error) {
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return Element{}, errAt(at, "want a [key, value] pair")
	}
	el, err := parseSetItemDepth(pair[0], at.index(0), depth)
	if err != nil {
		return Element{}, err
	}
	if el.Value, err = parseExpr(pair[1], at.index(1), depth); err != nil {
		return Element{}, err
	}
	return el, nil
}

// parseAnonItem reads an item of an anonymous {"set": [...]}: a [key, value]
// pair makes it an anonymous map, anything else is a plain element.
func parseAnonItem(v any, at *path, depth int) (Element, error) {
	if _, isPair := v.([]any); isPair {
		return parseMapItemDepth(v, at, depth)
	}
	return parseSetItemDepth(v, at, depth)
}
