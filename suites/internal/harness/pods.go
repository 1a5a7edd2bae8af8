package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netconform/netconform/pkg/fixtures"
)

// ClientPodOn creates a client pod (the client fixture, renamed
// client-<node>) bound to node through spec.nodeName, so it runs there or
// not at all, waits until it is Ready within the Deploy budget and returns
// its name.
func (e *Env) ClientPodOn(ctx context.Context, ns, node string) string {
	objs, err := fixtures.Render(fixtures.Client, fixtures.Params{Namespace: ns, Image: e.Info.ProbeImage})
	if err != nil {
		Fail(fmt.Sprintf("rendering the client fixture: %v", err))
	}
	var pod *corev1.Pod
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			pod = p
		}
	}
	if pod == nil || len(objs) != 1 {
		Fail(fmt.Sprintf("the client fixture should be exactly one Pod, rendered %d objects", len(objs)))
	}
	pod.Name = strings.Trim(nonName.ReplaceAllString("client-"+strings.ToLower(node), "-"), "-")
	pod.Spec.NodeName = node
	if err := fixtures.Apply(ctx, e.Resources, objs); err != nil {
		Fail(fmt.Sprintf("creating client pod on node %s in %s: %v", node, ns, err))
	}
	if err := fixtures.WaitReady(ctx, e.Resources, objs, Deploy); err != nil {
		Fail(fmt.Sprintf("client pod %s/%s on node %s not ready within %s: %v", ns, pod.Name, node, Deploy, err))
	}
	return pod.Name
}

// SetReplicas sets a Deployment's replicas through its scale subresource
// and returns when the API server has accepted the change (the moment a
// spec measures convergence from). It does not wait for pods.
func (e *Env) SetReplicas(ctx context.Context, ns, deployment string, replicas int32) time.Time {
	_, err := e.Client.AppsV1().Deployments(ns).UpdateScale(ctx, deployment, &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: deployment, Namespace: ns},
		Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
	}, metav1.UpdateOptions{})
	if err != nil {
		Fail(fmt.Sprintf("scaling deployment %s/%s to %d: %v", ns, deployment, replicas, err))
	}
	return time.Now()
}

// Scale is SetReplicas, then a wait (Deploy budget) until the controller
// reports exactly that many replicas, all updated and ready. Endpoints and
// the data plane follow later; specs wait for those themselves
// (WaitEndpoints, then Settle).
func (e *Env) Scale(ctx context.Context, ns, deployment string, replicas int32) {
	e.SetReplicas(ctx, ns, deployment, replicas)
	state := "not checked yet"
	err := pollUntil(ctx, Deploy, func(ctx context.Context) (bool, error) {
		d, err := e.Client.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil {
			state = err.Error()
			return false, nil
		}
		var ok bool
		ok, state = fixtures.DeploymentReady(d)
		return ok, nil
	})
	if err != nil {
		Fail(fmt.Sprintf("deployment %s/%s not at %d ready replicas within %s: %s", ns, deployment, replicas, Deploy, state))
	}
}

// PodNames lists the live (not terminating) pods with label app=<app> in
// ns, sorted: what a probe's answers are compared with.
func (e *Env) PodNames(ctx context.Context, ns, app string) []string {
	pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: fixtures.AppLabel + "=" + app})
	if err != nil {
		Fail(fmt.Sprintf("listing pods app=%s in %s: %v", app, ns, err))
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}
