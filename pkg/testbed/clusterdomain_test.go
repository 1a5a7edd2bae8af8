package testbed

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// As kubeadm v1.37 writes them on a kind cluster.
const (
	kubeletConfig = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDNS:\n- 10.96.0.10\nclusterDomain: example.internal\ncgroupDriver: systemd\n"
	corefile      = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    forward . /etc/resolv.conf\n    cache 30\n}\n"
)

func configMap(name, key, data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}, Data: map[string]string{key: data}}
}

func TestClusterDomainSources(t *testing.T) {
	ctx := context.Background()
	d, src, err := ClusterDomain(ctx, fake.NewSimpleClientset(configMap("kubelet-config", "kubelet", kubeletConfig), configMap("coredns", "Corefile", corefile)))
	if err != nil || d != "example.internal" || !strings.Contains(src, "kubelet-config") {
		t.Errorf("from the kubelet configuration: %q %q %v", d, src, err)
	}
	d, src, err = ClusterDomain(ctx, fake.NewSimpleClientset(configMap("coredns", "Corefile", corefile)))
	if err != nil || d != "cluster.local" || !strings.Contains(src, "coredns") {
		t.Errorf("from the Corefile: %q %q %v", d, src, err)
	}
	// Neither: an error naming both, never a guess.
	_, _, err = ClusterDomain(ctx, fake.NewSimpleClientset(configMap("kubelet-config", "kubelet", "kind: KubeletConfiguration\n")))
	if err == nil || !strings.Contains(err.Error(), "sets no clusterDomain") || !strings.Contains(err.Error(), "kube-system/coredns") {
		t.Errorf("no source: %v", err)
	}
}

func TestCorefileDomain(t *testing.T) {
	for in, want := range map[string]string{
		corefile: "cluster.local",
		"kubernetes k8s.example. 10.in-addr.arpa\n": "k8s.example",
	} {
		if got, err := corefileDomain(in); err != nil || got != want {
			t.Errorf("corefileDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".:53 {\n forward . 8.8.8.8\n}\n", "kubernetes a.local b.local {\n}\n"} {
		if got, err := corefileDomain(bad); err == nil {
			t.Errorf("corefileDomain(%q) = %q, want an error", bad, got)
		}
	}
}
