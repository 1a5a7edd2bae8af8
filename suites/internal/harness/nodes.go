package harness

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node is what the external-traffic specs need to know of a node: where
// NodePorts answer (its InternalIP), which addresses it may masquerade
// with (InternalIP, and the first address of each pod CIDR, which the
// CNI gives the node's side of the pod links), and whether the scheduler
// may place a spec's pods there.
type Node struct {
	Name        string
	InternalIP  netip.Addr
	PodCIDRs    []netip.Prefix
	Schedulable bool
	// Why is the reason a node is not schedulable, for skip messages.
	Why string
}

// PodGateways is the first address of each pod CIDR: the node's own
// address towards its pods (the bridge or the host side of each
// point-to-point link), the source a masqueraded packet delivered to a
// local pod carries.
func (n Node) PodGateways() []netip.Addr {
	var out []netip.Addr
	for _, p := range n.PodCIDRs {
		out = append(out, p.Masked().Addr().Next())
	}
	return out
}

func (n Node) String() string { return fmt.Sprintf("%s (%s)", n.Name, n.InternalIP) }

// Nodes lists the cluster's nodes by name, each with its IPv4 InternalIP;
// a node without one fails the spec (NodePort specs would not know where
// to send traffic).
func (e *Env) Nodes(ctx context.Context) []Node {
	list, err := e.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		Fail(fmt.Sprintf("listing nodes: %v", err))
	}
	var out []Node
	for _, n := range list.Items {
		node := Node{Name: n.Name}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
				node.InternalIP = ip
				break
			}
		}
		if !node.InternalIP.IsValid() {
			Fail(fmt.Sprintf("node %s has no IPv4 InternalIP (addresses %v)", n.Name, n.Status.Addresses))
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil {
				node.PodCIDRs = append(node.PodCIDRs, p)
			}
		}
		node.Schedulable, node.Why = schedulable(&n)
		out = append(out, node)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SchedulableNodes is Nodes filtered to those a fixture's pods (which carry
// no tolerations) can run on. It skips the spec, naming the nodes and why
// each is excluded, when fewer than min remain.
func (e *Env) SchedulableNodes(ctx context.Context, min int) (schedulable, all []Node) {
	all = e.Nodes(ctx)
	var why []string
	for _, n := range all {
		if n.Schedulable {
			schedulable = append(schedulable, n)
		} else {
			why = append(why, n.Name+": "+n.Why)
		}
	}
	if len(schedulable) < min {
		Skip(fmt.Sprintf("needs at least %d schedulable nodes, the cluster has %d (%s); add worker nodes",
			min, len(schedulable), strings.Join(why, "; ")))
	}
	return schedulable, all
}

func schedulable(n *corev1.Node) (bool, string) {
	if n.Spec.Unschedulable {
		return false, "cordoned"
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false, "taint " + t.ToString()
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
			return false, "not Ready"
		}
	}
	return true, ""
}
