package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Chain name prefixes kube-proxy's iptables mode gives its per-Service and
// per-endpoint chains.
const (
	PrefixService  = "KUBE-SVC-" // endpoints for Cluster traffic policy
	PrefixLocal    = "KUBE-SVL-" // endpoints for Local traffic policy
	PrefixExternal = "KUBE-EXT-" // NodePort/LoadBalancer/externalIP entry
	PrefixFirewall = "KUBE-FW-"  // loadBalancerSourceRanges filter
	PrefixEndpoint = "KUBE-SEP-" // one endpoint: masquerade hairpin, DNAT
)

// ServicePortName is how kube-proxy names a Service port in chain hashes and
// comments: "ns/name:port", or "ns/name" when the port has no name (as every
// single-port Service may leave it).
func ServicePortName(namespace, name, port string) string {
	s := namespace + "/" + name
	if port != "" {
		s += ":" + port
	}
	return s
}

// ServiceChainName returns the KUBE-SVC/SVL/EXT/FW chain for a Service port:
// the prefix and the first 16 characters of base32(sha256(servicePortName +
// protocol)), protocol in lower case. Hashing keeps names within iptables'
// 28-character limit while staying stable across kube-proxy restarts, which
// is what lets a dump be checked against API objects.
func ServiceChainName(prefix, servicePortName, protocol string) string {
	return prefix + hash16(servicePortName+strings.ToLower(protocol))
}

// EndpointChainName returns the KUBE-SEP chain for one endpoint ("ip:port",
// IPv6 in brackets) of a Service port.
func EndpointChainName(servicePortName, protocol, endpoint string) string {
	return PrefixEndpoint + hash16(servicePortName+strings.ToLower(protocol)+endpoint)
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// IsServiceChain reports whether a chain name has one of kube-proxy's
// per-Service or per-endpoint prefixes.
func IsServiceChain(name string) bool {
	for _, p := range []string{PrefixService, PrefixLocal, PrefixExternal, PrefixFirewall, PrefixEndpoint} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
