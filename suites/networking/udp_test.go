package networking

import (
	"fmt"
	"math/rand/v2"
	"strconv"
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

// UDP has no connection, so a proxy's Service NAT for it lives in the
// connection tracking table alone: an entry made by a client's first
// datagram keeps that client's later datagrams (same addresses, same
// ports) going to the endpoint it first chose, for as long as the client
// keeps sending. When that endpoint goes, the proxy must delete the entry,
// or the client sends into the void while the Service has other endpoints:
// kube-proxy's oldest recurring bug class. The specs here answer the
// protocol, then hold one flow (one client, one source port) across an
// endpoint's removal.
var _ = Describe("UDP Service", Label("udp"), func() {
	balance := spreadPlan(balanceEndpoints)

	It(fmt.Sprintf("answers on its ClusterIP and every node's NodePort from each of 3 endpoints, spread evenly over them (χ² at α=%g, K=%d per address)", balance.Alpha, balance.K), func(ctx SpecContext) {
		ns, client, svc, pods := udpService(ctx)
		addrs := []string{hostPort(svc.Spec.ClusterIP, fixtures.UDPPort)}
		for _, n := range env.Nodes(ctx) {
			addrs = append(addrs, hostPort(n.InternalIP.String(), onlyNodePort(svc)))
		}
		for _, addr := range addrs {
			what := fmt.Sprintf("client pod %s/%s → udp %s", ns, fixtures.ClientPod, addr)
			settleUDP(ctx, what, client, probe.ConnectOptions{Addr: addr, Timeout: time.Second}, pods)
			res := harness.Connect(ctx, client, probe.ConnectOptions{Addr: addr, Proto: "udp", Count: balance.K, Timeout: time.Second})
			expectAnswers(res, answeredOnlyBy(res, pods), what+" sample")
			expectSpread(res, pods, what)
		}
	})

	It("serves one port number over both TCP and UDP, each protocol to its own container port, on the ClusterIP and a NodePort", Label("ports"), func(ctx SpecContext) {
		ns, client, svc, pods := udpService(ctx)
		// The same port number, TCP, to the pods' HTTP server (8080).
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: fixtures.UDPPort, TargetPort: intstr.FromInt32(fixtures.UDPHTTPPort)})
		svc, err := env.Client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred(), "adding TCP port %d to %s/%s", fixtures.UDPPort, ns, fixtures.UDPService)
		nodePorts := map[corev1.Protocol]int32{}
		for _, p := range svc.Spec.Ports {
			nodePorts[p.Protocol] = p.NodePort
		}
		Expect(nodePorts[corev1.ProtocolTCP]).NotTo(BeZero(), "node port of the TCP port")
		node := env.Nodes(ctx)[0]
		for _, host := range []struct {
			ip       string
			udp, tcp int32
		}{
			{svc.Spec.ClusterIP, fixtures.UDPPort, fixtures.UDPPort},
			{node.InternalIP.String(), nodePorts[corev1.ProtocolUDP], nodePorts[corev1.ProtocolTCP]},
		} {
			who := fmt.Sprintf("client pod %s/%s", ns, fixtures.ClientPod)
			settleUDP(ctx, fmt.Sprintf("%s → udp %s", who, hostPort(host.ip, host.udp)), client, probe.ConnectOptions{Addr: hostPort(host.ip, host.udp), Timeout: time.Second}, pods)
			settleAnswered(ctx, fmt.Sprintf("%s → tcp %s", who, httpURL(host.ip, host.tcp)), client, probe.HTTPOptions{URL: httpURL(host.ip, host.tcp)}, pods, nil)
		}
	})

	Context("a client that keeps its source port", Label("conntrack"), func() {
		It("to the ClusterIP, from a pod, reaches another endpoint within the convergence budget once its endpoint is deleted", func(ctx SpecContext) {
			ns, client, svc, pods := udpService(ctx)
			followsEndpoints(ctx, ns, fmt.Sprintf("client pod %s/%s", ns, fixtures.ClientPod), client, hostPort(svc.Spec.ClusterIP, fixtures.UDPPort), pods)
		})

		It("to a NodePort, from outside, reaches another endpoint within the convergence budget once its endpoint is deleted", func(ctx SpecContext) {
			external := env.External()
			ns, _, svc, pods := udpService(ctx)
			node := env.Nodes(ctx)[0]
			followsEndpoints(ctx, ns, "the external client", external, hostPort(node.InternalIP.String(), onlyNodePort(svc)), pods)
		})

		It("to the ClusterIP with internalTrafficPolicy Local, from a pod on the endpoints' node, reaches another local endpoint within the convergence budget once its endpoint is deleted", func(ctx SpecContext) {
			nodes, _ := env.SchedulableNodes(ctx, 1) // skips, saying why, without one
			home := nodes[0]
			ns := env.Namespace(ctx)
			env.DeployOn(ctx, ns, fixtures.UDP, home.Name)
			eps, pods := waitReadyCount(ctx, ns, fixtures.UDPService, 3)
			for _, ep := range eps {
				Expect(ep.Node).To(Equal(home.Name), "endpoint %s must be on %s, where the deployment is pinned", ep, home.Name)
			}
			patchService(ctx, ns, fixtures.UDPService, map[string]any{"spec": map[string]any{"internalTrafficPolicy": "Local"}})
			clientPod := env.ClientPodOn(ctx, ns, home.Name)
			clusterIP := mustService(ctx, ns, fixtures.UDPService).Spec.ClusterIP
			followsEndpoints(ctx, ns, fmt.Sprintf("client pod %s/%s on %s (internalTrafficPolicy Local)", ns, clientPod, home.Name), env.InPod(ns, clientPod), hostPort(clusterIP, fixtures.UDPPort), pods)
		})

		It("to the ClusterIP, from a pod, is answered within the convergence budget once the Service's first endpoint is ready, though it sent while there was none", func(ctx SpecContext) {
			ns := env.Namespace(ctx)
			env.Deploy(ctx, ns, fixtures.Client)
			client := env.InPod(ns, fixtures.ClientPod)
			// The Service first selects nothing: its endpoints come when the
			// selector is pointed at the deployment's pods.
			env.Deploy(ctx, ns, fixtures.UDP)
			patchService(ctx, ns, fixtures.UDPService, map[string]any{"spec": map[string]any{"selector": map[string]any{fixtures.AppLabel: "nobody"}}})
			_, _, err := env.WaitEndpoints(ctx, ns, fixtures.UDPService, harness.Converge, func(eps []harness.Endpoint) bool { return len(eps) == 0 })
			Expect(err).NotTo(HaveOccurred(), "waiting for %s/%s to have no endpoints", ns, fixtures.UDPService)
			addr := hostPort(mustService(ctx, ns, fixtures.UDPService).Spec.ClusterIP, fixtures.UDPPort)
			// The data plane follows the selector change: from fresh source
			// ports, so that the flow below starts only once nothing answers.
			unanswered := func(res probe.ConnectResult) error {
				if t := res.Tally(); t.Answered > 0 || t.Unattributed > 0 {
					return fmt.Errorf("%d of %d attempts answered (pods %v), %s", t.Answered+t.Unattributed, t.Total, t.Pods, t.Detail)
				}
				return nil
			}
			harness.Settle(ctx, fmt.Sprintf("client pod %s/%s → udp %s without endpoints: no attempt answered", ns, fixtures.ClientPod, addr), harness.Converge,
				connectProbe(client, probe.ConnectOptions{Addr: addr, Proto: "udp", Count: 3, Timeout: time.Second}), unanswered, harness.Again[probe.ConnectResult]())
			o := probe.ConnectOptions{Addr: addr, Proto: "udp", SourcePort: sourcePort(), Count: 3, Timeout: time.Second}
			before := harness.Connect(ctx, client, o)
			Expect(unanswered(before)).To(Succeed(), "udp %s from source port %d without endpoints", addr, o.SourcePort)
			env.RecordConntrack(ctx, "while the Service had no endpoint", "-p", "udp", "--sport", strconv.Itoa(o.SourcePort))

			patchService(ctx, ns, fixtures.UDPService, map[string]any{"spec": map[string]any{"selector": map[string]any{fixtures.AppLabel: fixtures.UDPDeployment}}})
			eps, readyAt, err := env.WaitEndpoints(ctx, ns, fixtures.UDPService, harness.Deploy, func(eps []harness.Endpoint) bool { return len(harness.ReadyPods(eps)) == 3 })
			Expect(err).NotTo(HaveOccurred(), "waiting for 3 ready endpoints of %s/%s", ns, fixtures.UDPService)
			pods := harness.ReadyPods(eps)
			what := fmt.Sprintf("client pod %s/%s → udp %s from source port %d, which sent while the Service had no endpoint", ns, fixtures.ClientPod, addr, o.SourcePort)
			s := harness.Settle(ctx, what+": every attempt answered by one of "+fmt.Sprint(pods), harness.Converge,
				connectProbe(client, o), func(res probe.ConnectResult) error { return answeredOnlyBy(res, pods) },
				harness.Confirm[probe.ConnectResult]{Probes: 1, Probe: connectProbe(client, withCount(o, 10))})
			harness.Converged("udp flow answered once endpoints are ready", readyAt, s)
			env.RecordConntrack(ctx, "once answered", "-p", "udp", "--sport", strconv.Itoa(o.SourcePort))
		})
	})
})

