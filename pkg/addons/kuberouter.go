package addons

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/nodeimage"
	"github.com/netconform/netconform/pkg/ociimage"
)

// kube-router pins: v2.1.0 builds from the Go module proxy with `go
// install`. It is the matrix's second CNI, for a cell whose known failures
// are declared (docs/cni.md): its routing controller puts ACCEPT rules at the
// top of filter FORWARD, ahead of kube-proxy's.
const (
	KubeRouterVersion = "v2.1.0"
	kubeRouterModule  = "github.com/cloudnativelabs/kube-router/v2"

	// KubeRouterName names the DaemonSet and its RBAC in kube-system.
	KubeRouterName      = "kube-router"
	KubeRouterNamespace = "kube-system"
	// KubeRouterCNIConf is the node's CNI configuration file. kube-router
	// fills the node's pod CIDR into the file KUBE_ROUTER_CNI_CONF_FILE
	// names (default /etc/cni/net.d/10-kuberouter.conf, a single plugin);
	// ours is a list, bridge then portmap.
	KubeRouterCNIConf     = "/etc/cni/net.d/10-kuberouter.conflist"
	kubeRouterHealthPort  = 20244
	kubeRouterBinary      = "/usr/local/bin/kube-router"
	kubeRouterImageFormat = "v1" // bump when the image's layout changes
)

var (
	// The DaemonSet's pods start as soon as the image is loaded; nodes turn
	// Ready once the CNI file is in place, within seconds of that.
	kubeRouterReadyTimeout = 5 * time.Minute
	// The kubernetes Service's EndpointSlice exists from the API server's
	// first seconds; this only covers an API server that is restarting.
	kubeRouterEndpointTimeout = time.Minute
)

//go:embed manifests/kuberouter.yaml
var kubeRouterTemplate string

type kubeRouter struct{}

// KubeRouter is the kube-router CNI add-on, routing only
// (--run-router=true --run-firewall=false --run-service-proxy=false): BGP
// routes to every node's pod CIDR and the bridge plugin with hairpin mode and
// host-local IPAM on each node. A cell that uses it sets kind's
// networking.disableDefaultCNI, and it is installed before every other
// add-on (nothing else can run before the nodes are Ready).
func KubeRouter() Addon { return kubeRouter{} }

func (kubeRouter) Name() string { return "kube-router" }

func kubeRouterImage() string { return Registry + "/kube-router:" + KubeRouterVersion }

func kubeRouterModuleBuild() nodeimage.GoModule {
	return nodeimage.GoModule{
		Path:    kubeRouterModule,
		Version: KubeRouterVersion,
		Mains:   []string{kubeRouterModule + "/cmd/kube-router"},
		// As upstream's Makefile stamps them, so that the log's first line
		// ("Running kube-router version ...") tells the truth.
		LDFlags: []string{
			"-X " + kubeRouterModule + "/pkg/version.Version=" + KubeRouterVersion,
			"-X " + kubeRouterModule + "/pkg/version.BuildDate=1970-01-01T00:00:00Z",
		},
	}
}

// kubeRouterSpec is the image: the node image's userland root file system
// (iptables, ipset with libipset13, iproute2 — what kube-router runs) with
// the binary on top as the entrypoint. The init container uses the same
// image for its shell.
func kubeRouterSpec(userland, binary string) ociimage.Spec {
	return ociimage.Spec{
		Tag:        kubeRouterImage(),
		BaseLayers: []string{userland},
		Files:      []ociimage.File{{Path: kubeRouterBinary, Mode: 0o755, Source: binary}},
		Entrypoint: []string{kubeRouterBinary},
		Labels:     map[string]string{"org.opencontainers.image.title": "kube-router"},
	}
}

