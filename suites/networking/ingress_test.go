package networking

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netconform/netconform/pkg/addons"
	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

// ingressAddressBudget bounds how long the controller may take to publish
// an address for a new Ingress (Traefik copies its Service's load-balancer
// address within seconds).
const ingressAddressBudget = time.Minute

// defaultClassAnnotation marks the cluster's default IngressClass.
const defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"

// controllerServices names, per IngressClass controller, the LoadBalancer
// Service in front of it, for controllers that do not publish an address
// in Ingress status: the add-ons this project installs.
var controllerServices = map[string]struct{ Namespace, Name string }{
	"traefik.io/ingress-controller": {addons.TraefikNamespace, addons.TraefikService},
}

// ingressClass picks the cluster's default IngressClass, or else the first
// by name; it skips the spec when the cluster has none.
func ingressClass(ctx context.Context) networkingv1.IngressClass {
	list, err := env.Client.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred(), "listing IngressClasses")
	if len(list.Items) == 0 {
		Skip("no IngressClass in the cluster: install an Ingress controller (e.g. Traefik) for the ingress specs")
	}
	classes := list.Items
	sort.Slice(classes, func(i, j int) bool { return classes[i].Name < classes[j].Name })
	for _, c := range classes {
		if c.Annotations[defaultClassAnnotation] == "true" {
			return c
		}
	}
	return classes[0]
}

// ingressAddress waits for the Ingress's status address (preferred: it is
// where the controller says it serves this Ingress), falling back to the
// controller's own LoadBalancer Service for known controllers. A missing
// address skips the spec, unless the testbed installed the controller,
// where it fails.
func ingressAddress(ctx SpecContext, ns string, class networkingv1.IngressClass) (netip.Addr, string) {
	var last *networkingv1.Ingress
	deadline := time.Now().Add(ingressAddressBudget)
	for {
		ing, err := env.Client.NetworkingV1().Ingresses(ns).Get(ctx, fixtures.IngressName, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		last = ing
		for _, in := range ing.Status.LoadBalancer.Ingress {
			if a := ingressPointAddr(in.IP, in.Hostname); a.IsValid() {
				return a, "Ingress status"
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			Fail(fmt.Sprintf("waiting for Ingress %s/%s's address: %v", ns, fixtures.IngressName, ctx.Err()))
		case <-time.After(time.Second):
		}
	}
	if ref, ok := controllerServices[class.Spec.Controller]; ok {
		svc, err := env.Client.CoreV1().Services(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil {
			for _, in := range svc.Status.LoadBalancer.Ingress {
				if a := ingressPointAddr(in.IP, in.Hostname); a.IsValid() {
					return a, fmt.Sprintf("Service %s/%s of controller %s (the Ingress status stayed empty)", ref.Namespace, ref.Name, class.Spec.Controller)
				}
			}
		}
	}
	msg := fmt.Sprintf("IngressClass %s (controller %s) published no address for Ingress %s/%s within %s (status %+v), and no LoadBalancer Service of the controller has one; give the controller a reachable LoadBalancer Service (e.g. with MetalLB) for the ingress specs",
		class.Name, class.Spec.Controller, ns, fixtures.IngressName, ingressAddressBudget, last.Status.LoadBalancer)
	if slices.Contains(env.Info.Addons, "traefik") {
		Fail("the testbed installed the traefik add-on, yet " + msg)
	}
	Skip(msg)
	return netip.Addr{}, ""
}

// ingressPointAddr is a load-balancer ingress point as an address: its IP,
// or its host name resolved as a client would.
func ingressPointAddr(ip, host string) netip.Addr {
	if a, err := netip.ParseAddr(ip); err == nil {
		return a
	}
	if host != "" {
		if ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", host); err == nil && len(ips) > 0 {
			return ips[0]
		}
	}
	return netip.Addr{}
}

// The seed Ingress routes host hello.test.com to the hello Service, and its
// /world prefix to the world Service. Two live Ingresses for one host would
// leave the controller to pick between namespaces, so the specs share one
// deployment (Ordered, deployed once in BeforeAll) instead of each deploying
// its own: they no longer need to run alone (Serial), only in order, and
// ContinueOnFailure keeps one failing route from hiding the others.
var _ = Describe("Ingress hello (host hello.test.com)", Label("ingress"), Ordered, ContinueOnFailure, func() {
	const k = 10
	var (
		ns           string
		url          func(path string) string
		hello, world []string
	)
	// BeforeAll looks for the class first, so that a cluster without one
	// skips every spec before creating anything.
	BeforeAll(func(ctx SpecContext) {
		class := ingressClass(ctx)
		ns = env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Ingress, func(p *fixtures.Params) { p.IngressClassName = class.Name })
		addr, from := ingressAddress(ctx, ns, class)
		AddReportEntry("ingress address", fmt.Sprintf("%s from %s (IngressClass %s, controller %s)", addr, from, class.Name, class.Spec.Controller))
		url = func(path string) string { return addrURL(addr, 80, path) }
		hello = env.PodNames(ctx, ns, fixtures.HelloService)
		world = env.PodNames(ctx, ns, fixtures.WorldService)
		Expect(hello).To(HaveLen(1), "hello pods")
		Expect(world).To(HaveLen(1), "world pods")
	})
	AfterEach(func(ctx SpecContext) {
		// The namespace's own clean-up sees only the last spec's outcome.
		if CurrentSpecReport().Failed() {
			env.CollectEvidence(ctx, ns)
		}
	})
	// settleHost waits until requests for the Ingress's host at path are
	// answered by pods, and confirms it.
	settleHost := func(ctx SpecContext, path string, pods []string) {
		what := fmt.Sprintf("external client → %s Host %s", url(path), fixtures.IngressHost)
		settleAnswered(ctx, what, env.External(), probe.HTTPOptions{URL: url(path), Host: fixtures.IngressHost}, pods, nil)
	}

	It("sends requests for its host to the hello Service's pods", func(ctx SpecContext) {
		settleHost(ctx, "/", hello)
	})

	It("answers 404 for an unknown host, without reaching a hello pod", func(ctx SpecContext) {
		// First the known host, so that a 404 below is the controller
		// routing, not a controller that has not yet read the Ingress.
		settleHost(ctx, "/", hello)
		unknown := ns + ".unknown.test.com"
		res := harness.HTTP(ctx, env.External(), probe.HTTPOptions{URL: url("/"), Host: unknown, Count: k})
		Expect(res.Statuses).To(Equal(map[string]int{"404": k}),
			"Host %s: statuses %v, errors %v %v; want 404 every time", unknown, res.Statuses, res.Errors, res.ErrorSamples)
		Expect(res.Pods).To(BeEmpty(), "Host %s: answered by pods %v (hello %v, world %v); want none", unknown, res.Pods, hello, world)
	})

	It("routes the /world prefix to the world Service's pods", func(ctx SpecContext) {
		settleHost(ctx, fixtures.WorldPath, world)
	})
})
