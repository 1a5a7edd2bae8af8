package nftables

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// servicePort is one port of one Service in one IP family, reduced to what
// decides kube-proxy's rules for it (the equivalent of kube-proxy's
// ServicePort plus its categorised endpoints).
type servicePort struct {
	namespace, name string
	portName        string
	proto           string // lower case
	port            uint16
	nodePort        uint16
	clusterIP       netip.Addr
	externalIPs     []netip.Addr
	lbIPs           []netip.Addr
	sourceRanges    []netip.Prefix
	etpLocal        bool
	itpLocal        bool
	affinity        bool
	affinityTimeout uint64

	// Endpoints as kube-proxy categorises them, without topology hints.
	cluster, local, reachable []endpoint
	hasAny                    bool
}

type endpoint struct {
	ip                          netip.Addr
	port                        uint16
	local                       bool
	ready, serving, terminating bool
}

func (e endpoint) String() string { return netip.AddrPortFrom(e.ip, e.port).String() }

// id names the Service port in findings: "default/backend-service:backend/tcp".
func (sp *servicePort) id() string {
	return fmt.Sprintf("%s/%s:%s/%s", sp.namespace, sp.name, sp.portName, sp.proto)
}

func (sp *servicePort) base() string {
	return ServiceChainBase(sp.namespace, sp.name, sp.proto, sp.portName)
}

func (sp *servicePort) endpointChain(e endpoint) string {
	return EndpointChainPrefix + EndpointChainBase(sp.namespace, sp.name, sp.proto, sp.portName, e.ip, e.port)
}

func (sp *servicePort) affinitySet(e endpoint) string {
	return AffinitySetPrefix + EndpointChainBase(sp.namespace, sp.name, sp.proto, sp.portName, e.ip, e.port)
}

func (sp *servicePort) externallyAccessible() bool {
	return sp.nodePort != 0 || len(sp.lbIPs) > 0 || len(sp.externalIPs) > 0
}

// The policy decisions of kube-proxy v1.34's syncProxyRules, restated.
func (sp *servicePort) usesClusterChain() bool {
	return len(sp.cluster) > 0 && (!sp.itpLocal || sp.externallyAccessible())
}
func (sp *servicePort) usesLocalChain() bool {
	return len(sp.local) > 0 && (sp.itpLocal || (sp.etpLocal && sp.externallyAccessible()))
}
func (sp *servicePort) hasInternal() bool {
	return sp.hasAny && !(sp.itpLocal && len(sp.local) == 0)
}
func (sp *servicePort) hasExternal() bool {
	return sp.hasAny && !(sp.etpLocal && len(sp.local) == 0)
}
func (sp *servicePort) usesExternalChain() bool { return sp.hasAny && sp.externallyAccessible() }

func (sp *servicePort) internalChain() string {
	if sp.itpLocal {
		return LocalChainPrefix + sp.base()
	}
	return ServiceChainPrefix + sp.base()
}

// noEndpointVerdict is what the no-endpoint maps hold for traffic that has
// no endpoint to go to: reject when the Service has none at all, drop when
// only a Local policy leaves this node without one.
func (sp *servicePort) noEndpointVerdict() string {
	if !sp.hasAny {
		return "goto reject-chain"
	}
	return "drop"
}

// servicePorts derives the Service ports of one family (v6 or not) that
// kube-proxy programs: headless and ExternalName Services have none. A
// Service whose fields cannot be read is left out and named in errs, so
// one bad object does not hide findings about the others.
func servicePorts(c *Cluster, v6 bool) (out []*servicePort, errs []error) {
	for i := range c.Services {
		svc := &c.Services[i]
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		clusterIP, ok, err := familyAddr(svc.Spec.ClusterIPs, svc.Spec.ClusterIP, v6)
		if err != nil {
			errs = append(errs, fmt.Errorf("Service %s/%s: %w", svc.Namespace, svc.Name, err))
			continue
		}
		if !ok {
			continue
		}
		for _, p := range svc.Spec.Ports {
			sp, err := newServicePort(c, svc, p, clusterIP, v6)
			if err != nil {
				errs = append(errs, fmt.Errorf("Service %s/%s port %q: %w", svc.Namespace, svc.Name, p.Name, err))
				continue
			}
			out = append(out, sp)
		}
	}
	return out, errs
}

// familyAddr picks the ClusterIP of the family; ok is false for headless
// Services and Services without an address of that family.
func familyAddr(ips []string, single string, v6 bool) (netip.Addr, bool, error) {
	if len(ips) == 0 && single != "" {
		ips = []string{single}
	}
	for _, s := range ips {
		if s == "" || s == corev1.ClusterIPNone {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("bad ClusterIP %q: %w", s, err)
		}
		if a.Unmap().Is6() == v6 {
			return a.Unmap(), true, nil
		}
	}
	return netip.Addr{}, false, nil
}

