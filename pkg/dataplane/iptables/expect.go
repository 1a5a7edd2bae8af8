package iptables

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Options say what Check should expect where kube-proxy's own configuration,
// not the API objects, decides.
type Options struct {
	// ClusterCIDR is kube-proxy's --cluster-cidr (detect-local-mode
	// ClusterCIDR, kind's default). When set, the ClusterIP masquerade rule
	// must read "! -s ClusterCIDR" and an externalTrafficPolicy Local EXT
	// chain must send "-s ClusterCIDR" to the cluster-policy chain. When
	// unset, those two rules are not checked.
	ClusterCIDR netip.Prefix
	// IPv6 checks an ip6tables-save dump against the Services' IPv6 side.
	IPv6 bool
}

// Expectation is what kube-proxy must have written on one node for one
// Service port, derived from the API objects alone.
type Expectation struct {
	Port      ServicePort
	NodeName  string
	NodeIP    netip.Addr // the node's primary InternalIP of the family, if any
	Endpoints Categorized

	// Chains kube-proxy creates for the port (empty when it creates none).
	SVC, SVL, EXT, FW string

	// InternalChain is where nat KUBE-SERVICES sends ClusterIP traffic
	// (SVC, or SVL for internalTrafficPolicy Local), or "" when it does not
	// capture it; then InternalFilter ("REJECT" or "DROP") is the filter
	// KUBE-SERVICES target for the ClusterIP.
	InternalChain  string
	InternalFilter string
	// ExternalPolicyChain is where the EXT chain's fall-through rule goes
	// (SVC, or SVL for externalTrafficPolicy Local), or "" when there are no
	// endpoints for external traffic; then ExternalFilter is the filter
	// KUBE-EXTERNAL-SERVICES target for node ports, external and LB IPs.
	ExternalPolicyChain string
	ExternalFilter      string
	// LBChain is where LB IP traffic goes: FW with source ranges, else EXT.
	LBChain string
}

// Expect derives the expectations for every port of svc on node, from the
// EndpointSlices (all of them may be passed; the Service's are picked out).
func Expect(svc *corev1.Service, slices []discoveryv1.EndpointSlice, node *corev1.Node, opts Options) ([]Expectation, error) {
	ports, err := ServicePorts(svc, slices, opts.IPv6)
	if err != nil {
		return nil, fmt.Errorf("deriving expectations for %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	nodeIP := nodeInternalIP(node, opts.IPv6)
	out := make([]Expectation, 0, len(ports))
	for _, sp := range ports {
		out = append(out, expectPort(sp, node.Name, nodeIP))
	}
	return out, nil
}

// nodeInternalIP is the node's first InternalIP of the family, as
// kube-proxy picks its node IP.
func nodeInternalIP(node *corev1.Node, ipv6 bool) netip.Addr {
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Unmap().Is6() == ipv6 {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// expectPort mirrors kube-proxy's per-port decisions: which chains exist,
// where each kind of traffic is sent, and what the filter table rejects or
// drops when endpoints are missing.
func expectPort(sp ServicePort, nodeName string, nodeIP netip.Addr) Expectation {
	e := Expectation{Port: sp, NodeName: nodeName, NodeIP: nodeIP, Endpoints: sp.Categorize(nodeName)}
	c := e.Endpoints
	svc, svl := sp.Chain(PrefixService), sp.Chain(PrefixLocal)

	if len(c.Cluster) > 0 && sp.UsesClusterEndpoints() {
		e.SVC = svc
	}
	if len(c.Local) > 0 && sp.UsesLocalEndpoints() {
		e.SVL = svl
	}

	hasInternal := c.HasAny
	internalPolicy := svc
	if sp.InternalPolicyLocal {
		internalPolicy = svl
		hasInternal = hasInternal && len(c.Local) > 0
	}
	hasExternal := c.HasAny
	externalPolicy := svc
	if sp.ExternalPolicyLocal {
		externalPolicy = svl
		hasExternal = hasExternal && len(c.Local) > 0
	}

	switch {
	case !c.HasAny:
		e.InternalFilter, e.ExternalFilter = "REJECT", "REJECT"
	default:
		if !hasInternal {
			e.InternalFilter = "DROP"
		}
		if !hasExternal {
			e.ExternalFilter = "DROP"
		}
	}
	if hasInternal {
		e.InternalChain = internalPolicy
	}
	if hasExternal {
		e.ExternalPolicyChain = externalPolicy
	}
	if c.HasAny && sp.ExternallyAccessible() {
		e.EXT = sp.Chain(PrefixExternal)
	}
	e.LBChain = e.EXT
	if c.HasAny && len(sp.LoadBalancerIPs) > 0 && len(sp.SourceRanges) > 0 {
		e.FW = sp.Chain(PrefixFirewall)
		e.LBChain = e.FW
	}
	return e
}

// Chains returns the per-Service and per-endpoint nat chains the
// expectation says must exist.
func (e *Expectation) Chains() []string {
	var out []string
	for _, c := range []string{e.SVC, e.SVL, e.EXT, e.FW} {
		if c != "" {
			out = append(out, c)
		}
	}
	for _, ep := range e.Endpoints.Reachable {
		out = append(out, e.Port.EndpointChain(ep))
	}
	return out
}
