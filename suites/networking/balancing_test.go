package networking

import (
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/stats"
	"github.com/netconform/netconform/suites/internal/harness"
)

// Spreading specs (here, and the LoadBalancer spec) make K fresh
// connections and apply Pearson's chi-square goodness-of-fit test to the
// answering pods' counts against an even spread, at α = 0.001. K is
// spreadPlan(n).K, the least the search finds at which every spread real
// proxy bugs produce (stats.Skews, as absolute shares: one endpoint doubled,
// a 2:1 split of two endpoints or (½, ¼, ¼) of three; one endpoint starved
// to half its share, (¼, ¾) or (⅙, 5⁄12, 5⁄12)) fails the test with
// probability at least 0.99. That is K = 275 for two endpoints (power 0.991
// against the 2:1 split) and K = 296 for three (0.990 against (½, ¼, ¼));
// each spec reports the power it had for the answers it actually counted.
//
// A full run makes ten such tests at α = 0.001 (the ClusterIP spec here,
// the NodePort spec once per node of a 3-node cluster, the LoadBalancer
// spreading spec, the UDP spec on the ClusterIP and each node's NodePort,
// and the dataplane suite's prediction cross-check), so a correct proxy
// sees at least one of them fail by chance in about 1 − 0.999¹⁰ ≈ 1 % of
// full runs. A failure whose p-value is near α (the
// message gives the counts, χ², the p-value, K and the power) is worth one
// rerun before it is believed; a proxy with one of those skews fails each
// test with probability at least 0.99, not every time.
const balanceEndpoints = 3

// spreadPlan is the spreading test for n endpoints (stats.SpreadPlan). It
// panics for n < 2, which no spec asks for: the specs call it while Ginkgo
// builds the tree, outside any spec that Expect could fail.
func spreadPlan(n int) stats.Plan {
	plan, err := stats.SpreadPlan(n)
	if err != nil {
		panic(err)
	}
	return plan
}

// warmup is the size of a batch used to wait for the data plane: with n ≤ 3
// endpoints the chance that a uniform proxy leaves one of them out of 30
// requests is below 3·(2/3)^30 ≈ 1.6e-5.
const warmup = 30

