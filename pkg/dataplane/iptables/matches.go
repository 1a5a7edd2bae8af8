package iptables

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MatchSpec is the typed view of a match module the package understands.
// The concrete types are *CommentMatch, *PortsMatch, *StatisticMatch,
// *RecentMatch, *AddrTypeMatch, *MarkMatch, *ConntrackMatch and
// *NFAcctMatch.
type MatchSpec interface{ matchSpec() }

// CommentMatch is -m comment --comment TEXT.
type CommentMatch struct{ Text string }

// PortsMatch is the port part of -m tcp/udp/sctp (--dport, --sport) or
// -m multiport (--dports, --sports, --ports). Nil sets match any port.
type PortsMatch struct {
	DPorts *PortSet
	SPorts *PortSet
	// Either is multiport --ports: source or destination port in the set.
	Either *PortSet
}

// PortSet is a list of inclusive port ranges, possibly negated.
type PortSet struct {
	Ranges []PortRange
	Negate bool
}

// PortRange is an inclusive range; a single port has First == Last.
type PortRange struct{ First, Last uint16 }

// Contains reports whether the set (with its negation) matches port p.
func (s *PortSet) Contains(p uint16) bool {
	in := false
	for _, r := range s.Ranges {
		if p >= r.First && p <= r.Last {
			in = true
			break
		}
	}
	return in != s.Negate
}

// Single returns the port when the set is exactly one non-negated port.
func (s *PortSet) Single() (uint16, bool) {
	if s == nil || s.Negate || len(s.Ranges) != 1 || s.Ranges[0].First != s.Ranges[0].Last {
		return 0, false
	}
	return s.Ranges[0].First, true
}

// StatisticMatch is -m statistic. In random mode it matches with
// Probability; in nth mode every Every-th packet, starting at Packet.
type StatisticMatch struct {
	Mode        string // "random" or "nth"
	Probability float64
	Every       uint64
	Packet      uint64
	Negate      bool
}

// RecentMatch is -m recent, which kube-proxy uses for ClientIP session
// affinity: the SEP chain --set's the client's address and the SVC chain
// --rcheck's it.
type RecentMatch struct {
	Name    string
	Action  string // "set", "rcheck", "update" or "remove"
	Seconds uint64
	Reap    bool
	Hits    uint64
	RTTL    bool
	Side    string // "rsource" (the default) or "rdest"
	Mask    string
	Negate  bool // "! --rcheck" etc.
}

// AddrTypeMatch is -m addrtype. Empty types are not matched on.
type AddrTypeMatch struct {
	SrcType, DstType     string
	SrcNegate, DstNegate bool
	LimitIfaceIn         bool
	LimitIfaceOut        bool
}

// MarkMatch is -m mark [!] --mark VALUE[/MASK]: (mark & Mask) == Value.
type MarkMatch struct {
	Value, Mask uint32
	Negate      bool
}

// ConntrackMatch is -m conntrack [!] --ctstate S1,S2; other conntrack
// options leave the match untyped.
type ConntrackMatch struct {
	States []string
	Negate bool
}

// NFAcctMatch is -m nfacct --nfacct-name NAME: it only counts, always matches.
type NFAcctMatch struct{ Name string }

func (*CommentMatch) matchSpec()   {}
func (*PortsMatch) matchSpec()     {}
func (*StatisticMatch) matchSpec() {}
func (*RecentMatch) matchSpec()    {}
func (*AddrTypeMatch) matchSpec()  {}
func (*MarkMatch) matchSpec()      {}
func (*ConntrackMatch) matchSpec() {}
func (*NFAcctMatch) matchSpec()    {}

// errUntyped says a match or target is well formed as far as we can tell but
// uses options this package does not model; it is kept generically.
var errUntyped = errors.New("not modelled")