// udpService deploys the UDP fixture (3 replicas, a NodePort Service) and
// the client pod into a fresh namespace, and waits until the 3 endpoints
// are ready.
func udpService(ctx SpecContext) (string, probe.Runner, *corev1.Service, []string) {
	ns := env.Namespace(ctx)
	env.Deploy(ctx, ns, fixtures.UDP)
	env.Deploy(ctx, ns, fixtures.Client)
	_, pods := waitReadyCount(ctx, ns, fixtures.UDPService, 3)
	return ns, env.InPod(ns, fixtures.ClientPod), mustService(ctx, ns, fixtures.UDPService), pods
}

// followsEndpoints holds one UDP flow (client → addr from one source port)
// across the deletion of the endpoint it reaches: first every attempt of
// the flow must land on one pod (the connection tracking entry is in
// place), then that pod is deleted, and within harness.Converge every
// attempt of the same flow must be answered by another pod, confirmed by
// a sample of 10 that must be answered in full, none by the deleted pod.
// The client sends all along (about once a second), so an entry the proxy
// fails to delete never times out. Each node's conntrack entries for the
// flow go into the report, before and after.
func followsEndpoints(ctx SpecContext, ns, who string, client probe.Runner, addr string, pods []string) {
	o := probe.ConnectOptions{Addr: addr, Proto: "udp", SourcePort: sourcePort(), Count: 5, Timeout: time.Second}
	flow := fmt.Sprintf("%s → udp %s from source port %d", who, addr, o.SourcePort)
	filter := []string{"-p", "udp", "--sport", strconv.Itoa(o.SourcePort)}

	s := harness.Settle(ctx, flow+": every attempt lands on one endpoint of "+fmt.Sprint(pods), harness.Converge,
		connectProbe(client, o), stickTo[probe.ConnectResult](pods), harness.Again[probe.ConnectResult]())
	var pinned string
	for p := range s.Confirmed().Pods {
		pinned = p
	}
	env.RecordConntrack(ctx, "the flow on "+pinned, filter...)

	Expect(env.Client.CoreV1().Pods(ns).Delete(ctx, pinned, metav1.DeleteOptions{})).To(Succeed(), "deleting pod %s/%s", ns, pinned)
	deleted := time.Now()
	moved := func(res probe.ConnectResult) error {
		t := res.Tally()
		switch {
		case t.Pods[pinned] > 0:
			return fmt.Errorf("%s, deleted, still answered %d of %d attempts", pinned, t.Pods[pinned], t.Total)
		case t.Unattributed > 0 || t.Answered != t.Total:
			return fmt.Errorf("of %d attempts %d were answered by a pod; answers per pod %v, %s", t.Total, t.Answered, t.Pods, t.Detail)
		}
		return nil
	}
	s2 := harness.Settle(ctx, fmt.Sprintf("%s: once %s is deleted, every attempt is answered by another pod", flow, pinned), harness.Converge,
		connectProbe(client, o), moved,
		harness.Confirm[probe.ConnectResult]{Probes: 1, Probe: connectProbe(client, withCount(o, 10)), Accept: moved})
	harness.Converged("udp flow moved off the deleted endpoint", deleted, s2)
	env.RecordConntrack(ctx, "the flow after "+pinned+" was deleted", filter...)
}

// sourcePort is a client port for one spec's flow: below Linux's ephemeral
// range (32768-60999), so no socket of the client's picks it by chance, and
// random, so two specs' flows from one external client differ.
func sourcePort() int { return 20000 + rand.IntN(10000) }

// withCount is o with another count.
func withCount(o probe.ConnectOptions, n int) probe.ConnectOptions {
	o.Count = n
	return o
}
