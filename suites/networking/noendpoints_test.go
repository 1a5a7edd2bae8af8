package networking

import (
	"fmt"
	"strings"
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
const (
	refuseBoundMs = 1000
	refuseTimeout = 3 * time.Second
)

// Refusals are confirmed by a sample: once a target has been refused,
// refuseSample more attempts to it must all be refused within the bound,
// so a REJECT that works only now and then does not pass (one that fails
// an attempt with probability q passes a target's sample with probability
// (1−q)^5: 3 % for q = ½, and a node-wide fault must pass every target).
//
// The attempts are paced (refusePace between the end of one attempt and
// the start of the next, whatever the target): Linux rate-limits the ICMP
// errors a node sends to one destination (net.ipv4.icmp_ratelimit,
// 1000 ms: a token bucket per destination earning one error a second and
// holding at most six), and beyond it a REJECTed SYN goes unanswered and
// the refusal only comes with the SYN's retransmission a second later —
// the kernel's doing, not the proxy's (seen on v1.37 iptables: after six
// refusals in a row from one node, each further one took 1.02s). The
// refusal of an attempt comes before the attempt ends, so with a pace of
// at least the rate limit's period no node sends errors to the client
// faster than it earns them, whichever node refuses which target (the
// client's own node refuses both the ClusterIP and its own NodePort), and
// a correct proxy never meets the limit.
const (
	refuseSample = 5
	refusePace   = time.Second
)

const lonelyService = "lonely"

// The lifecycle of a NodePort Service selecting the backend fixture's
// pods, created before any exist: refused (no endpoints), answered by the
// backend (Deployment created), refused again (Deployment deleted). Each
// phase is a spec of its own, so that a known failure can name the phase
// that fails; they share the Service and the client (Ordered), and a
// failing phase does not stop the next (ContinueOnFailure). From a pod the
// targets are the ClusterIP and the NodePort on every node; from the
// external client, the NodePorts.
var _ = Describe("Service without endpoints", Label("no-endpoints"), func() {
	// Label "no-endpoints-forwarded": a pod's packets are routed
	// (FORWARD), unlike an external client's to a node's own address, so a
	// CNI that accepts forwarded traffic ahead of kube-proxy breaks only
	// these.
	Describe("from a pod, to its ClusterIP and every node's NodePort", Label("no-endpoints-forwarded"), Ordered, ContinueOnFailure, longRunning, func() {
		noEndpointsLifecycle(false)
	})
	Describe("from an external client, to every node's NodePort", Ordered, ContinueOnFailure, longRunning, func() {
		noEndpointsLifecycle(true)
	})
})

// lonely is the no-endpoints fixture shared by the phases: the Service,
// the client and what it probes.
type lonely struct {
	ns      string
	runner  probe.Runner
	where   string // the client, for messages
	targets []string
	created time.Time
	// pacer spaces every connection attempt of the client (see refusePace).
	pacer *harness.Pacer
}

func noEndpointsLifecycle(external bool) {
	var l lonely
	BeforeAll(func(ctx SpecContext) { l = newLonely(ctx, external) })
	AfterEach(func(ctx SpecContext) {
		// The namespace's own clean-up sees only the last phase's outcome.
		if CurrentSpecReport().Failed() {
			env.CollectEvidence(ctx, l.ns)
		}
	})

	It(fmt.Sprintf("refuses connections at once (< %dms) while it has no endpoints", refuseBoundMs), func(ctx SpecContext) {
		l.expectRefused(ctx, l.created, "no endpoints")
	})

	It("answers from its backend pods, each of them, once their endpoints are ready", func(ctx SpecContext) {
		env.Deploy(ctx, l.ns, fixtures.Backend)
		_, sliceAt, err := env.WaitEndpoints(ctx, l.ns, lonelyService, harness.Deploy, func(eps []harness.Endpoint) bool {
			return len(harness.ReadyPods(eps)) == 2
		})
		Expect(err).NotTo(HaveOccurred())
		pods := harness.ReadyPods(mustEndpoints(ctx, l.ns, lonelyService))
		for _, addr := range l.targets {
			s := settleAnswered(ctx, fmt.Sprintf("%s → %s (endpoints ready)", l.where, addr), l.runner, probe.HTTPOptions{URL: "http://" + addr + "/"}, pods, nil)
			harness.Converged(fmt.Sprintf("%s answered by the backend, from %s", addr, l.where), sliceAt, s)
		}
	})

	It(fmt.Sprintf("refuses connections at once (< %dms) again once its last endpoint is gone", refuseBoundMs), func(ctx SpecContext) {
		Expect(env.Client.AppsV1().Deployments(l.ns).Delete(ctx, fixtures.BackendDeployment, metav1.DeleteOptions{})).To(Succeed())
		_, goneAt, err := env.WaitEndpoints(ctx, l.ns, lonelyService, harness.Deploy, func(eps []harness.Endpoint) bool { return len(eps) == 0 })
		Expect(err).NotTo(HaveOccurred(), "waiting for the endpoints to go with the backend")
		l.expectRefused(ctx, goneAt, "endpoints gone")
	})
}

// newLonely creates the namespace, the client (the client pod, or the
// external client) and the Service, which selects no pod yet.
func newLonely(ctx SpecContext, external bool) lonely {
	l := lonely{where: "a pod", pacer: &harness.Pacer{Gap: refusePace}}
	if external {
		l.runner, l.where = env.External(), "the external client" // skips without one
	}
	l.ns = env.Namespace(ctx)
	env.Deploy(ctx, l.ns, fixtures.Client)
	if !external {
		l.runner, l.where = env.InPod(l.ns, fixtures.ClientPod), "client pod "+l.ns+"/"+fixtures.ClientPod
	}
	svc, err := env.Client.CoreV1().Services(l.ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: lonelyService, Namespace: l.ns},
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
	l.created = time.Now()
	Expect(mustEndpoints(ctx, l.ns, lonelyService)).To(BeEmpty(), "the selector must match nothing yet")
	nodePort := svc.Spec.Ports[0].NodePort
	Expect(nodePort).NotTo(BeZero())
	if !external {
		l.targets = append(l.targets, hostPort(svc.Spec.ClusterIP, fixtures.BackendPort))
	}
	for _, n := range env.Nodes(ctx) {
		l.targets = append(l.targets, hostPort(n.InternalIP.String(), nodePort))
	}
	return l
}

// expectRefused settles, target by target, that every connection attempt
// is refused within refuseBoundMs: once one is (convergence, counted from
// since), refuseSample more must be. Every attempt is paced (refusePace).
func (l *lonely) expectRefused(ctx SpecContext, since time.Time, phase string) {
	for _, addr := range l.targets {
		what := fmt.Sprintf("%s → %s (%s): every attempt refused within %dms", l.where, addr, phase, refuseBoundMs)
		try := harness.Paced(l.pacer, connectProbe(l.runner, probe.ConnectOptions{Addr: addr, Count: 1, Timeout: refuseTimeout}))
		s := harness.Settle(ctx, what, harness.Converge, try, func(res probe.ConnectResult) error { return refusedWithin(res, refuseBoundMs) },
			harness.Confirm[probe.ConnectResult]{Probes: refuseSample})
		harness.Converged(what, since, s)
		var ms []string
		for _, a := range s.Sample {
			for _, at := range a.Result.Attempts {
				ms = append(ms, fmt.Sprintf("%s %.0fms", at.Outcome, at.Ms))
			}
		}
		AddReportEntry("refusals of "+addr+" ("+phase+")", strings.Join(ms, ", "))
	}
}
