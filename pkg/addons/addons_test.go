package addons

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestByNameAndOrder(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"kube-router", "metallb", "traefik"}) {
		t.Fatalf("Names() = %v", got)
	}
	for _, n := range Names() {
		a, err := ByName(n)
		if err != nil || a.Name() != n {
			t.Errorf("ByName(%q) = %v, %v", n, a, err)
		}
	}
	if _, err := ByName("ingress-nginx"); err == nil || !strings.Contains(err.Error(), "metallb, traefik") {
		t.Errorf("ByName(unknown) error = %v", err)
	}
	as, err := InOrder([]string{"traefik", "metallb", "traefik"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, a.Name())
	}
	if !slices.Equal(got, []string{"metallb", "traefik"}) {
		t.Errorf("InOrder = %v, want MetalLB first, no duplicates", got)
	}
}

func TestArchiveName(t *testing.T) {
	if got := archiveName("netconform.local/metallb-speaker:v0.15.2"); got != "metallb-speaker-v0.15.2.tar" {
		t.Errorf("archiveName = %q", got)
	}
}

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "metallb.io", Resource: "ipaddresspools"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		// The webhook's pod not serving yet, or its CA not yet patched in.
		{apierrors.NewInternalError(errors.New(`failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io": connect: connection refused`)), true},
		{apierrors.NewServiceUnavailable("no endpoints"), true},
		{&meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "metallb.io", Kind: "IPAddressPool"}}, true},
		{fmt.Errorf("applying: %w", errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")), true},
		// The webhook said no, or the object is wrong: retrying cannot help.
		{apierrors.NewForbidden(gr, "netconform", errors.New("denied the request")), false},
		{apierrors.NewInvalid(schema.GroupKind{Group: "metallb.io", Kind: "IPAddressPool"}, "netconform", nil), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestPodProblem(t *testing.T) {
	p := &corev1.Pod{}
	p.Name = "speaker-x"
	p.Spec.NodeName = "kind-worker"
	p.Status.Phase = corev1.PodPending
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name:  "speaker",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "image not present"}},
	}, {
		Name:         "sidecar",
		RestartCount: 3,
		State:        corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: "Error", ExitCode: 1, Message: "open /etc/ml_secret_key: no such file\n"}},
	}}
	got := podProblem(p)
	for _, want := range []string{"pod speaker-x (node kind-worker, phase Pending)", "container speaker: waiting: ErrImageNeverPull (image not present)",
		"container sidecar: waiting: CrashLoopBackOff; last exit: Error, code 1 (open /etc/ml_secret_key: no such file); 3 restarts"} {
		if !strings.Contains(got, want) {
			t.Errorf("podProblem = %q\nlacks %q", got, want)
		}
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if got := podProblem(p); got != "" {
		t.Errorf("ready pod reported as %q", got)
	}
}
