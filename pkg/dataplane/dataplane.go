// Package dataplane holds the vocabulary shared by the rule readers for each
// kube-proxy mode (iptables, nftables, ipvs): a packet to trace and the outcome
// a node's saved rules give it.
//
// The per-mode packages (dataplane/iptables, dataplane/nftables, dataplane/ipvs)
// parse a node's rules into their own typed model and implement Tracer over it,
// so a spec, the trace command and a failure report all speak of the same
// Packet and Result whatever the proxy mode.
package dataplane

import (
	"net/netip"
)

// Origin says where a packet enters the node, which decides the netfilter
// hooks it meets: a pod's or an external packet is routed (PREROUTING, then
// FORWARD or INPUT); a locally generated one starts in OUTPUT.
type Origin string

const (
	FromPod      Origin = "pod"
	FromExternal Origin = "external"
	FromLocal    Origin = "local"
)

// Packet is the first packet of a connection, as the node sees it.
type Packet struct {
	Src   netip.Addr
	Dst   netip.Addr
	Proto string // "tcp", "udp" or "sctp", lower case
	DPort uint16
	From  Origin
}

// Verdict is what the rules do with the packet as a whole.
type Verdict string

const (
	Accept Verdict = "accept"
	Drop   Verdict = "drop"
	Reject Verdict = "reject"
)

// Destination is one branch a packet may take: after DNAT (or unchanged when
// no rule rewrote it), with the chance of taking that branch.
type Destination struct {
	IP          netip.Addr `json:"ip"`
	Port        uint16     `json:"port"`
	Probability float64    `json:"probability"`
	// Masquerade is per branch: a hairpin packet is marked for masquerade
	// only on the branch that lands on its own endpoint.
	Masquerade bool     `json:"masquerade"`
	Path       []string `json:"path"` // chain (or nft chain) names walked, in order
}

// Result is a trace's outcome. Destinations is empty when no rule DNATs the
// packet (it is not addressed to a Service) or when it is dropped or rejected;
// then Rule names the rule that decided, as it reads in the dump.
type Result struct {
	Verdict      Verdict       `json:"verdict"`
	Destinations []Destination `json:"destinations"`
	Rule         string        `json:"rule,omitempty"`
}

// Tracer predicts what a node's rules do to a packet.
type Tracer interface {
	Trace(Packet) (Result, error)
}
