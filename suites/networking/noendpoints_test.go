package networking

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

// refuseBoundMs bounds how long a refusal may take: a Service without
// endpoints must be refused at once (kube-proxy REJECTs with an ICMP port
// unreachable), well apart from a DROP, which only the attempt's timeout
// (refuseTimeout) ends.
//
// Each target is asked once per phase, on purpose: Linux rate-limits the
// ICMP errors a node sends to one destination (net.ipv4.icmp_ratelimit,
// 1000ms, with a burst of 6), and beyond the burst a REJECTed SYN goes
// unanswered and the refusal only comes with the SYN's retransmission a
// second later — the kernel's doing, not the proxy's. One attempt per target
// per phase keeps a client within the burst (seen on v1.37 iptables: after
// six refusals in a row from one node, each further one took 1.02s).
const (
	refuseBoundMs = 1000
	refuseTimeout = 3 * time.Second
)

const lonelyService = "lonely"

var _ = Describe("Service without endpoints", Label("no-endpoints"), func() {
	// Label "forwarded": a pod's packets are routed (FORWARD), unlike an
	// external client's to a node's own address, so a CNI that accepts
	// forwarded traffic ahead of kube-proxy breaks only this one; the
	// matrix declares known failures by that label.
	It(fmt.Sprintf("refuses a pod's connections to its ClusterIP and NodePort at once (< %dms), answers once a backend appears, and refuses again once it is gone", refuseBoundMs), Label("no-endpoints-forwarded"), func(ctx SpecContext) {
		noEndpointsLifecycle(ctx, false)
	})

	It(fmt.Sprintf("refuses an external client's connections to its NodePort at once (< %dms), answers once a backend appears, and refuses again once it is gone", refuseBoundMs), func(ctx SpecContext) {
		noEndpointsLifecycle(ctx, true)
	})
})

// noEndpointsLifecycle creates a NodePort Service selecting the backend
// fixture's pods before any exist, and checks the three phases: refused
// (no endpoints), answered by the backend (Deployment created), refused
// again (Deployment deleted). From a pod it probes the ClusterIP and the
// NodePort on every node; from the external client, the NodePorts.
func noEndpointsLifecycle(ctx SpecContext, external bool) {
	var runner probe.Runner
	where := "a pod"
	if external {
		runner, where = env.External(), "the external client" // skips without one
	}
	ns := env.Namespace(ctx)
	env.Deploy(ctx, ns, fixtures.Client)
	if !external {
		runner = env.InPod(ns, fixtures.ClientPod)
	}
	svc, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: lonelyService, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{fixtures.AppLabel: fixtures.BackendDeployment},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP,
				Port: fixtures.BackendPort, TargetPort: intstr.FromInt32(fixtures.BackendPort),
			}},
		},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	created := time.Now()
	Expect(mustEndpoints(ctx, ns, lonelyService)).To(BeEmpty(), "the selector must match nothing yet")
	nodePort := svc.Spec.Ports[0].NodePort
	Expect(nodePort).NotTo(BeZero())

	var targets []string
	if !external {
		targets = append(targets, hostPort(svc.Spec.ClusterIP, fixtures.BackendPort))
	}
	for _, n := range env.Nodes(ctx) {
		targets = append(targets, hostPort(n.InternalIP.String(), nodePort))
	}

	expectRefused := func(since time.Time, phase string) {
		for _, addr := range targets {
			what := fmt.Sprintf("%s: %s refused from %s", phase, addr, where)
			o := probe.ConnectOptions{Addr: addr, Count: 1, Timeout: refuseTimeout}
			s := harness.Settle(ctx, what, harness.Converge,
				connectProbe(runner, o), func(res probe.ConnectResult) error { return refusedWithin(res, refuseBoundMs) }, harness.Again[probe.ConnectResult]())
			harness.Converged(what, since, s)
			harness.Record("connect "+addr+" ("+phase+")", s.Confirmed())
		}
	}
	expectRefused(created, "no endpoints")

	// A backend appears: every target answers, attributed to its pods.
	env.Deploy(ctx, ns, fixtures.Backend)
	_, sliceAt, err := env.WaitEndpoints(ctx, ns, lonelyService, harness.Deploy, func(eps []harness.Endpoint) bool {
		return len(harness.ReadyPods(eps)) == 2
	})
	Expect(err).NotTo(HaveOccurred())
	pods := harness.ReadyPods(mustEndpoints(ctx, ns, lonelyService))
	for _, addr := range targets {
		what := fmt.Sprintf("%s answered by the backend, from %s", addr, where)
		s := harness.Settle(ctx, what, harness.Converge,
			httpProbe(runner, probe.HTTPOptions{URL: "http://" + addr + "/", Count: 5}),
			func(res probe.HTTPResult) error { return answeredOnlyBy(res, pods) }, harness.Again[probe.HTTPResult]())
		harness.Converged(what, sliceAt, s)
	}

	// The backend goes: the refusal returns.
	Expect(env.Client.AppsV1().Deployments(ns).Delete(ctx, fixtures.BackendDeployment, metav1.DeleteOptions{})).To(Succeed())
	_, goneAt, err := env.WaitEndpoints(ctx, ns, lonelyService, harness.Deploy, func(eps []harness.Endpoint) bool { return len(eps) == 0 })
	Expect(err).NotTo(HaveOccurred(), "waiting for the endpoints to go with the backend")
	expectRefused(goneAt, "endpoints gone")
}
