package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	dp "github.com/netconform/netconform/pkg/dataplane"
	"github.com/netconform/netconform/pkg/dataplane/iptables"
	"github.com/netconform/netconform/pkg/report"
)

// The kube-router cell's declarations are signatures of what fails there.
// The messages below are the ones the specs produce on such a cluster:
// the forward-order and tracer messages are made here from a worker's
// rules with kube-router's FORWARD accepts on top (as seen live,
// docs/cni.md); the no-endpoints message is harness.Settle's, copied.

const (
	podNoEndpoints   = "Service without endpoints from a pod, to its ClusterIP and every node's NodePort "
	refusedNone      = podNoEndpoints + "refuses connections at once (< 1000ms) while it has no endpoints"
	answeredReady    = podNoEndpoints + "answers from its backend pods, each of them, once their endpoints are ready"
	refusedGone      = podNoEndpoints + "refuses connections at once (< 1000ms) again once its last endpoint is gone"
	externalRefused  = "Service without endpoints from an external client, to every node's NodePort refuses connections at once (< 1000ms) while it has no endpoints"
	forwardOrder     = "kube-proxy rules on every node are not preceded by rules that accept new forwarded connections"
	tracedSpread     = "kube-proxy rules, traced predict how the client's connections to backend-service spread over its pods"
	tracedMasquerade = "kube-proxy rules, traced predict which connections are masqueraded: a backend reaching itself through backend-service is, the client reaching a backend is not"
)

// refusalTimedOut is what the pod phases fail with when the ClusterIP's
// REJECT is skipped: the attempt times out.
func refusalTimedOut(phase, outcomes string) string {
	return fmt.Sprintf("client pod nc-refuses-connections-at-once-1-a1b2c3/client → 10.96.207.215:3000 (%s): every attempt refused within 1000ms: not within 30s (9 probes); the last one: of 1 attempts 0 were refused; outcomes map[%s]\nits result: {\n  \"addr\": \"10.96.207.215:3000\"\n}", phase, outcomes)
}

func kubeRouterRules(t *testing.T) *iptables.Ruleset {
	t.Helper()
	dump, err := os.ReadFile("../dataplane/testdata/v1.37.2-3-node-iptables/netconform-v1-37-iptables-worker.iptables-save.txt")
	if err != nil {
		t.Fatal(err)
	}
	const first = `-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall"`
	accepts := `-A FORWARD -o eth0 -m comment --comment "allow outbound node port traffic on node interface with which node ip is associated" -j ACCEPT
-A FORWARD -o kube-bridge -m comment --comment "allow inbound traffic to pods" -j ACCEPT
-A FORWARD -i kube-bridge -m comment --comment "allow outbound traffic from pods" -j ACCEPT
`
	if !strings.Contains(string(dump), first) {
		t.Fatal("the dump's filter FORWARD is not as expected")
	}
	rs, err := iptables.ParseString(strings.Replace(string(dump), first, accepts+first, 1))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// forwardOrderMessage is the forward-order spec's failure on two nodes
// with these rules (suites/dataplane/rules_test.go's message).
func forwardOrderMessage(rs *iptables.Ruleset) string {
	var findings, evidence []string
	for _, node := range []string{"worker", "worker2"} {
		for _, f := range iptables.ForwardOrder(rs) {
			findings = append(findings, "node "+node+": "+f.Message)
		}
		evidence = append(evidence, "node "+node+" (iptables):\n:FORWARD ACCEPT\n...")
	}
	return fmt.Sprintf("forwarded traffic can skip kube-proxy's filter rules:\n  %s\nthe nodes' forward rules:\n%s", strings.Join(findings, "\n  "), strings.Join(evidence, "\n\n"))
}

// traceMessage is the traced specs' failure: Gomega's, for the tracer's
// error on these rules.
func traceMessage(t *testing.T, rs *iptables.Ruleset) string {
	t.Helper()
	_, err := iptables.NewTracer(rs, []netip.Addr{netip.MustParseAddr("172.18.0.3")}).Trace(dp.Packet{
		Src: netip.MustParseAddr("10.244.1.5"), Dst: netip.MustParseAddr("10.96.207.215"), Proto: "tcp", DPort: 3000, From: dp.FromPod})
	if err == nil {
		t.Fatal("the tracer traced through kube-router's -o/-i rules")
	}
	var msg string
	g := gomega.NewGomega(func(m string, _ ...int) { msg = m })
	g.Expect(err).NotTo(gomega.HaveOccurred(), "tracing on %s", "worker")
	return msg
}

func kubeRouterSignatures(t *testing.T) []report.Signature {
	t.Helper()
	m, err := LoadMatrix("../../clusters")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Cells {
		if c.CNI == "kube-router" {
			sigs, err := report.Compile(c.KnownFailures)
			if err != nil {
				t.Fatal(err)
			}
			return sigs
		}
	}
	t.Fatal("no kube-router cell")
	return nil
}

func ginkgoSpec(fullText string, state types.SpecState, msg string) types.SpecReport {
	sr := types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: fullText, State: state}
	if msg != "" {
		sr.Failure = types.Failure{Message: msg}
	}
	return sr
}

