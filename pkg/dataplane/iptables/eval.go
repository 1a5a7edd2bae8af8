package iptables

import (
	"fmt"
	"net/netip"
	"slices"
)

// flow is one branch of a traced packet: the packet as the rules have
// rewritten it so far, the share of first packets that take this branch, and
// what has been done to it.
type flow struct {
	mass       float64
	src, dst   netip.Addr
	dport      uint16
	proto      string
	mark       uint32
	dnat, snat bool // rewritten by DNAT/REDIRECT, SNAT/MASQUERADE
	path       *pathNode
}

// pathNode is one chain entered, linked to the one before: branches share
// their common prefix, so entering a chain or splitting a branch costs the
// same however long the path already is.
type pathNode struct {
	label string
	prev  *pathNode
	n     int // length of the path ending here
}

func (p *pathNode) push(label string) *pathNode {
	n := 1
	if p != nil {
		n = p.n + 1
	}
	return &pathNode{label: label, prev: p, n: n}
}

// slice returns the path from its first chain.
func (p *pathNode) slice() []string {
	if p == nil {
		return []string{}
	}
	out := make([]string, p.n)
	for i := p.n - 1; p != nil; i, p = i-1, p.prev {
		out[i] = p.label
	}
	return out
}

// split returns a copy of f carrying the given share of its mass.
func (f *flow) split(share float64) flow {
	g := *f
	g.mass *= share
	return g
}

// matchProb returns the chance that rule r matches f: 0 or 1 for the
// deterministic matches, a fraction for -m statistic. It stops at the first
// match that fails, as the kernel does, so a match it cannot evaluate only
// causes an error when the packet really reaches it.
func (t *Tracer) matchProb(r *Rule, f *flow) (float64, error) {
	if r.Source.Set && r.Source.Prefix.Contains(f.src) == r.Source.Negate {
		return 0, nil
	}
	if r.Destination.Set && r.Destination.Prefix.Contains(f.dst) == r.Destination.Negate {
		return 0, nil
	}
	if pm := r.Protocol; pm.Name != "" {
		if (pm.Name == "all" || pm.Name == f.proto) == pm.Negate {
			return 0, nil
		}
	}
	if r.Fragment != nil && *r.Fragment {
		return 0, nil // a connection's first packet is never a later fragment
	}
	if r.InIface.Name != "" || r.OutIface.Name != "" {
		return 0, fmt.Errorf("interface matches (-i/-o) are not modelled: a Packet carries no interface")
	}
	prob := 1.0
	for i := range r.Matches {
		m := &r.Matches[i]
		p, err := t.evalMatch(m, f)
		if err != nil {
			return 0, err
		}
		if p == 0 {
			return 0, nil
		}
		prob *= p
	}
	return prob, nil
}

// evalMatch evaluates one -m group; see the package doc for the model.
func (t *Tracer) evalMatch(m *Match, f *flow) (float64, error) {
	switch s := m.Spec.(type) {
	case *CommentMatch, *NFAcctMatch:
		return 1, nil
	case *PortsMatch:
		if (m.Module == "tcp" || m.Module == "udp" || m.Module == "sctp") && m.Module != f.proto {
			return 0, nil
		}
		if s.DPorts != nil && !s.DPorts.Contains(f.dport) {
			return 0, nil
		}
		if s.Either != nil && !s.Either.Negate && s.Either.Contains(f.dport) {
			return 1, nil
		}
		if s.SPorts != nil || s.Either != nil {
			return 0, fmt.Errorf("-m %s matches on the source port, which a Packet does not carry", m.Module)
		}
		return 1, nil
	case *StatisticMatch:
		p := s.Probability
		if s.Mode == "nth" {
			p = 1 / float64(s.Every)
		}
		if s.Negate {
			p = 1 - p
		}
		return p, nil
	case *RecentMatch:
		// The traced packet opens a connection from a client the rules
		// have not seen: --set always matches (and records it), the
		// look-ups find nothing.
		hit := s.Action == "set"
		if hit != s.Negate {
			return 1, nil
		}
		return 0, nil
	case *AddrTypeMatch:
		if s.LimitIfaceIn || s.LimitIfaceOut {
			return 0, fmt.Errorf("-m addrtype --limit-iface-* is not modelled")
		}
		for _, c := range []struct {
			typ    string
			neg    bool
			addr   netip.Addr
			option string
		}{{s.SrcType, s.SrcNegate, f.src, "--src-type"}, {s.DstType, s.DstNegate, f.dst, "--dst-type"}} {
			if c.typ == "" {
				continue
			}
			if c.typ != "LOCAL" {
				return 0, fmt.Errorf("-m addrtype %s %s is not modelled (only LOCAL)", c.option, c.typ)
			}
			if t.isLocal(c.addr) == c.neg {
				return 0, nil
			}
		}
		return 1, nil
	case *MarkMatch:
		if (f.mark&s.Mask == s.Value) == s.Negate {
			return 0, nil
		}
		return 1, nil
	case *ConntrackMatch:
		in := false
		for _, st := range s.States {
			if st == "NEW" || (st == "DNAT" && f.dnat) || (st == "SNAT" && f.snat) {
				in = true
				break
			}
		}
		if in == s.Negate {
			return 0, nil
		}
		return 1, nil
	case nil:
		return 0, fmt.Errorf("-m %s is not modelled", m.Module)
	}
	return 0, fmt.Errorf("-m %s: unexpected typed view %T", m.Module, m.Spec)
}

// isLocal says whether addrtype would call a an address of this node: one
// of the node IPs the tracer was given, or loopback.
func (t *Tracer) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	return slices.Contains(t.nodeIPs, a)
}
