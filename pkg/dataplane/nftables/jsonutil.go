package nftables

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ParseError says where in the dump the parser gave up: Where is a JSON
// path such as `nftables[57] (rule in ip kube-proxy chain "services").expr[0].vmap.key`.
type ParseError struct {
	Where string
	Err   error
}

func (e *ParseError) Error() string { return "nft json: " + e.Where + ": " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

func errAt(at, format string, args ...any) error {
	return &ParseError{Where: at, Err: fmt.Errorf(format, args...)}
}

// obj is a decoded JSON object with the path it was found at, so that every
// accessor can say where a field is missing or of the wrong type.
type obj struct {
	m  map[string]any
	at string
}

func asObj(v any, at string) (obj, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return obj{}, errAt(at, "want an object, got %s", jsonKind(v))
	}
	return obj{m: m, at: at}, nil
}

// single returns the only key of an object such as {"match": {...}}: nft
// wraps every statement, expression and top-level item that way.
func single(v any, at string) (string, any, error) {
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

func (o obj) path(key string) string { return o.at + "." + key }

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
				return nil, errAt(fmt.Sprintf("%s[%d]", o.path(key), i), "want a string, got %s", jsonKind(item))
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, errAt(o.path(key), "want a string or a list of strings, got %s", jsonKind(v))
	}
}

func toUint(v any, at string) (uint64, error) {
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