func classify(sigs []report.Signature, specs ...types.SpecReport) report.Summary {
	return report.Classify([]types.Report{{SuiteDescription: "suites", SuiteSucceeded: false, SpecReports: specs}}, sigs)
}

func TestKubeRouterDeclarationsMatchWhatFailsThere(t *testing.T) {
	sigs := kubeRouterSignatures(t)
	rs := kubeRouterRules(t)
	s := classify(sigs,
		ginkgoSpec(refusedNone, types.SpecStateFailed, refusalTimedOut("no endpoints", "timeout:1")),
		ginkgoSpec(answeredReady, types.SpecStatePassed, ""),
		ginkgoSpec(refusedGone, types.SpecStateFailed, refusalTimedOut("endpoints gone", "timeout:1")),
		ginkgoSpec(externalRefused, types.SpecStatePassed, ""),
		ginkgoSpec(forwardOrder, types.SpecStateFailed, forwardOrderMessage(rs)),
		ginkgoSpec(tracedSpread, types.SpecStateFailed, traceMessage(t, rs)),
		ginkgoSpec(tracedMasquerade, types.SpecStateFailed, traceMessage(t, rs)),
	)
	if len(s.Known) != 5 || len(s.Failures) != 0 || len(s.Stale) != 0 || len(s.NotRun) != 0 || s.Failed(true) {
		var b strings.Builder
		s.Write(&b)
		t.Fatalf("the kube-router cell's failures are not all known:\n%s", b.String())
	}
}

// The declarations excuse those failures only: the same specs failing
// otherwise, or the phase with endpoints failing, are failures.
func TestKubeRouterDeclarationsAreNarrow(t *testing.T) {
	sigs := kubeRouterSignatures(t)
	otherRule := strings.Replace(forwardOrderMessage(kubeRouterRules(t)), `-A FORWARD -o eth0`, `-A FORWARD -j CALICO-FORWARD`, 1)
	for name, sr := range map[string]types.SpecReport{
		"refusal answered instead":      ginkgoSpec(refusedNone, types.SpecStateFailed, refusalTimedOut("no endpoints", "connected:1")),
		"refusal too slow":              ginkgoSpec(refusedNone, types.SpecStateFailed, strings.Replace(refusalTimedOut("no endpoints", "refused:1"), "of 1 attempts 0 were refused", "refusals took 1021ms, over the 1000ms bound", 1)),
		"confirmation failed":           ginkgoSpec(refusedNone, types.SpecStateFailed, "client pod ns/client → 10.96.207.215:3000 (no endpoints): every attempt refused within 1000ms: converged after 1 probe(s), then confirmation probe 3 of 5 failed: of 1 attempts 0 were refused; outcomes map[timeout:1]"),
		"phase with endpoints":          ginkgoSpec(answeredReady, types.SpecStateFailed, "client pod ns/client → 10.96.207.215:3000 (endpoints ready): not within 30s"),
		"external client":               ginkgoSpec(externalRefused, types.SpecStateFailed, refusalTimedOut("no endpoints", "timeout:1")),
		"another CNI's forward accepts": ginkgoSpec(forwardOrder, types.SpecStateFailed, otherRule),
		"tracer fails elsewhere":        ginkgoSpec(tracedSpread, types.SpecStateFailed, "tracing on worker\nUnexpected error: nat PREROUTING line 3: target TPROXY is not modelled"),
	} {
		s := classify(sigs, sr)
		if len(s.Failures) != 1 || len(s.Known) != 0 || !s.Failed(true) {
			t.Errorf("%s: counted as %+v", name, s)
		}
	}
	s := classify(sigs, ginkgoSpec(forwardOrder, types.SpecStatePassed, ""))
	if len(s.Stale) != 1 || !s.Failed(false) {
		t.Errorf("a declared spec that passes must be stale and fail the run: %+v", s)
	}
}

func TestMalformedKnownFailureNamesTheFileAndDeclaration(t *testing.T) {
	dir := t.TempDir()
	kind := "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
	if err := os.MkdirAll(filepath.Join(dir, "v1.37"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "v1.37", "iptables.yaml"), []byte(kind), 0o644); err != nil {
		t.Fatal(err)
	}
	matrix := `cells:
- config: v1.37/iptables.yaml
  kubernetes: v1.37.2
  cni: podnet
  knownFailures:
  - spec: dns answers
    message: 'refused (unclosed'
    reason: a reason
`
	if err := os.WriteFile(filepath.Join(dir, "matrix.yaml"), []byte(matrix), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadMatrix(dir)
	for _, want := range []string{filepath.Join(dir, "matrix.yaml"), "matrix cell v1.37/iptables", `known failure 1 (spec "dns answers")`, "message: error parsing regexp"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadMatrix error %v, want it to name %q", err, want)
		}
	}
}
