package harness

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"sigs.k8s.io/e2e-framework/klient/k8s"

	"github.com/netconform/netconform/pkg/fixtures"
)

// Deploy renders a seed fixture into ns with the run's probe image, applies
// it and waits (within the Deploy budget) until its pods are ready and its
// Services have every endpoint. It fails the spec, saying what was not
// ready, when they do not.
func (e *Env) Deploy(ctx context.Context, ns string, name fixtures.Name, tweak ...func(*fixtures.Params)) []k8s.Object {
	p := fixtures.Params{Namespace: ns, Image: e.Info.ProbeImage}
	for _, t := range tweak {
		t(&p)
	}
	objs, err := fixtures.Render(name, p)
	if err != nil {
		Fail(fmt.Sprintf("rendering fixture %s: %v", name, err))
	}
	if err := fixtures.Apply(ctx, e.Resources, objs); err != nil {
		Fail(fmt.Sprintf("applying fixture %s in %s: %v", name, ns, err))
	}
	if err := fixtures.WaitReady(ctx, e.Resources, objs, Deploy); err != nil {
		Fail(fmt.Sprintf("fixture %s in %s not ready within %s: %v", name, ns, Deploy, err))
	}
	return objs
}
