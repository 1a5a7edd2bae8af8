package networking

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/testbed"
	"github.com/netconform/netconform/suites/internal/harness"
)

// Cluster DNS as a pod sees it. The A records of a ClusterIP Service by its
// three name forms are in backend_test.go; here: the resolver configuration
// the kubelet writes, SRV, PTR, NXDOMAIN and headless Services.
var _ = Describe("cluster DNS", Label("dns"), func() {
	It("configures a pod's resolver with the kube-dns ClusterIP, search <ns>.svc.<domain> svc.<domain> <domain>, and ndots:5", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Client)
		kubeDNS := mustService(ctx, "kube-system", "kube-dns").Spec.ClusterIP
		client := env.InPod(ns, fixtures.ClientPod)

		res := queryDNS(ctx, client, probe.DNSOptions{Name: "kubernetes.default", Type: "A", Count: 1})
		rc := res.ResolvConf
		domain := clusterDomain(ctx, ns)
		Expect(rc.Nameservers).To(Equal([]string{kubeDNS}), "nameservers in the client's resolv.conf (%+v) must be exactly the kube-dns Service's ClusterIP %s", rc, kubeDNS)
		want := []string{ns + ".svc." + domain, "svc." + domain, domain}
		Expect(len(rc.Search)).To(BeNumerically(">=", 3), "search list %v must start with %v", rc.Search, want)
		Expect(rc.Search[:3]).To(Equal(want), "search list %v must start with %v", rc.Search, want)
		Expect(rc.Ndots).To(Equal(5), "ndots in the client's resolv.conf (%+v)", rc)
	})

	It("answers SRV _http._tcp.<svc>.<ns>.svc.<domain> with the named port 3000 and the Service's FQDN", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		client := env.InPod(ns, fixtures.ClientPod)
		domain := clusterDomain(ctx, ns)
		fqdn := fixtures.BackendService + "." + ns + ".svc." + domain

		name := "_http._tcp." + fqdn
		res := queryDNS(ctx, client, probe.DNSOptions{Name: name, Type: "SRV", Count: 3})
		for i, q := range res.Queries {
			Expect(q.Rcode).To(Equal("NOERROR"), "SRV query %d for %q: rcode %q (answered as %q), tried %+v", i, name, q.Rcode, q.Name, q.Tried)
			srv := recordsOf(q, "SRV")
			Expect(srv).To(HaveLen(1), "SRV query %d for %q must return one record, got %+v", i, name, q.Answers)
			Expect(srv[0].Port).To(Equal(uint16(fixtures.BackendPort)), "SRV query %d for %q: port (record %+v)", i, name, srv[0])
			Expect(srv[0].Target).To(Equal(fqdn+"."), "SRV query %d for %q: target (record %+v)", i, name, srv[0])
		}
	})

	It("answers PTR for a Service's ClusterIP with the Service's FQDN", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		client := env.InPod(ns, fixtures.ClientPod)
		domain := clusterDomain(ctx, ns)
		fqdn := fixtures.BackendService + "." + ns + ".svc." + domain
		clusterIP := mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP

		res := queryDNS(ctx, client, probe.DNSOptions{Name: clusterIP, Type: "PTR", Count: 3})
		for i, q := range res.Queries {
			Expect(q.Rcode).To(Equal("NOERROR"), "PTR query %d for %s (%q): rcode %q, tried %+v", i, clusterIP, q.Name, q.Rcode, q.Tried)
			ptr := recordsOf(q, "PTR")
			Expect(ptr).To(HaveLen(1), "PTR query %d for %s must return one record, got %+v", i, clusterIP, q.Answers)
			Expect(ptr[0].Target).To(Equal(fqdn+"."), "PTR query %d for %s (%q)", i, clusterIP, q.Name)
		}
	})

	It("answers NXDOMAIN for a Service that does not exist, its fully-qualified name included", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Client)
		client := env.InPod(ns, fixtures.ClientPod)
		domain := clusterDomain(ctx, ns)
		// Written as a pod would, without the trailing dot: with ndots:5 the
		// resolver walks the search list before asking the name as given, and
		// every name on the way is in the cluster domain.
		name := "no-such-service." + ns + ".svc." + domain

		res := queryDNS(ctx, client, probe.DNSOptions{Name: name, Type: "A", Count: 2})
		for i, q := range res.Queries {
			Expect(q.Error).To(BeEmpty(), "query %d for %q: no reply; tried %+v", i, name, q.Tried)
			Expect(q.Rcode).To(Equal("NXDOMAIN"), "query %d for %q must end in NXDOMAIN; answered as %q with %+v, tried %+v", i, name, q.Name, q.Answers, q.Tried)
			Expect(q.Answers).To(BeEmpty(), "query %d for %q: answers", i, name)
			Expect(q.Tried).NotTo(BeEmpty())
			Expect(q.Tried[len(q.Tried)-1].Name).To(Equal(name+"."), "query %d for %q: the walk must end with the name itself; tried %+v", i, name, q.Tried)
			for _, t := range q.Tried {
				if strings.HasSuffix(t.Name, "."+domain+".") {
					Expect(t.Rcode).To(Equal("NXDOMAIN"), "query %d for %q: %q is in the cluster domain and names no Service; tried %+v", i, name, t.Name, q.Tried)
				}
			}
		}
	})

	It("answers a headless Service with exactly the ready pods' addresses, and converges to the new set after a scale-down 3→2", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Headless)
		env.Deploy(ctx, ns, fixtures.Client)
		client := env.InPod(ns, fixtures.ClientPod)
		domain := clusterDomain(ctx, ns)
		fqdn := fixtures.HeadlessService + "." + ns + ".svc." + domain

		eps, ready := waitReadyCount(ctx, ns, fixtures.HeadlessService, 3)
		before := readyIPs(ctx, ns, eps)
		Expect(before).To(HaveLen(3), "ready endpoints %v", eps)

		// The server learns of the endpoints by watching the API: give it the
		// convergence budget, then ask repeatedly and ask by short name too.
		const repeat = 10
		sameSet := func(want []string) func(probe.DNSResult) error {
			return func(res probe.DNSResult) error {
				if err := dnsAnswered(res, repeat); err != nil {
					return err
				}
				return headlessAnswersAre(res, want)
			}
		}
		byFQDN := dnsProbe(client, probe.DNSOptions{Name: fqdn, Type: "A", Count: repeat})
		first := harness.Settle(ctx, fmt.Sprintf("client pod %s → headless DNS %s A: every query answers exactly the 3 ready pods %v %v", fixtures.ClientPod, fqdn, ready, before), harness.Converge,
			byFQDN, sameSet(before), harness.Again[probe.DNSResult]())
		var ttl time.Duration
		for _, a := range append(first.Attempts, first.Sample...) {
			ttl = max(ttl, maxTTL(a.Result))
		}
		res := queryDNS(ctx, client, probe.DNSOptions{Name: fixtures.HeadlessService, Type: "A", Count: repeat})
		Expect(headlessAnswersAre(res, before)).To(Succeed(), "client pod %s → headless DNS %s A by short name: pods %v", fixtures.ClientPod, fixtures.HeadlessService, ready)
		ttl = max(ttl, maxTTL(res))

		// A cache between the client and the records may serve the old answer
		// for as long as the records' TTL: the budget is the data plane's plus
		// the largest TTL seen, which the first (uncached) answer carries in
		// full (CoreDNS: the kubernetes plugin's ttl, 5s by default and 30s as
		// kubeadm configures it, capped by the cache plugin's maximum).
		budget := harness.Converge + ttl
		AddReportEntry("headless DNS budget", fmt.Sprintf("harness.Converge %s + largest record TTL seen %s = %s", harness.Converge, ttl, budget))

		scaled := env.SetReplicas(ctx, ns, fixtures.HeadlessDeployment, 2)
		eps, _, err := env.WaitEndpoints(ctx, ns, fixtures.HeadlessService, harness.Deploy, func(eps []harness.Endpoint) bool {
			return len(harness.ReadyPods(eps)) == 2
		})
		Expect(err).NotTo(HaveOccurred())
		sliceAt := time.Now()
		after := readyIPs(ctx, ns, eps)
		Expect(after).To(HaveLen(2), "ready endpoints %v", eps)
		Expect(before).To(ContainElements(after), "the remaining pods are among the first three")

		settled := harness.Settle(ctx, fmt.Sprintf("client pod %s → headless DNS %s A after a scale-down 3→2: every query answers exactly the 2 remaining pods %v", fixtures.ClientPod, fqdn, after), budget,
			byFQDN, sameSet(after), harness.Again[probe.DNSResult]())
		harness.Converged("headless DNS after scale 3→2, from the EndpointSlice change", sliceAt, settled)
		harness.Converged("headless DNS after scale 3→2, from the scale request", scaled, settled)
		harness.Record("dns A "+fqdn+" (converged)", settled.Accepted())
	})
})

