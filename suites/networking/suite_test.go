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
