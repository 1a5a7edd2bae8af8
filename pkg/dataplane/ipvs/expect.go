package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/netconform/netconform/pkg/dataplane/iptables"
)

// DefaultScheduler is kube-proxy's --ipvs-scheduler when none is set.
const DefaultScheduler = "rr"

// Options say what Expect should expect where kube-proxy's configuration,
// not the API objects, decides.
type Options struct {
	// Scheduler is kube-proxy's --ipvs-scheduler; empty means rr.
	Scheduler string
	// NodePortAddresses are the node addresses NodePorts must be bound on.
	// Empty means the node's InternalIPs of the family: kube-proxy binds
	// every local address by default, so those are a subset it must cover.
	NodePortAddresses []netip.Addr
	// IPv6 checks the Services' IPv6 side.
	IPv6 bool
}

// Kind says which address of a Service port a virtual service serves.
type Kind string

const (
	KindClusterIP    Kind = "ClusterIP"
	KindNodePort     Kind = "NodePort"
	KindLoadBalancer Kind = "LoadBalancer"
	KindExternalIP   Kind = "ExternalIP"
)

// Expectation is one virtual service kube-proxy must have created on a
// node, derived from the API objects alone.
type Expectation struct {
	// Service is the servicePortName, "ns/name[:port]".
	Service  string
	Kind     Kind
	Protocol string // lower case
	Addr     netip.AddrPort
	// Scheduler, persistence and timeout (seconds) the service must have.
	Scheduler  string
	Persistent bool
	Timeout    uint64
	// RealServers are the endpoints it must forward to, each at weight 1
	// by masquerade; empty when the policy leaves none on this node (the
	// virtual service still exists then).
	RealServers []netip.AddrPort
}

func (e Expectation) String() string {
	return fmt.Sprintf("%s %s %s", e.Service, e.Kind, strings.ToUpper(e.Protocol)+" "+e.Addr.String())
}

