package nftables

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/netconform/netconform/pkg/dataplane"
)

// Limits that keep a trace of a hostile or looping ruleset finite. The
// kernel itself allows 16 nested jumps; gotos do not nest there but do here.
const (
	maxChainDepth = 64
	maxBranches   = 4096
	maxSteps      = 1 << 18 // a 5,000-Service trace takes about 30
)

// NewTracer returns a Tracer over rs for a node owning nodeIPs. The node IPs
// decide `fib ... type local` and whether a packet is delivered locally
// (input) or forwarded.
func NewTracer(rs *Ruleset, nodeIPs []netip.Addr) dataplane.Tracer {
	t := &tracer{rs: rs, index: map[*Set]map[string]int{}, hooks: map[*Table]map[string][]*Chain{}}
	for _, ip := range nodeIPs {
		t.nodeIPs = append(t.nodeIPs, ip.Unmap())
	}
	for _, tb := range rs.Tables {
		if tb.Name != KubeProxyTable {
			continue
		}
		for _, s := range tb.Sets {
			t.index[s] = buildIndex(s)
		}
		// A 5,000-Service table has some 20,000 chains of which eight
		// are base chains; find those once, not on every trace.
		t.hooks[tb] = map[string][]*Chain{}
		for _, hook := range []string{"prerouting", "input", "forward", "output", "postrouting"} {
			t.hooks[tb][hook] = tb.BaseChains(hook)
		}
	}
	return t
}

// buildIndex maps exact element keys to their position so the lookup in a
// 10,000-element service-ips map is a hash probe; nil means the set has
// prefixes or ranges and is scanned instead.
func buildIndex(s *Set) map[string]int {
	idx := make(map[string]int, len(s.Elements))
	for i, el := range s.Elements {
		k, ok := exactKey(el.Key)
		if !ok {
			return nil
		}
		if _, dup := idx[k]; !dup {
			idx[k] = i
		}
	}
	return idx
}

type tracer struct {
	rs      *Ruleset
	nodeIPs []netip.Addr
	// index and hooks are read-only after NewTracer, so Trace is safe
	// for concurrent use.
	index map[*Set]map[string]int
	hooks map[*Table]map[string][]*Chain
}

// branch is one way the packet may go, with the state the rules gave it.
type branch struct {
	src, dst netip.Addr
	dport    uint16
	l4proto  uint64
	proto    string
	mark     uint64
	dnat     bool
	masq     bool
	prob     float64
	path     []string
	via      viaRef // the map element that led into the current chain
}

func (b *branch) fork(prob float64) *branch {
	c := *b
	c.prob = prob
	c.path = slices.Clone(b.path)
	return &c
}

// final is a branch whose fate is sealed: accepted after the last hook, or
// dropped or rejected by rule.
type final struct {
	b       *branch
	verdict dataplane.Verdict
	rule    string
}

// run is the state of one Trace call.
type run struct {
	t      *tracer
	tables []*Table
	v6     bool
	steps  int
	finals []final
	forks  int // branches created so far, against maxBranches
}

func (t *tracer) Trace(p dataplane.Packet) (dataplane.Result, error) {
	if err := validate(p); err != nil {
		return dataplane.Result{}, fmt.Errorf("tracing %v: %w", p, err)
	}
	r := &run{t: t, v6: p.Dst.Unmap().Is6()}
	for _, tb := range t.rs.Tables {
		if tb.Name != KubeProxyTable {
			continue
		}
		if tb.Family == "inet" || (tb.Family == "ip" && !r.v6) || (tb.Family == "ip6" && r.v6) {
			r.tables = append(r.tables, tb)
		}
	}
	if len(r.tables) == 0 {
		fam := "ip"
		if r.v6 {
			fam = "ip6"
		}
		return dataplane.Result{}, fmt.Errorf("tracing %v: the dump has no %s %s table", p, fam, KubeProxyTable)
	}
	start := &branch{
		src: p.Src.Unmap(), dst: p.Dst.Unmap(), dport: p.DPort,
		proto: p.Proto, l4proto: ipProtocols[p.Proto], prob: 1,
	}
	r.forks = 1
	if err := r.walk(p.From, start); err != nil {
		return dataplane.Result{}, fmt.Errorf("tracing %v: %w", p, err)
	}
	return r.result(), nil
}

func validate(p dataplane.Packet) error {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return errors.New("source and destination must be set")
	}
	if p.Src.Unmap().Is4() != p.Dst.Unmap().Is4() {
		return errors.New("source and destination are of different IP families")
	}
	switch p.Proto {
	case "tcp", "udp", "sctp":
	default:
		return fmt.Errorf("protocol %q is not tcp, udp or sctp", p.Proto)
	}
	switch p.From {
	case dataplane.FromPod, dataplane.FromExternal, dataplane.FromLocal:
	default:
		return fmt.Errorf("unknown origin %q", p.From)
	}
	return nil
}

