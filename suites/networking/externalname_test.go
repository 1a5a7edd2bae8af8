package networking

import (
	"fmt"
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

// An ExternalName Service is a DNS alias and nothing else: no ClusterIP, no
// rules. Changing its type to ClusterIP gives it an address the proxy must
// start serving; changing it back takes the address away, and the proxy
// must stop answering on it.
var _ = Describe("ExternalName Service", Label("dns"), func() {
	It("answers as a CNAME to its externalName, turns into a ClusterIP the backend pods answer on when its type changes, and back into a CNAME, its old ClusterIP silent", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Backend)
		env.Deploy(ctx, ns, fixtures.Client)
		client := env.InPod(ns, fixtures.ClientPod)
		_, pods := waitReadyCount(ctx, ns, fixtures.BackendService, 2)
		domain := clusterDomain(ctx, ns)
		backendIP := mustService(ctx, ns, fixtures.BackendService).Spec.ClusterIP
		// The alias points at the backend Service's name, so that the
		// resolver follows it to an address inside the cluster.
		target := fixtures.BackendService + "." + ns + ".svc." + domain
		fqdn := externalName + "." + ns + ".svc." + domain
		svcs := env.Client.CoreV1().Services(ns)
		_, err := svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: externalName, Namespace: ns},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating ExternalName Service %s/%s", ns, externalName)

		asked := dnsProbe(client, probe.DNSOptions{Name: fqdn, Type: "A", Count: 3})
		// A cache between client and records may hold the previous answer
		// for its TTL (the headless spec explains): the budget adds 30 s,
		// kubeadm's TTL for cluster records.
		budget := harness.Converge + 30*time.Second
		harness.Settle(ctx, fmt.Sprintf("client pod %s → DNS %s A: a CNAME to %s, then its address %s", fixtures.ClientPod, fqdn, target, backendIP), budget,
			asked, aliasOf(target, backendIP), harness.Again[probe.DNSResult]())

		By("changing the type to ClusterIP, selecting the backend pods")
		svc, err := svcs.Get(ctx, externalName, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		svc.Spec.Type, svc.Spec.ExternalName = corev1.ServiceTypeClusterIP, ""
		svc.Spec.Selector = map[string]string{fixtures.AppLabel: fixtures.BackendDeployment}
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: fixtures.BackendPort, TargetPort: intstr.FromInt32(fixtures.BackendPort)}}
		svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred(), "changing %s/%s to type ClusterIP", ns, externalName)
		clusterIP := svc.Spec.ClusterIP
		Expect(clusterIP).NotTo(BeEmpty(), "%s/%s got no ClusterIP", ns, externalName)
		changed := time.Now()
		harness.Settle(ctx, fmt.Sprintf("client pod %s → DNS %s A: exactly its ClusterIP %s", fixtures.ClientPod, fqdn, clusterIP), budget,
			asked, func(res probe.DNSResult) error { return addressesAre(res, clusterIP) }, harness.Again[probe.DNSResult]())
		url := httpURL(clusterIP, fixtures.BackendPort)
		s := settleAnswered(ctx, fmt.Sprintf("client pod %s → %s (%s, an ExternalName Service until now)", fixtures.ClientPod, url, externalName), client, probe.HTTPOptions{URL: url}, pods, nil)
		harness.Converged("former ExternalName Service answering on its ClusterIP", changed, s)

		By("changing the type back to ExternalName")
		svc.Spec.Type, svc.Spec.ExternalName = corev1.ServiceTypeExternalName, target
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs, svc.Spec.Selector, svc.Spec.Ports = "", nil, nil, nil
		svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy, svc.Spec.InternalTrafficPolicy = nil, nil, nil
		_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred(), "changing %s/%s back to type ExternalName", ns, externalName)
		changed = time.Now()
		harness.Settle(ctx, fmt.Sprintf("client pod %s → DNS %s A: a CNAME to %s again", fixtures.ClientPod, fqdn, target), budget,
			asked, aliasOf(target, backendIP), harness.Again[probe.DNSResult]())
		addr := hostPort(clusterIP, fixtures.BackendPort)
		// The released address is in no Service's rules: nothing connects
		// (a proxy that kept the rules would still answer); two attempts in
		// a row, then a sample of five, none may connect.
		gone := harness.Settle(ctx, fmt.Sprintf("client pod %s → %s, the ClusterIP %s had: no attempt connects", fixtures.ClientPod, addr, externalName), harness.Converge,
			connectProbe(client, probe.ConnectOptions{Addr: addr, Count: 2, Timeout: time.Second}), notConnected,
			harness.Confirm[probe.ConnectResult]{Probes: 1, Probe: connectProbe(client, probe.ConnectOptions{Addr: addr, Count: 5, Timeout: 2 * time.Second})})
		harness.Converged("old ClusterIP silent after the change back to ExternalName", changed, gone)
	})
})

// externalName is the name of the spec's ExternalName Service.
const externalName = "alias"

// aliasOf says why some query of res is not answered by a CNAME to target
// followed by target's address addr, or nil when every one is.
func aliasOf(target, addr string) func(probe.DNSResult) error {
	return func(res probe.DNSResult) error {
		if len(res.Queries) == 0 {
			return fmt.Errorf("no query made")
		}
		for i, q := range res.Queries {
			cname, a := recordsOf(q, "CNAME"), recordsOf(q, "A")
			if q.Rcode != "NOERROR" || len(cname) != 1 || cname[0].Target != target+"." || len(a) != 1 || a[0].Address != addr {
				return fmt.Errorf("query %d for %q (rcode %q) answered %+v; want one CNAME to %s. and one A %s; tried %+v", i+1, res.Name, q.Rcode, q.Answers, target, addr, q.Tried)
			}
		}
		return nil
	}
}

// addressesAre says why some query of res does not answer exactly the A
// record addr (and no CNAME), or nil when every one does.
func addressesAre(res probe.DNSResult, addr string) error {
	if len(res.Queries) == 0 {
		return fmt.Errorf("no query made")
	}
	for i, q := range res.Queries {
		a := recordsOf(q, "A")
		if q.Rcode != "NOERROR" || len(q.Answers) != 1 || len(a) != 1 || a[0].Address != addr {
			return fmt.Errorf("query %d for %q (rcode %q) answered %+v; want exactly one A %s; tried %+v", i+1, res.Name, q.Rcode, q.Answers, addr, q.Tried)
		}
	}
	return nil
}
