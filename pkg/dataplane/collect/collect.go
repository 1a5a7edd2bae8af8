// Package collect reads the rules kube-proxy left on each node of a live
// cluster. It runs the dump commands inside each node's kube-proxy pod
// (host network namespace, and the same iptables/nft userland kube-proxy
// used to write them), so it works on any kubeadm-style cluster, not only on
// kind nodes this host can reach.
package collect

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netconform/netconform/pkg/probe/kube"
)

// Node is one node's rules as text, with the addresses the tracer needs to
// decide what is local.
type Node struct {
	Name    string
	NodeIPs []netip.Addr
	// IPTablesSave is `iptables-save` (all tables, IPv4).
	IPTablesSave string
	// NFTJSON is `nft -j list ruleset`.
	NFTJSON string
	// IPVS is /proc/net/ip_vs, read by the caller in ipvs mode only (Rules
	// leaves it empty).
	IPVS string
}

// KubeProxyPods maps node name → kube-proxy pod name (label k8s-app=kube-proxy).
func KubeProxyPods(ctx context.Context, cs kubernetes.Interface) (map[string]string, error) {
	pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
	if err != nil {
		return nil, fmt.Errorf("listing kube-proxy pods: %w", err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = p.Name
		}
	}
	return out, nil
}

// Rules dumps the rules of every node that runs kube-proxy, in node order.
// Both formats are read whatever the proxy mode: in nftables mode the
// iptables dump shows what else is installed (a CNI's FORWARD accepts), and
// in iptables mode the nft dump is the same rules seen by nft.
func Rules(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface) ([]Node, error) {
	pods, err := KubeProxyPods(ctx, cs)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no running kube-proxy pods (label k8s-app=kube-proxy in kube-system): the cluster's service proxy is not kube-proxy")
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	var out []Node
	for _, n := range nodes.Items {
		pod, ok := pods[n.Name]
		if !ok {
			continue
		}
		node := Node{Name: n.Name, NodeIPs: NodeIPs(&n)}
		ipt, err := run(ctx, cfg, pod, "iptables-save")
		if err != nil {
			return nil, err
		}
		node.IPTablesSave = ipt
		nft, err := run(ctx, cfg, pod, "nft", "-j", "list", "ruleset")
		if err != nil {
			return nil, err
		}
		node.NFTJSON = nft
		out = append(out, node)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func run(ctx context.Context, cfg *rest.Config, pod string, cmd ...string) (string, error) {
	r, err := kube.NewPodExec(cfg, "kube-system", pod, "kube-proxy")
	if err != nil {
		return "", err
	}
	r.Command = cmd
	out, err := r.Run(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("reading rules with %v in %s: %w", cmd, r, err)
	}
	return string(out), nil
}

// NodeIPs are a node's InternalIP and ExternalIP addresses.
func NodeIPs(n *corev1.Node) []netip.Addr {
	var ips []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			ips = append(ips, ip)
		}
	}
	return ips
}
