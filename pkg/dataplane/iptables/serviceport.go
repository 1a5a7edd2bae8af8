package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ServicePort is one port of a Service for one IP family, with its
// endpoints, reduced to what kube-proxy's iptables mode programs from it.
type ServicePort struct {
	Namespace, Service, PortName string
	// Name is the servicePortName kube-proxy hashes and writes in comments.
	Name                string
	Protocol            string // lower case
	ClusterIP           netip.Addr
	Port                uint16
	NodePort            uint16
	HealthCheckNodePort uint16
	ExternalIPs         []netip.Addr
	LoadBalancerIPs     []netip.Addr // ingress IPs, except ipMode Proxy
	SourceRanges        []netip.Prefix
	ExternalPolicyLocal bool
	InternalPolicyLocal bool
	ClientIPAffinity    bool
	AffinitySeconds     int32
	// Endpoints are every endpoint of the port in the slices, one per
	// ip:port, ordered by their ip:port string as kube-proxy orders them.
	Endpoints []Endpoint
}

// Endpoint is one backend of a Service port.
type Endpoint struct {
	Addr        netip.AddrPort
	NodeName    string
	Ready       bool
	Serving     bool
	Terminating bool
}

// String is the "ip:port" kube-proxy hashes into the KUBE-SEP name.
func (e Endpoint) String() string { return e.Addr.String() }

// ExternallyAccessible reports whether the port takes traffic other than to
// its ClusterIP (NodePort, load-balancer or external IPs).
func (sp *ServicePort) ExternallyAccessible() bool {
	return sp.NodePort != 0 || len(sp.LoadBalancerIPs) > 0 || len(sp.ExternalIPs) > 0
}

// UsesClusterEndpoints reports whether kube-proxy builds the KUBE-SVC chain:
// for Cluster internal policy, and for any externally reachable port (whose
// EXT chain routes node- and pod-originated traffic to all endpoints).
func (sp *ServicePort) UsesClusterEndpoints() bool {
	return !sp.InternalPolicyLocal || sp.ExternallyAccessible()
}

// UsesLocalEndpoints reports whether kube-proxy builds the KUBE-SVL chain.
func (sp *ServicePort) UsesLocalEndpoints() bool {
	return sp.InternalPolicyLocal || (sp.ExternalPolicyLocal && sp.ExternallyAccessible())
}

// Chain returns one of the port's KUBE-SVC/SVL/EXT/FW chain names.
func (sp *ServicePort) Chain(prefix string) string {
	return ServiceChainName(prefix, sp.Name, sp.Protocol)
}

// EndpointChain returns the KUBE-SEP chain name of one endpoint.
func (sp *ServicePort) EndpointChain(e Endpoint) string {
	return EndpointChainName(sp.Name, sp.Protocol, e.String())
}

// Categorized are a port's endpoints split the way kube-proxy splits them
// for one node.
type Categorized struct {
	// Cluster are the endpoints of the KUBE-SVC chain: the ready ones, or,
	// when none is ready, the serving-and-terminating ones.
	Cluster []Endpoint
	// Local are the endpoints of the KUBE-SVL chain: this node's ready ones,
	// or its serving-and-terminating ones when it has no ready one.
	Local []Endpoint
	// Reachable are the endpoints that get a KUBE-SEP chain: the union of
	// the above that this node's rules use.
	Reachable []Endpoint
	// HasAny is false when no endpoint anywhere may take traffic: kube-proxy
	// then writes only REJECT rules for the port.
	HasAny bool
}

