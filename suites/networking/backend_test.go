package networking

import (
	"fmt"
	"sort"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

var _ = Describe("backend-service", Label("dns", "smoke"), func() {
	It("resolves by short name, <svc>.<ns> and FQDN to its ClusterIP, and both backend pods answer", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		svc, err := env.Client.CoreV1().Services(ns).Get(ctx, fixtures.BackendService, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		clusterIP := svc.Spec.ClusterIP
		backends := env.PodNames(ctx, ns, fixtures.BackendDeployment)
		Expect(backends).To(HaveLen(2), "backend pods")
		client := env.InPod(ns, fixtures.ClientPod)

		// The search list's first entry is <ns>.svc.<cluster domain>.
		first := queryDNS(ctx, client, probe.DNSOptions{Name: fixtures.BackendService, Type: "A", Count: 1})
		Expect(first.ResolvConf.Search).NotTo(BeEmpty(), "client resolv.conf: %+v", first.ResolvConf)
		fqdn := fixtures.BackendService + "." + first.ResolvConf.Search[0]
		Expect(fqdn).To(HavePrefix(fixtures.BackendService+"."+ns+".svc."), "search list %v", first.ResolvConf.Search)

		for _, name := range []string{fixtures.BackendService, fixtures.BackendService + "." + ns, fqdn} {
			res := queryDNS(ctx, client, probe.DNSOptions{Name: name, Type: "A", Count: 3})
			for i, q := range res.Queries {
				Expect(q.Rcode).To(Equal("NOERROR"), "query %d for %q: answered by %q, tried %+v", i, name, q.Name, q.Tried)
				Expect(q.Addresses()).To(Equal([]string{clusterIP}), "query %d for %q (answered as %q) must return exactly the ClusterIP %s", i, name, q.Name, clusterIP)
			}
		}

		const k = 40
		res := harness.HTTP(ctx, client, probe.HTTPOptions{URL: fmt.Sprintf("http://%s:%d/", fixtures.BackendService, fixtures.BackendPort), Count: k})
		Expect(res.Unattributed).To(BeZero(), "answers naming no pod (something other than our backends answered): %+v", res)
		Expect(res.OK).To(Equal(k), "of %d requests %d succeeded; statuses %v, errors %v %v", k, res.OK, res.Statuses, res.Errors, res.ErrorSamples)
		Expect(keys(res.Pods)).To(Equal(backends), "answering pods %v (counts %v), want both backends %v", keys(res.Pods), res.Pods, backends)
	})
})

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