var _ = Describe("load balancing", Label("balancing"), func() {
	balance := spreadPlan(balanceEndpoints)

	It(fmt.Sprintf("spreads fresh connections to the ClusterIP uniformly over 3 endpoints (χ² at α=%g, K=%d)", balance.Alpha, balance.K), func(ctx SpecContext) {
		_, client, url, pods := backendBehindClusterIP(ctx, balanceEndpoints, "ClusterIP")
		res := harness.HTTP(ctx, client, probe.HTTPOptions{URL: url, Count: balance.K})
		expectAnswers(res, answeredOnlyBy(res, pods), "ClusterIP sample")
		expectSpread(res, pods, "ClusterIP "+url)
	})

	It(fmt.Sprintf("spreads fresh connections to the NodePort on every node's InternalIP uniformly over 3 endpoints, from a pod (χ² at α=%g per node, K=%d per node)", balance.Alpha, balance.K), func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Frontend) // three replicas
		env.Deploy(ctx, ns, fixtures.Client)
		_, pods := waitReadyCount(ctx, ns, fixtures.FrontendService, balanceEndpoints)
		client := env.InPod(ns, fixtures.ClientPod)
		svc := mustService(ctx, ns, fixtures.FrontendService)
		Expect(svc.Spec.Ports).To(HaveLen(1))
		nodePort := svc.Spec.Ports[0].NodePort
		Expect(nodePort).NotTo(BeZero(), "Service %s/%s has no node port", ns, svc.Name)

		for _, n := range env.Nodes(ctx) {
			url := httpURL(n.InternalIP.String(), nodePort)
			what := fmt.Sprintf("NodePort on node %s", n)
			awaitAllAnswer(ctx, client, url, pods, what)
			res := harness.HTTP(ctx, client, probe.HTTPOptions{URL: url, Count: balance.K})
			expectAnswers(res, answeredOnlyBy(res, pods), what+" sample")
			expectSpread(res, pods, what+" "+url)
		}
	})

	It("with sessionAffinity ClientIP, sends every request from one client to one backend (2 endpoints)", func(ctx SpecContext) {
		// Without affinity this client's requests do reach both (awaited
		// first): the spec cannot pass merely because the client always
		// lands on one.
		ns, client, url, pods := backendBehindClusterIP(ctx, 2, "ClusterIP without affinity")
		settleSticky(ctx, ns, client, url, pods)
	})

	It("with sessionAffinity switched to ClientIP and back to None, sticks to one backend, then reaches both again (2 endpoints)", func(ctx SpecContext) {
		ns, client, url, pods := backendBehindClusterIP(ctx, 2, "ClusterIP without affinity")
		settleSticky(ctx, ns, client, url, pods)

		patchService(ctx, ns, fixtures.BackendService, map[string]any{"spec": map[string]any{"sessionAffinity": "None"}})
		patched := time.Now()
		// A proxy that keeps the affinity sends the whole batch of
		// harness.CoverSample(2) = 15 to one backend: caught with
		// probability 1, and a correct one misses a backend in 15 by
		// chance with probability 2·2^-15 ≈ 6e-5.
		s := settleAnswered(ctx, fmt.Sprintf("client pod %s → %s with sessionAffinity switched back to None", fixtures.ClientPod, url), client, probe.HTTPOptions{URL: url}, pods, nil)
		harness.Converged("sessionAffinity None in effect", patched, s)
	})

	It("sends traffic to a new endpoint within the convergence budget after a scale-up 2→3, failing no request", func(ctx SpecContext) {
		ns, client, url, old := backendBehindClusterIP(ctx, 2, "ClusterIP before the scale-up")

		now, added, sliceAt := rescaleBackend(ctx, ns, old, 3)

		s := harness.Settle(ctx, fmt.Sprintf("client pod %s → %s: the new endpoint %s answers", fixtures.ClientPod, url, added), harness.Converge,
			httpProbe(client, probe.HTTPOptions{URL: url, Count: warmup}), func(res probe.HTTPResult) error {
				if res.Pods[added] == 0 {
					return fmt.Errorf("%s did not answer; answers per pod %v", added, res.Pods)
				}
				return nil
			}, confirmAll(client, url, now))
		harness.Converged("new endpoint answers, from its EndpointSlice entry", sliceAt, s)
		for i, a := range s.Attempts {
			expectAnswers(a.Result, answeredOnlyBy(a.Result, now), fmt.Sprintf("probe %d while the endpoint was added", i+1))
		}
	})

	It("stops sending traffic to a pod removed by a scale-down 3→2 once the EndpointSlice no longer lists it as ready", func(ctx SpecContext) {
		ns, client, url, old := backendBehindClusterIP(ctx, 3, "ClusterIP before the scale-down")

		remaining, removed, sliceAt := rescaleBackend(ctx, ns, old, 2)

		expectRemovedSilent(ctx, client, url, removed, func() []string { return remaining }, sliceAt)
	})

	It("stops sending traffic to a pod taken out of the selector once it is gone from the EndpointSlice, though the pod still serves", func(ctx SpecContext) {
		ns, client, url, old := backendBehindClusterIP(ctx, 2, "ClusterIP before the relabel")

		// Relabelling takes the pod out of the Service (and out of its
		// ReplicaSet, which starts a replacement) while it keeps running.
		removed := old[0]
		relabel := fmt.Appendf(nil, `{"metadata":{"labels":{%q:"detached"}}}`, fixtures.AppLabel)
		_, err := env.Client.CoreV1().Pods(ns).Patch(ctx, removed, types.MergePatchType, relabel, metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, sliceAt, err := env.WaitEndpoints(ctx, ns, fixtures.BackendService, harness.Deploy, func(eps []harness.Endpoint) bool {
			return !slices.ContainsFunc(eps, func(ep harness.Endpoint) bool { return ep.Pod == removed })
		})
		Expect(err).NotTo(HaveOccurred(), "waiting for %s to leave the EndpointSlices", removed)
		// Probe at once, while the ReplicaSet's replacement is starting: any
		// pod still labelled app=backend may answer, the removed one not.
		expectRemovedSilent(ctx, client, url, removed, func() []string { return env.PodNames(ctx, ns, fixtures.BackendDeployment) }, sliceAt)

		// It is still there: the silence above is the data plane's doing.
		direct := harness.HTTP(ctx, client, probe.HTTPOptions{URL: httpURL(podIP(ctx, ns, removed), fixtures.BackendPort), Count: 3})
		expectAnswers(direct, answeredOnlyBy(direct, []string{removed}), "the removed pod, asked at its own address")
	})
})

