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
)

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace for the current spec and registers its
// clean-up: on failure, evidence is collected first (see Evidence); then
// the namespace is deleted.
//
// A Serial spec awaits the deletion: Serial specs read every node's whole
// rule dump and count a read only when two agree, so the previous spec's
// endpoints must be gone before the next one starts. Other specs run
// beside each other anyway, each against its own Services, so theirs is
// left terminating (about 10 s a namespace, a third of a short spec) and
// the suite's end awaits them all (AwaitDeletions): the run leaves nothing
// behind.
func (e *Env) Namespace(ctx context.Context) string {
	slug := nonName.ReplaceAllString(strings.ToLower(CurrentSpecReport().LeafNodeText), "-")
	slug = strings.Trim(slug, "-")
	if len(slug) > 30 {
		slug = strings.Trim(slug[:30], "-")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("nc-%s-%s", slug, hex.EncodeToString(b))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"netconform.io/spec": "true"}}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		Fail(fmt.Sprintf("creating namespace %s: %v", name, err))
	}
	DeferCleanup(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			e.CollectEvidence(ctx, name)
		}
		if !e.deleteNamespace(ctx, name) {
			return
		}
		if CurrentSpecReport().IsSerial {
			e.awaitGone(ctx, []string{name}, 2*time.Minute)
			return
		}
		e.deleting = append(e.deleting, name)
	}, NodeTimeout(3*time.Minute))
	return name
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
