package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strconv"
	"strings"
)

// Prefixes kube-proxy's nftables mode puts before a chain name base.
const (
	ServiceChainPrefix  = "service-"  // Cluster-policy endpoints
	LocalChainPrefix    = "local-"    // Local-policy endpoints
	ExternalChainPrefix = "external-" // NodePort, LoadBalancer, external IP entry
	FirewallChainPrefix = "firewall-" // loadBalancerSourceRanges
	EndpointChainPrefix = "endpoint-" // one endpoint: hairpin mark and DNAT
	AffinitySetPrefix   = "affinity-" // ClientIP affinity set of one endpoint
)

// nameBaseMax is the longest base kube-proxy writes: nft's 256-character
// limit less 16 reserved for the prefix.
const nameBaseMax = 256 - 16

// ServiceChainBase returns the part of a Service port's chain names after
// the prefix: "<HASH>-<namespace>/<name>/<protocol>/<port name>", protocol
// in lower case and the port name empty for an unnamed port (so the base
// ends in "/"). HASH is the first 8 characters of the base32 SHA-256 of the
// text it precedes, which keeps names distinct if they are ever truncated.
func ServiceChainBase(namespace, name, protocol, portName string) string {
	return hashed(namespace + "/" + name + "/" + strings.ToLower(protocol) + "/" + portName)
}

// EndpointChainBase returns the base of an endpoint's chain and affinity set
// names: the Service port's text, "__", then "<ip>/<port>" with an IPv6
// address's colons turned into dots (nft names may not hold colons).
func EndpointChainBase(namespace, name, protocol, portName string, ip netip.Addr, port uint16) string {
	addr := strings.ReplaceAll(ip.Unmap().String(), ":", ".")
	return hashed(namespace + "/" + name + "/" + strings.ToLower(protocol) + "/" + portName +
		"__" + addr + "/" + strconv.Itoa(int(port)))
}

func hashed(text string) string {
	sum := sha256.Sum256([]byte(text))
	name := base32.StdEncoding.EncodeToString(sum[:])[:8] + "-" + text
	if len(name) > nameBaseMax {
		name = name[:nameBaseMax-3] + "..."
	}
	return name
}
