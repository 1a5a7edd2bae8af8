package networking

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

// Hairpin: a pod calling a Service that may send the connection back to the
// pod itself. The probe runs in the backend pod (its container "probe" is
// netprobe, serving and probing at once).
//
// Masquerade: kube-proxy (iptables and nftables modes) rewrites the source
// of a hairpinned connection to an address of the node, because otherwise
// the pod would see a packet from itself and answer itself directly,
// bypassing the reverse NAT, and the connection would never complete. Proxies
// that balance at the socket (eBPF replacements) never DNAT the packet and
// may legitimately leave the pod's own address as the source, so the
// masquerade is asserted only where kube-proxy in those modes is the proxy.
var _ = Describe("hairpin", Label("hairpin"), func() {
	It("lets a pod reach its own Service by ClusterIP and by name while it is the only endpoint", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Scale(ctx, ns, fixtures.BackendDeployment, 1)
		eps, _, err := env.WaitEndpoints(ctx, ns, fixtures.BackendService, harness.Deploy, func(eps []harness.Endpoint) bool {
			return len(eps) == 1 && eps[0].Ready
		})
		Expect(err).NotTo(HaveOccurred(), "waiting for the Service to have exactly one endpoint")
		self := eps[0].Pod
		selfIP := podIP(ctx, ns, self)
		in := env.InPod(ns, self)
		clusterIP := mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP
		settleHairpin(ctx, in, clusterIP, self, selfIP, []string{self})
	})

	It("with two endpoints, answers a pod's calls to its own Service both from itself (hairpin) and from the other pod", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend) // two replicas
		_, pods := waitReadyCount(ctx, ns, fixtures.BackendService, 2)
		self := pods[0]
		selfIP := podIP(ctx, ns, self)
		in := env.InPod(ns, self)
		clusterIP := mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP
		settleHairpin(ctx, in, clusterIP, self, selfIP, pods)
	})
})

// settleHairpin has pod self call its own Service, by ClusterIP and then
// by name, until the data plane answers and then for a confirmation
// sample (settleAnswered: every request answered, each of pods at least
// once, harness.CoverSample(len(pods)) requests), where self must also see
// a source other than its own address when it answers itself — where the
// proxy is kube-proxy in iptables or nftables mode (see above). Elsewhere
// the report says what self saw.
func settleHairpin(ctx SpecContext, in probe.Runner, clusterIP, self, selfIP string, pods []string) {
	mode := env.Info.ProxyMode
	masqueraded := func(res probe.HTTPResult) error {
		seen := res.ClientIPs[self]
		switch {
		case len(seen) == 0:
			return fmt.Errorf("%s answered /clientip without reporting the source it saw; sources seen per pod %v", self, res.ClientIPs)
		case hairpinMasquerades(mode) && slices.Contains(seen, selfIP):
			return fmt.Errorf("kube-proxy (%s mode) must masquerade a hairpinned connection: %s saw its own address %s as the source (sources seen per pod %v)", mode, self, selfIP, res.ClientIPs)
		}
		return nil
	}
	for _, url := range []string{httpURL(clusterIP, fixtures.BackendPort), httpURL(fixtures.BackendService, fixtures.BackendPort)} {
		what := fmt.Sprintf("pod %s (%s) → its own Service at %s (endpoints %v)", self, selfIP, url, pods)
		if hairpinMasquerades(mode) {
			what += ", masqueraded when it lands on the caller"
		}
		s := settleAnswered(ctx, what, in, probe.HTTPOptions{URL: url, Path: "/clientip"}, pods, masqueraded)
		if !hairpinMasquerades(mode) {
			AddReportEntry("hairpin source (not asserted)", fmt.Sprintf("proxy mode %q: %s saw %v calling itself through %s (its own address %s)", mode, self, s.Confirmed().ClientIPs[self], url, selfIP))
		}
		AddReportEntry("sources seen", fmt.Sprintf("%s: %v", url, s.Confirmed().ClientIPs))
	}
}

func hairpinMasquerades(mode string) bool { return mode == "iptables" || mode == "nftables" }
