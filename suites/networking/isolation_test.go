package networking

import (
	"io"
	"net"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/netconform/netconform/internal/outside"
	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/suites/internal/harness"
)

// On the offline hosts a packet a broken data plane lets escape (a
// ClusterIP routed to the default gateway) must not leave the machine,
// where a foreign server could answer it and make a broken cluster look
// healthy. netconform keeps the kind network's traffic on the host; these
// specs check it against a stand-in for the outside world that the host
// itself can reach.
var _ = Describe("kind network isolation", Label("isolation"), func() {
	var world *outside.World

	BeforeEach(func(ctx SpecContext) {
		if !env.Info.Isolated || env.Info.KindCluster == "" {
			Skip("the cluster's network was not isolated by netconform (a cluster from upstream images, or one brought with KUBECONFIG): nothing to check")
		}
		if os.Geteuid() != 0 {
			Skip("needs root on the cluster's host to create a network namespace standing for the outside world")
		}
		var err error
		world, err = outside.Start(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(world.Close)

		// Control: the host reaches it, so a failure below is the isolation.
		c, err := net.DialTimeout("tcp", world.Addr.String(), 3*time.Second)
		Expect(err).NotTo(HaveOccurred(), "the host itself cannot reach the outside-world server %s", world.Addr)
		got, _ := io.ReadAll(c)
		c.Close()
		Expect(string(got)).To(Equal(outside.Greeting))
	})

	It("drops a connection from a container on the kind network to an address beyond the host", func(ctx SpecContext) {
		res := harness.Connect(ctx, env.External(), probe.ConnectOptions{Addr: world.Addr.String(), Count: 3, Timeout: 2 * time.Second})
		Expect(res.Outcomes[probe.Connected]).To(BeZero(), "a container on the kind network connected to %s beyond the host: outcomes %v", world.Addr, res.Outcomes)
		Expect(res.Outcomes[probe.Timeout]).To(Equal(3), "dropped packets time out; outcomes %v", res.Outcomes)
	})

	It("drops a connection from a pod to an address beyond the host", func(ctx SpecContext) {
		ns := env.Namespace(ctx)
		env.Deploy(ctx, ns, fixtures.Client)
		res := harness.Connect(ctx, env.InPod(ns, fixtures.ClientPod), probe.ConnectOptions{Addr: world.Addr.String(), Count: 3, Timeout: 2 * time.Second})
		Expect(res.Outcomes[probe.Connected]).To(BeZero(), "a pod connected to %s beyond the host: outcomes %v", world.Addr, res.Outcomes)
		Expect(res.Outcomes[probe.Timeout]).To(Equal(3), "dropped packets time out; outcomes %v", res.Outcomes)
	})
})
