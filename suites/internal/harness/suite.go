package harness

import (
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/pkg/testbed"
)

// ConnectSuite registers a suite's SynchronizedBeforeSuite: the cluster is
// acquired once per run by `netconform run` (created from CLUSTER_CONFIG or
// taken from KUBECONFIG) and described in NETCONFORM_TESTBED; the first
// process checks it is healthy, then every process connects to it and
// stores the Env in *env. Use it as `var _ = harness.ConnectSuite(&env)`.
// It also registers the AfterSuite that awaits the deletion of the
// namespaces each process's specs left terminating (Env.Namespace).
func ConnectSuite(env **Env) bool {
	AfterSuite(func(ctx SpecContext) {
		switch {
		case *env == nil:
		case os.Getenv(testbed.LeaveNamespacesEnv) == "1":
			GinkgoWriter.Printf("%s=1: leaving %d namespaces terminating to the caller\n", testbed.LeaveNamespacesEnv, len((*env).deleting))
		default:
			(*env).AwaitDeletions(ctx, 3*time.Minute)
		}
	}, NodeTimeout(4*time.Minute))
	return SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		e := MustLoad()
		Expect(cluster.WaitReady(ctx, e.Config, 2*time.Minute)).To(Succeed(), "cluster %s is not healthy", e.Info.Kubeconfig)
		return nil
	}, func(_ []byte) {
		*env = MustLoad()
	}, NodeTimeout(3*time.Minute))
}
