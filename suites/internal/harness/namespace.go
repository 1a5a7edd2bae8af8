package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netconform/netconform/pkg/testbed"
)

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace for the current spec and registers its
// clean-up: on failure, evidence is collected first (see Evidence); then
// the namespace is deleted.
//
// A Serial spec first deletes the namespace's Services and awaits them and
// their EndpointSlices: Serial specs read every node's whole rule dump and
// count a read only when two agree, so the previous spec's Services must
// be out of the rules before the next one starts (its pods, terminating,
// are in no rule). Other specs run beside each other anyway, each against
// its own Services. Either way the namespace is left terminating (about
// 10 s, a third of a short spec) and the suite's end awaits them all
// (AwaitDeletions): the run leaves nothing behind.
func (e *Env) Namespace(ctx context.Context) string {
	slug := nonName.ReplaceAllString(strings.ToLower(CurrentSpecReport().LeafNodeText), "-")
	slug = strings.Trim(slug, "-")
	if len(slug) > 30 {
		slug = strings.Trim(slug[:30], "-")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("nc-%s-%s", slug, hex.EncodeToString(b))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{testbed.SpecNamespaceLabel: "true"}}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		Fail(fmt.Sprintf("creating namespace %s: %v", name, err))
	}
	DeferCleanup(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			e.CollectEvidence(ctx, name)
		}
		if CurrentSpecReport().IsSerial {
			e.deleteServices(ctx, name, time.Minute)
		}
		if e.deleteNamespace(ctx, name) {
			e.deleting = append(e.deleting, name)
		}
	}, NodeTimeout(3*time.Minute))
	return name
}

// deleteServices deletes the Services of namespace ns and waits, within
// budget, until they and their EndpointSlices are gone.
func (e *Env) deleteServices(ctx context.Context, ns string, budget time.Duration) {
	svcs, err := e.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		GinkgoWriter.Printf("listing Services of %s: %v\n", ns, err)
		return
	}
	for _, s := range svcs.Items {
		if err := e.Client.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			GinkgoWriter.Printf("deleting Service %s/%s: %v\n", ns, s.Name, err)
		}
	}
	err = pollUntil(ctx, budget, func(ctx context.Context) (bool, error) {
		svcs, err := e.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		slices, err := e.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		return len(svcs.Items) == 0 && len(slices.Items) == 0, nil
	})
	if err != nil {
		GinkgoWriter.Printf("Services or EndpointSlices of %s still there after %s: %v\n", ns, budget, err)
	}
}

// AwaitDeletions waits until the namespaces this process's specs left
// terminating are gone; suites call it from AfterSuite (ConnectSuite does).
func (e *Env) AwaitDeletions(ctx context.Context, budget time.Duration) {
	e.awaitGone(ctx, e.deleting, budget)
	e.deleting = nil
}

// deleteNamespace starts the deletion; false when it could not.
func (e *Env) deleteNamespace(ctx context.Context, name string) bool {
	err := e.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		GinkgoWriter.Printf("deleting namespace %s: %v\n", name, err)
		return false
	}
	return true
}

// awaitGone polls until every namespace of names is gone, or budget ends
// (then it says which are left: a namespace stuck terminating is worth a
// look, but not a failed spec).
func (e *Env) awaitGone(ctx context.Context, names []string, budget time.Duration) {
	deadline := time.Now().Add(budget)
	for len(names) > 0 {
		var left []string
		for _, name := range names {
			if _, err := e.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				left = append(left, name)
			}
		}
		names = left
		if len(names) == 0 {
			return
		}
		if time.Now().After(deadline) {
			GinkgoWriter.Printf("namespaces still terminating after %s: %v\n", budget, names)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
