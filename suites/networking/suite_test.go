// Package networking holds the behavioural specs of the Service data plane:
// what any correct proxy implementation must do, read from traffic alone
// (no rules are inspected here; that is suites/dataplane). One file per
// area: dns_test.go, balancing_test.go, nodeport_test.go, ...
package networking

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netconform/netconform/suites/internal/harness"
)

var env *harness.Env

func TestNetworking(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "networking")
}

var _ = harness.ConnectSuite(&env)

// longRunning marks the specs that take several times a typical spec's
// 10–15 s, mostly because they wait out refusals or drops on every node
// (no-endpoints lifecycles, internalTrafficPolicy, source ranges, the
// health-check and ETP Local source-IP specs; profile in
// docs/measurements.md). Ginkgo starts higher-priority specs first, so
// under --procs the short specs fill the other processes while these run,
// instead of one long spec starting last and holding up the whole suite.
var longRunning = SpecPriority(1)
