package addons

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// workload names a Deployment or DaemonSet to wait for.
type workload struct {
	Kind      string // "Deployment" or "DaemonSet"
	Namespace string
	Name      string
}

func (w workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// waitWorkloads waits until every workload has all its pods updated and
// ready. On timeout the error lists the pods that are not ready, with their
// containers' states — an add-on that does not come up here is most often
// an image that was not loaded (ErrImageNeverPull, ImagePullBackOff) or a
// binary that exits, and the reason should be in the message, not behind
// a kubectl describe.
func (k *kube) waitWorkloads(ctx context.Context, timeout time.Duration, ws ...workload) error {
	for _, w := range ws {
		var selector *metav1.LabelSelector
		err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
			ok, state, sel, err := k.workloadReady(ctx, w)
			if err != nil {
				return false, err.Error(), nil
			}
			selector = sel
			return ok, state, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for %s to be ready: %w%s", w, err, k.podReport(context.WithoutCancel(ctx), w.Namespace, selector))
		}
	}
	return nil
}

// workloadReady reads a workload's status: ready when the controller has
// seen its current spec and every wanted pod is updated and ready.
func (k *kube) workloadReady(ctx context.Context, w workload) (bool, string, *metav1.LabelSelector, error) {
	switch w.Kind {
	case "Deployment":
		d, err := k.cs.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", nil, err
		}
		ok, state := deploymentReady(d)
		return ok, state, d.Spec.Selector, nil
	case "DaemonSet":
		ds, err := k.cs.AppsV1().DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", nil, err
		}
		ok, state := daemonSetReady(ds)
		return ok, state, ds.Spec.Selector, nil
	}
	return false, "", nil, fmt.Errorf("no readiness rule for kind %s", w.Kind)
}

func deploymentReady(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	state := fmt.Sprintf("%d/%d replicas ready, %d updated", s.ReadyReplicas, want, s.UpdatedReplicas)
	return s.ObservedGeneration >= d.Generation && s.ReadyReplicas == want && s.UpdatedReplicas == want && s.Replicas == want, state
}

func daemonSetReady(ds *appsv1.DaemonSet) (bool, string) {
	s := ds.Status
	state := fmt.Sprintf("%d/%d pods ready, %d updated", s.NumberReady, s.DesiredNumberScheduled, s.UpdatedNumberScheduled)
	return s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled > 0 &&
		s.NumberReady == s.DesiredNumberScheduled && s.UpdatedNumberScheduled == s.DesiredNumberScheduled, state
}

// podReport describes the pods a selector picks that are not ready, one per
// line, for an error message; empty when it cannot tell.
func (k *kube) podReport(ctx context.Context, namespace string, selector *metav1.LabelSelector) string {
	if selector == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "\n  (listing its pods failed: " + err.Error() + ")"
	}
	if len(pods.Items) == 0 {
		return "\n  no pods exist for it (check the controller's events: kubectl -n " + namespace + " get events)"
	}
	var lines []string
	for i := range pods.Items {
		if l := podProblem(&pods.Items[i]); l != "" {
			lines = append(lines, "\n  "+l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// podProblem says why a pod is not ready, or "" when it is.
func podProblem(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	node := p.Spec.NodeName
	if node == "" {
		node = "unscheduled"
	}
	parts := []string{fmt.Sprintf("pod %s (node %s, phase %s)", p.Name, node, p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			parts = append(parts, fmt.Sprintf("not scheduled: %s %s", c.Reason, c.Message))
		}
	}
	statuses := append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if cs.Ready {
			continue
		}
		parts = append(parts, "container "+cs.Name+": "+containerState(cs))
	}
	return strings.Join(parts, "; ")
}

func containerState(cs corev1.ContainerStatus) string {
	var s string
	switch st := cs.State; {
	case st.Waiting != nil:
		s = "waiting: " + st.Waiting.Reason
		if st.Waiting.Message != "" {
			s += " (" + st.Waiting.Message + ")"
		}
	case st.Terminated != nil:
		s = fmt.Sprintf("terminated: %s, exit code %d", st.Terminated.Reason, st.Terminated.ExitCode)
		if st.Terminated.Message != "" {
			s += " (" + st.Terminated.Message + ")"
		}
	case st.Running != nil:
		s = "running, not ready (failing its readiness probe?)"
	default:
		s = "no state yet"
	}
	if t := cs.LastTerminationState.Terminated; t != nil {
		s += fmt.Sprintf("; last exit: %s, code %d", t.Reason, t.ExitCode)
		if t.Message != "" {
			s += " (" + strings.TrimSpace(t.Message) + ")"
		}
	}
	if cs.RestartCount > 0 {
		s += fmt.Sprintf("; %d restarts", cs.RestartCount)
	}
	return s
}
