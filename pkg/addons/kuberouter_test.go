package addons

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func ptrTo[T any](v T) *T { return &v }

func TestKubeRouterObjects(t *testing.T) {
	objs, err := KubeRouterObjects("172.18.0.3", 6443)
	if err != nil {
		t.Fatal(err)
	}
	ds := byKind(t, objs, "DaemonSet")
	if ds.GetNamespace() != "kube-system" || ds.GetName() != "kube-router" {
		t.Errorf("DaemonSet %s", describe(ds))
	}
	spec, _, _ := unstructured.NestedMap(ds.Object, "spec", "template", "spec")
	if spec["hostNetwork"] != true {
		t.Errorf("hostNetwork = %v", spec["hostNetwork"])
	}
	// The init container (a shell that writes the CNI file) and kube-router.
	img := [2]string{"netconform.local/kube-router:v2.1.0", "IfNotPresent"}
	if got := containers(t, ds); !slices.Equal(got, [][2]string{img, img}) {
		t.Errorf("containers = %v", got)
	}

	c := spec["containers"].([]any)[0].(map[string]any)
	args, _ := c["args"].([]any)
	for _, want := range []string{"--run-router=true", "--run-firewall=false", "--run-service-proxy=false"} {
		if !slices.Contains(args, any(want)) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if sc, _ := c["securityContext"].(map[string]any); sc["privileged"] != true {
		t.Errorf("securityContext = %v, want privileged", sc)
	}
	env := map[string]string{}
	for _, e := range c["env"].([]any) {
		em := e.(map[string]any)
		v, _ := em["value"].(string)
		env[em["name"].(string)] = v
	}
	for k, want := range map[string]string{"KUBE_ROUTER_CNI_CONF_FILE": KubeRouterCNIConf, "KUBERNETES_SERVICE_HOST": "172.18.0.3", "KUBERNETES_SERVICE_PORT": "6443"} {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}
	if _, ok := env["NODE_NAME"]; !ok {
		t.Error("no NODE_NAME in the environment (kube-router finds its node by it)")
	}

	// The init container writes the file kube-router reads, from the
	// ConfigMap it mounts.
	init := spec["initContainers"].([]any)[0].(map[string]any)
	cmd, _ := json.Marshal(init["command"])
	if !strings.Contains(string(cmd), KubeRouterCNIConf) {
		t.Errorf("init container command %s does not write %s", cmd, KubeRouterCNIConf)
	}

	var cm *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" {
			cm = o
		}
	}
	if cm == nil {
		t.Fatal("no ConfigMap with the CNI configuration")
	}
	raw, _, _ := unstructured.NestedString(cm.Object, "data", "cni.conflist")
	var conf struct {
		Plugins []struct {
			Type        string         `json:"type"`
			Bridge      string         `json:"bridge"`
			HairpinMode bool           `json:"hairpinMode"`
			IPAM        map[string]any `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(raw), &conf); err != nil {
		t.Fatalf("CNI configuration is not JSON: %v\n%s", err, raw)
	}
	if len(conf.Plugins) == 0 || conf.Plugins[0].Type != "bridge" || !conf.Plugins[0].HairpinMode || conf.Plugins[0].IPAM["type"] != "host-local" {
		t.Errorf("CNI configuration %+v: want bridge first, hairpinMode, host-local IPAM", conf)
	}
	if _, has := conf.Plugins[0].IPAM["ranges"]; has {
		t.Errorf("IPAM has ranges %v; kube-router fills in the node's own", conf.Plugins[0].IPAM["ranges"])
	}

	role := byKind(t, objs, "ClusterRole")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	var resources []string
	for _, r := range rules {
		for _, res := range r.(map[string]any)["resources"].([]any) {
			resources = append(resources, res.(string))
		}
		for _, v := range r.(map[string]any)["verbs"].([]any) {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("ClusterRole grants %v; routing only needs to read", v)
			}
		}
	}
	for _, want := range []string{"nodes", "pods", "services", "endpoints", "endpointslices", "namespaces", "networkpolicies"} {
		if !slices.Contains(resources, want) {
			t.Errorf("ClusterRole lacks %s (kube-router starts an informer for it)", want)
		}
	}
}

func TestKubeRouterInstalledFirst(t *testing.T) {
	as, err := InOrder([]string{"traefik", "metallb", "kube-router"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, a.Name())
	}
	if !slices.Equal(got, []string{"kube-router", "metallb", "traefik"}) {
		t.Errorf("InOrder = %v, want the CNI first", got)
	}
}

func TestPickAPIServerEndpoint(t *testing.T) {
	https := "https"
	slice := func(typ discoveryv1.AddressType, port int32, ready bool, addrs ...string) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{
			AddressType: typ,
			Ports:       []discoveryv1.EndpointPort{{Name: &https, Port: ptrTo(port)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(ready)}}},
		}
	}
	for _, tc := range []struct {
		name   string
		slices []discoveryv1.EndpointSlice
		host   string
		port   int32
	}{
		{"one", []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, 6443, true, "172.18.0.3")}, "172.18.0.3", 6443},
		{"ipv6 skipped", []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv6, 6443, true, "fc00::3"), slice(discoveryv1.AddressTypeIPv4, 6443, true, "172.18.0.4")}, "172.18.0.4", 6443},
		{"not ready skipped", []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, 6443, false, "172.18.0.2"), slice(discoveryv1.AddressTypeIPv4, 6443, true, "172.18.0.5")}, "172.18.0.5", 6443},
		{"lowest first", []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, 6443, true, "172.18.0.9", "172.18.0.7")}, "172.18.0.7", 6443},
		{"none", nil, "", 0},
	} {
		host, port := pickAPIServerEndpoint(tc.slices)
		if host != tc.host || port != tc.port {
			t.Errorf("%s: got %s:%d, want %s:%d", tc.name, host, port, tc.host, tc.port)
		}
	}
}

func TestNodesNotReady(t *testing.T) {
	node := func(name string, status corev1.ConditionStatus, msg string) corev1.Node {
		n := corev1.Node{}
		n.Name = name
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Message: msg}}
		return n
	}
	if got := nodesNotReady([]corev1.Node{node("a", corev1.ConditionTrue, "")}); got != "" {
		t.Errorf("all Ready: %q", got)
	}
	got := nodesNotReady([]corev1.Node{node("a", corev1.ConditionTrue, ""), node("b", corev1.ConditionFalse, "container runtime network not ready")})
	if !strings.Contains(got, "node b not Ready (container runtime network not ready)") || strings.Contains(got, "node a") {
		t.Errorf("got %q", got)
	}
	if got := nodesNotReady(nil); got != "no nodes registered" {
		t.Errorf("no nodes: %q", got)
	}
}
