package iptables

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/netconform/netconform/pkg/dataplane"
)

const (
	// maxDepth bounds nested jumps; kube-proxy nests four deep
	// (KUBE-SERVICES, KUBE-EXT, KUBE-SVC, KUBE-SEP, KUBE-MARK-MASQ), and a
	// loop in a hand-edited dump must end in an error, not a crash.
	maxDepth = 64
	// maxBranches bounds how many branches one trace may grow into.
	maxBranches = 1 << 16
	// maxSteps bounds the rules one trace evaluates: chains that jump
	// into each other many times over (no loop, but a wide fan-out) would
	// otherwise take exponential time. A kube-proxy dump of 5,000 Services
	// needs tens of thousands.
	maxSteps = 1_000_000
)

// Tracer predicts what a node's iptables rules do to the first packet of a
// connection. It is read-only after construction and safe for concurrent
// use.
type Tracer struct {
	rs      *Ruleset
	nodeIPs []netip.Addr
}

var _ dataplane.Tracer = (*Tracer)(nil)

// NewTracer returns a tracer over rs for a node with the given IPs, which
// -m addrtype LOCAL matches (with loopback).
func NewTracer(rs *Ruleset, nodeIPs []netip.Addr) *Tracer {
	ips := make([]netip.Addr, 0, len(nodeIPs))
	for _, a := range nodeIPs {
		ips = append(ips, a.Unmap())
	}
	return &Tracer{rs: rs, nodeIPs: ips}
}

// fate is how a walk through a chain ends for one branch.
type fate int

const (
	fateNext   fate = iota // go on with the calling chain's next rule
	fateReturn             // RETURN, or the end of a user chain
	fateAccept             // ACCEPT or a NAT target: this hook is done
	fateDrop
	fateReject
)

// outcome is one branch at the end of a chain or hook.
type outcome struct {
	f    flow
	fate fate
	rule string // the deciding rule, for drop and reject
}

// walker carries one trace's state through the chains.
type walker struct {
	t        *Tracer
	curHook  string // builtin chain of the current hook, e.g. "PREROUTING"
	branches int
	steps    int
}

// Trace follows p through nat and filter, branch by branch.
func (t *Tracer) Trace(p dataplane.Packet) (dataplane.Result, error) {
	if err := validatePacket(p); err != nil {
		return dataplane.Result{}, fmt.Errorf("tracing packet: %w", err)
	}
	w := &walker{t: t}
	start := flow{mass: 1, src: p.Src.Unmap(), dst: p.Dst.Unmap(), dport: p.DPort, proto: p.Proto}
	var finals []outcome
	var err error
	if p.From == dataplane.FromLocal {
		finals, err = w.fromLocal(start)
	} else {
		finals, err = w.fromOutside(start)
	}
	if err != nil {
		return dataplane.Result{}, fmt.Errorf("tracing %s packet %s -> %s %s/%d: %w", p.From, p.Src, p.Dst, p.Proto, p.DPort, err)
	}
	return assemble(finals), nil
}

func validatePacket(p dataplane.Packet) error {
	switch {
	case !p.Src.IsValid() || !p.Dst.IsValid():
		return errors.New("source and destination must be set")
	case p.Src.Unmap().Is4() != p.Dst.Unmap().Is4():
		return fmt.Errorf("source %s and destination %s are of different IP families", p.Src, p.Dst)
	case p.Proto != "tcp" && p.Proto != "udp" && p.Proto != "sctp":
		return fmt.Errorf("protocol %q is not tcp, udp or sctp", p.Proto)
	case p.DPort == 0:
		return errors.New("destination port 0")
	}
	switch p.From {
	case dataplane.FromPod, dataplane.FromExternal, dataplane.FromLocal:
		return nil
	}
	return fmt.Errorf("origin %q is not pod, external or local", p.From)
}

