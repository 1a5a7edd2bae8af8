package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netconform/netconform/internal/progress"
)

// WaitReady waits until every node is Ready and every DaemonSet and
// Deployment in kube-system (kube-proxy, the CNI, CoreDNS, add-ons there)
// has all its pods ready. On timeout the error lists what is not ready and
// why, pod by pod.
func WaitReady(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return WaitNamespacesReady(ctx, cs, timeout, "kube-system")
}

// WaitNamespacesReady is WaitReady for the workloads of the given namespaces.
func WaitNamespacesReady(ctx context.Context, cs kubernetes.Interface, timeout time.Duration, namespaces ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	lastReport := start
	var notReady []string
	for {
		notReady = notReadyList(ctx, cs, namespaces)
		if len(notReady) == 0 {
			return nil
		}
		if time.Since(lastReport) > 30*time.Second {
			progress.Printf("  waiting for the cluster (%s): %s", time.Since(start).Round(time.Second), strings.Join(notReady, "; "))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready after %s:\n  %s\n  pods:\n%s", timeout, strings.Join(notReady, "\n  "), podProblems(context.Background(), cs, namespaces))
		case <-time.After(2 * time.Second):
		}
	}
}

func notReadyList(ctx context.Context, cs kubernetes.Interface, namespaces []string) []string {
	var out []string
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{"listing nodes: " + err.Error()}
	}
	if len(nodes.Items) == 0 {
		out = append(out, "no nodes registered")
	}
	for _, n := range nodes.Items {
		if !nodeReady(&n) {
			out = append(out, "node "+n.Name+" not Ready")
		}
	}
	for _, ns := range namespaces {
		dss, err := cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return append(out, "listing daemonsets: "+err.Error())
		}
		for _, d := range dss.Items {
			if d.Status.DesiredNumberScheduled == 0 || d.Status.NumberReady < d.Status.DesiredNumberScheduled || d.Status.UpdatedNumberScheduled < d.Status.DesiredNumberScheduled {
				out = append(out, fmt.Sprintf("daemonset %s/%s %d/%d ready", ns, d.Name, d.Status.NumberReady, d.Status.DesiredNumberScheduled))
			}
		}
		deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return append(out, "listing deployments: "+err.Error())
		}
		for _, d := range deps.Items {
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			if d.Status.ReadyReplicas < want || d.Status.UpdatedReplicas < want {
				out = append(out, fmt.Sprintf("deployment %s/%s %d/%d ready", ns, d.Name, d.Status.ReadyReplicas, want))
			}
		}
	}
	sort.Strings(out)
	return out
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podProblems describes every pod that is not ready: phase, and each
// container's waiting or terminated reason.
func podProblems(ctx context.Context, cs kubernetes.Interface, namespaces []string) string {
	var b strings.Builder
	for _, ns := range namespaces {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			fmt.Fprintf(&b, "    listing pods in %s: %v\n", ns, err)
			continue
		}
		for _, p := range pods.Items {
			if podReady(&p) {
				continue
			}
			fmt.Fprintf(&b, "    %s/%s on %s: %s", ns, p.Name, p.Spec.NodeName, p.Status.Phase)
			for _, c := range p.Status.ContainerStatuses {
				switch {
				case c.State.Waiting != nil:
					fmt.Fprintf(&b, "; %s waiting: %s %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
				case c.State.Terminated != nil:
					fmt.Fprintf(&b, "; %s terminated: %s (exit %d) %s", c.Name, c.State.Terminated.Reason, c.State.Terminated.ExitCode, c.State.Terminated.Message)
				case !c.Ready:
					fmt.Fprintf(&b, "; %s running, not ready (restarts %d)", c.Name, c.RestartCount)
				}
			}
			for _, c := range p.Status.Conditions {
				if c.Status != corev1.ConditionTrue && c.Message != "" {
					fmt.Fprintf(&b, "; %s: %s", c.Type, c.Message)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return p.Status.Phase == corev1.PodSucceeded
}
