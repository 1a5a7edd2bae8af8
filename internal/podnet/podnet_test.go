package podnet

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name, ip string, cidrs ...string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:   corev1.NodeSpec{PodCIDRs: cidrs},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}}}
}

func TestRoutesForSkipsSelfAndIPv6(t *testing.T) {
	nodes := []*corev1.Node{
		node("cp", "172.18.0.2", "10.244.0.0/24"),
		node("w1", "172.18.0.3", "10.244.1.0/24", "fd00:10:244:1::/64"),
		node("w2", "172.18.0.4", "10.244.2.0/24"),
		node("new", "172.18.0.5"), // no podCIDR yet
	}
	got := RoutesFor("w1", nodes)
	var s []string
	for _, r := range got {
		s = append(s, r.String())
	}
	want := []string{"10.244.0.0/24 via 172.18.0.2", "10.244.2.0/24 via 172.18.0.4"}
	if len(s) != len(want) || s[0] != want[0] || s[1] != want[1] {
		t.Fatalf("routes = %v, want %v", s, want)
	}
}

func TestConflistUsesNodePodCIDR(t *testing.T) {
	data, err := Conflist([]string{"10.244.1.0/24", "fd00::/64"}, 1500)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Plugins []struct {
			Type string
			IPAM struct {
				Type   string
				Ranges [][]struct{ Subnet string }
			}
		}
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Plugins) != 2 || c.Plugins[0].Type != "ptp" || c.Plugins[1].Type != "portmap" {
		t.Fatalf("plugins: %s", data)
	}
	r := c.Plugins[0].IPAM.Ranges
	if c.Plugins[0].IPAM.Type != "host-local" || len(r) != 1 || r[0][0].Subnet != "10.244.1.0/24" {
		t.Fatalf("ipam must be host-local over the IPv4 podCIDR only: %s", data)
	}
	if _, err := Conflist(nil, 1500); err == nil {
		t.Error("a node without podCIDR must be an error")
	}
}
