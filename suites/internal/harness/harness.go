// Package harness is what every netconform suite shares, and no more: the
// cluster the run was given, a namespace per spec with its clean-up and
// failure evidence, deploying seed fixtures, and probe runners in a pod or
// on the node network. Specs stay declarative; the plumbing lives here and
// in pkg/.
package harness

import (
	"fmt"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/testbed"
)

// Env is the cluster a suite runs against.
type Env struct {
	Info      *testbed.Info
	Config    *rest.Config
	Client    kubernetes.Interface
	Resources *resources.Resources

	// deleting are the namespaces this process's specs left terminating
	// (see Namespace); the suite's end awaits them (AwaitDeletions).
	deleting []string
	// external is the current spec's resident external client (External).
	external *probe.Resident
}

// Budgets bound every wait; the figures are the convergence budget the
// README documents.
var (
	// Deploy bounds a fixture's rollout (pods scheduled, images present,
	// readiness probes passing, endpoints published).
	Deploy = 2 * time.Minute
	// Converge bounds the data plane catching up with an API change
	// (endpoints added or removed, policy switched).
	Converge = 30 * time.Second
)

// Load reads the testbed description named by NETCONFORM_TESTBED. Run
// through `make test-networking` (or `netconform run`) it is always set; a
// suite started by hand must be given one.
func Load() (*Env, error) {
	path := os.Getenv(testbed.EnvVar)
	if path == "" {
		return nil, fmt.Errorf("%s is not set: run the suites with `make test-networking` (or `go run ./cmd/netconform run`), which prepares the cluster and describes it to the suites", testbed.EnvVar)
	}
	info, err := testbed.Read(path)
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", info.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	res, err := resources.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Env{Info: info, Config: cfg, Client: cs, Resources: res}, nil
}

// MustLoad is Load for a suite's BeforeSuite: failing to load fails the suite.
func MustLoad() *Env {
	env, err := Load()
	if err != nil {
		Fail(err.Error())
	}
	return env
}
