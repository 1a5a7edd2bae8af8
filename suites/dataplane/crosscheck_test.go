package dataplane

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dp "github.com/netconform/netconform/pkg/dataplane"
	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/stats"
	"github.com/netconform/netconform/suites/internal/harness"
)

// The cross-checks: a tracer's prediction from the rules a node holds must
// be what connections through that node do. Where the prediction and the
// traffic part, either the rules are not what kube-proxy meant them to be
// or the tracer misreads them; both are worth knowing.
// Serial: a read of the rules counts only when two reads of each node's
// whole dump agree (readTwice), and another spec's Services appearing or
// going would keep them from agreeing.
var _ = Describe("kube-proxy rules, traced", Label("dataplane", "crosscheck"), Serial, func() {
	// Pearson's chi-square goodness-of-fit test at α = 0.001 of the
	// answering pods' counts against the predicted shares, over the K
	// requests of the networking suite's spreading specs
	// (stats.SpreadPlan(n) for n predicted backends: 275 for backend-service's
	// two). Where the prediction is the even split kube-proxy's rules give a
	// Service's endpoints, that K fails a 2:1 split, or one backend starved
	// to half its share, with probability at least 0.99, and the record
	// gives the power; against an uneven prediction no power is claimed.
	It("predict how the client's connections to backend-service spread over its pods", func(ctx SpecContext) {
		m := currentMode(ctx)
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		s := converged(ctx, m, ns)
		client := getPod(ctx, ns, fixtures.ClientPod)
		svc := s.service(fixtures.BackendService)

		pred := predict(m, s, client.Spec.NodeName, dp.Packet{
			Src: mustAddr(client.Status.PodIP), Dst: mustAddr(svc.Spec.ClusterIP), Proto: "tcp", DPort: fixtures.BackendPort, From: dp.FromPod,
		})
		Expect(pred.pods).To(Equal(env.PodNames(ctx, ns, fixtures.BackendDeployment)),
			"the trace on %s must reach every backend pod, and only them; it predicts %s", client.Spec.NodeName, pred)

		plan, err := stats.SpreadPlan(len(pred.pods))
		Expect(err).NotTo(HaveOccurred())
		k := plan.K
		res := harness.HTTP(ctx, env.InPod(ns, fixtures.ClientPod), probe.HTTPOptions{URL: fmt.Sprintf("http://%s/", netip.AddrPortFrom(pred.packet.Dst, pred.packet.DPort)), Count: k})
		Expect(res.Unattributed).To(BeZero(), "answers naming no pod (something other than the backends answered): %+v", res)
		Expect(res.OK).To(Equal(k), "of %d requests %d succeeded; statuses %v, errors %v %v", k, res.OK, res.Statuses, res.Errors, res.ErrorSamples)
		counts, foreign := stats.CountsFor(pred.pods, res.Pods)
		Expect(foreign).To(BeEmpty(), "pods the trace never sends to answered: %v (predicted %s)", foreign, pred)

		fit, err := stats.ChiSquare(counts, pred.probs, plan.Alpha)
		Expect(err).NotTo(HaveOccurred())
		record := map[string]any{"pods": pred.pods, "predicted": pred.probs, "counts": counts, "k": k, "test": fit.String()}
		if even(pred.probs) {
			record["power"], err = plan.Describe(fit.Total)
			Expect(err).NotTo(HaveOccurred())
		}
		harness.Record("observed vs predicted", record)
		Expect(fit.Consistent()).To(BeTrue(), "answers per pod %v (K=%d) do not fit the shares the rules on %s predict (%s): %s", pred.pods, k, client.Spec.NodeName, pred, fit)
	})

	// Each predicted branch must be seen: K requests are made so that a
	// branch of the smallest predicted share p is missed with probability
	// below 1e-6 (K = ⌈ln(10⁻⁶/n) / ln(1−p)⌉, 21 for two even branches).
	It("predict which connections are masqueraded: a backend reaching itself through backend-service is, the client reaching a backend is not", Label("hairpin", "source-ip"), func(ctx SpecContext) {
		m := currentMode(ctx)
		if !m.predictsMasquerade() {
			Skip(fmt.Sprintf("in %s mode netconform predicts where connections go but not whether kube-proxy's iptables rules masquerade them", m.name()))
		}
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		s := converged(ctx, m, ns)
		client := getPod(ctx, ns, fixtures.ClientPod)
		svc := s.service(fixtures.BackendService)
		backend := getPod(ctx, ns, env.PodNames(ctx, ns, fixtures.BackendDeployment)[0])
		vip, port := mustAddr(svc.Spec.ClusterIP), uint16(fixtures.BackendPort)

		hairpin := predict(m, s, backend.Spec.NodeName, dp.Packet{Src: mustAddr(backend.Status.PodIP), Dst: vip, Proto: "tcp", DPort: port, From: dp.FromPod})
		for i, pod := range hairpin.pods {
			Expect(hairpin.masq[i]).To(Equal(pod == backend.Name),
				"the trace of %s calling its own Service on %s must masquerade exactly the branch landing on itself; it predicts %s", backend.Name, backend.Spec.NodeName, hairpin)
		}
		direct := predict(m, s, client.Spec.NodeName, dp.Packet{Src: mustAddr(client.Status.PodIP), Dst: vip, Proto: "tcp", DPort: port, From: dp.FromPod})
		Expect(direct.masq).NotTo(ContainElement(true), "the trace of the client calling backend-service on %s must not masquerade; it predicts %s", client.Spec.NodeName, direct)

		observeSources(ctx, ns, backend.Name, hairpin)
		observeSources(ctx, ns, fixtures.ClientPod, direct)
	})
})

