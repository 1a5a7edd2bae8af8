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
	It("Local: a pod on the endpoints' node reaches only local endpoints; a pod on a node without one cannot connect", longRunning, func(ctx SpecContext) {
		nodes, _ := env.SchedulableNodes(ctx, 2) // skips, saying why, with fewer
		with, without := nodes[0], nodes[1]
		ns := env.Namespace(ctx)
		env.DeployOn(ctx, ns, fixtures.Backend, with.Name)
		eps, pods := waitReadyCount(ctx, ns, fixtures.BackendService, 2)
		for _, ep := range eps {
			Expect(ep.Node).To(Equal(with.Name), "endpoint %s must be on %s, where the backend is pinned", ep, with.Name)
		}
		localPod, remotePod := env.ClientPodOn(ctx, ns, with.Name), env.ClientPodOn(ctx, ns, without.Name)
		local, remote := env.InPod(ns, localPod), env.InPod(ns, remotePod)
		clusterIP := mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP
		url := httpURL(clusterIP, fixtures.BackendPort)
		addr := hostPort(clusterIP, fixtures.BackendPort)

		// Control, with the default policy (Cluster): the pod on the other
		// node does reach the endpoints, so what follows is the policy's doing.
		Expect(mustService(ctx, ns, fixtures.BackendService).Spec.InternalTrafficPolicy).To(HaveValue(BeEquivalentTo("Cluster")))
		settleAnswered(ctx, fmt.Sprintf("internalTrafficPolicy Cluster: client pod %s on %s → %s (endpoints on %s)", remotePod, without.Name, url, with.Name), remote, probe.HTTPOptions{URL: url}, pods, nil)

		patchService(ctx, ns, fixtures.BackendService, map[string]any{"spec": map[string]any{"internalTrafficPolicy": "Local"}})
		patched := time.Now()
		// Converged when two attempts in a row fail to connect; then none of
		// a sample of five may connect (a policy that holds only now and
		// then lets one through).
		s := harness.Settle(ctx, fmt.Sprintf("internalTrafficPolicy Local: client pod %s on %s (no endpoint there; endpoints on %s) → %s: no attempt connects", remotePod, without.Name, with.Name, addr), harness.Converge,
			connectProbe(remote, probe.ConnectOptions{Addr: addr, Count: 2, Timeout: time.Second}), notConnected,
			harness.Confirm[probe.ConnectResult]{Probes: 1, Probe: connectProbe(remote, probe.ConnectOptions{Addr: addr, Count: 5, Timeout: 2 * time.Second})})
		harness.Converged("internalTrafficPolicy Local in effect", patched, s)
		conn := s.Confirmed()

		res := harness.HTTP(ctx, remote, probe.HTTPOptions{URL: url, Count: 5, Timeout: 2 * time.Second})
		Expect(res.Pods).To(BeEmpty(), "internalTrafficPolicy Local, client pod %s on %s → %s: no pod may answer; answers per pod %v", remotePod, without.Name, url, res.Pods)
		Expect(res.Unattributed).To(BeZero(), "internalTrafficPolicy Local, client pod %s on %s → %s: something other than a probe answered (statuses %v)", remotePod, without.Name, url, res.Statuses)
		AddReportEntry("client without a local endpoint", fmt.Sprintf("connect outcomes %v; http errors %v", conn.Outcomes, res.Errors))

		settleAnswered(ctx, fmt.Sprintf("internalTrafficPolicy Local: client pod %s on %s → %s, only endpoints on its node", localPod, with.Name, url), local, probe.HTTPOptions{URL: url},
			localTo(mustEndpoints(ctx, ns, fixtures.BackendService), with.Name), nil)
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
