package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/netconform/netconform/internal/run"
	"github.com/netconform/netconform/pkg/probe"
)

// ExternalClient is an external probe runner (see External) that always
// has the same address on the nodes' network, so that a spec knows the
// client's own address (what a backend sees when the source is preserved)
// and can admit or refuse it by address (loadBalancerSourceRanges).
type ExternalClient struct {
	probe.Runner
	Addr netip.Addr
}

// ExternalAt returns an external client pinned (docker run --ip) to an
// address on the nodes' network that nothing uses, chosen at random in the
// upper half of the subnet (the engine hands container addresses out from
// the bottom) among addresses whose last octet is 10-199: MetalLB pools
// sit at .200-.250 of some /24 at the top (one /24 per cluster sharing
// the network). Also avoided: addresses containers hold now (other
// processes' clients among them), this cluster's MetalLB IPAddressPools
// wherever they are, and every address a LoadBalancer Service was given.
// The client is a resident container (see Env.resident) holding the
// address until the spec ends.
func (e *Env) ExternalAt(ctx context.Context) ExternalClient {
	c := e.externalContainer() // skips when there is no external network
	subnet := e.Info.NetworkSubnet.Masked()
	if !subnet.IsValid() || !subnet.Addr().Is4() || subnet.Bits() > 24 {
		Skip(fmt.Sprintf("needs an IPv4 /24 or larger on the external network %q to pick client addresses from, the testbed says %v", e.Info.Network, e.Info.NetworkSubnet))
	}
	used, err := e.networkAddresses(ctx)
	if err != nil {
		Fail(err.Error())
	}
	reserved, err := e.loadBalancerRanges(ctx)
	if err != nil {
		Fail(err.Error())
	}
	size := uint32(1) << (32 - subnet.Bits())
	lo, hi := size/2, size // offsets [lo, hi)
	if subnet.Bits() == 24 {
		lo = 0
	}
	start := v4(subnet.Addr())
	var errs []string
	for range 10000 {
		u := start + lo + rand.Uint32N(hi-lo)
		a := fromV4(u)
		if last := byte(u); last < 10 || last >= 200 || used[a] || a == e.Info.NetworkGateway {
			continue
		}
		if slices.ContainsFunc(reserved, func(r [2]uint32) bool { return u >= r[0] && u <= r[1] }) {
			continue
		}
		pinned := c
		pinned.RunArgs = append(append([]string(nil), c.RunArgs...), "--ip", a.String())
		r, err := e.resident(ctx, pinned)
		if err != nil {
			// Another process may have taken the address since the
			// listing: try another, a few times.
			used[a] = true
			if errs = append(errs, err.Error()); len(errs) < 3 {
				continue
			}
			Fail(fmt.Sprintf("starting an external client: %s", strings.Join(errs, "; ")))
		}
		return ExternalClient{Runner: r, Addr: a}
	}
	Fail(fmt.Sprintf("no free address found in the upper half of %s", subnet))
	return ExternalClient{}
}

var ipAddressPools = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}

// loadBalancerRanges lists, as inclusive [first, last] pairs, the IPv4
// addresses load balancers may use: every MetalLB IPAddressPool (none when
// MetalLB is not installed) and every LoadBalancer Service's address.
func (e *Env) loadBalancerRanges(ctx context.Context) ([][2]uint32, error) {
	var out [][2]uint32
	dyn, err := dynamic.NewForConfig(e.Config)
	if err != nil {
		return nil, err
	}
	pools, err := dyn.Resource(ipAddressPools).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
	case err != nil:
		return nil, fmt.Errorf("listing MetalLB IPAddressPools: %w", err)
	default:
		for _, p := range pools.Items {
			addrs, _, _ := unstructured.NestedStringSlice(p.Object, "spec", "addresses")
			for _, a := range addrs {
				if r, ok := parseRange(a); ok {
					out = append(out, r)
				}
			}
		}
	}
	svcs, err := e.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Services: %w", err)
	}
	for _, s := range svcs.Items {
		for _, in := range s.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil && a.Is4() {
				out = append(out, [2]uint32{v4(a), v4(a)})
			}
		}
	}
	return out, nil
}

// parseRange reads a MetalLB pool entry: a CIDR or "first-last".
func parseRange(s string) ([2]uint32, bool) {
	if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p.Addr().Is4() {
		first := v4(p.Masked().Addr())
		return [2]uint32{first, first + uint32(1)<<(32-p.Bits()) - 1}, true
	}
	f, l, ok := strings.Cut(s, "-")
	if !ok {
		return [2]uint32{}, false
	}
	first, err1 := netip.ParseAddr(strings.TrimSpace(f))
	last, err2 := netip.ParseAddr(strings.TrimSpace(l))
	if err1 != nil || err2 != nil || !first.Is4() || !last.Is4() {
		return [2]uint32{}, false
	}
	return [2]uint32{v4(first), v4(last)}, true
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromV4(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// networkAddresses lists the IPv4 addresses containers hold on the
// external network now.
func (e *Env) networkAddresses(ctx context.Context) (map[netip.Addr]bool, error) {
	out, err := run.Command(e.Info.Engine, "network", "inspect", "--format",
		"{{range .Containers}}{{.IPv4Address}} {{end}}", e.Info.Network).Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing addresses on %s network %q: %w", e.Info.Engine, e.Info.Network, err)
	}
	used := map[netip.Addr]bool{}
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil {
			used[p.Addr()] = true
		}
	}
	return used, nil
}

func (c ExternalClient) String() string { return fmt.Sprint(c.Runner) }
