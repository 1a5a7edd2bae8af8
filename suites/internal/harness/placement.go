package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/e2e-framework/klient/k8s"

	"github.com/netconform/netconform/pkg/fixtures"
)

// HostnameLabel is the node label a pin selects on.
const HostnameLabel = "kubernetes.io/hostname"

// DeployOn is Deploy with every pod of the fixture placed on one node (a
// nodeSelector on its hostname label), so that a spec knows which nodes
// hold an endpoint and which do not.
func (e *Env) DeployOn(ctx context.Context, ns string, name fixtures.Name, node string, tweak ...func(*fixtures.Params)) []k8s.Object {
	p := fixtures.Params{Namespace: ns, Image: e.Info.ProbeImage}
	for _, t := range tweak {
		t(&p)
	}
	objs, err := fixtures.Render(name, p)
	if err != nil {
		Fail(fmt.Sprintf("rendering fixture %s: %v", name, err))
	}
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			o.Spec.Template.Spec.NodeSelector = map[string]string{HostnameLabel: node}
		case *corev1.Pod:
			o.Spec.NodeSelector = map[string]string{HostnameLabel: node}
		}
	}
	if err := fixtures.Apply(ctx, e.Resources, objs); err != nil {
		Fail(fmt.Sprintf("applying fixture %s in %s: %v", name, ns, err))
	}
	if err := fixtures.WaitReady(ctx, e.Resources, objs, Deploy); err != nil {
		Fail(fmt.Sprintf("fixture %s in %s (pinned to node %s) not ready within %s: %v", name, ns, node, Deploy, err))
	}
	return objs
}

// Pin moves Deployment ns/name onto node and waits, within Deploy, until
// the move is over as the API tells it: the rollout is complete, every pod
// left runs on node, and every Service in ns selecting those pods lists
// exactly the Deployment's replicas as endpoints, all ready and all on
// node (the old pods' terminating endpoints gone). The data plane follows
// later; specs wait for that with Settle.
func (e *Env) Pin(ctx context.Context, ns, name, node string) {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"nodeSelector": map[string]string{HostnameLabel: node}}}}})
	d, err := e.Client.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		Fail(fmt.Sprintf("pinning Deployment %s/%s to node %s: %v", ns, name, node, err))
	}
	want := 1
	if d.Spec.Replicas != nil {
		want = int(*d.Spec.Replicas)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	selector := labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()

	deadline := time.Now().Add(Deploy)
	last := "not checked yet"
	for {
		done, state := e.pinned(ctx, ns, name, node, selector, podLabels, want)
		if done {
			return
		}
		last = state
		if time.Now().After(deadline) {
			Fail(fmt.Sprintf("Deployment %s/%s not moved to node %s within %s; last seen: %s", ns, name, node, Deploy, last))
		}
		select {
		case <-ctx.Done():
			Fail(fmt.Sprintf("Deployment %s/%s moving to node %s: %v; last seen: %s", ns, name, node, ctx.Err(), last))
		case <-time.After(fixtures.PollInterval):
		}
	}
}

func (e *Env) pinned(ctx context.Context, ns, name, node, selector string, podLabels labels.Set, want int) (bool, string) {
	d, err := e.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	if ok, state := fixtures.DeploymentReady(d); !ok {
		return false, state
	}
	pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return false, err.Error()
	}
	var where []string
	for _, p := range pods.Items {
		where = append(where, p.Name+"@"+p.Spec.NodeName)
	}
	if len(pods.Items) != want {
		return false, fmt.Sprintf("%d pods (want %d): %v", len(pods.Items), want, where)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != node || p.DeletionTimestamp != nil {
			return false, fmt.Sprintf("pods %v", where)
		}
	}
	svcs, err := e.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		slices, err := e.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + s.Name})
		if err != nil {
			return false, err.Error()
		}
		var eps []string
		ok := true
		for _, sl := range slices.Items {
			if sl.AddressType != discoveryv1.AddressTypeIPv4 {
				continue
			}
			for _, ep := range sl.Endpoints {
				ready := ep.Conditions.Ready != nil && *ep.Conditions.Ready
				at := ""
				if ep.NodeName != nil {
					at = *ep.NodeName
				}
				eps = append(eps, fmt.Sprintf("%s@%s ready=%t", strings.Join(ep.Addresses, ","), at, ready))
				if !ready || at != node {
					ok = false
				}
			}
		}
		if !ok || len(eps) != want {
			return false, fmt.Sprintf("Service %s endpoints %v (want %d, all ready on %s)", s.Name, eps, want, node)
		}
	}
	return true, ""
}
