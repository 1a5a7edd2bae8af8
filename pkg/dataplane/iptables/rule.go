package iptables

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// protocolNumbers maps the numbers iptables-save prints for protocols
// without a name in /etc/protocols to the names a Packet uses.
var protocolNumbers = map[string]string{
	"0": "all", "1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp",
}

// parseRuleArgs fills r from the words after "-A CHAIN".
func parseRuleArgs(r *Rule, toks []token) error {
	var (
		negate bool
		// curMatch indexes the match that bare --options belong to: the
		// last -m, until a base option (-s, -p, ...) ends it.
		curMatch = -1
		inTarget bool
		hasTgt   bool
	)
	arg := func(i int, opt string) (string, error) {
		if i+1 >= len(toks) {
			return "", fmt.Errorf("%s needs a value", opt)
		}
		return toks[i+1].text, nil
	}
	for i := 0; i < len(toks); {
		t := toks[i]
		if !t.quoted && t.text == "!" {
			if negate {
				return errors.New("doubled !")
			}
			negate = true
			i++
			continue
		}
		if t.quoted || !strings.HasPrefix(t.text, "-") || t.text == "-" {
			return fmt.Errorf("unexpected word %q", t.text)
		}
		switch t.text {
		case "-s", "--source", "--src", "-d", "--destination", "--dst":
			v, err := arg(i, t.text)
			if err != nil {
				return err
			}
			pfx, err := parsePrefix(v)
			if err != nil {
				return fmt.Errorf("%s: %w", t.text, err)
			}
			m := AddrMatch{Set: true, Prefix: pfx, Negate: negate}
			if t.text == "-s" || t.text == "--source" || t.text == "--src" {
				r.Source = m
			} else {
				r.Destination = m
			}
			i += 2
			inTarget, curMatch = false, -1
		case "-p", "--protocol":
			v, err := arg(i, t.text)
			if err != nil {
				return err
			}
			name := strings.ToLower(v)
			if n, ok := protocolNumbers[name]; ok {
				name = n
			}
			if name == "" {
				return errors.New("empty protocol")
			}
			r.Protocol = ProtoMatch{Name: name, Negate: negate}
			i += 2
			inTarget, curMatch = false, -1
		case "-i", "--in-interface", "-o", "--out-interface":
			v, err := arg(i, t.text)
			if err != nil {
				return err
			}
			if v == "" {
				return fmt.Errorf("%s: empty interface name", t.text)
			}
			m := IfaceMatch{Name: v, Negate: negate}
			if t.text == "-i" || t.text == "--in-interface" {
				r.InIface = m
			} else {
				r.OutIface = m
			}
			i += 2
			inTarget, curMatch = false, -1
		case "-f", "--fragment":
			f := !negate
			r.Fragment = &f
			i++
			inTarget, curMatch = false, -1
		case "-m", "--match":
			if negate {
				return errors.New("! before -m")
			}
			v, err := arg(i, t.text)
			if err != nil {
				return err
			}
			if v == "" {
				return errors.New("-m without a module name")
			}
			r.Matches = append(r.Matches, Match{Module: v})
			curMatch = len(r.Matches) - 1
			i += 2
			inTarget = false
		case "-j", "--jump", "-g", "--goto":
			if negate {
				return fmt.Errorf("! before %s", t.text)
			}
			if hasTgt {
				return errors.New("more than one target")
			}
			v, err := arg(i, t.text)
			if err != nil {
				return err
			}
			if v == "" {
				return fmt.Errorf("%s without a name", t.text)
			}
			r.Target = Target{Kind: TargetBuiltin, Name: v}
			if t.text == "-g" || t.text == "--goto" {
				r.Target.Kind = TargetGoto
			}
			hasTgt, inTarget = true, true
			i += 2
		case "-c", "--set-counters":
			if i+2 >= len(toks) {
				return errors.New("-c needs packets and bytes")
			}
			c, err := parseCounters("[" + toks[i+1].text + ":" + toks[i+2].text + "]")
			if err != nil {
				return err
			}
			r.Counters = &c
			i += 3
		default:
			if !strings.HasPrefix(t.text, "--") {
				return fmt.Errorf("unknown option %s", t.text)
			}
			var owner string
			var opts *[]Option
			switch {
			case inTarget:
				if r.Target.Kind == TargetGoto {
					return fmt.Errorf("option %s after -g", t.text)
				}
				owner, opts = r.Target.Name, &r.Target.Options
			case curMatch >= 0:
				owner, opts = r.Matches[curMatch].Module, &r.Matches[curMatch].Options
			case r.Protocol.Name != "" && r.Protocol.Name != "all":
				// "-p tcp --dport 80" without "-m tcp": the protocol's
				// implicit match, which iptables-restore accepts.
				r.Matches = append(r.Matches, Match{Module: r.Protocol.Name})
				curMatch = len(r.Matches) - 1
				owner, opts = r.Matches[curMatch].Module, &r.Matches[curMatch].Options
			default:
				return fmt.Errorf("option %s outside any match or target", t.text)
			}
			o := Option{Name: t.text, Negate: negate}
			n, known := optionArity[owner][t.text]
			j := i + 1
			if known {
				if j+n > len(toks) {
					return fmt.Errorf("%s %s needs %d value(s)", owner, t.text, n)
				}
				for k := 0; k < n; k++ {
					o.Args = append(o.Args, toks[j+k].text)
				}
				j += n
			} else {
				for j < len(toks) && (toks[j].quoted || (!strings.HasPrefix(toks[j].text, "-") && toks[j].text != "!")) {
					o.Args = append(o.Args, toks[j].text)
					j++
				}
			}
			*opts = append(*opts, o)
			i = j
		}
		negate = false
	}
	if negate {
		return errors.New("! at end of rule")
	}
	return typeRule(r)
}