// prediction is a trace's outcome, by answering pod.
type prediction struct {
	node   string
	packet dp.Packet
	result dp.Result
	pods   []string  // sorted
	probs  []float64 // per pod
	masq   []bool    // per pod
}

func (p prediction) String() string {
	var parts []string
	for i, pod := range p.pods {
		parts = append(parts, fmt.Sprintf("%s %.3f masquerade=%v", pod, p.probs[i], p.masq[i]))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// predict traces p through the rules of the named node in the snapshot and
// names the pod behind each destination from the EndpointSlices. The trace
// must accept the whole packet and send every branch to an endpoint.
func predict(m proxyMode, s *snapshot, nodeName string, p dp.Packet) prediction {
	n := s.node(nodeName)
	Expect(n).NotTo(BeNil(), "no rules were read from node %s", nodeName)
	tr, err := m.tracer(n)
	Expect(err).NotTo(HaveOccurred())
	res, err := tr.Trace(p)
	Expect(err).NotTo(HaveOccurred(), "tracing on %s", nodeName)
	harness.Record(fmt.Sprintf("trace on %s: %s %s -> %s", nodeName, p.From, p.Src, netip.AddrPortFrom(p.Dst, p.DPort)), res)

	Expect(res.Verdict).To(Equal(dp.Accept), "the rules on %s do not accept %s -> %s:%d (rule %q)", nodeName, p.Src, p.Dst, p.DPort, res.Rule)
	ips := s.podIPs()
	byPod := map[string]int{}
	pred := prediction{node: nodeName, packet: p, result: res}
	var total float64
	for _, d := range res.Destinations {
		pod := ips[d.IP]
		Expect(pod).NotTo(BeEmpty(), "the trace on %s sends a branch to %s:%d, which is no endpoint in %s (path %v)", nodeName, d.IP, d.Port, s.ns, d.Path)
		total += d.Probability
		if i, ok := byPod[pod]; ok {
			Expect(pred.masq[i]).To(Equal(d.Masquerade), "two branches to %s disagree on masquerade", pod)
			pred.probs[i] += d.Probability
			continue
		}
		byPod[pod] = len(pred.pods)
		pred.pods = append(pred.pods, pod)
		pred.probs = append(pred.probs, d.Probability)
		pred.masq = append(pred.masq, d.Masquerade)
	}
	Expect(total).To(BeNumerically("~", 1, 1e-6), "the trace on %s accepts only part of the packets (rule %q)", nodeName, res.Rule)
	idx := make([]int, len(pred.pods))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return pred.pods[idx[a]] < pred.pods[idx[b]] })
	sorted := prediction{node: pred.node, packet: pred.packet, result: pred.result}
	for _, i := range idx {
		sorted.pods = append(sorted.pods, pred.pods[i])
		sorted.probs = append(sorted.probs, pred.probs[i])
		sorted.masq = append(sorted.masq, pred.masq[i])
	}
	return sorted
}

// observeSources makes connections from pod like the traced packet and
// checks the source address each answering pod saw (/clientip) against
// the branch's predicted masquerade: a masqueraded branch's pod must see
// an address other than the caller's, any other exactly the caller's.
func observeSources(ctx context.Context, ns, pod string, pred prediction) {
	pmin := 1.0
	for _, p := range pred.probs {
		pmin = math.Min(pmin, p)
	}
	k := int(math.Ceil(math.Log(1e-6/float64(len(pred.pods))) / math.Log(1-pmin)))
	if pmin >= 1 {
		k = 1
	}
	res := harness.HTTP(ctx, env.InPod(ns, pod), probe.HTTPOptions{
		URL: fmt.Sprintf("http://%s/", netip.AddrPortFrom(pred.packet.Dst, pred.packet.DPort)), Path: "/clientip", Count: k,
	})
	Expect(res.Unattributed).To(BeZero(), "answers naming no pod: %+v", res)
	Expect(res.OK).To(Equal(k), "of %d requests from %s %d succeeded; statuses %v, errors %v %v", k, pod, res.OK, res.Statuses, res.Errors, res.ErrorSamples)
	src := pred.packet.Src.String()
	for i, target := range pred.pods {
		seen := res.ClientIPs[target]
		Expect(seen).NotTo(BeEmpty(), "%s never answered %s's %d requests, though the trace on %s sends it %.3f of them (answers %v)", target, pod, k, pred.node, pred.probs[i], res.Pods)
		if pred.masq[i] {
			Expect(seen).NotTo(ContainElement(src), "the trace on %s masquerades %s -> %s, yet %s saw the caller's own address %s (saw %v)", pred.node, pod, target, target, src, seen)
		} else {
			Expect(seen).To(Equal([]string{src}), "the trace on %s does not masquerade %s -> %s, so %s must see the caller's address %s; it saw %v", pred.node, pod, target, target, src, seen)
		}
	}
	AddReportEntry("sources seen from "+pod, fmt.Sprintf("prediction %s; seen per pod %v", pred, res.ClientIPs))
}

// even reports whether probs split evenly, to the precision kube-proxy
// writes probabilities with (ten digits).
func even(probs []float64) bool {
	for _, p := range probs {
		if math.Abs(p-1/float64(len(probs))) > 1e-6 {
			return false
		}
	}
	return true
}

func getPod(ctx context.Context, ns, name string) *corev1.Pod {
	p, err := env.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(p.Status.PodIP).NotTo(BeEmpty(), "pod %s has no IP", name)
	return p
}

func mustAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	Expect(err).NotTo(HaveOccurred(), "address %q", s)
	return a.Unmap()
}
