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
// the namespace is deleted and its deletion awaited, so specs do not leak
// endpoints into each other's rules.
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
		e.deleteNamespace(ctx, name)
	}, NodeTimeout(3*time.Minute))
	return name
}

func (e *Env) deleteNamespace(ctx context.Context, name string) {
	err := e.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		GinkgoWriter.Printf("deleting namespace %s: %v\n", name, err)
		return
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := e.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	GinkgoWriter.Printf("namespace %s still terminating after 2m\n", name)
}
