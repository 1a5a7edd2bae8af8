package addons

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func byKind(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("no %s among the objects", kind)
	return nil
}

func TestTraefikObjects(t *testing.T) {
	objs, err := TraefikObjects()
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].GetKind() != "Namespace" || objs[0].GetName() != TraefikNamespace {
		t.Errorf("first object is %s, want the namespace", describe(objs[0]))
	}

	dep := byKind(t, objs, "Deployment")
	if got := containers(t, dep); !slices.Equal(got, [][2]string{{"netconform.local/traefik:v3.6.12", "IfNotPresent"}}) {
		t.Errorf("containers = %v", got)
	}
	list, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := list[0].(map[string]any)
	args, _ := c["args"].([]any)
	for _, want := range []string{"--providers.kubernetesingress", "--entrypoints.web.address=:8000", "--ping",
		"--providers.kubernetesingress.ingressendpoint.publishedservice=traefik/traefik"} {
		if !slices.Contains(args, any(want)) {
			t.Errorf("args %v lack %s", args, want)
		}
	}

	svc := byKind(t, objs, "Service")
	if typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type"); typ != "LoadBalancer" {
		t.Errorf("Service type %q", typ)
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	p := ports[0].(map[string]any)
	if p["port"] != int64(80) || p["targetPort"] != "web" {
		t.Errorf("Service port %v → %v, want 80 → web", p["port"], p["targetPort"])
	}
	cports, _ := c["ports"].([]any)
	if cp := cports[0].(map[string]any); cp["name"] != "web" || cp["containerPort"] != int64(8000) {
		t.Errorf("container port %v", cp)
	}

	ic := byKind(t, objs, "IngressClass")
	if ic.GetName() != "traefik" || ic.GetAnnotations()["ingressclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("IngressClass %s, annotations %v", ic.GetName(), ic.GetAnnotations())
	}
	if ctl, _, _ := unstructured.NestedString(ic.Object, "spec", "controller"); ctl != "traefik.io/ingress-controller" {
		t.Errorf("IngressClass controller %q", ctl)
	}

	// Everything the Ingress provider reads, and the status it writes.
	role := byKind(t, objs, "ClusterRole")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	granted := map[string][]any{}
	for _, r := range rules {
		rm := r.(map[string]any)
		for _, res := range rm["resources"].([]any) {
			granted[res.(string)] = append(granted[res.(string)], rm["verbs"].([]any)...)
		}
	}
	for _, res := range []string{"services", "endpointslices", "secrets", "nodes", "ingresses", "ingressclasses"} {
		if !slices.Contains(granted[res], any("list")) || !slices.Contains(granted[res], any("watch")) {
			t.Errorf("%s: verbs %v, want list and watch", res, granted[res])
		}
	}
	if !slices.Contains(granted["ingresses/status"], any("update")) {
		t.Errorf("ingresses/status: verbs %v, want update", granted["ingresses/status"])
	}
	crb := byKind(t, objs, "ClusterRoleBinding")
	subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
	if s := subjects[0].(map[string]any); s["namespace"] != TraefikNamespace || s["name"] != "traefik" {
		t.Errorf("binding subject %v", s)
	}
}