// clusterDomain is the cluster's DNS domain as the cluster configures it,
// never as a pod's resolv.conf says (that is what the specs check): the
// kubelet's own configuration (configz of the client pod's node, read
// through the API server's node proxy), else, where that cannot be read
// (no nodes/proxy permission), the cluster's configuration in kube-system
// (testbed.ClusterDomain: the kubelet configuration kubeadm keeps, or
// CoreDNS's zone). The report says which source gave it; without any, the
// spec fails rather than take the domain from the resolv.conf it checks.
func clusterDomain(ctx context.Context, ns string) string {
	pod, err := env.Client.CoreV1().Pods(ns).Get(ctx, fixtures.ClientPod, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	raw, err := env.Client.CoreV1().RESTClient().Get().
		AbsPath("/api/v1/nodes", pod.Spec.NodeName, "proxy", "configz").DoRaw(ctx)
	var cz struct {
		KubeletConfig struct {
			ClusterDomain string `json:"clusterDomain"`
		} `json:"kubeletconfig"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &cz)
	}
	if err == nil && cz.KubeletConfig.ClusterDomain == "" {
		err = fmt.Errorf("configz sets no clusterDomain")
	}
	if err == nil {
		return strings.TrimSuffix(cz.KubeletConfig.ClusterDomain, ".")
	}
	domain, source, cerr := testbed.ClusterDomain(ctx, env.Client)
	if cerr != nil {
		Fail(fmt.Sprintf("the cluster domain cannot be learnt from the cluster's configuration, so the pod's DNS cannot be checked against it: kubelet configz of node %s: %v; %v",
			pod.Spec.NodeName, err, cerr))
	}
	AddReportEntry("cluster domain", fmt.Sprintf("%s, from %s (kubelet configz of node %s unreadable: %v)", domain, source, pod.Spec.NodeName, err))
	return domain
}

// queryDNS runs `netprobe dns` from the client pod and checks that every
// query it was asked to make was made and answered (a reply with an rcode,
// whatever the rcode), saying how many in the report.
func queryDNS(ctx context.Context, client probe.Runner, o probe.DNSOptions) probe.DNSResult {
	res := harness.DNS(ctx, client, o)
	Expect(dnsAnswered(res, o.Count)).To(Succeed(), "client pod %s → DNS %s %s", fixtures.ClientPod, o.Type, o.Name)
	AddReportEntry("dns answered: "+o.Type+" "+o.Name, fmt.Sprintf("%d of %d queries answered", len(res.Queries), o.Count))
	return res
}

// dnsAnswered says why res does not hold sent queries, each answered (a
// reply with an rcode), or nil when it does.
func dnsAnswered(res probe.DNSResult, sent int) error {
	answered := 0
	var unanswered []string
	for i, q := range res.Queries {
		if q.Error == "" && q.Rcode != "" {
			answered++
			continue
		}
		unanswered = append(unanswered, fmt.Sprintf("query %d (%q): %s, tried %+v", i+1, q.Name, q.Error, q.Tried))
	}
	if len(res.Queries) != sent || answered != sent {
		return fmt.Errorf("%d queries sent for %q %s, %d made, %d answered; unanswered: %v", sent, res.Name, res.Type, len(res.Queries), answered, unanswered)
	}
	return nil
}

// dnsProbe adapts probe.DNS to harness.Settle.
func dnsProbe(r probe.Runner, o probe.DNSOptions) harness.Probe[probe.DNSResult] {
	return func(ctx context.Context) (probe.DNSResult, error) { return probe.DNS(ctx, r, o) }
}

// recordsOf is the answers of one type.
func recordsOf(q probe.DNSQuery, typ string) []probe.DNSAnswer {
	var out []probe.DNSAnswer
	for _, a := range q.Answers {
		if a.Type == typ {
			out = append(out, a)
		}
	}
	return out
}

// headlessAnswersAre says why some query of res did not answer exactly the
// address set want (order free, no repeats), or nil when all did.
func headlessAnswersAre(res probe.DNSResult, want []string) error {
	for i, q := range res.Queries {
		got := q.Addresses()
		slices.Sort(got)
		if q.Rcode != "NOERROR" || !slices.Equal(got, want) {
			return fmt.Errorf("query %d of %d for %q (answered as %q, rcode %q) returned %v, want exactly %v; tried %+v", i+1, len(res.Queries), res.Name, q.Name, q.Rcode, got, want, q.Tried)
		}
	}
	if len(res.Queries) == 0 {
		return fmt.Errorf("no queries made")
	}
	return nil
}

// readyIPs is the sorted addresses of the ready endpoints, checked against
// the pods themselves: each must be a Ready pod with that IP.
func readyIPs(ctx context.Context, ns string, eps []harness.Endpoint) []string {
	var out []string
	for _, ep := range eps {
		if !ep.Ready {
			continue
		}
		Expect(podIP(ctx, ns, ep.Pod)).To(Equal(ep.IP), "endpoint %s: address differs from the pod's", ep)
		out = append(out, ep.IP)
	}
	slices.Sort(out)
	return out
}

// maxTTL is the largest TTL among the answers of res.
func maxTTL(res probe.DNSResult) time.Duration {
	var m uint32
	for _, q := range res.Queries {
		for _, a := range q.Answers {
			m = max(m, a.TTL)
		}
	}
	return time.Duration(m) * time.Second
}