// walk sends the packet through the hooks its origin and routing decide.
func (r *run) walk(from dataplane.Origin, b *branch) error {
	first := "prerouting"
	if from == dataplane.FromLocal {
		first = "output"
	}
	passed, err := r.hook(first, []*branch{b})
	if err != nil {
		return err
	}
	var local, routed []*branch
	for _, b := range passed {
		if r.isLocal(b.dst) {
			local = append(local, b)
		} else {
			routed = append(routed, b)
		}
	}
	if from == dataplane.FromLocal {
		// Locally generated packets meet postrouting whatever their
		// destination, then input if they loop back to this node.
		local, routed = nil, passed
	} else if routed, err = r.hook("forward", routed); err != nil {
		return err
	}
	if routed, err = r.hook("postrouting", routed); err != nil {
		return err
	}
	if from == dataplane.FromLocal {
		for _, b := range routed {
			if r.isLocal(b.dst) {
				local = append(local, b)
			} else {
				r.finish(b, dataplane.Accept, "")
			}
		}
	} else {
		for _, b := range routed {
			r.finish(b, dataplane.Accept, "")
		}
	}
	delivered, err := r.hook("input", local)
	if err != nil {
		return err
	}
	for _, b := range delivered {
		r.finish(b, dataplane.Accept, "")
	}
	return nil
}

func (r *run) finish(b *branch, v dataplane.Verdict, rule string) {
	r.finals = append(r.finals, final{b: b, verdict: v, rule: rule})
}

func (r *run) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	return slices.Contains(r.t.nodeIPs, a)
}

// hook runs the base chains of every traced table attached to hook, lowest
// priority first, and returns the branches that pass all of them.
func (r *run) hook(name string, in []*branch) ([]*branch, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var chains []*Chain
	for _, tb := range r.tables {
		chains = append(chains, r.t.hooks[tb][name]...)
	}
	sort.SliceStable(chains, func(i, j int) bool { return chains[i].Priority < chains[j].Priority })
	cur := in
	for _, c := range chains {
		for _, b := range cur {
			b.via = viaRef{}
		}
		cont, done, err := r.chain(r.tableOf(c), c, cur, 0)
		if err != nil {
			return nil, err
		}
		var next []*branch
		for _, b := range cont {
			if c.Policy == "drop" {
				r.finish(b, dataplane.Drop, fmt.Sprintf("%s: policy drop", c.Name))
				continue
			}
			next = append(next, b)
		}
		for _, d := range done {
			switch d.kind {
			case outAccept, outNAT:
				next = append(next, d.b)
			case outDrop:
				r.finish(d.b, dataplane.Drop, d.dec.String())
			case outReject:
				r.finish(d.b, dataplane.Reject, d.dec.String())
			}
		}
		cur = next
	}
	return cur, nil
}

func (r *run) tableOf(c *Chain) *Table {
	for _, tb := range r.tables {
		if tb.Family == c.Family && tb.Name == c.Table {
			return tb
		}
	}
	return nil
}

// viaRef is the verdict map element that sent a branch into a chain; it is
// rendered only when a drop or reject is reported.
type viaRef struct {
	mapName string
	el      Element
}

func (v viaRef) String() string {
	if v.mapName == "" {
		return ""
	}
	return v.mapName + " element " + v.el.String()
}

// decision is the rule that dropped or rejected a branch, rendered as
// "<chain>: <rule> (via <element>)" only for the final result.
type decision struct {
	c   *Chain
	r   *Rule
	via viaRef
}

func (d decision) String() string {
	s := describeRule(d.c, d.r)
	if d.via.mapName != "" {
		s += " (via " + d.via.String() + ")"
	}
	return s
}

type outKind uint8

const (
	outNext   outKind = iota // the rule did not match or ended without verdict
	outMatch                 // the statement matched: evaluate the next one
	outReturn                // return to the calling chain
	outJump
	outGoto
	outAccept
	outNAT // a NAT statement ran: accept for this base chain
	outDrop
	outReject
)

// out is what one rule (or chain) did to one branch.
type out struct {
	b      *branch
	kind   outKind
	target string
	dec    decision // the deciding rule, for drop and reject
	via    viaRef   // for jump and goto taken from a map element
}

// result folds the finished branches into a dataplane.Result.
func (r *run) result() dataplane.Result {
	var accepted []final
	byVerdict := map[dataplane.Verdict]float64{}
	for _, f := range r.finals {
		byVerdict[f.verdict] += f.b.prob
		if f.verdict == dataplane.Accept {
			accepted = append(accepted, f)
		}
	}
	res := dataplane.Result{Verdict: dataplane.Accept}
	if len(accepted) == 0 {
		res.Verdict = dataplane.Drop
		if byVerdict[dataplane.Reject] > byVerdict[dataplane.Drop] {
			res.Verdict = dataplane.Reject
		}
	}
	res.Rule = r.deciders(res.Verdict)
	dnat := false
	for _, f := range accepted {
		dnat = dnat || f.b.dnat
	}
	if !dnat {
		return res
	}
	for _, f := range accepted {
		res.Destinations = append(res.Destinations, dataplane.Destination{
			IP: f.b.dst, Port: f.b.dport, Probability: f.b.prob,
			Masquerade: f.b.masq, Path: f.b.path,
		})
	}
	// Branches finish in an order that depends on which of them
	// returned early from a chain; sort so results are stable to read
	// and compare.
	sort.SliceStable(res.Destinations, func(i, j int) bool {
		a, b := res.Destinations[i], res.Destinations[j]
		if c := a.IP.Compare(b.IP); c != 0 {
			return c < 0
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return strings.Join(a.Path, " ") < strings.Join(b.Path, " ")
	})
	return res
}

// deciders names the rules that dropped or rejected branches: those of the
// result's verdict, or, when some branches were accepted, all of them.
func (r *run) deciders(v dataplane.Verdict) string {
	var rules []string
	for _, f := range r.finals {
		if f.verdict == dataplane.Accept || (v != dataplane.Accept && f.verdict != v) {
			continue
		}
		if !slices.Contains(rules, f.rule) {
			rules = append(rules, f.rule)
		}
	}
	return strings.Join(rules, "; ")
}