// typeRule fills the typed views of the rule's matches and target.
func typeRule(r *Rule) error {
	for i := range r.Matches {
		m := &r.Matches[i]
		spec, err := parseMatchSpec(m.Module, m.Options)
		switch {
		case errors.Is(err, errUntyped):
		case err != nil:
			return fmt.Errorf("-m %s: %w", m.Module, err)
		default:
			m.Spec = spec
		}
	}
	t := &r.Target
	if t.Kind != TargetBuiltin {
		return nil
	}
	switch t.Name {
	case "ACCEPT", "DROP", "RETURN":
		if len(t.Options) > 0 {
			return fmt.Errorf("-j %s takes no options", t.Name)
		}
		return nil
	}
	spec, err := parseTargetSpec(t.Name, t.Options)
	switch {
	case errors.Is(err, errUntyped):
	case err != nil:
		return fmt.Errorf("-j %s: %w", t.Name, err)
	default:
		t.Spec = spec
	}
	return nil
}

// parsePrefix reads ADDR, ADDR/LEN or ADDR/DOTTED-MASK (iptables-save prints
// the last for masks that are not a prefix length; only contiguous ones are
// accepted here).
func parsePrefix(s string) (netip.Prefix, error) {
	addrS, maskS, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrS)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address with zone %q", s)
	}
	bits := a.BitLen()
	if hasMask {
		if n, err := strconv.Atoi(maskS); err == nil {
			bits = n
		} else {
			m, err := netip.ParseAddr(maskS)
			if err != nil || m.BitLen() != a.BitLen() {
				return netip.Prefix{}, fmt.Errorf("bad mask %q", s)
			}
			bits, err = maskLen(m)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("%q: %w", s, err)
			}
		}
	}
	p, err := a.Prefix(bits)
	if err != nil || bits < 0 {
		return netip.Prefix{}, fmt.Errorf("bad prefix length in %q", s)
	}
	return p, nil
}

// maskLen turns a dotted mask into a prefix length.
func maskLen(m netip.Addr) (int, error) {
	n, ended := 0, false
	for _, b := range m.AsSlice() {
		for bit := 7; bit >= 0; bit-- {
			set := b&(1<<bit) != 0
			switch {
			case set && ended:
				return 0, errors.New("non-contiguous mask")
			case set:
				n++
			default:
				ended = true
			}
		}
	}
	return n, nil
}
