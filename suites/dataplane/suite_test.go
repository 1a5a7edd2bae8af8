// Package dataplane holds the rule specs: for the cluster's kube-proxy
// mode, the rules each node holds for the seed Services must be what the
// Services and EndpointSlices call for, and what a tracer predicts from
// those rules must be what traffic does. The behavioural specs, which read
// traffic alone, are in suites/networking.
package dataplane

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/suites/internal/harness"
)

var env *harness.Env

func TestDataplane(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "dataplane")
}

// The cluster is acquired once per run by `netconform run` and described in
// NETCONFORM_TESTBED; the first process checks it is healthy, every process
// then connects to it.
var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	e := harness.MustLoad()
	Expect(cluster.WaitReady(ctx, e.Config, 2*time.Minute)).To(Succeed(), "cluster %s is not healthy", e.Info.Kubeconfig)
	return nil
}, func(_ []byte) {
	env = harness.MustLoad()
}, NodeTimeout(3*time.Minute))
