package podnet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
)

// routeProtocol marks the routes podnet owns, so it can remove stale ones
// without touching anybody else's.
const routeProtocol netlink.RouteProtocol = 0x6e // 'n'

// masqChain is podnet's nat chain, reached from POSTROUTING for traffic to
// non-local destinations.
const masqChain = "PODNET-MASQ"

// Node is the real data plane of a Linux node (netlink and iptables).
type Node struct{}

// SyncRoutes installs the wanted routes and removes podnet routes no longer
// wanted.
func (Node) SyncRoutes(_ context.Context, routes []Route) error {
	want := map[string]Route{}
	for _, r := range routes {
		want[r.Dst.String()] = r
		nr := &netlink.Route{Dst: r.Dst, Gw: r.Via, Protocol: routeProtocol}
		if err := netlink.RouteReplace(nr); err != nil {
			return fmt.Errorf("route %s: %w", r, err)
		}
	}
	existing, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range existing {
		if r.Dst != nil {
			if _, ok := want[r.Dst.String()]; !ok {
				if err := netlink.RouteDel(&r); err != nil {
					return fmt.Errorf("removing stale route %s: %w", r.Dst, err)
				}
			}
		}
	}
	return nil
}

// SyncMasquerade makes the nat rules: POSTROUTING sends traffic to
// non-local destinations to PODNET-MASQ, which leaves destinations in
// noMasq (the cluster's pod subnet) alone and masquerades the rest.
func (Node) SyncMasquerade(ctx context.Context, noMasq []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*nat\n:%s - [0:0]\n", masqChain)
	for _, c := range noMasq {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return fmt.Errorf("pod subnet %q: %w", c, err)
		}
		fmt.Fprintf(&b, "-A %s -d %s -m comment --comment \"podnet: pod-to-pod is not masqueraded\" -j RETURN\n", masqChain, c)
	}
	fmt.Fprintf(&b, "-A %s -m comment --comment \"podnet: traffic leaving the cluster is masqueraded\" -j MASQUERADE\nCOMMIT\n", masqChain)
	restore := exec.CommandContext(ctx, "iptables-restore", "-w", "--noflush")
	restore.Stdin = strings.NewReader(b.String())
	if out, err := restore.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore of %s: %v: %s", masqChain, err, out)
	}
	jump := []string{"POSTROUTING", "-m", "addrtype", "!", "--dst-type", "LOCAL", "-m", "comment", "--comment", "podnet: masquerade non-local destinations", "-j", masqChain}
	if err := exec.CommandContext(ctx, "iptables", append([]string{"-w", "-t", "nat", "-C"}, jump...)...).Run(); err != nil {
		if out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", "-t", "nat", "-A"}, jump...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("adding the POSTROUTING jump to %s: %v: %s", masqChain, err, out)
		}
	}
	return nil
}

// EnableForwarding turns on IPv4 forwarding, which routing pods needs.
// It is usually on already (kind's nodes have it); only then can a pod
// without privilege run podnet, since /proc/sys is read-only for it.
func EnableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	return os.WriteFile(p, []byte("1"), 0o644)
}
