// Package testbed gets the suites a live cluster and tells them what it
// offers. It composes the focused packages — host (engine), nodeimage,
// cluster (kind), addons, probeimage — into the two ways a run starts:
// bring a cluster up for a matrix cell, or use the one KUBECONFIG names.
//
// The result, Info, is written to a JSON file that the Ginkgo suites read
// (NETCONFORM_TESTBED), so every suite process sees the same cluster.
package testbed

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"

	"github.com/netconform/netconform/pkg/report"
)

// Info is what a suite needs to know about its cluster.
type Info struct {
	Kubeconfig string `json:"kubeconfig"`
	// Cell is the matrix cell (e.g. v1.34/iptables); empty for a user's cluster.
	Cell string `json:"cell,omitempty"`
	// Owned is true when netconform created the cluster (it may delete it).
	Owned bool `json:"owned"`
	// Reused is true when the cluster already existed before this run; a
	// run deletes only clusters it created itself.
	Reused bool `json:"reused,omitempty"`
	// KindCluster is the kind cluster name when the cluster is a kind
	// cluster on this host (nodes reachable through the engine).
	KindCluster string `json:"kindCluster,omitempty"`
	Engine      string `json:"engine,omitempty"`
	// Network is the engine network of the nodes, where the external
	// client runs; Gateway is the host's address on it.
	Network        string       `json:"network,omitempty"`
	NetworkSubnet  netip.Prefix `json:"networkSubnet,omitempty"`
	NetworkGateway netip.Addr   `json:"networkGateway,omitempty"`
	// Isolated says netconform's host rule keeps the network's traffic on
	// this machine (escaping packets are dropped).
	Isolated bool `json:"isolated"`
	// ProbeImage is the probe's image as the nodes know it.
	ProbeImage string `json:"probeImage"`
	// NodeImage and how it was obtained.
	NodeImage    string `json:"nodeImage,omitempty"`
	NodeUpstream bool   `json:"nodeUpstream,omitempty"`
	ProxyMode    string `json:"proxyMode,omitempty"`
	// Addons installed by netconform (metallb, traefik).
	Addons []string `json:"addons,omitempty"`
	// KnownFailures declared for the cell, by signature.
	KnownFailures []report.Declaration `json:"knownFailures,omitempty"`
}

// EnvVar names the file holding Info for the suites.
const EnvVar = "NETCONFORM_TESTBED"

// SpecNamespaceLabel marks the namespaces the suites' specs create (value
// "true"), so a run can find what it left.
const SpecNamespaceLabel = "netconform.io/spec"

// LeaveNamespacesEnv, set to 1, makes a suite's end not await its specs'
// namespaces' deletion: for a caller that runs the suites again and again
// on one cluster (netconform mutants) and awaits them once at its own end.
const LeaveNamespacesEnv = "NETCONFORM_LEAVE_NAMESPACES"

// Write stores info at path.
func (i *Info) Write(path string) error {
	data, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// Read loads Info from path.
func Read(path string) (*Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading testbed description %s: %w", path, err)
	}
	i := &Info{}
	if err := json.Unmarshal(data, i); err != nil {
		return nil, fmt.Errorf("decoding testbed description %s: %w", path, err)
	}
	return i, nil
}