func newServicePort(c *Cluster, svc *corev1.Service, p corev1.ServicePort, clusterIP netip.Addr, v6 bool) (*servicePort, error) {
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	externally := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(svc.Spec.ExternalIPs) > 0
	sp := &servicePort{
		namespace: svc.Namespace, name: svc.Name, portName: p.Name,
		proto: strings.ToLower(string(proto)), port: uint16(p.Port), nodePort: uint16(p.NodePort),
		clusterIP: clusterIP,
		etpLocal:  externally && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
		itpLocal:  svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
		affinity:  svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP,
	}
	if sp.affinity {
		sp.affinityTimeout = 10800 // the API default
		if cfg := svc.Spec.SessionAffinityConfig; cfg != nil && cfg.ClientIP != nil && cfg.ClientIP.TimeoutSeconds != nil {
			sp.affinityTimeout = uint64(*cfg.ClientIP.TimeoutSeconds)
		}
	}
	for _, s := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Unmap().Is6() == v6 {
			sp.externalIPs = append(sp.externalIPs, a.Unmap())
		}
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP) {
			continue // proxy-mode load balancers get no rules
		}
		if a, err := netip.ParseAddr(ing.IP); err == nil && a.Unmap().Is6() == v6 {
			sp.lbIPs = append(sp.lbIPs, a.Unmap())
		}
	}
	for _, s := range svc.Spec.LoadBalancerSourceRanges {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("bad loadBalancerSourceRange %q: %w", s, err)
		}
		if pfx.Addr().Unmap().Is6() != v6 {
			continue
		}
		if pfx.Bits() == 0 {
			// A zero prefix allows everyone, as no ranges do.
			sp.sourceRanges = nil
			break
		}
		sp.sourceRanges = append(sp.sourceRanges, pfx.Masked())
	}
	sp.categorize(endpointsOf(c, svc, p, proto, v6))
	return sp, nil
}

// endpointsOf collects the endpoints of a Service port from its slices,
// deduplicated by address and port as kube-proxy's cache does.
func endpointsOf(c *Cluster, svc *corev1.Service, p corev1.ServicePort, proto corev1.Protocol, v6 bool) []endpoint {
	want := discoveryv1.AddressTypeIPv4
	if v6 {
		want = discoveryv1.AddressTypeIPv6
	}
	seen := map[string]int{}
	var out []endpoint
	for i := range c.EndpointSlices {
		es := &c.EndpointSlices[i]
		if es.Namespace != svc.Namespace || es.Labels[discoveryv1.LabelServiceName] != svc.Name || es.AddressType != want {
			continue
		}
		for _, ep := range es.Ports {
			epProto := corev1.ProtocolTCP
			if ep.Protocol != nil {
				epProto = *ep.Protocol
			}
			if ep.Name == nil || *ep.Name != p.Name || epProto != proto || ep.Port == nil {
				continue
			}
			for _, e := range es.Endpoints {
				if len(e.Addresses) == 0 {
					continue
				}
				a, err := netip.ParseAddr(e.Addresses[0])
				if err != nil {
					continue
				}
				cond := e.Conditions
				ready := cond.Ready == nil || *cond.Ready
				x := endpoint{
					ip: a.Unmap(), port: uint16(*ep.Port),
					local:       e.NodeName != nil && c.Node != nil && *e.NodeName == c.Node.Name,
					ready:       ready,
					serving:     cond.Serving == nil || *cond.Serving,
					terminating: cond.Terminating != nil && *cond.Terminating,
				}
				if j, dup := seen[x.String()]; dup {
					out[j].local = out[j].local || x.local
					continue
				}
				seen[x.String()] = len(out)
				out = append(out, x)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// categorize splits endpoints into the cluster-policy and local-policy
// sets: ready ones, or serving-and-terminating ones when none is ready.
func (sp *servicePort) categorize(all []endpoint) {
	pick := func(keep func(endpoint) bool) []endpoint {
		var out []endpoint
		for _, e := range all {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	usable := func(only func(endpoint) bool) []endpoint {
		if ready := pick(func(e endpoint) bool { return only(e) && e.ready }); len(ready) > 0 {
			return ready
		}
		return pick(func(e endpoint) bool { return only(e) && e.serving && e.terminating })
	}
	usesCluster := !sp.itpLocal || sp.externallyAccessible()
	usesLocal := sp.itpLocal || (sp.etpLocal && sp.externallyAccessible())
	if usesCluster {
		sp.cluster = usable(func(endpoint) bool { return true })
	}
	if usesLocal {
		sp.local = usable(func(e endpoint) bool { return e.local })
	}
	sp.hasAny = len(usable(func(endpoint) bool { return true })) > 0
	seen := map[string]bool{}
	for _, e := range append(append([]endpoint{}, sp.cluster...), sp.local...) {
		if !seen[e.String()] {
			seen[e.String()] = true
			sp.reachable = append(sp.reachable, e)
		}
	}
}
