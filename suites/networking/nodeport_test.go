package networking

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
)

var _ = Describe("frontend-nodeport-service", Label("nodeport"), func() {
	// With externalTrafficPolicy Cluster a NodePort is open on every node,
	// whether or not the node runs an endpoint: a node without one forwards
	// to another node's pod. To have such nodes for certain, all three
	// frontend replicas are pinned to one schedulable node (a nodeSelector
	// on its hostname); every other node, the control plane included, has
	// no local endpoint.
	It("answers on every node's InternalIP at the nodePort, from a pod and from outside, including nodes without a local endpoint", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		external := env.External()
		schedulable, nodes := env.SchedulableNodes(ctx, 1)
		if len(nodes) < 2 {
			Skip(fmt.Sprintf("needs a node without a local endpoint, so at least 2 nodes; the cluster has %d", len(nodes)))
		}
		home := schedulable[0]
		env.DeployOn(ctx, ns, fixtures.Frontend, home.Name)
		env.Deploy(ctx, ns, fixtures.Client)

		svc := fetchService(ctx, ns, fixtures.FrontendService)
		Expect(svc.Spec.ExternalTrafficPolicy).To(Equal(corev1.ServiceExternalTrafficPolicyCluster))
		port := onlyNodePort(svc)
		frontends := env.PodNames(ctx, ns, fixtures.FrontendDeployment)
		Expect(frontends).To(HaveLen(3), "frontend pods")

		clients := []struct {
			name   string
			runner probe.Runner
		}{
			{"pod " + ns + "/" + fixtures.ClientPod, env.InPod(ns, fixtures.ClientPod)},
			{"external client on network " + env.Info.Network, external},
		}
		// Per node and client, once the node answers, a confirmation sample
		// of harness.CoverSample(3) = 26 requests must all succeed and reach
		// all three frontends: a node that reaches only two of them passes
		// it with probability (2/3)^26 ≈ 2.6e-5.
		for _, n := range nodes {
			local := "no local endpoint"
			if n.Name == home.Name {
				local = "all 3 endpoints local"
			}
			for _, c := range clients {
				what := fmt.Sprintf("%s → node %s:%d (%s)", c.name, n, port, local)
				settleAnswered(ctx, what, c.runner, probe.HTTPOptions{URL: addrURL(n.InternalIP, port, "/")}, frontends, nil)
			}
		}
	})
})
