// Package networking holds the behavioural specs of the Service data plane:
// what any correct proxy implementation must do, read from traffic alone
// (no rules are inspected here; that is suites/dataplane). One file per
// area: dns_test.go, balancing_test.go, nodeport_test.go, ...
package networking

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/suites/internal/harness"
)

var env *harness.Env

func TestNetworking(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "networking")
}

// The cluster is acquired once per run by `netconform run` (created from
// CLUSTER_CONFIG or taken from KUBECONFIG) and described in
// NETCONFORM_TESTBED; the first process checks it is healthy, every process
// then connects to it.
var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	e := harness.MustLoad()
	Expect(cluster.WaitReady(ctx, e.Config, 2*time.Minute)).To(Succeed(), "cluster %s is not healthy", e.Info.Kubeconfig)
	return nil
}, func(_ []byte) {
	env = harness.MustLoad()
}, NodeTimeout(3*time.Minute))
