package testbed

import (
	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// ClusterDomain learns the cluster's DNS domain from the cluster's own
// configuration, never from a pod's resolv.conf (which is what the DNS
// specs check against it): the kubelet configuration kubeadm keeps in the
// ConfigMap kube-system/kubelet-config (key "kubelet", field
// clusterDomain), else the zone CoreDNS's kubernetes plugin serves
// (ConfigMap kube-system/coredns, key "Corefile"). It says which source
// gave it; when none does, the error says why each failed.
func ClusterDomain(ctx context.Context, cs kubernetes.Interface) (domain, source string, err error) {
	var whyNot []error
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	if err == nil {
		domain, err = kubeletConfigDomain(cm.Data["kubelet"])
	}
	if err == nil {
		return domain, "clusterDomain of the kubelet configuration in ConfigMap kube-system/kubelet-config", nil
	}
	whyNot = append(whyNot, fmt.Errorf("ConfigMap kube-system/kubelet-config: %w", err))
	cm, err = cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err == nil {
		domain, err = corefileDomain(cm.Data["Corefile"])
	}
	if err == nil {
		return domain, "the zone of the kubernetes plugin in ConfigMap kube-system/coredns", nil
	}
	whyNot = append(whyNot, fmt.Errorf("ConfigMap kube-system/coredns: %w", err))
	return "", "", errors.Join(whyNot...)
}

// kubeletConfigDomain is the clusterDomain of a KubeletConfiguration.
func kubeletConfigDomain(data string) (string, error) {
	if strings.TrimSpace(data) == "" {
		return "", errors.New(`no key "kubelet"`)
	}
	var c struct {
		ClusterDomain string `json:"clusterDomain"`
	}
	if err := yaml.Unmarshal([]byte(data), &c); err != nil {
		return "", fmt.Errorf("key \"kubelet\" is not a kubelet configuration: %w", err)
	}
	if d := strings.TrimSuffix(c.ClusterDomain, "."); d != "" {
		return d, nil
	}
	return "", errors.New("the kubelet configuration sets no clusterDomain")
}

// corefileDomain is the forward zone of the kubernetes plugin in a
// Corefile ("kubernetes cluster.local in-addr.arpa ip6.arpa {"): the one
// zone that is not a reverse zone.
func corefileDomain(corefile string) (string, error) {
	if strings.TrimSpace(corefile) == "" {
		return "", errors.New(`no key "Corefile"`)
	}
	var zones []string
	for _, line := range strings.Split(corefile, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "kubernetes" {
			continue
		}
		for _, z := range f[1:] {
			if z == "{" || strings.HasPrefix(z, "#") {
				break
			}
			z = strings.TrimSuffix(z, ".")
			if !strings.HasSuffix(z, "in-addr.arpa") && !strings.HasSuffix(z, "ip6.arpa") {
				zones = append(zones, z)
			}
		}
	}
	switch len(zones) {
	case 0:
		return "", errors.New("the Corefile has no kubernetes plugin with a forward zone")
	case 1:
		return zones[0], nil
	}
	return "", fmt.Errorf("the Corefile's kubernetes plugin serves several zones %v: which one is the cluster domain is not said", zones)
}
