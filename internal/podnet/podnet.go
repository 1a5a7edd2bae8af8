// Package podnet is the offline default pod network of netconform's node
// images, doing what kind's kindnet does for kind's data path and nothing
// else:
//
//   - write a CNI config on the node: the standard ptp plugin with host-local
//     IPAM over the node's podCIDR, then portmap (hostPort);
//   - route every other node's podCIDR via that node's InternalIP;
//   - masquerade traffic leaving the cluster (destination not in the cluster's
//     pod subnet and not local), as kindnet's masquerade agent does.
//
// kindnet itself cannot be obtained without a registry; this keeps results
// comparable with what users see on kindest/node. IPv4 only.
package podnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// ConfPath is where the CNI config is written on the node.
const ConfPath = "/etc/cni/net.d/10-podnet.conflist"

// Conflist renders the CNI configuration for a node's pod CIDRs.
func Conflist(podCIDRs []string, mtu int) ([]byte, error) {
	if len(podCIDRs) == 0 {
		return nil, fmt.Errorf("node has no podCIDR yet")
	}
	var ranges [][]map[string]string
	for _, c := range podCIDRs {
		ip, _, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("podCIDR %q: %w", c, err)
		}
		if ip.To4() == nil {
			continue // IPv4 only
		}
		ranges = append(ranges, []map[string]string{{"subnet": c}})
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("node has no IPv4 podCIDR in %v", podCIDRs)
	}
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "podnet",
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    mtu,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": "/run/cni-ipam-state",
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"ranges":  ranges,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// WriteIfChanged writes data to path atomically when it differs.
func WriteIfChanged(path string, data []byte) (bool, error) {
	if cur, err := os.ReadFile(path); err == nil && string(cur) == string(data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

// Route is a pod CIDR reachable through a node.
type Route struct {
	Dst *net.IPNet
	Via net.IP
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Via.String() }

// RoutesFor returns the routes this node needs: every other node's IPv4 pod
// CIDRs via that node's IPv4 InternalIP, in a stable order.
func RoutesFor(self string, nodes []*corev1.Node) []Route {
	var out []Route
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		var via net.IP
		for _, a := range n.Status.Addresses {
			if ip := net.ParseIP(a.Address); a.Type == corev1.NodeInternalIP && ip != nil && ip.To4() != nil {
				via = ip
				break
			}
		}
		if via == nil {
			continue
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			_, dst, err := net.ParseCIDR(c)
			if err != nil || dst.IP.To4() == nil {
				continue
			}
			out = append(out, Route{Dst: dst, Via: via})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst.String() < out[j].Dst.String() })
	return out
}

// Dataplane applies routes and masquerade rules on the node.
type Dataplane interface {
	SyncRoutes(ctx context.Context, routes []Route) error
	SyncMasquerade(ctx context.Context, noMasq []string) error
}
