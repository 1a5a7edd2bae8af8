package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/internal/run"
)

// KindNetwork is the engine network kind puts nodes on, honouring
// KIND_EXPERIMENTAL_DOCKER_NETWORK as kind does.
func KindNetwork(getenv func(string) string) string {
	if n := getenv("KIND_EXPERIMENTAL_DOCKER_NETWORK"); n != "" {
		return n
	}
	return "kind"
}

// NetworkInfo is what the suite needs to know of the kind network.
type NetworkInfo struct {
	Name     string
	Internal bool
	Subnet   netip.Prefix // IPv4
	Gateway  netip.Addr   // the host's address on it
}

// InspectNetwork reads the network's IPv4 subnet and whether it is internal.
func InspectNetwork(ctx context.Context, engine, name string) (*NetworkInfo, error) {
	out, err := run.Command(engine, "network", "inspect", "--format",
		"{{.Internal}}{{range .IPAM.Config}} {{.Subnet}}={{.Gateway}}{{end}}", name).Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s network %q: %w", engine, name, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return nil, fmt.Errorf("%s network %q: empty inspect output", engine, name)
	}
	info := &NetworkInfo{Name: name, Internal: f[0] == "true"}
	for _, c := range f[1:] {
		sub, gw, _ := strings.Cut(c, "=")
		p, err := netip.ParsePrefix(sub)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		info.Subnet = p
		if g, err := netip.ParseAddr(gw); err == nil {
			info.Gateway = g
		} else {
			info.Gateway = p.Addr().Next()
		}
		return info, nil
	}
	return nil, fmt.Errorf("%s network %q has no IPv4 subnet", engine, name)
}

// EnsureIsolatedNetwork makes sure the kind network exists and, when it is
// created here, that it is --internal: host ↔ node traffic still flows, but
// a packet a broken data plane lets escape (a ClusterIP routed to the
// default gateway) is dropped instead of leaving the machine, where a
// foreign server could answer it. An existing network is used as it is;
// the returned info says whether it is isolated.
func EnsureIsolatedNetwork(ctx context.Context, engine, name string) (*NetworkInfo, error) {
	if info, err := InspectNetwork(ctx, engine, name); err == nil {
		if !info.Internal {
			progress.Printf("warning: %s network %q exists and is not --internal: packets that escape the cluster can leave this machine (delete it when no cluster uses it to let netconform recreate it isolated)", engine, name)
		}
		return info, nil
	}
	args := []string{"network", "create", "--internal", "--driver", "bridge", "--subnet", "172.18.0.0/16", "--gateway", "172.18.0.1"}
	if engine == "docker" {
		args = append(args, "--opt", "com.docker.network.bridge.enable_ip_masquerade=true", "--opt", "com.docker.network.driver.mtu=1500")
	}
	args = append(args, name)
	if err := run.Command(engine, args...).Run(ctx); err != nil {
		return nil, fmt.Errorf("creating the isolated %s network %q (is 172.18.0.0/16 taken by another network? set KIND_EXPERIMENTAL_DOCKER_NETWORK to use another name): %w", engine, name, err)
	}
	progress.Printf("created %s network %q as --internal: nothing a cluster sends leaves this machine", engine, name)
	return InspectNetwork(ctx, engine, name)
}
