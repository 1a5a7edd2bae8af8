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

var _ = Describe("internalTrafficPolicy", Label("internal-traffic-policy"), func() {
	It("Local: a pod on the endpoints' node reaches only local endpoints; a pod on a node without one cannot connect", func(ctx SpecContext) {
		nodes, _ := env.SchedulableNodes(ctx, 2) // skips, saying why, with fewer
		with, without := nodes[0], nodes[1]
		ns := env.Namespace(ctx)
		env.DeployOn(ctx, ns, fixtures.Backend, with.Name)
		eps, pods := waitReadyCount(ctx, ns, fixtures.BackendService, 2)
		for _, ep := range eps {
			Expect(ep.Node).To(Equal(with.Name), "endpoint %s must be on %s, where the backend is pinned", ep, with.Name)
		}
		local := env.InPod(ns, env.ClientPodOn(ctx, ns, with.Name))
		remote := env.InPod(ns, env.ClientPodOn(ctx, ns, without.Name))
		clusterIP := mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP
		url := httpURL(clusterIP, fixtures.BackendPort)

		// Control, with the default policy (Cluster): the pod on the other
		// node does reach the endpoints, so what follows is the policy's doing.
		Expect(mustService(ctx, ns, fixtures.BackendService).Spec.InternalTrafficPolicy).To(HaveValue(BeEquivalentTo("Cluster")))
		harness.Await(ctx, "with internalTrafficPolicy Cluster, the pod on "+without.Name+" reaches the endpoints on "+with.Name, harness.Converge,
			httpProbe(remote, probe.HTTPOptions{URL: url, Count: 10}), func(res probe.HTTPResult) error { return answeredOnlyBy(res, pods) })

		patchService(ctx, ns, fixtures.BackendService, map[string]any{"spec": map[string]any{"internalTrafficPolicy": "Local"}})
		patched := time.Now()
		attempts := harness.Await(ctx, "with internalTrafficPolicy Local, the pod on "+without.Name+" cannot connect", harness.Converge,
			connectProbe(remote, probe.ConnectOptions{Addr: hostPort(clusterIP, fixtures.BackendPort), Count: 2, Timeout: time.Second}), notConnected)
		harness.Converged("internalTrafficPolicy Local in effect", patched, attempts)

		conn := harness.Connect(ctx, remote, probe.ConnectOptions{Addr: hostPort(clusterIP, fixtures.BackendPort), Count: 3, Timeout: 2 * time.Second})
		Expect(notConnected(conn)).To(Succeed(), "internalTrafficPolicy Local, client on %s (no endpoint there; endpoints on %s)", without.Name, with.Name)
		res := harness.HTTP(ctx, remote, probe.HTTPOptions{URL: url, Count: 5, Timeout: 2 * time.Second})
		Expect(res.Pods).To(BeEmpty(), "internalTrafficPolicy Local, client on %s: no pod may answer; answers %v", without.Name, res.Pods)
		Expect(res.Unattributed).To(BeZero(), "internalTrafficPolicy Local, client on %s: something other than a probe answered (statuses %v)", without.Name, res.Statuses)
		AddReportEntry("client without a local endpoint", fmt.Sprintf("connect outcomes %v; http errors %v", conn.Outcomes, res.Errors))

		res = harness.HTTP(ctx, local, probe.HTTPOptions{URL: url, Count: warmup})
		expectHTTP(res, answeredOnlyBy(res, localTo(mustEndpoints(ctx, ns, fixtures.BackendService), with.Name)), fmt.Sprintf("internalTrafficPolicy Local, client on %s: only endpoints on its node may answer", with.Name))
	})
})

// localTo is the ready endpoints' pods on node.
func localTo(eps []harness.Endpoint, node string) []string {
	var out []string
	for _, ep := range eps {
		if ep.Ready && ep.Node == node {
			out = append(out, ep.Pod)
		}
	}
	return out
}
