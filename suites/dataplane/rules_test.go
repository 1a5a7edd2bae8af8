package dataplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/suites/internal/harness"
)

// The structure specs: once a fixture's endpoints are published, every
// node's rules must hold what its Services and EndpointSlices call for in
// the cluster's proxy mode (pkg/dataplane/{iptables,nftables,ipvs} derive
// the expectations and compare). kube-proxy gets harness.Converge to catch
// up; the report says how long it took.
// Serial: as the traced specs (crosscheck_test.go), each verdict rests on
// two agreeing reads of every node's whole dump.
var _ = Describe("kube-proxy rules", Label("dataplane"), Serial, func() {
	It("on every node match the backend ClusterIP and frontend NodePort Services and their EndpointSlices", func(ctx SpecContext) {
		m := currentMode(ctx)
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Frontend)
		s := converged(ctx, m, ns)

		// What was checked, so a pass is not vacuous.
		Expect(readyEndpoints(s, fixtures.BackendService)).To(Equal(2), "backend-service ready endpoints in the checked snapshot")
		Expect(readyEndpoints(s, fixtures.FrontendService)).To(Equal(3), "frontend-nodeport-service ready endpoints in the checked snapshot")
		Expect(s.service(fixtures.FrontendService).Spec.Ports[0].NodePort).NotTo(BeZero(), "frontend node port")
		Expect(s.nodes).NotTo(BeEmpty())
	})

	It("on every node match a UDP NodePort Service and its EndpointSlices", Label("udp"), func(ctx SpecContext) {
		m := currentMode(ctx)
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.UDP)
		s := converged(ctx, m, ns)

		Expect(readyEndpoints(s, fixtures.UDPService)).To(Equal(3), "udp-service ready endpoints in the checked snapshot")
		port := s.service(fixtures.UDPService).Spec.Ports[0]
		Expect(port.Protocol).To(Equal(corev1.ProtocolUDP), "udp-service's port in the checked snapshot")
		Expect(port.NodePort).NotTo(BeZero(), "udp-service's node port")
	})

	// A CNI that accepts forwarded traffic ahead of kube-proxy's jumps
	// (kube-router v2.1.0 does, docs/cni.md) breaks the REJECT and DROP
	// rules of the no-endpoints and internal-traffic-policy specs in a way
	// traffic cannot always show: an escaped packet is dropped further on
	// by netconform's host isolation rule, which looks to a client exactly
	// like kube-proxy's DROP. The rules show it on every node.
	It("on every node are not preceded by rules that accept new forwarded connections", Label("forward-order"), func(ctx SpecContext) {
		m := currentMode(ctx)
		s := stableSnapshot(ctx, m, env.Namespace(ctx))
		Expect(s.nodes).NotTo(BeEmpty(), "nodes with a kube-proxy pod")
		var findings, evidence []string
		for _, n := range s.nodes {
			fs, ev, err := m.forwardBypass(n)
			Expect(err).NotTo(HaveOccurred(), "node %s", n.Name)
			for _, f := range fs {
				findings = append(findings, "node "+n.Name+": "+f)
			}
			evidence = append(evidence, "node "+n.Name+" ("+m.name()+"):\n"+ev)
		}
		AddReportEntry("forward filtering per node", strings.Join(evidence, "\n\n"))
		if len(findings) > 0 {
			Fail(fmt.Sprintf("forwarded traffic can skip kube-proxy's filter rules:\n  %s\nthe nodes' forward rules:\n%s", strings.Join(findings, "\n  "), strings.Join(evidence, "\n\n")))
		}
	})

	DescribeTable("on every node match a LoadBalancer Service and its EndpointSlices", Label("loadbalancer"),
		func(ctx SpecContext, policy string) {
			m := currentMode(ctx)
			ns := env.Namespace(ctx)
			env.Deploy(ctx, ns, fixtures.LoadBalancer, func(p *fixtures.Params) { p.ExternalTrafficPolicy = policy })
			ip := requireLoadBalancerIP(ctx, ns, fixtures.LoadBalancerService)
			s := converged(ctx, m, ns)

			svc := s.service(fixtures.LoadBalancerService)
			Expect(string(svc.Spec.ExternalTrafficPolicy)).To(Equal(policy))
			Expect(ingressIPs(svc)).To(ContainElement(ip), "the checked snapshot's Service carries the load-balancer IP")
			Expect(readyEndpoints(s, fixtures.LoadBalancerService)).To(Equal(2), "foo-service ready endpoints in the checked snapshot")
			if policy == "Local" {
				Expect(svc.Spec.HealthCheckNodePort).NotTo(BeZero(), "healthCheckNodePort of a Local LoadBalancer Service")
			}
		},
		Entry("with externalTrafficPolicy Cluster", "Cluster"),
		Entry("with externalTrafficPolicy Local", "Local"),
	)
})

// readyEndpoints counts the ready endpoints of a Service in the snapshot.
func readyEndpoints(s *snapshot, service string) int {
	n := 0
	for _, sl := range s.slices {
		if sl.Labels["kubernetes.io/service-name"] != service {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				n++
			}
		}
	}
	return n
}

func ingressIPs(svc *corev1.Service) []string {
	var out []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			out = append(out, ing.IP)
		}
	}
	return out
}

// requireLoadBalancerIP waits (within harness.Converge) for the Service's
// load-balancer IP. When none comes and nothing has so much as posted an
// event about the Service, the cluster has no LoadBalancer implementation
// and the spec is skipped, saying so; when something did (an implementation
// that failed to allocate, say), the spec fails with its events.
func requireLoadBalancerIP(ctx context.Context, ns, name string) string {
	var ips []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, harness.Converge, true, func(ctx context.Context) (bool, error) {
		svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ips = ingressIPs(svc)
		return len(ips) > 0, nil
	})
	if err == nil {
		AddReportEntry("load-balancer IP", fmt.Sprintf("%s/%s got %v", ns, name, ips))
		return ips[0]
	}
	events, lerr := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + name})
	if lerr != nil {
		Fail(fmt.Sprintf("Service %s/%s got no load-balancer IP within %s, and its events cannot be read: %v", ns, name, harness.Converge, lerr))
	}
	if len(events.Items) == 0 {
		Skip(fmt.Sprintf("no LoadBalancer implementation: Service %s/%s of type LoadBalancer got no ingress IP within %s and no controller posted any event about it (install one, e.g. MetalLB, to run this spec)", ns, name, harness.Converge))
	}
	var lines []string
	for _, e := range events.Items {
		lines = append(lines, fmt.Sprintf("%s %s (%s): %s", e.Type, e.Reason, e.Source.Component, e.Message))
	}
	Fail(fmt.Sprintf("Service %s/%s got no load-balancer IP within %s; events:\n  %s", ns, name, harness.Converge, strings.Join(lines, "\n  ")))
	return ""
}
