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
		byIP := probe.HTTPOptions{URL: httpURL(clusterIP, fixtures.BackendPort), Path: "/clientip", Count: 10}
		byName := probe.HTTPOptions{URL: httpURL(fixtures.BackendService, fixtures.BackendPort), Path: "/clientip", Count: 10}

		harness.Await(ctx, "the pod answers itself through its Service", harness.Converge,
			httpProbe(in, byIP), func(res probe.HTTPResult) error { return answeredOnlyBy(res, []string{self}) })
		for _, o := range []probe.HTTPOptions{byIP, byName} {
			res := harness.HTTP(ctx, in, o)
			expectHTTP(res, answeredOnlyBy(res, []string{self}), fmt.Sprintf("%s calling its own Service, the only endpoint", self))
			expectHairpinMasqueraded(res, self, selfIP)
		}
	})

	It("with two endpoints, answers a pod's calls to its own Service both from itself (hairpin) and from the other pod", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend) // two replicas
		_, pods := waitReadyCount(ctx, ns, fixtures.BackendService, 2)
		self := pods[0]
		selfIP := podIP(ctx, ns, self)
		in := env.InPod(ns, self)
		clusterIP := mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP

		// 30 requests leave one of two endpoints out by chance with
		// probability 2·2^-30.
		byIP := probe.HTTPOptions{URL: httpURL(clusterIP, fixtures.BackendPort), Path: "/clientip", Count: warmup}
		byName := probe.HTTPOptions{URL: httpURL(fixtures.BackendService, fixtures.BackendPort), Path: "/clientip", Count: warmup}
		harness.Await(ctx, "both endpoints answer "+self, harness.Converge,
			httpProbe(in, byIP), func(res probe.HTTPResult) error { return answeredByAll(res, pods) })
		for _, o := range []probe.HTTPOptions{byIP, byName} {
			res := harness.HTTP(ctx, in, o)
			expectHTTP(res, answeredByAll(res, pods), fmt.Sprintf("%s calling its own Service (endpoints %v): itself and the other must answer", self, pods))
			expectHairpinMasqueraded(res, self, selfIP)
			AddReportEntry("sources seen", fmt.Sprintf("%s: %v", o.URL, res.ClientIPs))
		}
	})
})

// expectHairpinMasqueraded checks that the pod, answering its own call
// through the Service, did not see its own address as the source — where
// the proxy is kube-proxy in iptables or nftables mode (see above).
// Elsewhere it records what was seen.
func expectHairpinMasqueraded(res probe.HTTPResult, self, selfIP string) {
	seen := res.ClientIPs[self]
	Expect(seen).NotTo(BeEmpty(), "%s answered /clientip without reporting the source it saw: %+v", self, res)
	mode := env.Info.ProxyMode
	if !hairpinMasquerades(mode) {
		AddReportEntry("hairpin source (not asserted)", fmt.Sprintf("proxy mode %q: %s saw %v calling itself (its own address %s)", mode, self, seen, selfIP))
		return
	}
	Expect(slices.Contains(seen, selfIP)).To(BeFalse(), "kube-proxy (%s mode) must masquerade a hairpinned connection: %s saw its own address %s as the source (sources seen %v)", mode, self, selfIP, seen)
}

func hairpinMasquerades(mode string) bool { return mode == "iptables" || mode == "nftables" }