// settleSticky switches the backend Service to sessionAffinity ClientIP
// and settles on every request from the client landing on one of pods: 20
// requests on one of two endpoints by chance happen with probability
// 2·2^-20 ≈ 2e-6; the confirmation sample, 2·warmup requests, must land in
// full on the same one. It returns that backend.
func settleSticky(ctx SpecContext, ns string, client probe.Runner, url string, pods []string) string {
	patchService(ctx, ns, fixtures.BackendService, map[string]any{"spec": map[string]any{"sessionAffinity": "ClientIP"}})
	patched := time.Now()
	s := harness.Settle(ctx, fmt.Sprintf("client pod %s → %s with sessionAffinity ClientIP: every request lands on one backend of %v", fixtures.ClientPod, url, pods), harness.Converge,
		httpProbe(client, probe.HTTPOptions{URL: url, Count: 20}), stickTo[probe.HTTPResult](pods),
		harness.Confirm[probe.HTTPResult]{Probes: 1, Probe: httpProbe(client, probe.HTTPOptions{URL: url, Count: 2 * warmup})})
	harness.Converged("sessionAffinity ClientIP in effect", patched, s)
	chosen := stats.SortedKeys(s.Accepted().Pods)[0]
	res := s.Confirmed()
	Expect(res.Pods).To(Equal(map[string]int{chosen: res.Total}), "with sessionAffinity ClientIP every request from client pod %s to %s must reach %s, the backend it was given; answers per pod %v", fixtures.ClientPod, url, chosen, res.Pods)
	return chosen
}

// backendBehindClusterIP deploys the backend with n replicas (the fixture
// has two) and the client pod in a fresh namespace, and waits until each of
// the n ready endpoints has answered the client through the ClusterIP. It
// returns the namespace, the client, the ClusterIP URL and the pods.
func backendBehindClusterIP(ctx SpecContext, n int, what string) (string, probe.Runner, string, []string) {
	ns := env.Namespace(ctx)
	env.Deploy(ctx, ns, fixtures.Backend)
	env.Deploy(ctx, ns, fixtures.Client)
	if n != 2 {
		env.Scale(ctx, ns, fixtures.BackendDeployment, int32(n))
	}
	_, pods := waitReadyCount(ctx, ns, fixtures.BackendService, n)
	client := env.InPod(ns, fixtures.ClientPod)
	url := httpURL(mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP, fixtures.BackendPort)
	awaitAllAnswer(ctx, client, url, pods, what)
	return ns, client, url, pods
}

// rescaleBackend scales the backend from the ready endpoints before to n
// replicas (one more or one fewer), waits until n endpoints are ready, and
// returns them, the one endpoint added or removed, and when the
// EndpointSlice showed the change; the report says how long that took.
func rescaleBackend(ctx SpecContext, ns string, before []string, n int) ([]string, string, time.Time) {
	scaled := env.SetReplicas(ctx, ns, fixtures.BackendDeployment, int32(n))
	_, now := waitReadyCount(ctx, ns, fixtures.BackendService, n)
	sliceAt := time.Now()
	changed := without(now, before...)
	if n < len(before) {
		changed = without(before, now...)
	}
	Expect(changed).To(HaveLen(1), "ready endpoints before %v, after %v", before, now)
	took := sliceAt.Sub(scaled).Round(time.Millisecond)
	if n < len(before) {
		AddReportEntry("scale-down", fmt.Sprintf("%s out of the ready endpoints %s after the scale request", changed[0], took))
	} else {
		AddReportEntry("scale-up", fmt.Sprintf("new endpoint %s ready in the EndpointSlice %s after the scale request", changed[0], took))
	}
	return now, changed[0], sliceAt
}

// awaitAllAnswer waits until the data plane has every endpoint: a batch
// of requests from the client pod to url is answered in full, by pods
// only and by each of them (settleAnswered).
func awaitAllAnswer(ctx SpecContext, client probe.Runner, url string, pods []string, what string) {
	settleAnswered(ctx, fmt.Sprintf("%s: client pod %s → %s", what, fixtures.ClientPod, url), client, probe.HTTPOptions{URL: url}, pods, nil)
}

