package networking

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/stats"
	"github.com/netconform/netconform/suites/internal/harness"
)

// Helpers of the pod-side specs (dns, balancing, hairpin, no-endpoints,
// internal-traffic-policy).

// mustService reads a Service, failing the spec when it cannot.
func mustService(ctx context.Context, ns, name string) *corev1.Service {
	svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred(), "getting Service %s/%s", ns, name)
	return svc
}

// patchService applies a JSON merge patch (given as a Go value) to a Service.
func patchService(ctx context.Context, ns, name string, patch map[string]any) {
	data, err := json.Marshal(patch)
	Expect(err).NotTo(HaveOccurred())
	_, err = env.Client.CoreV1().Services(ns).Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{})
	Expect(err).NotTo(HaveOccurred(), "patching Service %s/%s with %s", ns, name, data)
}

// mustEndpoints reads a Service's endpoints from its EndpointSlices.
func mustEndpoints(ctx context.Context, ns, svc string) []harness.Endpoint {
	eps, err := env.Endpoints(ctx, ns, svc)
	Expect(err).NotTo(HaveOccurred())
	return eps
}

// waitReadyCount watches the Service's EndpointSlices until exactly n of its
// endpoints are ready (terminating ones may still be listed), within the
// Deploy budget (pods are being created or deleted), and returns the
// endpoints and the ready pods' names, sorted.
func waitReadyCount(ctx context.Context, ns, svc string, n int) ([]harness.Endpoint, []string) {
	eps, _, err := env.WaitEndpoints(ctx, ns, svc, harness.Deploy, func(eps []harness.Endpoint) bool {
		return len(harness.ReadyPods(eps)) == n
	})
	Expect(err).NotTo(HaveOccurred(), "waiting for %d ready endpoints of %s/%s", n, ns, svc)
	return eps, harness.ReadyPods(eps)
}

// hostPort joins a host (IP or name) and port.
func hostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// httpURL is http://host:port/.
func httpURL(host string, port int32) string {
	return "http://" + hostPort(host, port) + "/"
}

// httpProbe adapts probe.HTTP to harness.Settle.
func httpProbe(r probe.Runner, o probe.HTTPOptions) harness.Probe[probe.HTTPResult] {
	return func(ctx context.Context) (probe.HTTPResult, error) { return probe.HTTP(ctx, r, o) }
}

// connectProbe adapts probe.Connect to harness.Settle.
func connectProbe(r probe.Runner, o probe.ConnectOptions) harness.Probe[probe.ConnectResult] {
	return func(ctx context.Context) (probe.ConnectResult, error) { return probe.Connect(ctx, r, o) }
}

// settleAnswered waits (harness.Converge) until a batch of
// harness.CoverSample(len(pods)) requests from client to o.URL is answered,
// every request with a 2xx from one of pods and each of pods at least
// once, and extra (when not nil) holds; then confirms it with one more
// batch of that size, of which the same must hold. A path that cannot
// reach one of the pods is caught with probability ≥ 0.9999, and a correct
// one fails by chance with probability ≤ 1e-4 (harness.CoverSample). what
// names the client and the target; the failure adds what was seen.
func settleAnswered(ctx context.Context, what string, client probe.Runner, o probe.HTTPOptions, pods []string, extra func(probe.HTTPResult) error) harness.Settled[probe.HTTPResult] {
	o.Count = harness.CoverSample(len(pods))
	return settleCovered(ctx, what, o.Count, httpProbe(client, o), pods, extra)
}

// settleUDP is settleAnswered for UDP: attempts from client to o.Addr,
// each answered by a datagram naming one of pods.
func settleUDP(ctx context.Context, what string, client probe.Runner, o probe.ConnectOptions, pods []string) harness.Settled[probe.ConnectResult] {
	o.Proto, o.Count = "udp", harness.CoverSample(len(pods))
	return settleCovered(ctx, what, o.Count, connectProbe(client, o), pods, nil)
}

