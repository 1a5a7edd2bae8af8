package addons

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeMapper knows the kinds the tests apply; kinds in late become known
// only after a Reset, as a CRD's kinds do once discovery is refreshed.
type fakeMapper struct {
	m      *meta.DefaultRESTMapper
	late   map[schema.GroupKind]bool
	resets int
}

func newFakeMapper() *fakeMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "metallb.io", Version: "v1beta1", Kind: "IPAddressPool"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "metallb.io", Version: "v1beta1", Kind: "L2Advertisement"}, meta.RESTScopeNamespace)
	return &fakeMapper{m: m, late: map[schema.GroupKind]bool{{Group: "metallb.io", Kind: "IPAddressPool"}: true}}
}

func (f *fakeMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if f.late[gk] && f.resets == 0 {
		return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
	}
	return f.m.RESTMapping(gk, versions...)
}

func (f *fakeMapper) Reset() { f.resets++ }

func fastPolls(t *testing.T) {
	old := pollInterval
	pollInterval = 10 * time.Millisecond
	t.Cleanup(func() { pollInterval = old })
}

func TestApplyRetryingThroughWebhookStartup(t *testing.T) {
	fastPolls(t)
	dyn := dynfake.NewSimpleDynamicClient(runtime.NewScheme())
	var applied []string
	failures := 3
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		if p.GetResource().Resource == "ipaddresspools" && failures > 0 {
			failures--
			return true, nil, apierrors.NewInternalError(errors.New(`failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io": no endpoints available`))
		}
		applied = append(applied, p.GetResource().Resource+" "+p.GetNamespace()+"/"+p.GetName())
		return true, &unstructured.Unstructured{Object: map[string]any{}}, nil
	})
	mapper := newFakeMapper()
	k := &kube{dyn: dyn, mapper: mapper}
	pool, err := MetalLBPoolObjects(netip.MustParsePrefix("172.18.0.0/16"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.applyRetrying(context.Background(), pool, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{"ipaddresspools metallb-system/netconform", "l2advertisements metallb-system/netconform"}
	if strings.Join(applied, ",") != strings.Join(want, ",") {
		t.Errorf("applied %v, want %v", applied, want)
	}
	if failures != 0 || mapper.resets == 0 {
		t.Errorf("failures left %d, mapper resets %d", failures, mapper.resets)
	}
}

func TestApplyRetryingStopsOnRejection(t *testing.T) {
	fastPolls(t)
	dyn := dynfake.NewSimpleDynamicClient(runtime.NewScheme())
	calls := 0
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "metallb.io", Resource: "ipaddresspools"}, "netconform", errors.New("admission webhook denied the request: overlapping pool"))
	})
	k := &kube{dyn: dyn, mapper: newFakeMapper()}
	pool, _ := MetalLBPoolObjects(netip.MustParsePrefix("172.18.0.0/16"), 0)
	err := k.applyRetrying(context.Background(), pool, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "overlapping pool") || calls != 1 {
		t.Fatalf("err = %v after %d calls, want the rejection after one", err, calls)
	}
}

func TestApplyClusterScoped(t *testing.T) {
	dyn := dynfake.NewSimpleDynamicClient(runtime.NewScheme())
	var ns []string
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ns = append(ns, a.GetNamespace())
		if pa := a.(k8stesting.PatchAction); pa.GetPatchType() != "application/apply-patch+yaml" {
			t.Errorf("patch type %s, want server-side apply", pa.GetPatchType())
		}
		return true, &unstructured.Unstructured{Object: map[string]any{}}, nil
	})
	k := &kube{dyn: dyn, mapper: newFakeMapper()}
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "traefik", "namespace": "ignored"}}}
	if err := k.apply(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0] != "" {
		t.Errorf("a cluster-scoped object was applied in namespace %q", ns)
	}
}

func TestWaitEstablished(t *testing.T) {
	fastPolls(t)
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "ipaddresspools.metallb.io"},
		"status": map[string]any{"conditions": []any{
			map[string]any{"type": "NamesAccepted", "status": "True"},
			map[string]any{"type": "Established", "status": "True"},
		}},
	}}
	pending := crd.DeepCopy()
	pending.SetName("l2advertisements.metallb.io")
	unstructured.SetNestedSlice(pending.Object, []any{map[string]any{"type": "Established", "status": "False", "message": "not all names are accepted"}}, "status", "conditions")
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{crdResource: "CustomResourceDefinitionList"}, crd, pending)
	k := &kube{dyn: dyn}
	if err := k.waitEstablished(context.Background(), []string{"ipaddresspools.metallb.io"}, time.Second); err != nil {
		t.Fatal(err)
	}
	err := k.waitEstablished(context.Background(), []string{"l2advertisements.metallb.io"}, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not all names are accepted") {
		t.Fatalf("err = %v, want the condition's message", err)
	}
}

func TestWaitWorkloadsExplains(t *testing.T) {
	fastPolls(t)
	labels := map[string]string{"component": "speaker"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "speaker", Namespace: "metallb-system"},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}},
		Status:     appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, NumberReady: 1, UpdatedNumberScheduled: 2},
	}
	ready := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "speaker-a", Namespace: "metallb-system", Labels: labels},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	stuck := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "speaker-b", Namespace: "metallb-system", Labels: labels},
		Spec: corev1.PodSpec{NodeName: "kind-worker2"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "speaker",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull"}}}}}}
	k := &kube{cs: fake.NewClientset(ds, ready, stuck)}
	err := k.waitWorkloads(context.Background(), 100*time.Millisecond, workload{Kind: "DaemonSet", Namespace: "metallb-system", Name: "speaker"})
	if err == nil {
		t.Fatal("a DaemonSet with 1 of 2 pods ready counted as ready")
	}
	for _, want := range []string{"DaemonSet metallb-system/speaker", "1/2 pods ready", "pod speaker-b (node kind-worker2, phase Pending)", "ErrImageNeverPull"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "speaker-a") {
		t.Errorf("error lists the ready pod:\n%v", err)
	}

	ds.Status.NumberReady = 2
	k = &kube{cs: fake.NewClientset(ds)}
	if err := k.waitWorkloads(context.Background(), time.Second, workload{Kind: "DaemonSet", Namespace: "metallb-system", Name: "speaker"}); err != nil {
		t.Fatal(err)
	}
}
