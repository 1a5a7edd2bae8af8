package networking

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

// lbAddressBudget bounds how long a LoadBalancer Service may wait for its
// address. MetalLB assigns one within seconds; a cluster where none comes
// within a minute has no implementation (or a broken one).
const lbAddressBudget = time.Minute

// noLoadBalancer remembers, per suite process, that a LoadBalancer Service
// got no address, so that later specs skip at once instead of waiting out
// the budget again.
var noLoadBalancer struct {
	sync.Mutex
	reason string
}

// loadBalancerAddress deploys the seed load balancer (foo-service, type
// LoadBalancer) in ns and returns the address its implementation assigned.
// When none is assigned within lbAddressBudget the spec skips, saying so —
// unless the testbed installed MetalLB itself, in which case that is a
// failure of the add-on.
func loadBalancerAddress(ctx SpecContext, ns string, tweak ...func(*fixtures.Params)) netip.Addr {
	skipIfNoLoadBalancer()
	env.Deploy(ctx, ns, fixtures.LoadBalancer, tweak...)
	start := time.Now()
	addr, err := fixtures.WaitLoadBalancer(ctx, env.Resources, ns, fixtures.LoadBalancerService, lbAddressBudget)
	if err != nil {
		msg := fmt.Sprintf("no LoadBalancer implementation assigned an address to Service %s/%s within %s; install one (e.g. MetalLB) for the loadbalancer specs (%v)",
			ns, fixtures.LoadBalancerService, lbAddressBudget, err)
		if slices.Contains(env.Info.Addons, "metallb") {
			Fail("the testbed installed the metallb add-on, yet " + msg)
		}
		noLoadBalancer.Lock()
		noLoadBalancer.reason = msg
		noLoadBalancer.Unlock()
		Skip(msg)
	}
	AddReportEntry("load-balancer address", fmt.Sprintf("%s after %s", addr, time.Since(start).Round(time.Millisecond)))
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		// A host name (cloud load balancers): resolve it as a client would.
		ips, lerr := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", addr)
		Expect(lerr).NotTo(HaveOccurred(), "resolving load-balancer host name %s", addr)
		Expect(ips).NotTo(BeEmpty(), "load-balancer host name %s has no IPv4 address", addr)
		ip = ips[0]
	}
	return ip
}

// skipIfNoLoadBalancer skips at once when an earlier spec of this process
// found no LoadBalancer implementation; specs call it before creating
// their namespace.
func skipIfNoLoadBalancer() {
	noLoadBalancer.Lock()
	reason := noLoadBalancer.reason
	noLoadBalancer.Unlock()
	if reason != "" {
		Skip("an earlier spec of this run found: " + reason)
	}
}

var _ = Describe("foo-service (type LoadBalancer)", Label("loadbalancer"), func() {
	const port = fixtures.LoadBalancerPort

	It("is reached from outside at its load-balancer address and spreads requests over both pods", func(ctx SpecContext) {
		skipIfNoLoadBalancer()
		ns := env.Namespace(ctx)
		external := env.External()
		lb := loadBalancerAddress(ctx, ns)
		pods := env.PodNames(ctx, ns, fixtures.LoadBalancerDeployment)
		Expect(pods).To(HaveLen(2), "foo pods")
		url := addrURL(lb, port, "/")

		what := fmt.Sprintf("external client → %s", url)
		settleAnswered(ctx, what, external, probe.HTTPOptions{URL: url}, pods, nil)
		// The spreading test of balancing_test.go: for two pods K = 275,
		// enough to fail a 2:1 split with probability 0.991.
		plan := spreadPlan(len(pods))
		By(fmt.Sprintf("%d requests (K for %d endpoints: power ≥ %g at α=%g against %v)", plan.K, len(pods), plan.Power, plan.Alpha, plan.Alternatives))
		res := harness.HTTP(ctx, external, probe.HTTPOptions{URL: url, Count: plan.K})
		expectHTTP(res, answeredOnlyBy(res, pods), what+" sample")
		expectSpread(res, pods, what)
	})

	It("preserves the client's address with externalTrafficPolicy Local", func(ctx SpecContext) {
		skipIfNoLoadBalancer()
		ns := env.Namespace(ctx)
		external := env.ExternalAt(ctx)
		lb := loadBalancerAddress(ctx, ns, func(p *fixtures.Params) { p.ExternalTrafficPolicy = "Local" })
		pods := env.PodNames(ctx, ns, fixtures.LoadBalancerDeployment)
		url := addrURL(lb, port, "/clientip")

		what := fmt.Sprintf("external client %s → %s, its address preserved", external.Addr, url)
		settleAnswered(ctx, what, external, probe.HTTPOptions{URL: url}, pods, sourcesAre(external.Addr.String(), "the client's own"))
	})

	It("admits a client inside loadBalancerSourceRanges and drops one outside", func(ctx SpecContext) {
		skipIfNoLoadBalancer()
		ns := env.Namespace(ctx)
		allowed := env.ExternalAt(ctx)
		denied := env.ExternalAt(ctx)
		for denied.Addr == allowed.Addr {
			denied = env.ExternalAt(ctx)
		}
		lb := loadBalancerAddress(ctx, ns)
		pods := env.PodNames(ctx, ns, fixtures.LoadBalancerDeployment)
		url := addrURL(lb, port, "/")

		// Control: before any range is set, both clients get through, so
		// that a drop later is the range's doing.
		for _, c := range []harness.ExternalClient{allowed, denied} {
			what := fmt.Sprintf("external client %s → %s (no source ranges)", c.Addr, url)
			settleAnswered(ctx, what, c, probe.HTTPOptions{URL: url}, pods, nil)
		}

		ranges := []string{netip.PrefixFrom(allowed.Addr, 32).String()}
		By(fmt.Sprintf("setting loadBalancerSourceRanges %v", ranges))
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"loadBalancerSourceRanges": ranges}})
		_, err := env.Client.CoreV1().Services(ns).Patch(ctx, fixtures.LoadBalancerService, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())

		addr := net.JoinHostPort(lb.String(), strconv.Itoa(port))
		what := fmt.Sprintf("external client %s → %s (outside %v)", denied.Addr, addr, ranges)
		harness.Settle(ctx, what+": dropped", harness.Converge,
			connectProbe(denied, probe.ConnectOptions{Addr: addr, Count: 3, Timeout: 2 * time.Second}), notConnected, harness.Again[probe.ConnectResult]())
		what = fmt.Sprintf("external client %s → %s (inside %v)", allowed.Addr, url, ranges)
		settleAnswered(ctx, what, allowed, probe.HTTPOptions{URL: url}, pods, nil)
	})
})