// confirmAll is a confirmation sample of harness.CoverSample(len(pods))
// requests from client to url, every one of which must get a 2xx from one
// of pods, each of pods answering at least once.
func confirmAll(client probe.Runner, url string, pods []string) harness.Confirm[probe.HTTPResult] {
	return harness.Confirm[probe.HTTPResult]{Probes: 1,
		Probe:  httpProbe(client, probe.HTTPOptions{URL: url, Count: harness.CoverSample(len(pods))}),
		Accept: func(res probe.HTTPResult) error { return answeredByAll(res, pods) }}
}

// expectSpread asserts that res's answers came only from pods and spread
// evenly over them: the chi-square test of spreadPlan(len(pods)) does not
// reject. The report entry, and the failure, give the counts, χ², the
// p-value, α, and the power the test had against each alternative for the
// number of answers it counted (fewer than K if requests failed).
func expectSpread(res tallied, pods []string, what string) {
	t := res.Tally()
	plan := spreadPlan(len(pods))
	counts, foreign := stats.CountsFor(pods, t.Pods)
	Expect(foreign).To(BeEmpty(), "%s: answers from pods other than %v: %v", what, pods, foreign)
	fit, err := stats.ChiSquareUniform(counts, plan.Alpha)
	Expect(err).NotTo(HaveOccurred(), "%s: answers per pod %v", what, t.Pods)
	power, err := plan.Describe(fit.Total)
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("chi-square: "+what, fit.String()+"; "+power)
	Expect(fit.Uniform()).To(BeTrue(), "%s: %d answers (of %d requests) over endpoints %v are not spread evenly: %s; %s",
		what, fit.Total, t.Total, pods, fit, power)
}

// stickTo accepts a batch answered in full by a single one of pods.
func stickTo[R tallied](pods []string) func(R) error {
	return func(res R) error {
		if err := answeredOnlyBy(res, pods); err != nil {
			return err
		}
		if t := res.Tally(); len(t.Pods) != 1 {
			return fmt.Errorf("answers spread over %d backends: %v", len(t.Pods), t.Pods)
		}
		return nil
	}
}

// expectRemovedSilent checks a removal from the data plane: within
// harness.Converge of removed leaving the EndpointSlice's ready endpoints
// (at sliceAt), requests are answered by the remaining pods only, and from
// then on the removed pod never answers again (a further sample of
// 2·warmup). The proxy applies the API's state asynchronously (kube-proxy
// at most once per minSyncPeriod, 1s by default), so answers the pod gives
// in between are not a fault; they are counted into the report.
//
// allowed lists the pods that may answer; it is called after each probe
// (a replacement pod may have appeared meanwhile).
func expectRemovedSilent(ctx SpecContext, client probe.Runner, url, removed string, allowed func() []string, sliceAt time.Time) {
	silent := func(res probe.HTTPResult) error {
		if n := res.Pods[removed]; n > 0 {
			return fmt.Errorf("%s answered %d of %d requests; answers per pod %v", removed, n, res.Total, res.Pods)
		}
		return answeredOnlyBy(res, allowed())
	}
	s := harness.Settle(ctx, fmt.Sprintf("client pod %s → %s: %s, gone from the EndpointSlice, no longer answers", fixtures.ClientPod, url, removed), harness.Converge,
		httpProbe(client, probe.HTTPOptions{URL: url, Count: warmup}), silent,
		harness.Confirm[probe.HTTPResult]{Probes: 1, Probe: httpProbe(client, probe.HTTPOptions{URL: url, Count: 2 * warmup})})
	harness.Converged("removed endpoint silent, from its removal from the EndpointSlice", sliceAt, s)
	late, failed := 0, 0
	for _, a := range s.Attempts {
		late += a.Result.Pods[removed]
		failed += a.Result.Total - a.Result.OK
	}
	AddReportEntry("before convergence", fmt.Sprintf("%d answers from %s and %d failed requests over %d probe(s) after it left the EndpointSlice", late, removed, failed, len(s.Attempts)))
}