// Expect derives the virtual services kube-proxy's ipvs mode must have
// created on node for every port of svc, from the EndpointSlices (all of
// them may be passed; the Service's are picked out).
func Expect(svc *corev1.Service, slices []discoveryv1.EndpointSlice, node *corev1.Node, opts Options) ([]Expectation, error) {
	ports, err := iptables.ServicePorts(svc, slices, opts.IPv6)
	if err != nil {
		return nil, fmt.Errorf("deriving ipvs expectations for %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	sched := opts.Scheduler
	if sched == "" {
		sched = DefaultScheduler
	}
	nodeAddrs := opts.NodePortAddresses
	if len(nodeAddrs) == 0 {
		nodeAddrs = internalIPs(node, opts.IPv6)
	}
	var out []Expectation
	for i := range ports {
		sp := &ports[i]
		c := sp.Categorize(node.Name)
		internal, external := c.Cluster, c.Cluster
		if sp.InternalPolicyLocal {
			internal = c.Local
		}
		if sp.ExternalPolicyLocal {
			external = c.Local
		}
		add := func(kind Kind, addr netip.Addr, port uint16, eps []iptables.Endpoint) {
			e := Expectation{
				Service: sp.Name, Kind: kind, Protocol: sp.Protocol, Addr: netip.AddrPortFrom(addr, port),
				Scheduler: sched, Persistent: sp.ClientIPAffinity, Timeout: uint64(sp.AffinitySeconds),
			}
			for _, ep := range eps {
				e.RealServers = append(e.RealServers, ep.Addr)
			}
			out = append(out, e)
		}
		add(KindClusterIP, sp.ClusterIP, sp.Port, internal)
		if sp.NodePort != 0 {
			for _, a := range nodeAddrs {
				add(KindNodePort, a, sp.NodePort, external)
			}
		}
		for _, a := range sp.LoadBalancerIPs {
			add(KindLoadBalancer, a, sp.Port, external)
		}
		for _, a := range sp.ExternalIPs {
			add(KindExternalIP, a, sp.Port, external)
		}
	}
	return out, nil
}

func internalIPs(node *corev1.Node, ipv6 bool) []netip.Addr {
	var out []netip.Addr
	if node == nil {
		return nil
	}
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Unmap().Is6() == ipv6 {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// Finding is one way a table differs from what kube-proxy must have
// programmed.
type Finding struct {
	Service string // servicePortName
	Check   string // one of the Check* constants
	Message string
}

func (f Finding) String() string { return f.Message }

// The expectations Check verifies; each is made to fail by the package's
// tests.
const (
	CheckVirtualService = "virtual-service" // the virtual service is missing
	CheckScheduler      = "scheduler"       // wrong scheduler
	CheckPersistence    = "persistence"     // session affinity not (or wrongly) programmed
	CheckRealServers    = "real-servers"    // an endpoint is missing or a foreign server takes traffic
	CheckWeight         = "weight"          // an endpoint's weight is not 1
	CheckForward        = "forward"         // an endpoint is not reached by masquerade
)

// AllChecks lists every check.
var AllChecks = []string{CheckVirtualService, CheckScheduler, CheckPersistence, CheckRealServers, CheckWeight, CheckForward}

// Check compares the expectations with a table. Timeouts are compared only
// when the table came from ipvsadm (see Table.Source). A --stats listing
// has no scheduler, flags, weights or forwarding methods: against one only
// the virtual services and their expected real servers are checked (a real
// server no endpoint accounts for may be draining there, so it is not
// reported).
func Check(t *Table, exps []Expectation) []Finding {
	var out []Finding
	for _, e := range exps {
		out = append(out, e.Check(t)...)
	}
	return out
}

// Check compares one expectation with a table.
func (e Expectation) Check(t *Table) []Finding {
	var out []Finding
	add := func(check, format string, args ...any) {
		out = append(out, Finding{Service: e.Service, Check: check, Message: fmt.Sprintf(format, args...)})
	}
	v := t.Service(e.Protocol, e.Addr)
	if v == nil {
		add(CheckVirtualService, "no virtual service %s %s for %s (%s)", strings.ToUpper(e.Protocol), e.Addr, e.Service, e.Kind)
		return out
	}
	where := fmt.Sprintf("virtual service %s (line %d) for %s %s", v.Key(), v.Line, e.Service, e.Kind)
	if !t.Stats && v.Scheduler != e.Scheduler {
		add(CheckScheduler, "%s uses scheduler %s, want %s", where, v.Scheduler, e.Scheduler)
	}
	if !t.Stats {
		switch {
		case e.Persistent && !v.Persistent:
			add(CheckPersistence, "%s is not persistent, want persistent %d (ClientIP session affinity)", where, e.Timeout)
		case !e.Persistent && v.Persistent:
			add(CheckPersistence, "%s is persistent %d but the Service has no ClientIP session affinity", where, v.Timeout)
		case e.Persistent && t.Source == SourceIpvsadm && v.Timeout != e.Timeout:
			add(CheckPersistence, "%s persists for %ds, want %ds", where, v.Timeout, e.Timeout)
		}
	}
	want := map[netip.AddrPort]bool{}
	for _, a := range e.RealServers {
		want[a] = true
	}
	seen := map[netip.AddrPort]bool{}
	for _, rs := range v.RealServers {
		seen[rs.Addr] = true
		if !want[rs.Addr] {
			// A weight-0 stranger is a removed endpoint draining; a
			// --stats listing has no weights, so it cannot tell.
			if !t.Stats && rs.Weight != 0 {
				add(CheckRealServers, "%s forwards to %s (line %d, weight %d), which is none of its endpoints %s", where, rs.Addr, rs.Line, rs.Weight, addrList(e.RealServers))
			}
			continue
		}
		if t.Stats {
			continue
		}
		if rs.Weight != 1 {
			add(CheckWeight, "%s gives endpoint %s weight %d (line %d), want 1", where, rs.Addr, rs.Weight, rs.Line)
		}
		if rs.Forward != "Masq" {
			add(CheckForward, "%s reaches endpoint %s by %s (line %d), want Masq", where, rs.Addr, rs.Forward, rs.Line)
		}
	}
	for _, a := range e.RealServers {
		if !seen[a] {
			add(CheckRealServers, "%s has no real server for endpoint %s (endpoints %s)", where, a, addrList(e.RealServers))
		}
	}
	return out
}

func addrList(as []netip.AddrPort) string {
	if len(as) == 0 {
		return "(none)"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// Share is one real server's predicted share of new connections.
type Share struct {
	Addr        netip.AddrPort
	Probability float64
}

// Shares predicts how a virtual service spreads new connections: in
// proportion to weight for rr and wrr (in the long run; rr ignores weights
// other than zero, which kube-proxy never mixes), nothing for weight-0
// (draining) servers. Other schedulers depend on state or on the client
// (lc, sh, mh, ...) and give an error rather than a guess.
func (t *Table) Shares(protocol string, addr netip.AddrPort) ([]Share, error) {
	if t.Stats {
		return nil, fmt.Errorf("a --stats listing has no weights: read the default listing")
	}
	v := t.Service(protocol, addr)
	if v == nil {
		return nil, fmt.Errorf("no virtual service %s %s", strings.ToUpper(protocol), addr)
	}
	if v.Scheduler != "rr" && v.Scheduler != "wrr" {
		return nil, fmt.Errorf("virtual service %s uses scheduler %s, whose choices depend on state or on the client; only rr and wrr are predicted", v.Key(), v.Scheduler)
	}
	var total int
	for _, rs := range v.RealServers {
		if rs.Weight > 0 {
			if v.Scheduler == "rr" {
				total++
			} else {
				total += rs.Weight
			}
		}
	}
	if total == 0 {
		return nil, nil
	}
	var out []Share
	for _, rs := range v.RealServers {
		if rs.Weight <= 0 {
			continue
		}
		w := 1
		if v.Scheduler == "wrr" {
			w = rs.Weight
		}
		out = append(out, Share{Addr: rs.Addr, Probability: float64(w) / float64(total)})
	}
	return out, nil
}
