// Package dataplane holds the rule specs: for the cluster's kube-proxy
// mode, the rules each node holds for the seed Services must be what the
// Services and EndpointSlices call for, and what a tracer predicts from
// those rules must be what traffic does. The behavioural specs, which read
// traffic alone, are in suites/networking.
package dataplane

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netconform/netconform/suites/internal/harness"
)

var env *harness.Env

func TestDataplane(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "dataplane")
}

var _ = harness.ConnectSuite(&env)
