package networking

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

var _ = Describe("source IP", Label("source-ip"), func() {
	const k = 10

	It("is kept from a pod to a ClusterIP: the backend sees the client pod's IP", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		backends := env.PodNames(ctx, ns, fixtures.BackendDeployment)
		client, err := env.Client.CoreV1().Pods(ns).Get(ctx, fixtures.ClientPod, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(client.Status.PodIP).NotTo(BeEmpty(), "client pod has no IP")

		what := fmt.Sprintf("pod %s (%s) → %s:%d/clientip", client.Name, client.Status.PodIP, fixtures.BackendService, fixtures.BackendPort)
		awaitDataPlane(ctx, what, func(g Gomega) {
			res := harness.HTTP(ctx, env.InPod(ns, fixtures.ClientPod), probe.HTTPOptions{
				URL: fmt.Sprintf("http://%s:%d/clientip", fixtures.BackendService, fixtures.BackendPort), Count: k})
			expectAllAnsweredBy(g, res, backends, what)
			g.Expect(seenClientIPs(res)).To(Equal([]string{client.Status.PodIP}),
				"%s: client addresses the backends saw, per pod %v; want only the client pod's %s", what, res.ClientIPs, client.Status.PodIP)
		})
	})

	It("is replaced by a node address from outside to a NodePort with externalTrafficPolicy Cluster, on nodes with and without a local endpoint", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		external := env.ExternalAt(ctx)
		schedulable, nodes := env.SchedulableNodes(ctx, 1)
		if len(nodes) < 2 {
			Skip(fmt.Sprintf("needs a node without a local endpoint, so at least 2 nodes; the cluster has %d", len(nodes)))
		}
		home := schedulable[0]
		env.DeployOn(ctx, ns, fixtures.Frontend, home.Name)
		svc := fetchService(ctx, ns, fixtures.FrontendService)
		Expect(svc.Spec.ExternalTrafficPolicy).To(Equal(corev1.ServiceExternalTrafficPolicyCluster))
		port := onlyNodePort(svc)
		frontends := env.PodNames(ctx, ns, fixtures.FrontendDeployment)

		// What a masquerading node may put as the source: an InternalIP
		// (forwarded to another node) or its own address towards its pods
		// (delivered locally). Never the client's own.
		var nodeAddrs []string
		for _, n := range nodes {
			nodeAddrs = append(nodeAddrs, n.InternalIP.String())
			for _, gw := range n.PodGateways() {
				nodeAddrs = append(nodeAddrs, gw.String())
			}
		}
		seen := map[string][]string{}
		for _, n := range nodes {
			local := "no local endpoint"
			if n.Name == home.Name {
				local = "all endpoints local"
			}
			what := fmt.Sprintf("external client %s → node %s:%d/clientip (%s)", external.Addr, n, port, local)
			awaitDataPlane(ctx, what, func(g Gomega) {
				res := harness.HTTP(ctx, external, probe.HTTPOptions{URL: addrURL(n.InternalIP, port, "/clientip"), Count: k})
				expectAllAnsweredBy(g, res, frontends, what)
				ips := seenClientIPs(res)
				g.Expect(ips).NotTo(ContainElement(external.Addr.String()),
					"%s: the backend saw the client's own address: not masqueraded (per pod %v)", what, res.ClientIPs)
				g.Expect(ips).To(HaveEach(BeElementOf(nodeAddrs)),
					"%s: client addresses seen %v (per pod %v); want node addresses (InternalIPs and pod-CIDR gateways) %v", what, ips, res.ClientIPs, nodeAddrs)
				seen[n.Name] = ips
			})
		}
		AddReportEntry("source seen per receiving node", fmt.Sprint(seen))
	})

	It("is preserved from outside to a NodePort with externalTrafficPolicy Local, and only nodes with a local endpoint answer", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		external := env.ExternalAt(ctx)
		schedulable, nodes := env.SchedulableNodes(ctx, 1)
		if len(nodes) < 2 {
			Skip(fmt.Sprintf("needs a node without a local endpoint, so at least 2 nodes; the cluster has %d", len(nodes)))
		}
		home := schedulable[0]
		env.DeployOn(ctx, ns, fixtures.Frontend, home.Name, func(p *fixtures.Params) { p.ExternalTrafficPolicy = "Local" })
		svc := fetchService(ctx, ns, fixtures.FrontendService)
		Expect(svc.Spec.ExternalTrafficPolicy).To(Equal(corev1.ServiceExternalTrafficPolicyLocal))
		port := onlyNodePort(svc)
		frontends := env.PodNames(ctx, ns, fixtures.FrontendDeployment)

		what := fmt.Sprintf("external client %s → node %s:%d/clientip (all endpoints local)", external.Addr, home, port)
		awaitDataPlane(ctx, what, func(g Gomega) {
			res := harness.HTTP(ctx, external, probe.HTTPOptions{URL: addrURL(home.InternalIP, port, "/clientip"), Count: k})
			expectAllAnsweredBy(g, res, frontends, what)
			g.Expect(seenClientIPs(res)).To(Equal([]string{external.Addr.String()}),
				"%s: client addresses the frontends saw, per pod %v; want only the client's own %s", what, res.ClientIPs, external.Addr)
		})
		// The node with the endpoints answers, so the Service's rules are in
		// place; a node without one must not forward.
		for _, n := range nodes {
			if n.Name == home.Name {
				continue
			}
			addr := netip.AddrPortFrom(n.InternalIP, uint16(port)).String()
			res := harness.Connect(ctx, external, probe.ConnectOptions{Addr: addr, Count: 3, Timeout: 2 * time.Second})
			Expect(res.Outcomes[probe.Connected]).To(BeZero(),
				"external client → node %s:%d (no local endpoint, policy Local) must not be forwarded; outcomes %v, attempts %+v", n, port, res.Outcomes, res.Attempts)
			Expect(res.Total).To(Equal(3))
		}
	})

	It("has a healthCheckNodePort (type LoadBalancer, policy Local) answering 200 only where endpoints are, following them, released under Cluster", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		external := env.External()
		schedulable, nodes := env.SchedulableNodes(ctx, 2)
		first, second := schedulable[0], schedulable[1]
		// The seed load balancer (two replicas); no load-balancer
		// implementation is needed: the API allocates the health check
		// port and kube-proxy serves it.
		env.DeployOn(ctx, ns, fixtures.LoadBalancer, first.Name, func(p *fixtures.Params) { p.ExternalTrafficPolicy = "Local" })
		svc := fetchService(ctx, ns, fixtures.LoadBalancerService)
		hc := svc.Spec.HealthCheckNodePort
		Expect(hc).NotTo(BeZero(), "Service %s/%s (type %s, policy %s) got no healthCheckNodePort", ns, svc.Name, svc.Spec.Type, svc.Spec.ExternalTrafficPolicy)
		const replicas = 2

		expectHealth := func(home harness.Node) {
			for _, n := range nodes {
				wantStatus, wantLocal := "503", 0
				if n.Name == home.Name {
					wantStatus, wantLocal = "200", replicas
				}
				what := fmt.Sprintf("external client → node %s:%d/healthz (endpoints on %s)", n, hc, home.Name)
				awaitDataPlane(ctx, what, func(g Gomega) {
					res := harness.HTTP(ctx, external, probe.HTTPOptions{URL: addrURL(n.InternalIP, hc, "/healthz"), Count: 3})
					g.Expect(res.Statuses).To(Equal(map[string]int{wantStatus: 3}),
						"%s: statuses %v, errors %v %v; want %s every time", what, res.Statuses, res.Errors, res.ErrorSamples, wantStatus)
					h, err := readProxyHealth(ctx, n.InternalIP, hc)
					g.Expect(err).NotTo(HaveOccurred(), "%s: reading the body from the test process", what)
					g.Expect(h.Service.Namespace+"/"+h.Service.Name).To(Equal(ns+"/"+svc.Name), "%s: the health check answers for another Service: %+v", what, h)
					g.Expect(h.LocalEndpoints).To(Equal(wantLocal), "%s: localEndpoints in %+v", what, h)
				})
			}
		}
		expectHealth(first)

		By("moving both endpoints to " + second.Name)
		env.Pin(ctx, ns, fixtures.LoadBalancerDeployment, second.Name)
		expectHealth(second)

		By("switching the Service to externalTrafficPolicy Cluster")
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"externalTrafficPolicy": "Cluster"}})
		svc, err := env.Client.CoreV1().Services(ns).Patch(ctx, svc.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec.HealthCheckNodePort).To(BeZero(), "healthCheckNodePort after switching to Cluster")
		for _, n := range nodes {
			what := fmt.Sprintf("external client → node %s:%d/healthz (released port)", n, hc)
			awaitDataPlane(ctx, what, func(g Gomega) {
				res := harness.HTTP(ctx, external, probe.HTTPOptions{URL: addrURL(n.InternalIP, hc, "/healthz"), Count: 3})
				g.Expect(res.Statuses).To(BeEmpty(), "%s: still answered: statuses %v", what, res.Statuses)
			})
		}
	})
})
