package iptables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TargetSpec is the typed view of an extension target the package
// understands: *DNATTarget, *SNATTarget, *MasqueradeTarget, *RedirectTarget,
// *MarkTarget or *RejectTarget.
type TargetSpec interface{ targetSpec() }

// DNATTarget is -j DNAT --to-destination ADDR[:PORT]. Port 0 keeps the
// packet's port. Address or port ranges are not modelled (the target is then
// left untyped).
type DNATTarget struct {
	Addr netip.Addr
	Port uint16
}

// SNATTarget is -j SNAT --to-source ADDR[:PORT].
type SNATTarget struct {
	Addr        netip.Addr
	Port        uint16
	RandomFully bool
}

// MasqueradeTarget is -j MASQUERADE.
type MasqueradeTarget struct {
	RandomFully bool
	Random      bool
	ToPorts     string
}

// RedirectTarget is -j REDIRECT [--to-ports PORT]: DNAT to the node itself.
type RedirectTarget struct {
	Port uint16 // 0 keeps the packet's port
}

// MarkTarget is -j MARK. iptables-save prints --set-mark, --or-mark,
// --and-mark and --xor-mark as --set-xmark, which all of them reduce to:
// the new mark is (mark &^ Mask) ^ Value.
type MarkTarget struct {
	Value, Mask uint32
}

// Apply returns the mark after the target.
func (t *MarkTarget) Apply(mark uint32) uint32 { return (mark &^ t.Mask) ^ t.Value }

// RejectTarget is -j REJECT [--reject-with TYPE].
type RejectTarget struct{ With string }

func (*DNATTarget) targetSpec()       {}
func (*SNATTarget) targetSpec()       {}
func (*MasqueradeTarget) targetSpec() {}
func (*RedirectTarget) targetSpec()   {}
func (*MarkTarget) targetSpec()       {}
func (*RejectTarget) targetSpec()     {}

// parseTargetSpec builds the typed view of an extension target; errUntyped
// for targets or option shapes it does not model.
func parseTargetSpec(name string, opts []Option) (TargetSpec, error) {
	switch name {
	case "DNAT":
		addr, port, err := natDestination(opts, "--to-destination")
		if err != nil {
			return nil, err
		}
		return &DNATTarget{Addr: addr, Port: port}, nil
	case "SNAT":
		addr, port, err := natDestination(opts, "--to-source")
		if err != nil {
			return nil, err
		}
		t := &SNATTarget{Addr: addr, Port: port}
		_, t.RandomFully = findOption(opts, "--random-fully")
		return t, nil
	case "MASQUERADE":
		t := &MasqueradeTarget{}
		for _, o := range opts {
			switch o.Name {
			case "--random-fully":
				t.RandomFully = true
			case "--random":
				t.Random = true
			case "--to-ports":
				v, err := oneArg(o)
				if err != nil {
					return nil, err
				}
				t.ToPorts = v
			default:
				return nil, errUntyped
			}
		}
		return t, nil
	case "REDIRECT":
		t := &RedirectTarget{}
		for _, o := range opts {
			switch o.Name {
			case "--to-ports":
				v, err := oneArg(o)
				if err != nil {
					return nil, err
				}
				p, err := strconv.ParseUint(v, 10, 16)
				if err != nil {
					return nil, errUntyped // a port range
				}
				t.Port = uint16(p)
			case "--random":
			default:
				return nil, errUntyped
			}
		}
		return t, nil
	case "MARK":
		return parseMarkTarget(opts)
	case "REJECT":
		t := &RejectTarget{}
		for _, o := range opts {
			if o.Name != "--reject-with" {
				return nil, errUntyped
			}
			v, err := oneArg(o)
			if err != nil {
				return nil, err
			}
			t.With = v
		}
		return t, nil
	}
	return nil, errUntyped
}

func findOption(opts []Option, name string) (Option, bool) {
	for _, o := range opts {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// natDestination reads ADDR, ADDR:PORT or [V6]:PORT from the named option.
func natDestination(opts []Option, name string) (netip.Addr, uint16, error) {
	var val string
	found := false
	for _, o := range opts {
		switch o.Name {
		case name:
			v, err := oneArg(o)
			if err != nil {
				return netip.Addr{}, 0, err
			}
			if found {
				return netip.Addr{}, 0, errUntyped // several ranges
			}
			val, found = v, true
		case "--random", "--persistent", "--random-fully":
		default:
			return netip.Addr{}, 0, errUntyped
		}
	}
	if !found {
		return netip.Addr{}, 0, fmt.Errorf("missing %s", name)
	}
	if strings.ContainsAny(val, "-") {
		return netip.Addr{}, 0, errUntyped // address or port range
	}
	if a, err := netip.ParseAddr(strings.Trim(val, "[]")); err == nil {
		return a, 0, nil
	}
	ap, err := netip.ParseAddrPort(val)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad %s %q", name, val)
	}
	return ap.Addr(), ap.Port(), nil
}

func parseMarkTarget(opts []Option) (TargetSpec, error) {
	if len(opts) != 1 {
		return nil, errUntyped
	}
	v, err := oneArg(opts[0])
	if err != nil {
		return nil, err
	}
	value, mask, err := parseMarkMask(v)
	if err != nil {
		return nil, err
	}
	switch opts[0].Name {
	case "--set-xmark":
		return &MarkTarget{Value: value, Mask: mask}, nil
	case "--set-mark": // (mark &^ mask) | value, with value inside mask
		return &MarkTarget{Value: value, Mask: mask | value}, nil
	case "--or-mark":
		return &MarkTarget{Value: value, Mask: value}, nil
	case "--xor-mark":
		return &MarkTarget{Value: value, Mask: 0}, nil
	case "--and-mark":
		return &MarkTarget{Value: 0, Mask: ^value}, nil
	}
	return nil, errUntyped
}
