package networking

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

// holdSeconds is how long a deleted frontend pod keeps serving in these
// specs (fixtures.Params.TerminatingHold): the convergence budget, the
// sample and the set-up after the deletion fit in it with room to spare,
// and the namespace is gone about a minute after the spec.
const holdSeconds = 75

// A pod being deleted stays in its Service's EndpointSlices as terminating
// (not ready) for as long as it runs, and as serving while its readiness
// probe passes. When a Service has no ready endpoint left (a rollout that
// scaled the old pods down before the new are ready, a node drain), a proxy
// must send its traffic to the serving terminating endpoints rather than
// drop it (KEP-1669): every one of them, under each traffic policy, only
// the local ones under Local. Cilium has shipped without this fallback
// under externalTrafficPolicy Local (cilium#37613).
var _ = Describe("terminating endpoints", Label("terminating"), func() {
	type variant struct {
		policy   string // "internal" or "external"
		local    bool   // the policy is Local
		fromHome bool   // the client reaches the endpoints' node (else another)
	}
	DescribeTable("receive the traffic while they serve and no endpoint is ready,",
		func(ctx SpecContext, v variant) {
			home, other := terminatingNodes(ctx, v.fromHome)
			ns := env.Namespace(ctx)
			etp := "Cluster"
			if v.policy == "external" && v.local {
				etp = "Local"
			}
			env.DeployOn(ctx, ns, fixtures.Frontend, home.Name, func(p *fixtures.Params) {
				p.TerminatingHold, p.ExternalTrafficPolicy = holdSeconds, etp
			})
			_, pods := waitReadyCount(ctx, ns, fixtures.FrontendService, 3)
			svc := fetchService(ctx, ns, fixtures.FrontendService)
			if v.policy == "internal" && v.local {
				patchService(ctx, ns, fixtures.FrontendService, map[string]any{"spec": map[string]any{"internalTrafficPolicy": "Local"}})
			}
			target := home
			if !v.fromHome {
				target = other
			}
			var client probe.Runner
			var who, url string
			switch v.policy {
			case "internal":
				pod := env.ClientPodOn(ctx, ns, target.Name)
				client, who = env.InPod(ns, pod), fmt.Sprintf("client pod %s/%s on %s", ns, pod, target.Name)
				url = httpURL(svc.Spec.ClusterIP, fixtures.FrontendPort)
			default:
				client, who = env.External(), "the external client"
				url = addrURL(target.InternalIP, onlyNodePort(svc), "/")
			}
			what := fmt.Sprintf("%s → %s (3 endpoints on %s)", who, url, home.Name)
			settleAnswered(ctx, what+", all ready", client, probe.HTTPOptions{URL: url}, pods, nil)

			// Right after the change the old rules send to the same pods as
			// a correct fallback does, so no state can be waited for: every
			// request must go on being answered by them for the whole
			// convergence budget (harness.Hold; while the pods turn
			// terminating one by one a proxy briefly uses the ones still
			// ready, so a batch need not reach all three). Then all three
			// must answer, as the fallback uses every one of them.
			terminatingAt := terminateAll(ctx, ns, pods)
			o := probe.HTTPOptions{URL: url, Count: harness.CoverSample(len(pods))}
			harness.Hold(ctx, what+", all terminating and serving: every request answered by one of them", harness.Converge,
				httpProbe(client, o), func(res probe.HTTPResult) error { return answeredOnlyBy(res, pods) })
			s := settleAnswered(ctx, what+", all terminating and serving", client, probe.HTTPOptions{URL: url}, pods, nil)
			harness.Converged("traffic on every terminating endpoint", terminatingAt, s)
		},
		Entry("with internalTrafficPolicy Cluster, from a pod on another node to the ClusterIP", variant{policy: "internal"}),
		Entry("with internalTrafficPolicy Local, from a pod on their node to the ClusterIP", variant{policy: "internal", local: true, fromHome: true}),
		Entry("with externalTrafficPolicy Cluster, from outside to another node's NodePort", variant{policy: "external"}),
		Entry("with externalTrafficPolicy Local, from outside to their node's NodePort", variant{policy: "external", local: true, fromHome: true}),
	)

	// A load balancer asks the healthCheckNodePort which nodes to send to;
	// a node whose endpoints are all terminating must say 503, so that new
	// traffic goes elsewhere, while the connections it still gets are
	// served by those endpoints (the spec above).
	It("make the healthCheckNodePort answer 503 on their node once they are the only ones left", func(ctx SpecContext) {
		external := env.External()
		home, _ := terminatingNodes(ctx, true)
		ns := env.Namespace(ctx)
		env.DeployOn(ctx, ns, fixtures.Frontend, home.Name, func(p *fixtures.Params) {
			p.TerminatingHold, p.ExternalTrafficPolicy = holdSeconds, "Local"
		})
		_, pods := waitReadyCount(ctx, ns, fixtures.FrontendService, 3)
		// As a LoadBalancer Service with policy Local it gets a health check
		// port; no load-balancer implementation is needed for that.
		patchService(ctx, ns, fixtures.FrontendService, map[string]any{"spec": map[string]any{"type": "LoadBalancer"}})
		svc := fetchService(ctx, ns, fixtures.FrontendService)
		hc := svc.Spec.HealthCheckNodePort
		Expect(hc).NotTo(BeZero(), "Service %s/%s (type %s, policy %s) got no healthCheckNodePort", ns, svc.Name, svc.Spec.Type, svc.Spec.ExternalTrafficPolicy)
		what := fmt.Sprintf("external client → node %s:%d/healthz for %s/%s", home, hc, ns, svc.Name)
		harness.Settle(ctx, what+" with 3 ready local endpoints: 200 every time, localEndpoints 3", harness.Converge,
			healthProbe(external, home, hc), healthIs(ns, svc.Name, "200", 3), harness.Again[healthCheck]())

		terminatingAt := terminateAll(ctx, ns, pods)
		s := harness.Settle(ctx, what+" with only terminating local endpoints: 503 every time, localEndpoints 0", harness.Converge,
			healthProbe(external, home, hc), healthIs(ns, svc.Name, "503", 0), harness.Again[healthCheck]())
		harness.Converged("health check down with only terminating endpoints", terminatingAt, s)
	})
})