// Categorize splits the port's endpoints for the named node. Topology-aware
// hints and trafficDistribution are not modelled: every cluster endpoint is
// taken as usable from every node.
func (sp *ServicePort) Categorize(nodeName string) Categorized {
	var c Categorized
	pick := func(keep func(Endpoint) bool) []Endpoint {
		var out []Endpoint
		for _, e := range sp.Endpoints {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	fallback := func(e Endpoint) bool { return !e.Ready && e.Serving && e.Terminating }
	if sp.UsesClusterEndpoints() {
		c.Cluster = pick(func(e Endpoint) bool { return e.Ready })
		if len(c.Cluster) == 0 {
			c.Cluster = pick(fallback)
		}
		c.HasAny = len(c.Cluster) > 0
	}
	if !sp.UsesLocalEndpoints() {
		c.Reachable = c.Cluster
		return c
	}
	for _, e := range sp.Endpoints {
		if e.Ready || fallback(e) {
			c.HasAny = true
		}
	}
	local := func(e Endpoint) bool { return e.NodeName != "" && e.NodeName == nodeName }
	c.Local = pick(func(e Endpoint) bool { return local(e) && e.Ready })
	if len(c.Local) == 0 {
		c.Local = pick(func(e Endpoint) bool { return local(e) && fallback(e) })
	}
	if !sp.UsesClusterEndpoints() {
		c.Reachable = c.Local
		return c
	}
	c.Reachable = slices.Clone(c.Cluster)
	for _, e := range c.Local {
		if !slices.ContainsFunc(c.Reachable, func(x Endpoint) bool { return x.Addr == e.Addr }) {
			c.Reachable = append(c.Reachable, e)
		}
	}
	return c
}

// ServicePorts returns the ports kube-proxy's proxier for one IP family
// programs for a Service, with their endpoints from the given slices (the
// Service's own are picked out by the kubernetes.io/service-name label).
// Headless and ExternalName Services, and Services without a ClusterIP of
// that family, have none.
func ServicePorts(svc *corev1.Service, epSlices []discoveryv1.EndpointSlice, ipv6 bool) ([]ServicePort, error) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, nil
	}
	family := func(a netip.Addr) bool { return a.Unmap().Is6() == ipv6 }
	clusterIPs := svc.Spec.ClusterIPs
	if len(clusterIPs) == 0 && svc.Spec.ClusterIP != "" {
		clusterIPs = []string{svc.Spec.ClusterIP}
	}
	var clusterIP netip.Addr
	for _, s := range clusterIPs {
		if s == corev1.ClusterIPNone || s == "" {
			return nil, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("service %s/%s: bad clusterIP %q: %w", svc.Namespace, svc.Name, s, err)
		}
		if family(a) {
			clusterIP = a.Unmap()
			break
		}
	}
	if !clusterIP.IsValid() {
		return nil, nil
	}
	base := ServicePort{
		Namespace:        svc.Namespace,
		Service:          svc.Name,
		ClusterIP:        clusterIP,
		ClientIPAffinity: svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP,
		// kube-proxy applies internalTrafficPolicy Local whatever the type.
		InternalPolicyLocal: svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
	}
	if base.ClientIPAffinity {
		base.AffinitySeconds = corev1.DefaultClientIPServiceAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			base.AffinitySeconds = *c.ClientIP.TimeoutSeconds
		}
	}
	for _, s := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(s); err == nil && family(a) {
			base.ExternalIPs = append(base.ExternalIPs, a.Unmap())
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			if a, err := netip.ParseAddr(ing.IP); err == nil && family(a) {
				base.LoadBalancerIPs = append(base.LoadBalancerIPs, a.Unmap())
			}
		}
		for _, s := range svc.Spec.LoadBalancerSourceRanges {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("service %s/%s: bad loadBalancerSourceRange %q: %w", svc.Namespace, svc.Name, s, err)
			}
			if family(p.Addr()) {
				base.SourceRanges = append(base.SourceRanges, p.Masked())
			}
		}
	}
	externalLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal &&
		(svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer)

	var out []ServicePort
	for _, p := range svc.Spec.Ports {
		sp := base
		sp.ExternalIPs = slices.Clone(base.ExternalIPs)
		sp.LoadBalancerIPs = slices.Clone(base.LoadBalancerIPs)
		sp.SourceRanges = slices.Clone(base.SourceRanges)
		sp.PortName = p.Name
		sp.Name = ServicePortName(svc.Namespace, svc.Name, p.Name)
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		sp.Protocol = strings.ToLower(string(proto))
		sp.Port = uint16(p.Port)
		sp.NodePort = uint16(p.NodePort)
		if externalLocal && sp.ExternallyAccessible() {
			sp.ExternalPolicyLocal = true
			sp.HealthCheckNodePort = uint16(svc.Spec.HealthCheckNodePort)
		}
		sp.Endpoints = endpointsFor(svc, p, proto, epSlices, ipv6)
		out = append(out, sp)
	}
	return out, nil
}

// endpointsFor collects a port's endpoints from the Service's slices: the
// first address of each endpoint, at the slice port with the same name and
// protocol. Unset conditions read as the API documents them: ready unless
// said otherwise, serving as ready, not terminating.
func endpointsFor(svc *corev1.Service, port corev1.ServicePort, proto corev1.Protocol, all []discoveryv1.EndpointSlice, ipv6 bool) []Endpoint {
	want := discoveryv1.AddressTypeIPv4
	if ipv6 {
		want = discoveryv1.AddressTypeIPv6
	}
	seen := map[netip.AddrPort]bool{}
	var out []Endpoint
	for i := range all {
		sl := &all[i]
		if sl.Namespace != svc.Namespace || sl.Labels[discoveryv1.LabelServiceName] != svc.Name || sl.AddressType != want {
			continue
		}
		for _, sp := range sl.Ports {
			name, p := "", corev1.ProtocolTCP
			if sp.Name != nil {
				name = *sp.Name
			}
			if sp.Protocol != nil {
				p = *sp.Protocol
			}
			if name != port.Name || p != proto || sp.Port == nil || *sp.Port <= 0 || *sp.Port > 65535 {
				continue
			}
			for _, ep := range sl.Endpoints {
				if len(ep.Addresses) == 0 {
					continue
				}
				a, err := netip.ParseAddr(ep.Addresses[0])
				if err != nil {
					continue
				}
				ap := netip.AddrPortFrom(a.Unmap(), uint16(*sp.Port))
				if seen[ap] {
					continue
				}
				seen[ap] = true
				e := Endpoint{Addr: ap, Ready: true}
				if ep.NodeName != nil {
					e.NodeName = *ep.NodeName
				}
				if ep.Conditions.Ready != nil {
					e.Ready = *ep.Conditions.Ready
				}
				e.Serving = e.Ready
				if ep.Conditions.Serving != nil {
					e.Serving = *ep.Conditions.Serving
				}
				if ep.Conditions.Terminating != nil {
					e.Terminating = *ep.Conditions.Terminating
				}
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.String(), b.String()) })
	return out
}