// optionArity gives, per module (or target), how many words follow each
// known option. Options missing here take every following word up to the
// next one that starts with "-" or is "!", which is right for the usual
// "--opt value" and "--flag" shapes.
var optionArity = map[string]map[string]int{
	"comment":   {"--comment": 1},
	"tcp":       {"--dport": 1, "--destination-port": 1, "--sport": 1, "--source-port": 1, "--tcp-flags": 2, "--syn": 0, "--tcp-option": 1},
	"udp":       {"--dport": 1, "--destination-port": 1, "--sport": 1, "--source-port": 1},
	"sctp":      {"--dport": 1, "--destination-port": 1, "--sport": 1, "--source-port": 1, "--chunk-types": 2},
	"multiport": {"--dports": 1, "--destination-ports": 1, "--sports": 1, "--source-ports": 1, "--ports": 1},
	"statistic": {"--mode": 1, "--probability": 1, "--every": 1, "--packet": 1},
	"recent": {"--name": 1, "--set": 0, "--rcheck": 0, "--update": 0, "--remove": 0, "--seconds": 1,
		"--reap": 0, "--hitcount": 1, "--rttl": 0, "--rsource": 0, "--rdest": 0, "--mask": 1},
	"addrtype":  {"--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0},
	"mark":      {"--mark": 1},
	"conntrack": {"--ctstate": 1, "--ctproto": 1, "--ctorigsrc": 1, "--ctorigdst": 1, "--ctreplsrc": 1, "--ctrepldst": 1, "--ctorigsrcport": 1, "--ctorigdstport": 1, "--ctreplsrcport": 1, "--ctrepldstport": 1, "--ctstatus": 1, "--ctexpire": 1, "--ctdir": 1},
	"set":       {"--match-set": 2, "--return-nomatch": 0, "--update-counters": 0, "--update-subcounters": 0, "--packets-eq": 1, "--packets-lt": 1, "--packets-gt": 1, "--bytes-eq": 1, "--bytes-lt": 1, "--bytes-gt": 1},
	"nfacct":    {"--nfacct-name": 1},
	"physdev":   {"--physdev-in": 1, "--physdev-out": 1, "--physdev-is-in": 0, "--physdev-is-out": 0, "--physdev-is-bridged": 0},
	// targets
	"DNAT":       {"--to-destination": 1, "--random": 0, "--persistent": 0},
	"SNAT":       {"--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0},
	"MASQUERADE": {"--to-ports": 1, "--random": 0, "--random-fully": 0},
	"REDIRECT":   {"--to-ports": 1, "--random": 0},
	"MARK":       {"--set-xmark": 1, "--set-mark": 1, "--or-mark": 1, "--and-mark": 1, "--xor-mark": 1},
	"REJECT":     {"--reject-with": 1},
	"LOG":        {"--log-prefix": 1, "--log-level": 1, "--log-tcp-sequence": 0, "--log-tcp-options": 0, "--log-ip-options": 0, "--log-uid": 0, "--log-macdecode": 0},
}

// parseMatchSpec builds the typed view of a match. It returns errUntyped for
// modules or options it does not model and another error when a modelled
// option's value is malformed.
func parseMatchSpec(module string, opts []Option) (MatchSpec, error) {
	switch module {
	case "comment":
		return parseComment(opts)
	case "tcp", "udp", "sctp", "multiport":
		return parsePorts(opts)
	case "statistic":
		return parseStatistic(opts)
	case "recent":
		return parseRecent(opts)
	case "addrtype":
		return parseAddrType(opts)
	case "mark":
		return parseMarkMatch(opts)
	case "conntrack":
		return parseConntrack(opts)
	case "nfacct":
		return parseNFAcct(opts)
	}
	return nil, errUntyped
}

func oneArg(o Option) (string, error) {
	if len(o.Args) != 1 {
		return "", fmt.Errorf("%s takes one value, got %d", o.Name, len(o.Args))
	}
	return o.Args[0], nil
}

func noArg(o Option) error {
	if len(o.Args) != 0 {
		return fmt.Errorf("%s takes no value, got %q", o.Name, o.Args)
	}
	return nil
}

func parseComment(opts []Option) (MatchSpec, error) {
	m := &CommentMatch{}
	for _, o := range opts {
		if o.Name != "--comment" || o.Negate {
			return nil, errUntyped
		}
		v, err := oneArg(o)
		if err != nil {
			return nil, err
		}
		m.Text = v
	}
	return m, nil
}

func parsePorts(opts []Option) (MatchSpec, error) {
	m := &PortsMatch{}
	for _, o := range opts {
		v, err := oneArg(o)
		if err != nil {
			return nil, errUntyped
		}
		var dst **PortSet
		switch o.Name {
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			dst = &m.DPorts
		case "--sport", "--source-port", "--sports", "--source-ports":
			dst = &m.SPorts
		case "--ports":
			dst = &m.Either
		default:
			return nil, errUntyped
		}
		set, err := parsePortSet(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		set.Negate = o.Negate
		*dst = set
	}
	return m, nil
}

// parsePortSet reads "80", "1000:2000" or a multiport list "80,443,8000:8080".
func parsePortSet(s string) (*PortSet, error) {
	set := &PortSet{}
	for _, part := range strings.Split(s, ",") {
		first, last, isRange := strings.Cut(part, ":")
		lo, hi := uint64(0), uint64(65535)
		var err error
		if first != "" || !isRange {
			if lo, err = strconv.ParseUint(first, 10, 16); err != nil {
				return nil, fmt.Errorf("bad port %q", part)
			}
		}
		if !isRange {
			hi = lo
		} else if last != "" {
			if hi, err = strconv.ParseUint(last, 10, 16); err != nil {
				return nil, fmt.Errorf("bad port range %q", part)
			}
		}
		if lo > hi {
			return nil, fmt.Errorf("port range %q is backwards", part)
		}
		set.Ranges = append(set.Ranges, PortRange{First: uint16(lo), Last: uint16(hi)})
	}
	return set, nil
}

func parseStatistic(opts []Option) (MatchSpec, error) {
	m := &StatisticMatch{}
	for _, o := range opts {
		v, err := oneArg(o)
		if err != nil {
			return nil, err
		}
		switch o.Name {
		case "--mode":
			if v != "random" && v != "nth" {
				return nil, fmt.Errorf("unknown statistic mode %q", v)
			}
			m.Mode = v
		case "--probability":
			p, err := strconv.ParseFloat(v, 64)
			if err != nil || p < 0 || p > 1 || p != p {
				return nil, fmt.Errorf("bad probability %q", v)
			}
			m.Probability = p
			m.Negate = m.Negate || o.Negate
		case "--every":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("bad --every %q", v)
			}
			m.Every = n
			m.Negate = m.Negate || o.Negate
		case "--packet":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad --packet %q", v)
			}
			m.Packet = n
		default:
			return nil, errUntyped
		}
	}
	if m.Mode == "" {
		return nil, errors.New("statistic without --mode")
	}
	if m.Mode == "nth" && m.Every == 0 {
		return nil, errors.New("statistic nth without --every")
	}
	return m, nil
}

func parseRecent(opts []Option) (MatchSpec, error) {
	m := &RecentMatch{Side: "rsource"}
	for _, o := range opts {
		switch o.Name {
		case "--set", "--rcheck", "--update", "--remove":
			if err := noArg(o); err != nil {
				return nil, err
			}
			if m.Action != "" {
				return nil, errors.New("recent with more than one of --set/--rcheck/--update/--remove")
			}
			m.Action = strings.TrimPrefix(o.Name, "--")
			m.Negate = o.Negate
		case "--rsource", "--rdest":
			m.Side = strings.TrimPrefix(o.Name, "--")
		case "--reap":
			m.Reap = true
		case "--rttl":
			m.RTTL = true
		case "--name", "--mask":
			v, err := oneArg(o)
			if err != nil {
				return nil, err
			}
			if o.Name == "--name" {
				m.Name = v
			} else {
				m.Mask = v
			}
		case "--seconds", "--hitcount":
			v, err := oneArg(o)
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad %s %q", o.Name, v)
			}
			if o.Name == "--seconds" {
				m.Seconds = n
			} else {
				m.Hits = n
			}
		default:
			return nil, errUntyped
		}
	}
	if m.Action == "" {
		return nil, errors.New("recent without --set/--rcheck/--update/--remove")
	}
	return m, nil
}

