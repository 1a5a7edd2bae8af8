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
		expectAnswers(res, answeredOnlyBy(res, pods), what+" sample")
		expectSpread(res, pods, what)
	})

	It("preserves the client's address with externalTrafficPolicy Local", func(ctx SpecContext) {
		skipIfNoLoadBalancer()
		ns := env.Namespace(ctx)
		external := env.ExternalAt(ctx)
		lb := loadBalancerAddress(ctx, ns, func(p *fixtures.Params) { p.ExternalTrafficPolicy = "Local" })
		pods := env.PodNames(ctx, ns, fixtures.LoadBalancerDeployment)
		url := addrURL(lb, port, "/clientip")

		eps, err := env.Endpoints(ctx, ns, fixtures.LoadBalancerService)
		Expect(err).NotTo(HaveOccurred())
		// Under policy Local the node the load balancer sends the traffic
		// to (MetalLB's L2 mode: the one announcing the address) answers
		// from its own endpoints only, so the expected answerers are the
		// pods of one node — every one of them — not all of pods.
		byNode := map[string][]string{}
		for _, ep := range eps {
			if ep.Ready {
				byNode[ep.Node] = append(byNode[ep.Node], ep.Pod)
			}
		}
		what := fmt.Sprintf("external client %s → %s, its address preserved", external.Addr, url)
		st := harness.Settle(ctx, fmt.Sprintf("%s: every one of %d requests answered 2xx by the pods of one node, each of them, seeing the client's own address (endpoints per node %v)", what, harness.CoverSample(len(pods)), byNode),
			harness.Converge, httpProbe(external, probe.HTTPOptions{URL: url, Count: harness.CoverSample(len(pods))}), func(res probe.HTTPResult) error {
				if err := answeredOnlyBy(res, pods); err != nil {
					return err
				}
				var nodes []string
				for node, local := range byNode {
					if slices.ContainsFunc(local, func(p string) bool { return res.Pods[p] > 0 }) {
						nodes = append(nodes, node)
						if err := answeredByAll(res, local); err != nil {
							return fmt.Errorf("node %s: %w", node, err)
						}
					}
				}
				if len(nodes) != 1 {
					return fmt.Errorf("answers came from the pods of %d nodes %v (answers per pod %v); under policy Local one node receives the load balancer's traffic and answers from its own", len(nodes), nodes, res.Pods)
				}
				return sourcesAre(external.Addr.String(), "the client's own")(res)
			}, harness.Again[probe.HTTPResult]())
		AddReportEntry("answered by", fmt.Sprintf("%v", st.Confirmed().Pods))
	})

	It("admits a client inside loadBalancerSourceRanges and drops one outside", longRunning, func(ctx SpecContext) {
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

		// Each probe asks from both clients, so that the verdict is on one
		// state of the rules: converged when 3 attempts from the denied
		// client all fail and every request from the allowed one is
		// answered; then a confirmation sample of 10 attempts from the
		// denied client, none of which may connect (a range enforced now
		// and then lets one through), and harness.CoverSample(2) requests
		// from the allowed one, every one answered, by both pods.
		addr := net.JoinHostPort(lb.String(), strconv.Itoa(port))
		what := fmt.Sprintf("loadBalancerSourceRanges %v on %s: every attempt from external client %s (outside) fails, every request from external client %s (inside) is answered by %v",
			ranges, addr, denied.Addr, allowed.Addr, pods)
		harness.Settle(ctx, what, harness.Converge, sourceRangesProbe(denied, allowed, addr, url, 3, pods), sourceRangesHold(denied, allowed, pods),
			harness.Confirm[sourceRangesResult]{Probes: 1, Probe: sourceRangesProbe(denied, allowed, addr, url, 10, pods)})
	})
})

// sourceRangesResult is one probe of loadBalancerSourceRanges: connection
// attempts from the denied client, then requests from the allowed one.
type sourceRangesResult struct {
	Denied  probe.ConnectResult
	Allowed probe.HTTPResult
}

// sourceRangesProbe makes deniedAttempts connection attempts (1s timeout:
// the load balancer is on the client's own network, where an answer takes
// milliseconds) from denied to addr, then harness.CoverSample(len(pods))
// requests from allowed to url.
func sourceRangesProbe(denied, allowed probe.Runner, addr, url string, deniedAttempts int, pods []string) harness.Probe[sourceRangesResult] {
	return func(ctx context.Context) (sourceRangesResult, error) {
		var r sourceRangesResult
		var err error
		if r.Denied, err = probe.Connect(ctx, denied, probe.ConnectOptions{Addr: addr, Count: deniedAttempts, Timeout: time.Second}); err != nil {
			return r, err
		}
		r.Allowed, err = probe.HTTP(ctx, allowed, probe.HTTPOptions{URL: url, Count: harness.CoverSample(len(pods))})
		return r, err
	}
}

// sourceRangesHold says why r is not "no attempt from the denied client
// connected, and every request from the allowed one got a 2xx from one of
// pods, each of them answering", or nil when it is.
func sourceRangesHold(denied, allowed harness.ExternalClient, pods []string) func(sourceRangesResult) error {
	return func(r sourceRangesResult) error {
		if err := notConnected(r.Denied); err != nil {
			return fmt.Errorf("denied client %s → %s: %w; attempts %+v", denied.Addr, r.Denied.Addr, err, r.Denied.Attempts)
		}
		if err := answeredByAll(r.Allowed, pods); err != nil {
			return fmt.Errorf("allowed client %s → %s: %w", allowed.Addr, r.Allowed.URL, err)
		}
		return nil
	}
}