// fromOutside is a routed packet: nat PREROUTING, then the routing decision
// on the (possibly DNATed) destination: a local one goes through filter
// INPUT and nat INPUT, any other through filter FORWARD and nat
// POSTROUTING.
func (w *walker) fromOutside(f flow) ([]outcome, error) {
	var finals []outcome
	pre, err := w.hook("nat", "PREROUTING", []flow{f}, &finals)
	if err != nil {
		return nil, err
	}
	for _, g := range pre {
		stages := [][2]string{{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}
		if w.t.isLocal(g.dst) {
			stages = [][2]string{{"filter", "INPUT"}, {"nat", "INPUT"}}
		}
		if err := w.stages(g, stages, &finals); err != nil {
			return nil, err
		}
	}
	return finals, nil
}

// fromLocal is a packet the node sends: nat OUTPUT, filter OUTPUT, nat
// POSTROUTING, and, when it is for the node itself, filter INPUT after the
// loopback (nat INPUT is skipped: POSTROUTING already set up its source
// NAT).
func (w *walker) fromLocal(f flow) ([]outcome, error) {
	var finals []outcome
	out, err := w.hook("nat", "OUTPUT", []flow{f}, &finals)
	if err != nil {
		return nil, err
	}
	for _, g := range out {
		stages := [][2]string{{"filter", "OUTPUT"}, {"nat", "POSTROUTING"}}
		if w.t.isLocal(g.dst) {
			stages = append(stages, [2]string{"filter", "INPUT"})
		}
		if err := w.stages(g, stages, &finals); err != nil {
			return nil, err
		}
	}
	return finals, nil
}

// stages runs a branch through hooks in order; what survives them all is
// accepted.
func (w *walker) stages(f flow, stages [][2]string, finals *[]outcome) error {
	flows := []flow{f}
	for _, s := range stages {
		var err error
		flows, err = w.hook(s[0], s[1], flows, finals)
		if err != nil {
			return err
		}
	}
	for _, g := range flows {
		*finals = append(*finals, outcome{f: g, fate: fateAccept})
	}
	return nil
}

// hook runs flows through one builtin chain. Branches the hook lets through
// are returned; dropped and rejected ones are added to finals. A table or
// chain missing from the dump lets everything through.
func (w *walker) hook(table, chain string, flows []flow, finals *[]outcome) ([]flow, error) {
	tb := w.t.rs.Table(table)
	if tb == nil || tb.Chain(chain) == nil {
		return flows, nil
	}
	c := tb.Chain(chain)
	w.curHook = chain
	var passed []flow
	for _, f := range flows {
		var outs []outcome
		if err := w.walk(tb, c, table+"/"+chain, f, 0, &outs); err != nil {
			return nil, err
		}
		for _, o := range outs {
			switch o.fate {
			case fateAccept:
				passed = append(passed, o.f)
			case fateReturn: // end of the builtin chain (or RETURN in it)
				if c.Policy == "DROP" {
					*finals = append(*finals, outcome{f: o.f, fate: fateDrop, rule: c.Decl})
				} else {
					passed = append(passed, o.f)
				}
			default:
				*finals = append(*finals, o)
			}
		}
	}
	return passed, nil
}

// walk enters chain c (shown in the path as label) with f and appends how
// each branch leaves it to out.
func (w *walker) walk(tb *Table, c *Chain, label string, f flow, depth int, out *[]outcome) error {
	if depth > maxDepth {
		return fmt.Errorf("chain %s: jumps nested deeper than %d (a loop?)", c.Name, maxDepth)
	}
	f.path = f.path.push(label)
	return w.walkFrom(tb, c, 0, f, depth, out)
}

// walkFrom evaluates c's rules from index start. A statistic match splits
// the branch: the matching share takes the target, the rest goes on to the
// next rule.
func (w *walker) walkFrom(tb *Table, c *Chain, start int, f flow, depth int, out *[]outcome) error {
	for i := start; i < len(c.Rules); i++ {
		if w.steps++; w.steps > maxSteps {
			return fmt.Errorf("more than %d rule evaluations", maxSteps)
		}
		r := c.Rules[i]
		p, err := w.t.matchProb(r, &f)
		if err != nil {
			return fmt.Errorf("%s %s line %d (%s): %w", tb.Name, c.Name, r.Line, r.Text, err)
		}
		if p == 0 {
			continue
		}
		var rest *flow
		if p < 1 {
			if w.branches++; w.branches > maxBranches {
				return fmt.Errorf("more than %d branches", maxBranches)
			}
			g := f.split(1 - p)
			rest = &g
			f.mass *= p
		}
		results, err := w.apply(tb, r, f, depth)
		if err != nil {
			return fmt.Errorf("%s %s line %d (%s): %w", tb.Name, c.Name, r.Line, r.Text, err)
		}
		if rest == nil && len(results) == 1 && results[0].fate == fateNext {
			f = results[0].f // the common case: go on in this chain
			continue
		}
		for _, o := range results {
			if o.fate != fateNext {
				*out = append(*out, o)
				continue
			}
			if err := w.walkFrom(tb, c, i+1, o.f, depth, out); err != nil {
				return err
			}
		}
		if rest == nil {
			return nil
		}
		f = *rest
	}
	*out = append(*out, outcome{f: f, fate: fateReturn})
	return nil
}

// apply performs r's target on f.
func (w *walker) apply(tb *Table, r *Rule, f flow, depth int) ([]outcome, error) {
	tg := &r.Target
	switch tg.Kind {
	case TargetNone:
		return []outcome{{f: f, fate: fateNext}}, nil
	case TargetJump, TargetGoto:
		callee := tb.Chain(tg.Name)
		if callee == nil {
			return nil, fmt.Errorf("jump to unknown chain %s", tg.Name)
		}
		var outs []outcome
		if err := w.walk(tb, callee, callee.Name, f, depth+1, &outs); err != nil {
			return nil, err
		}
		if tg.Kind == TargetJump {
			for i := range outs {
				if outs[i].fate == fateReturn {
					outs[i].fate = fateNext
				}
			}
		}
		return outs, nil
	}
	one := func(fa fate) ([]outcome, error) { return []outcome{{f: f, fate: fa, rule: r.Text}}, nil }
	switch tg.Name {
	case "ACCEPT":
		return one(fateAccept)
	case "DROP":
		return one(fateDrop)
	case "REJECT":
		return one(fateReject)
	case "RETURN":
		return one(fateReturn)
	case "LOG", "NFLOG", "TRACE", "AUDIT":
		return one(fateNext)
	}
	switch s := tg.Spec.(type) {
	case *MarkTarget:
		f.mark = s.Apply(f.mark)
		return one(fateNext)
	case *DNATTarget:
		f.dst, f.dnat = s.Addr.Unmap(), true
		if s.Port != 0 {
			f.dport = s.Port
		}
		return one(fateAccept)
	case *RedirectTarget:
		f.dst, f.dnat = w.redirectAddr(f.dst), true
		if s.Port != 0 {
			f.dport = s.Port
		}
		return one(fateAccept)
	case *SNATTarget, *MasqueradeTarget:
		f.snat = true
		return one(fateAccept)
	}
	return nil, fmt.Errorf("target %s is not modelled", tg.Name)
}

// redirectAddr is where REDIRECT sends a packet: loopback for the node's own
// packets, else the node's first address of the packet's family.
func (w *walker) redirectAddr(dst netip.Addr) netip.Addr {
	lo := netip.MustParseAddr("127.0.0.1")
	if dst.Is6() {
		lo = netip.IPv6Loopback()
	}
	if w.curHook == "OUTPUT" {
		return lo
	}
	for _, a := range w.t.nodeIPs {
		if a.Is4() == dst.Is4() {
			return a
		}
	}
	return lo
}

// assemble turns the final branches into a Result; see the package doc for
// how mixed outcomes are reported.
func assemble(finals []outcome) dataplane.Result {
	res := dataplane.Result{Destinations: []dataplane.Destination{}}
	var accepted []outcome
	var worst *outcome // the heaviest branch not accepted
	dnat := false
	for i := range finals {
		o := &finals[i]
		if o.fate == fateAccept {
			accepted = append(accepted, *o)
			dnat = dnat || o.f.dnat
			continue
		}
		if worst == nil || o.f.mass > worst.f.mass {
			worst = o
		}
	}
	if worst != nil {
		res.Rule = worst.rule
	}
	if len(accepted) == 0 {
		res.Verdict = dataplane.Drop
		if worst != nil && worst.fate == fateReject {
			res.Verdict = dataplane.Reject
		}
		return res
	}
	res.Verdict = dataplane.Accept
	if !dnat {
		return res
	}
	for _, o := range accepted {
		res.Destinations = append(res.Destinations, dataplane.Destination{
			IP:          o.f.dst,
			Port:        o.f.dport,
			Probability: o.f.mass,
			Masquerade:  o.f.snat,
			Path:        o.f.path.slice(),
		})
	}
	return res
}
