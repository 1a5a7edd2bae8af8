// Package addons installs the cluster add-ons the suite's LoadBalancer and
// Ingress specs need — MetalLB (layer 2) and Traefik — on hosts with no
// container registry: their binaries are built from Go module sources, put
// alone in image archives that kind nodes load, and installed with manifests
// whose images point at those archives.
//
// A caller (the cluster step) uses an Addon in four moves:
//
//	imgs, err := a.Images(ctx, log)          // build or reuse the archives
//	// load every archive into every node
//	err = a.Install(ctx, kubeconfig, params) // apply the manifests
//	err = a.Ready(ctx, kubeconfig)           // wait until it serves
//
// Install is idempotent (server-side apply), so it can run again on a
// reused cluster.
package addons

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
)

// Addon is one installable add-on.
type Addon interface {
	// Name is how the cluster matrix names the add-on ("metallb").
	Name() string
	// Images builds (or takes from the cache) the add-on's image archives
	// and returns their paths; every node must load them before Install.
	Images(ctx context.Context, log io.Writer) ([]string, error)
	// Install applies the add-on's objects to the cluster.
	Install(ctx context.Context, kubeconfig string, p Params) error
	// Ready waits until the add-on's workloads are ready and it does its
	// job; on failure the error lists what is not ready and why.
	Ready(ctx context.Context, kubeconfig string) error
}

// Params describe the cluster an add-on is installed into.
type Params struct {
	// KindNetworkSubnet is the IPv4 subnet of the docker network the kind
	// nodes sit on (172.18.0.0/16 by default). MetalLB hands out addresses
	// from its top, where docker does not allocate container addresses.
	KindNetworkSubnet netip.Prefix
	// PoolSlot keeps the address pools of clusters sharing the network
	// apart (see PoolRange); the cell's index in the matrix.
	PoolSlot int
}

// registry lists the add-ons in install order: a CNI (kube-router) first,
// since nothing else runs before the nodes are Ready; Traefik's Service is
// of type LoadBalancer and only gets an address once MetalLB runs.
var registry = []func() Addon{
	func() Addon { return KubeRouter() },
	func() Addon { return MetalLB() },
	func() Addon { return Traefik() },
}

// Names lists the known add-ons in install order.
func Names() []string {
	var names []string
	for _, f := range registry {
		names = append(names, f().Name())
	}
	return names
}

// ByName returns the add-on called name.
func ByName(name string) (Addon, error) {
	for _, f := range registry {
		if a := f(); a.Name() == name {
			return a, nil
		}
	}
	return nil, fmt.Errorf("unknown add-on %q (known: %s)", name, strings.Join(Names(), ", "))
}

// InOrder returns the named add-ons sorted into install order (MetalLB
// before Traefik), without duplicates, so a matrix may list them in any
// order.
func InOrder(names []string) ([]Addon, error) {
	rank := map[string]int{}
	for i, n := range Names() {
		rank[n] = i
	}
	seen := map[string]bool{}
	var out []Addon
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		a, err := ByName(n)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Name()] < rank[out[j].Name()] })
	return out, nil
}