// settleCovered settles on batches of n from try that every one of pods
// answers (answeredByAll) and extra accepts, confirmed by one more.
func settleCovered[R tallied](ctx context.Context, what string, n int, try harness.Probe[R], pods []string, extra func(R) error) harness.Settled[R] {
	accept := func(res R) error {
		if err := answeredByAll(res, pods); err != nil {
			return err
		}
		if extra != nil {
			return extra(res)
		}
		return nil
	}
	return harness.Settle(ctx, fmt.Sprintf("%s: every one of %d requests answered by one of %v, each of them at least once", what, n, pods),
		harness.Converge, try, accept, harness.Again[R]())
}

// tallied is a probe result that counts who answered (probe.Tally):
// probe.HTTPResult and probe.ConnectResult, so the verdicts below serve
// HTTP requests and UDP attempts alike.
type tallied interface{ Tally() probe.Tally }

// answeredOnlyBy says why res is not "every request (or attempt) was
// answered successfully by one of pods", or nil when it is.
func answeredOnlyBy(res tallied, pods []string) error {
	t := res.Tally()
	_, foreign := stats.CountsFor(pods, t.Pods)
	switch {
	case t.Total == 0:
		return fmt.Errorf("no request was made")
	case t.Unattributed > 0:
		return fmt.Errorf("%d of %d answers named no pod (something other than a probe server answered); answers per pod %v, %s", t.Unattributed, t.Total, t.Pods, t.Detail)
	case len(foreign) > 0:
		return fmt.Errorf("answers from pods other than %v: %v (answers per pod %v)", pods, foreign, t.Pods)
	case t.Answered != t.Total:
		return fmt.Errorf("of %d requests %d were answered by a pod; answers per pod %v, %s", t.Total, t.Answered, t.Pods, t.Detail)
	}
	return nil
}

// answeredByAll says why res is not "every request was answered
// successfully by one of pods, and each of pods answered at least once",
// or nil when it is.
func answeredByAll(res tallied, pods []string) error {
	if err := answeredOnlyBy(res, pods); err != nil {
		return err
	}
	t := res.Tally()
	var silent []string
	for _, p := range pods {
		if t.Pods[p] == 0 {
			silent = append(silent, p)
		}
	}
	if len(silent) > 0 {
		return fmt.Errorf("pods %v never answered (answers per pod %v)", silent, t.Pods)
	}
	return nil
}

// expectAnswers fails the spec with why res does not pass check.
func expectAnswers(res tallied, check error, what string) {
	if check != nil {
		Fail(fmt.Sprintf("%s (%s): %v", what, res.Tally().Target, check))
	}
}

// notConnected says why res shows a connection being made (or a pod
// answering), or nil when none was.
func notConnected(res probe.ConnectResult) error {
	if res.Total == 0 {
		return fmt.Errorf("no attempt was made")
	}
	if n := res.Outcomes[probe.Connected]; n > 0 || len(res.Pods) > 0 {
		return fmt.Errorf("%d of %d attempts connected (pods %v); outcomes %v", n, res.Total, res.Pods, res.Outcomes)
	}
	return nil
}

// refusedWithin says why res is not "every attempt refused within bound
// milliseconds", or nil when it is.
func refusedWithin(res probe.ConnectResult, boundMs float64) error {
	if res.Outcomes[probe.Refused] != res.Total || res.Total == 0 {
		return fmt.Errorf("of %d attempts %d were refused; outcomes %v", res.Total, res.Outcomes[probe.Refused], res.Outcomes)
	}
	var slow []string
	for _, a := range res.Attempts {
		if a.Ms >= boundMs {
			slow = append(slow, fmt.Sprintf("%.0fms", a.Ms))
		}
	}
	if len(slow) > 0 {
		return fmt.Errorf("refusals took %s, over the %.0fms bound (a refusal about 1s late came with the SYN's retransmission: the first SYN went unanswered, as when a node's ICMP rate limit for this client is exhausted)", strings.Join(slow, ", "), boundMs)
	}
	return nil
}

// without returns names minus drop, in order.
func without(names []string, drop ...string) []string {
	var out []string
	for _, n := range names {
		keep := true
		for _, d := range drop {
			if n == d {
				keep = false
			}
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}

// podIP is a pod's IP from the API.
func podIP(ctx context.Context, ns, pod string) string {
	p, err := env.Client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(p.Status.PodIP).NotTo(BeEmpty(), "pod %s/%s has no IP", ns, pod)
	return p.Status.PodIP
}