func parseAddrType(opts []Option) (MatchSpec, error) {
	m := &AddrTypeMatch{}
	for _, o := range opts {
		switch o.Name {
		case "--src-type", "--dst-type":
			v, err := oneArg(o)
			if err != nil {
				return nil, err
			}
			if o.Name == "--src-type" {
				m.SrcType, m.SrcNegate = v, o.Negate
			} else {
				m.DstType, m.DstNegate = v, o.Negate
			}
		case "--limit-iface-in":
			m.LimitIfaceIn = true
		case "--limit-iface-out":
			m.LimitIfaceOut = true
		default:
			return nil, errUntyped
		}
	}
	return m, nil
}

func parseMarkMatch(opts []Option) (MatchSpec, error) {
	if len(opts) != 1 || opts[0].Name != "--mark" {
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
	return &MarkMatch{Value: value, Mask: mask, Negate: opts[0].Negate}, nil
}

// parseMarkMask reads "VALUE[/MASK]"; a missing mask means all bits.
func parseMarkMask(s string) (value, mask uint32, err error) {
	vs, ms, hasMask := strings.Cut(s, "/")
	v, err := strconv.ParseUint(vs, 0, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("bad mark %q", s)
	}
	m := uint64(0xffffffff)
	if hasMask {
		if m, err = strconv.ParseUint(ms, 0, 32); err != nil {
			return 0, 0, fmt.Errorf("bad mark mask %q", s)
		}
	}
	return uint32(v), uint32(m), nil
}

func parseConntrack(opts []Option) (MatchSpec, error) {
	if len(opts) != 1 || opts[0].Name != "--ctstate" {
		return nil, errUntyped
	}
	v, err := oneArg(opts[0])
	if err != nil {
		return nil, err
	}
	m := &ConntrackMatch{Negate: opts[0].Negate}
	for _, s := range strings.Split(v, ",") {
		switch s {
		case "NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT":
			m.States = append(m.States, s)
		default:
			return nil, fmt.Errorf("unknown conntrack state %q", s)
		}
	}
	return m, nil
}

func parseNFAcct(opts []Option) (MatchSpec, error) {
	if len(opts) != 1 || opts[0].Name != "--nfacct-name" || opts[0].Negate {
		return nil, errUntyped
	}
	v, err := oneArg(opts[0])
	if err != nil {
		return nil, err
	}
	return &NFAcctMatch{Name: v}, nil
}
