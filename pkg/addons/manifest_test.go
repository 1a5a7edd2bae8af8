package addons

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// nativeLike has the shape of metallb-native.yaml where it matters here:
// a leading separator, CRDs, workloads giving only args, one pull policy
// set to Always and one left out. It is written for this test, not copied.
const nativeLike = `---
apiVersion: v1
kind: Namespace
metadata:
  name: metallb-system
---
# a comment-only document
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ipaddresspools.metallb.io
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: controller
  namespace: metallb-system
spec:
  template:
    spec:
      containers:
      - name: controller
        args: [--port=7472]
        image: quay.io/metallb/controller:v0.15.2
        imagePullPolicy: Always
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: speaker
  namespace: metallb-system
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: quay.io/metallb/speaker:v0.15.2
      containers:
      - name: speaker
        image: quay.io/metallb/speaker:v0.15.2
`

// containers returns (image, pull policy) of every container of a workload.
func containers(t *testing.T, o *unstructured.Unstructured) [][2]string {
	t.Helper()
	var out [][2]string
	for _, field := range []string{"initContainers", "containers"} {
		p := append(append([]string(nil), podSpecPath[o.GetKind()]...), field)
		list, _, err := unstructured.NestedSlice(o.Object, p...)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			cm := c.(map[string]any)
			img, _ := cm["image"].(string)
			pol, _ := cm["imagePullPolicy"].(string)
			out = append(out, [2]string{img, pol})
		}
	}
	return out
}

func TestRenderMetalLB(t *testing.T) {
	objs, err := renderMetalLB([]byte(nativeLike))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
	}
	if want := []string{"Namespace", "CustomResourceDefinition", "Deployment", "DaemonSet"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v (order kept, empty documents dropped)", kinds, want)
	}
	if got := ofKind(objs, "CustomResourceDefinition"); !slices.Equal(got, []string{"ipaddresspools.metallb.io"}) {
		t.Errorf("CRDs = %v", got)
	}
	ctl := [2]string{"netconform.local/metallb-controller:v0.15.2", "IfNotPresent"}
	spk := [2]string{"netconform.local/metallb-speaker:v0.15.2", "IfNotPresent"}
	if got := containers(t, objs[2]); !slices.Equal(got, [][2]string{ctl}) {
		t.Errorf("controller containers = %v", got)
	}
	if got := containers(t, objs[3]); !slices.Equal(got, [][2]string{spk, spk}) {
		t.Errorf("speaker containers = %v", got)
	}
}

func TestSetImagesRejectsForeignImages(t *testing.T) {
	objs, err := decodeManifest([]byte(strings.Replace(nativeLike, "quay.io/metallb/speaker:v0.15.2\n", "quay.io/frrouting/frr:9.1.0\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	err = setImages(objs, metallbImages())
	if err == nil || !strings.Contains(err.Error(), "quay.io/frrouting/frr:9.1.0") || !strings.Contains(err.Error(), "container init") {
		t.Fatalf("error = %v, want one naming the frr image and its container", err)
	}
}

func TestDecodeManifestRejectsNonObjects(t *testing.T) {
	if _, err := decodeManifest([]byte("foo: bar\n")); err == nil {
		t.Fatal("a document without apiVersion/kind/name was accepted")
	}
	if _, err := decodeManifest([]byte("kind: [\n")); err == nil {
		t.Fatal("broken YAML was accepted")
	}
}

func TestMetalLBPoolObjects(t *testing.T) {
	objs, err := MetalLBPoolObjects(netip.MustParsePrefix("172.18.0.0/16"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "IPAddressPool" || objs[1].GetKind() != "L2Advertisement" {
		t.Fatalf("objects = %v", objs)
	}
	for _, o := range objs {
		if o.GetNamespace() != MetalLBNamespace || o.GetName() != MetalLBPool || o.GetAPIVersion() != "metallb.io/v1beta1" {
			t.Errorf("%s: %s/%s %s", o.GetKind(), o.GetNamespace(), o.GetName(), o.GetAPIVersion())
		}
	}
	addrs, _, _ := unstructured.NestedStringSlice(objs[0].Object, "spec", "addresses")
	if !slices.Equal(addrs, []string{"172.18.255.200-172.18.255.250"}) {
		t.Errorf("addresses = %v", addrs)
	}
	pools, _, _ := unstructured.NestedStringSlice(objs[1].Object, "spec", "ipAddressPools")
	if !slices.Equal(pools, []string{MetalLBPool}) {
		t.Errorf("L2Advertisement pools = %v", pools)
	}
	if _, err := MetalLBPoolObjects(netip.Prefix{}, 0); err == nil {
		t.Error("no subnet was accepted")
	}
}