// terminatingNodes picks the node the endpoints go on and, when the spec
// needs one (a client elsewhere), another node; it skips, saying why, when
// the cluster has too few schedulable nodes.
func terminatingNodes(ctx SpecContext, homeOnly bool) (home, other harness.Node) {
	if homeOnly {
		nodes, _ := env.SchedulableNodes(ctx, 1)
		return nodes[0], harness.Node{}
	}
	nodes, _ := env.SchedulableNodes(ctx, 2)
	return nodes[0], nodes[1]
}

// terminateAll scales the frontend to 0, so that its pods, held by their
// preStop sleep, turn into terminating endpoints, and waits until the
// EndpointSlices show every one of pods terminating, serving and not
// ready, and nothing else; it returns when they did.
func terminateAll(ctx SpecContext, ns string, pods []string) time.Time {
	env.SetReplicas(ctx, ns, fixtures.FrontendDeployment, 0)
	eps, at, err := env.WaitEndpoints(ctx, ns, fixtures.FrontendService, harness.Converge, func(eps []harness.Endpoint) bool {
		if len(eps) != len(pods) {
			return false
		}
		for _, ep := range eps {
			if ep.Ready || !ep.Serving || !ep.Terminating {
				return false
			}
		}
		return true
	})
	Expect(err).NotTo(HaveOccurred(), "waiting for the endpoints of %s/%s to be %v, all terminating and serving; they are %v", ns, fixtures.FrontendService, pods, eps)
	Expect(harness.ReadyPods(eps)).To(BeEmpty())
	AddReportEntry("terminating", fmt.Sprintf("endpoints %v", eps))
	return at
}
