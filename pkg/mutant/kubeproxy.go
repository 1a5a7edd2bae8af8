package mutant

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/pkg/ociimage"
)

// KubeProxy is a cluster's kube-proxy DaemonSet, whose image a mutant run
// swaps and restores.
type KubeProxy struct {
	Client kubernetes.Interface
	Kind   *cluster.Kind
	// Image and Binary are the DaemonSet's own image and the path of its
	// kube-proxy program (the container's command), as found.
	Image, Binary string
	original      appsv1.DaemonSet
}

const (
	kubeProxyNamespace = "kube-system"
	kubeProxyName      = "kube-proxy"
	healthzPort        = 10256
)

// FindKubeProxy reads the kube-proxy DaemonSet; a cluster without one (a
// kube-proxy replacement) cannot host mutants.
func FindKubeProxy(ctx context.Context, cs kubernetes.Interface, k *cluster.Kind) (*KubeProxy, error) {
	ds, err := cs.AppsV1().DaemonSets(kubeProxyNamespace).Get(ctx, kubeProxyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("the cluster has no DaemonSet %s/%s: mutants replace kube-proxy's image, so they need a cluster that runs kube-proxy", kubeProxyNamespace, kubeProxyName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading DaemonSet %s/%s: %w", kubeProxyNamespace, kubeProxyName, err)
	}
	c := container(ds)
	if c == nil {
		return nil, fmt.Errorf("DaemonSet %s/%s has no container named kube-proxy", kubeProxyNamespace, kubeProxyName)
	}
	if len(c.Command) == 0 || !strings.HasSuffix(c.Command[0], "kube-proxy") {
		return nil, fmt.Errorf("DaemonSet %s/%s runs %q, not a kube-proxy binary by path; cannot tell where a mutant belongs", kubeProxyNamespace, kubeProxyName, c.Command)
	}
	return &KubeProxy{Client: cs, Kind: k, Image: c.Image, Binary: c.Command[0], original: *ds.DeepCopy()}, nil
}

func container(ds *appsv1.DaemonSet) *corev1.Container {
	for i := range ds.Spec.Template.Spec.Containers {
		if ds.Spec.Template.Spec.Containers[i].Name == kubeProxyName {
			return &ds.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// ExportBase writes the cluster's own kube-proxy image, as the first node's
// containerd holds it, to dst: mutants are derived from it, so that they
// differ from what the cluster runs in the binary only (upstream images
// and netconform's offline ones alike).
func (p *KubeProxy) ExportBase(ctx context.Context, dst string) error {
	ns, err := p.Kind.Nodes()
	if err != nil {
		return err
	}
	if len(ns) == 0 {
		return fmt.Errorf("kind cluster %s has no nodes", p.Kind.Name())
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst + ".partial")
	if err != nil {
		return err
	}
	var stderr strings.Builder
	err = ns[0].CommandContext(ctx, "ctr", "--namespace=k8s.io", "images", "export", "--platform", "linux/amd64", "-", p.Image).SetStdout(f).SetStderr(&stderr).Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst + ".partial")
		return fmt.Errorf("exporting image %s from node %s: %w: %s", p.Image, ns[0], err, strings.TrimSpace(stderr.String()))
	}
	return os.Rename(dst+".partial", dst)
}

// Derive writes an image archive tagged tag: the base image with binary
// at the DaemonSet's kube-proxy path.
func (p *KubeProxy) Derive(base, binary, tag, dst string) error {
	return ociimage.Derive(base, []ociimage.File{{Path: p.Binary, Mode: 0o755, Source: binary}}, tag, dst)
}

// Tag is the image reference a fault's mutant carries: the cluster's own
// repository and tag, suffixed with the fault.
func (p *KubeProxy) Tag(f Fault) string {
	repo, tag := p.Image, "latest"
	if i := strings.LastIndex(p.Image, ":"); i > strings.LastIndex(p.Image, "/") {
		repo, tag = p.Image[:i], p.Image[i+1:]
	}
	return repo + ":" + tag + "-netconform-" + strings.ReplaceAll(f.Name, "/", "-")
}

// Roll loads the archive into every node and rolls the DaemonSet onto
// image, all nodes at once, then waits until every node runs it and each
// kube-proxy answers its /healthz, within budget.
func (p *KubeProxy) Roll(ctx context.Context, archive, image string, budget time.Duration) error {
	if archive != "" {
		if err := p.Kind.LoadArchives(ctx, archive); err != nil {
			return err
		}
	}
	return p.set(ctx, image, budget)
}

// Restore puts the DaemonSet's own image and update strategy back and
// waits for it to run everywhere.
func (p *KubeProxy) Restore(ctx context.Context, budget time.Duration) error {
	return p.set(ctx, p.Image, budget)
}

func (p *KubeProxy) set(ctx context.Context, image string, budget time.Duration) error {
	strategy := p.original.Spec.UpdateStrategy.DeepCopy()
	if image != p.Image {
		all := intstr.FromString("100%")
		strategy = &appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &all}}
	}
	patch := map[string]any{"spec": map[string]any{
		"updateStrategy": strategy,
		"template": map[string]any{"spec": map[string]any{"containers": []map[string]any{{
			"name": kubeProxyName, "image": image, "imagePullPolicy": "IfNotPresent",
		}}}},
	}}
	data, _ := json.Marshal(patch)
	ds, err := p.Client.AppsV1().DaemonSets(kubeProxyNamespace).Patch(ctx, kubeProxyName, types.StrategicMergePatchType, data, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("setting DaemonSet %s/%s to image %s: %w", kubeProxyNamespace, kubeProxyName, image, err)
	}
	gen := ds.Generation
	var last string
	err = wait.PollUntilContextTimeout(ctx, time.Second, budget, true, func(ctx context.Context) (bool, error) {
		ds, err := p.Client.AppsV1().DaemonSets(kubeProxyNamespace).Get(ctx, kubeProxyName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		st := ds.Status
		if st.ObservedGeneration < gen || st.UpdatedNumberScheduled != st.DesiredNumberScheduled || st.NumberAvailable != st.DesiredNumberScheduled || st.NumberUnavailable != 0 {
			last = fmt.Sprintf("generation %d observed %d; %d desired, %d updated, %d available", gen, st.ObservedGeneration, st.DesiredNumberScheduled, st.UpdatedNumberScheduled, st.NumberAvailable)
			return false, nil
		}
		if why := p.running(ctx, image); why != "" {
			last = why
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("kube-proxy did not run %s on every node within %s: %s", image, budget, last)
	}
	return nil
}

// running says why not every kube-proxy pod runs image, ready, with its
// /healthz answering 200; "" when they all do.
func (p *KubeProxy) running(ctx context.Context, image string) string {
	sel := metav1.FormatLabelSelector(p.original.Spec.Selector)
	pods, err := p.Client.CoreV1().Pods(kubeProxyNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err.Error()
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}}
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp != nil {
			return "pod " + pod.Name + " is terminating"
		}
		c := podContainer(&pod)
		if c == nil || c.Image != image {
			return "pod " + pod.Name + " runs another image"
		}
		if !podReady(&pod) || pod.Status.HostIP == "" {
			return "pod " + pod.Name + " is not ready"
		}
		resp, err := hc.Get(fmt.Sprintf("http://%s/healthz", net.JoinHostPort(pod.Status.HostIP, fmt.Sprint(healthzPort))))
		if err != nil {
			return fmt.Sprintf("kube-proxy on %s: /healthz: %v", pod.Spec.NodeName, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("kube-proxy on %s: /healthz answered %d", pod.Spec.NodeName, resp.StatusCode)
		}
	}
	return ""
}

func podContainer(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == kubeProxyName {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
