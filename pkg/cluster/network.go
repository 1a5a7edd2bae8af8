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
	Bridge   string // the host's bridge interface for it
	Internal bool   // docker's --internal
	// Isolated: netconform's host rule keeps its traffic on this machine.
	Isolated bool
	Subnet   netip.Prefix // IPv4
	Gateway  netip.Addr   // the host's address on it
}

// InspectNetwork reads the network's IPv4 subnet, bridge and whether it is
// internal, from docker's or podman's own view of it, and whether
// netconform's host isolation rule is in place for it (so a run against a
// cluster someone else brought up knows whether escaped packets are dropped).
func InspectNetwork(ctx context.Context, engine, name string) (*NetworkInfo, error) {
	info, err := inspectNetwork(ctx, engine, name)
	if err != nil {
		return nil, err
	}
	info.Isolated = isolated(ctx, info.Bridge)
	return info, nil
}

func inspectNetwork(ctx context.Context, engine, name string) (*NetworkInfo, error) {
	format := `{{.Internal}} {{.Id}} {{or (index .Options "com.docker.network.bridge.name") "-"}}{{range .IPAM.Config}} {{.Subnet}}={{.Gateway}}{{end}}`
	if engine == "podman" {
		format = `{{.Internal}} {{.ID}} {{or .NetworkInterface "-"}}{{range .Subnets}} {{.Subnet}}={{.Gateway}}{{end}}`
	}
	out, err := run.Command(engine, "network", "inspect", "--format", format, name).Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s network %q: %w", engine, name, err)
	}
	return parseInspect(name, string(out))
}

// parseInspect reads "<internal> <id> <bridge or -> <subnet>=<gateway>...".
func parseInspect(name, out string) (*NetworkInfo, error) {
	f := strings.Fields(out)
	if len(f) < 2 {
		return nil, fmt.Errorf("network %q: unexpected inspect output %q", name, out)
	}
	info := &NetworkInfo{Name: name, Internal: f[0] == "true"}
	rest := f[2:]
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		info.Bridge, rest = rest[0], rest[1:]
	}
	if info.Bridge == "-" && len(f[1]) >= 12 {
		info.Bridge = "br-" + f[1][:12] // docker's default bridge name
	}
	for _, c := range rest {
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
	return nil, fmt.Errorf("network %q has no IPv4 subnet", name)
}

// networkCreateArgs are the arguments creating the kind network. Docker and
// podman get different subnets and bridges so both engines can host
// clusters side by side.
func networkCreateArgs(engine, name string) []string {
	if engine == "podman" {
		return []string{"network", "create", "--driver", "bridge", "--subnet", "172.29.0.0/16", "--gateway", "172.29.0.1", name}
	}
	return []string{"network", "create", "--driver", "bridge", "--subnet", "172.18.0.0/16", "--gateway", "172.18.0.1",
		"--opt", "com.docker.network.bridge.name=br-netconform", "--opt", "com.docker.network.driver.mtu=1500", name}
}

// isolationChain holds the host rule that keeps the kind network's traffic
// on this machine.
const isolationChain = "NETCONFORM-ISOLATION"

// EnsureIsolatedNetwork makes sure the kind network exists and that nothing
// sent from it is forwarded off this machine: a packet that a broken data
// plane lets escape (a ClusterIP routed to the default gateway) is dropped
// instead of reaching a foreign server that could answer it.
//
// Docker's --internal networks are not usable for this: their isolation
// rules drop every bridged packet whose destination is outside the
// network's subnet, and kind's data path routes pod subnets via node
// addresses across that bridge, so pods on different nodes could not talk.
// Instead the host gets one rule, in its own chain ahead of the engine's:
// packets entering from the kind bridge may leave only through it.
func EnsureIsolatedNetwork(ctx context.Context, engine, name string) (*NetworkInfo, error) {
	info, err := inspectNetwork(ctx, engine, name)
	if err != nil {
		args := networkCreateArgs(engine, name)
		if err := run.Command(engine, args...).Run(ctx); err != nil {
			return nil, fmt.Errorf("creating the %s network %q (is its subnet taken by another network? set KIND_EXPERIMENTAL_DOCKER_NETWORK to use another name): %w", engine, name, err)
		}
		if info, err = inspectNetwork(ctx, engine, name); err != nil {
			return nil, err
		}
	}
	if info.Internal {
		return nil, fmt.Errorf("%s network %q is --internal, which drops pod traffic routed between kind nodes; remove it (%s network rm %s, after deleting the clusters on it) and netconform will create an isolated one", engine, name, engine, name)
	}
	if err := isolate(ctx, info.Bridge); err != nil {
		return nil, fmt.Errorf("isolating %s network %q (bridge %s): %w", engine, name, info.Bridge, err)
	}
	info.Isolated = true
	return info, nil
}

// isolate installs (idempotently) the rule that drops whatever enters from
// bridge and would leave through another interface. With Docker the jump
// lives in DOCKER-USER, the chain Docker evaluates before its own FORWARD
// rules and never rewrites; elsewhere (podman's netavark) it is kept first
// in FORWARD, re-asserted on every run because engines insert their own
// jumps at the top when they create networks.
func isolate(ctx context.Context, bridge string) error {
	ipt := func(args ...string) error {
		return run.Command("iptables", append([]string{"-w"}, args...)...).Run(ctx)
	}
	if ipt("-S", isolationChain) != nil {
		if err := ipt("-N", isolationChain); err != nil {
			return err
		}
	}
	rule := isolationRule(bridge)
	if ipt(append([]string{"-C"}, rule...)...) != nil {
		if err := ipt(append([]string{"-A"}, rule...)...); err != nil {
			return err
		}
		progress.Printf("isolated the kind network: packets from %s are not forwarded off this host (iptables chain %s)", bridge, isolationChain)
	}
	hook := isolationHook(ctx)
	if hookedFirst(ctx, hook) {
		return nil
	}
	for ipt("-D", hook, "-j", isolationChain) == nil {
	}
	if hook == "DOCKER-USER" {
		for ipt("-D", "FORWARD", "-j", isolationChain) == nil { // from older netconform versions
		}
	}
	return ipt("-I", hook, "1", "-j", isolationChain)
}

func isolationRule(bridge string) []string {
	return []string{isolationChain, "-i", bridge, "!", "-o", bridge, "-m", "comment", "--comment", "netconform: nothing from the kind network leaves this host", "-j", "DROP"}
}

// isolationHook is the chain the isolation jump lives in: DOCKER-USER where
// Docker made one, FORWARD otherwise.
func isolationHook(ctx context.Context) string {
	if run.Command("iptables", "-w", "-S", "DOCKER-USER").Run(ctx) == nil {
		return "DOCKER-USER"
	}
	return "FORWARD"
}

// hookedFirst: the hook's first rule is the jump to the isolation chain.
func hookedFirst(ctx context.Context, hook string) bool {
	first, err := run.Command("iptables", "-w", "-S", hook, "1").Output(ctx)
	return err == nil && strings.TrimSpace(string(first)) == "-A "+hook+" -j "+isolationChain
}

// isolated reports whether the isolation rule for bridge is installed and
// hooked first; false where it cannot be read (no iptables, not root).
func isolated(ctx context.Context, bridge string) bool {
	if bridge == "" || bridge == "-" {
		return false
	}
	check := append([]string{"-w", "-C"}, isolationRule(bridge)...)
	return run.Command("iptables", check...).Run(ctx) == nil && hookedFirst(ctx, isolationHook(ctx))
}
