package networking

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
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
	It("is kept from a pod to a ClusterIP: the backend sees the client pod's IP", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		backends := env.PodNames(ctx, ns, fixtures.BackendDeployment)
		client, err := env.Client.CoreV1().Pods(ns).Get(ctx, fixtures.ClientPod, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(client.Status.PodIP).NotTo(BeEmpty(), "client pod has no IP")

		what := fmt.Sprintf("pod %s (%s) → %s:%d/clientip, seen as its own address", client.Name, client.Status.PodIP, fixtures.BackendService, fixtures.BackendPort)
		settleAnswered(ctx, what, env.InPod(ns, fixtures.ClientPod), probe.HTTPOptions{URL: fmt.Sprintf("http://%s:%d/clientip", fixtures.BackendService, fixtures.BackendPort)},
			backends, sourcesAre(client.Status.PodIP, "the client pod's"))
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
			what := fmt.Sprintf("external client %s → node %s:%d/clientip (%s), masqueraded to a node address", external.Addr, n, port, local)
			s := settleAnswered(ctx, what, external, probe.HTTPOptions{URL: addrURL(n.InternalIP, port, "/clientip")}, frontends, func(res probe.HTTPResult) error {
				ips := seenClientIPs(res)
				if slices.Contains(ips, external.Addr.String()) {
					return fmt.Errorf("the frontends saw the client's own address %s: not masqueraded (sources seen per pod %v)", external.Addr, res.ClientIPs)
				}
				for _, ip := range ips {
					if !slices.Contains(nodeAddrs, ip) {
						return fmt.Errorf("the frontends saw %s, not a node address (InternalIPs and pod-CIDR gateways %v); sources seen per pod %v", ip, nodeAddrs, res.ClientIPs)
					}
				}
				return nil
			})
			seen[n.Name] = seenClientIPs(s.Confirmed())
		}
		AddReportEntry("source seen per receiving node", fmt.Sprint(seen))
	})

	It("is preserved from outside to a NodePort with externalTrafficPolicy Local, and only nodes with a local endpoint answer", longRunning, func(ctx SpecContext) {
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

		what := fmt.Sprintf("external client %s → node %s:%d/clientip (all endpoints local), its address preserved", external.Addr, home, port)
		settleAnswered(ctx, what, external, probe.HTTPOptions{URL: addrURL(home.InternalIP, port, "/clientip")}, frontends, sourcesAre(external.Addr.String(), "the client's own"))
		// The node with the endpoints answers, so the Service's rules are in
		// place; a node without one must not forward: no attempt of a
		// converged batch and of a confirmation batch may connect.
		for _, n := range nodes {
			if n.Name == home.Name {
				continue
			}
			addr := netip.AddrPortFrom(n.InternalIP, uint16(port)).String()
			harness.Settle(ctx, fmt.Sprintf("external client %s → node %s:%d (no local endpoint, policy Local): not forwarded, no attempt connects", external.Addr, n, port), harness.Converge,
				connectProbe(external, probe.ConnectOptions{Addr: addr, Count: 3, Timeout: time.Second}), notConnected, harness.Again[probe.ConnectResult]())
		}
	})

	It("has a healthCheckNodePort (type LoadBalancer, policy Local) answering 200 only where endpoints are, following them, released under Cluster", longRunning, func(ctx SpecContext) {
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
				what := fmt.Sprintf("external client → node %s:%d/healthz (endpoints on %s): %s every time, localEndpoints %d for %s/%s", n, hc, home.Name, wantStatus, wantLocal, ns, svc.Name)
				harness.Settle(ctx, what, harness.Converge, healthProbe(external, n, hc), healthIs(ns, svc.Name, wantStatus, wantLocal), harness.Again[healthCheck]())
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
			what := fmt.Sprintf("external client → node %s:%d/healthz (released port): no answer", n, hc)
			harness.Settle(ctx, what, harness.Converge, httpProbe(external, probe.HTTPOptions{URL: addrURL(n.InternalIP, hc, "/healthz"), Count: 3}), func(res probe.HTTPResult) error {
				if len(res.Statuses) > 0 || res.Total == 0 {
					return fmt.Errorf("still answered: statuses %v of %d requests", res.Statuses, res.Total)
				}
				return nil
			}, harness.Again[probe.HTTPResult]())
		}
	})
})

// sourcesAre says why the answering pods of res did not see exactly the
// source addr (whose: whose address it is), or nil when they did.
func sourcesAre(addr, whose string) func(probe.HTTPResult) error {
	return func(res probe.HTTPResult) error {
		if ips := seenClientIPs(res); !slices.Equal(ips, []string{addr}) {
			return fmt.Errorf("sources seen %v (per pod %v); want only %s %s", ips, res.ClientIPs, whose, addr)
		}
		return nil
	}
}

// healthCheck is one probe of a healthCheckNodePort: the statuses an
// external client got, and the body as the test process read it.
type healthCheck struct {
	HTTP      probe.HTTPResult
	Body      proxyHealth
	BodyError string
}

// healthIs says why a health check probe is not "every request answered
// status, the body naming Service ns/name with localEndpoints local", or
// nil when it is.
func healthIs(ns, name, status string, local int) func(healthCheck) error {
	return func(p healthCheck) error {
		switch h := p.Body; {
		case !maps.Equal(p.HTTP.Statuses, map[string]int{status: p.HTTP.Total}) || p.HTTP.Total == 0:
			return fmt.Errorf("statuses %v of %d requests, errors %v %v", p.HTTP.Statuses, p.HTTP.Total, p.HTTP.Errors, p.HTTP.ErrorSamples)
		case p.BodyError != "":
			return fmt.Errorf("reading the body from the test process: %s", p.BodyError)
		case h.Service.Namespace+"/"+h.Service.Name != ns+"/"+name:
			return fmt.Errorf("the health check answers for another Service: %+v", h)
		case h.LocalEndpoints != local:
			return fmt.Errorf("localEndpoints in %+v", h)
		}
		return nil
	}
}

// healthProbe asks node n's health check port hc from the external
// client (five requests), then reads the body from the test process.
func healthProbe(external probe.Runner, n harness.Node, hc int32) harness.Probe[healthCheck] {
	return func(ctx context.Context) (healthCheck, error) {
		res, err := probe.HTTP(ctx, external, probe.HTTPOptions{URL: addrURL(n.InternalIP, hc, "/healthz"), Count: 5})
		if err != nil {
			return healthCheck{}, err
		}
		p := healthCheck{HTTP: res}
		if p.Body, err = readProxyHealth(ctx, n.InternalIP, hc); err != nil {
			p.BodyError = err.Error()
		}
		return p, nil
	}
}