// Images builds kube-router (or takes it from the cache) and its image. The
// cache key covers the userland tarball (its path is its package list's
// content address), the module, the flags and the Go toolchain.
func (kubeRouter) Images(ctx context.Context, log io.Writer) ([]string, error) {
	userland, err := nodeimage.UserlandRootfs(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("the userland root file system for the kube-router image: %w", err)
	}
	m := kubeRouterModuleBuild()
	dir := filepath.Join(nodeimage.CacheDir(), "addons", "kube-router-"+KubeRouterVersion+"-"+
		nodeimage.Key("addons-v1", kubeRouterImageFormat, m.Path, m.Version, strings.Join(m.Mains, ","), strings.Join(m.LDFlags, " "),
			nodeimage.GoVersion(ctx), userland, kubeRouterImage(), kubeRouterBinary))
	archive := filepath.Join(dir, archiveName(kubeRouterImage()))
	title := fmt.Sprintf("add-on kube-router: kube-router from %s@%s on the userland root file system", m.Path, m.Version)
	err = progress.Step(title, func() error {
		return nodeimage.Cached(dir, func(tmp string) error {
			bin := filepath.Join(tmp, "bin")
			if err := nodeimage.BuildGoModule(ctx, m, bin, nil, log); err != nil {
				return err
			}
			if err := ociimage.WriteArchive(kubeRouterSpec(userland, filepath.Join(bin, "kube-router")), filepath.Join(tmp, archiveName(kubeRouterImage()))); err != nil {
				return fmt.Errorf("making the %s image: %w", kubeRouterImage(), err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("building the kube-router add-on image: %w", err)
	}
	return []string{archive}, nil
}

// KubeRouterObjects renders kube-router's objects for an API server
// address, in apply order.
func KubeRouterObjects(apiHost string, apiPort int32) ([]*unstructured.Unstructured, error) {
	objs, err := renderTemplate("kuberouter.yaml", kubeRouterTemplate, struct {
		Name, Namespace, Image, CNIConf, CNIConfDir, APIServerHost string
		APIServerPort, HealthPort                                  int32
	}{KubeRouterName, KubeRouterNamespace, kubeRouterImage(), KubeRouterCNIConf, path.Dir(KubeRouterCNIConf), apiHost, apiPort, kubeRouterHealthPort})
	if err != nil {
		return nil, err
	}
	// The template names its image itself; this checks it names no other
	// and that no container would try to pull.
	if err := setImages(objs, map[string]string{kubeRouterImage(): kubeRouterImage()}); err != nil {
		return nil, err
	}
	return objs, nil
}

// apiServerEndpoint reads the API server's own address from the kubernetes
// Service's EndpointSlice (the address the API server advertises, reachable
// from every node without kube-proxy). The kubeconfig's server is no use:
// for a kind cluster it is a port on the host's loopback.
func apiServerEndpoint(ctx context.Context, cs kubernetes.Interface) (host string, port int32, err error) {
	err = poll(ctx, kubeRouterEndpointTimeout, func(ctx context.Context) (bool, string, error) {
		list, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
		if err != nil {
			return false, err.Error(), nil
		}
		host, port = pickAPIServerEndpoint(list.Items)
		if host == "" {
			return false, fmt.Sprintf("%d EndpointSlices for default/kubernetes, none with a ready IPv4 address and an https port", len(list.Items)), nil
		}
		return true, "", nil
	})
	if err != nil {
		return "", 0, fmt.Errorf("finding the API server's address (EndpointSlice of Service default/kubernetes): %w", err)
	}
	return host, port, nil
}

// pickAPIServerEndpoint chooses the lowest ready IPv4 address of the
// kubernetes Service's slices, with the slice's https port.
func pickAPIServerEndpoint(slices []discoveryv1.EndpointSlice) (string, int32) {
	type cand struct {
		host string
		port int32
	}
	var cands []cand
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		var port int32
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil || *p.Name == "https") {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				cands = append(cands, cand{a, port})
			}
		}
	}
	if len(cands) == 0 {
		return "", 0
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].host < cands[j].host })
	return cands[0].host, cands[0].port
}

func (kubeRouter) Install(ctx context.Context, kubeconfig string, _ Params) error {
	k, err := connect(kubeconfig)
	if err != nil {
		return err
	}
	host, port, err := apiServerEndpoint(ctx, k.cs)
	if err != nil {
		return fmt.Errorf("installing kube-router: %w", err)
	}
	objs, err := KubeRouterObjects(host, port)
	if err != nil {
		return err
	}
	if err := k.applyAll(ctx, objs); err != nil {
		return fmt.Errorf("installing kube-router: %w", err)
	}
	return nil
}

// Ready waits for the DaemonSet, then for every node to be Ready: the
// kubelet reports a node Ready only once its container runtime finds a
// CNI configuration, so that is when kube-router has done its job there.
func (kubeRouter) Ready(ctx context.Context, kubeconfig string) error {
	k, err := connect(kubeconfig)
	if err != nil {
		return err
	}
	if err := k.waitWorkloads(ctx, kubeRouterReadyTimeout, workload{Kind: "DaemonSet", Namespace: KubeRouterNamespace, Name: KubeRouterName}); err != nil {
		return fmt.Errorf("the kube-router add-on is not ready: %w", err)
	}
	err = poll(ctx, kubeRouterReadyTimeout, func(ctx context.Context) (bool, string, error) {
		nodes, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if s := nodesNotReady(nodes.Items); s != "" {
			return false, s, nil
		}
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("kube-router runs but nodes are not Ready: %w", err)
	}
	return nil
}

// nodesNotReady describes the nodes that are not Ready, with the kubelet's
// message (for a missing CNI: "container runtime network not ready ...").
func nodesNotReady(nodes []corev1.Node) string {
	var out []string
	for _, n := range nodes {
		ready := false
		msg := "no Ready condition"
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
				msg = c.Message
			}
		}
		if !ready {
			out = append(out, fmt.Sprintf("node %s not Ready (%s)", n.Name, msg))
		}
	}
	if len(nodes) == 0 {
		return "no nodes registered"
	}
	return strings.Join(out, "; ")
}
