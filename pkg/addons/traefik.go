package addons

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/netconform/netconform/pkg/nodeimage"
)

// Traefik pins: v3.6.12 is the newest release that builds from the Go
// module proxy alone (v3.7 needs a nested module neither its zip nor the
// proxy carries).
const (
	TraefikVersion = "v3.6.12"
	traefikModule  = "github.com/traefik/traefik/v3"

	// TraefikNamespace, TraefikService and TraefikIngressClass name what
	// Install creates; specs send Ingress traffic to the Service's
	// load-balancer address, port 80.
	TraefikNamespace    = "traefik"
	TraefikService      = "traefik"
	TraefikIngressClass = "traefik"
	traefikWebPort      = 8000
)

var (
	traefikReadyTimeout = 5 * time.Minute
	// The address comes from MetalLB, within seconds once it runs.
	traefikAddressTimeout = 2 * time.Minute
)

//go:embed manifests/traefik.yaml
var traefikTemplate string

type traefik struct{}

// Traefik is the Ingress add-on: Traefik's Kubernetes Ingress provider
// behind a LoadBalancer Service, with the cluster's default IngressClass.
// It needs a load balancer (MetalLB) to be reachable from outside.
func Traefik() Addon { return traefik{} }

func (traefik) Name() string { return "traefik" }

func traefikImage() string { return Registry + "/traefik:" + TraefikVersion }

// traefikBuild builds traefik through a wrapper module; the wrapper repeats
// traefik's replace directives (forks of go-http-auth, mux and minheap),
// without which it does not compile. The version is stamped as upstream's
// Makefile does, so that `traefik version` and the logs tell the truth.
func traefikBuild() build {
	return build{
		Name: "traefik",
		Module: nodeimage.GoModule{
			Path:    traefikModule,
			Version: TraefikVersion,
			Mains:   []string{traefikModule + "/cmd/traefik"},
			LDFlags: []string{
				"-X " + traefikModule + "/pkg/version.Version=" + TraefikVersion,
				"-X " + traefikModule + "/pkg/version.BuildDate=1970-01-01T00:00:00Z",
			},
		},
		Images: []binaryImage{
			{Tag: traefikImage(), Binary: "traefik", Path: "/traefik", Title: "traefik"},
		},
	}
}

func (traefik) Images(ctx context.Context, log io.Writer) ([]string, error) {
	return traefikBuild().archives(ctx, log)
}

// TraefikObjects renders Traefik's objects, in apply order.
func TraefikObjects() ([]*unstructured.Unstructured, error) {
	objs, err := renderTemplate("traefik.yaml", traefikTemplate, struct {
		Name, Namespace, IngressClass, Image string
		WebPort                              int
	}{TraefikService, TraefikNamespace, TraefikIngressClass, traefikImage(), traefikWebPort})
	if err != nil {
		return nil, err
	}
	// The template names its image itself; this only checks it names no
	// other.
	if err := setImages(objs, map[string]string{traefikImage(): traefikImage()}); err != nil {
		return nil, err
	}
	return objs, nil
}

func (traefik) Install(ctx context.Context, kubeconfig string, _ Params) error {
	objs, err := TraefikObjects()
	if err != nil {
		return err
	}
	k, err := connect(kubeconfig)
	if err != nil {
		return err
	}
	if err := k.applyAll(ctx, objs); err != nil {
		return fmt.Errorf("installing Traefik: %w", err)
	}
	return nil
}

func (traefik) Ready(ctx context.Context, kubeconfig string) error {
	k, err := connect(kubeconfig)
	if err != nil {
		return err
	}
	if err := k.waitWorkloads(ctx, traefikReadyTimeout, workload{Kind: "Deployment", Namespace: TraefikNamespace, Name: TraefikService}); err != nil {
		return fmt.Errorf("the Traefik add-on is not ready: %w", err)
	}
	if _, err := k.loadBalancerAddress(ctx, TraefikNamespace, TraefikService, traefikAddressTimeout); err != nil {
		return fmt.Errorf("the Traefik add-on runs but is not reachable from outside (is the metallb add-on installed?): %w", err)
	}
	return nil
}

// loadBalancerAddress waits for a Service's load-balancer address.
func (k *kube) loadBalancerAddress(ctx context.Context, namespace, name string, timeout time.Duration) (string, error) {
	var addr string
	err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
		svc, err := k.cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		addr = firstIngressAddress(svc)
		return addr != "", "no address in status.loadBalancer.ingress", nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for a load-balancer address on Service %s/%s: %w", namespace, name, err)
	}
	return addr, nil
}

func firstIngressAddress(svc *corev1.Service) string {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			return in.IP
		}
		if in.Hostname != "" {
			return in.Hostname
		}
	}
	return ""
}
