package harness

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/netconform/netconform/internal/run"
)

// RecordConntrack adds to the spec's report every node's connection
// tracking entries that match filter (conntrack(8) options, e.g. -p udp
// --sport 20001): what the data plane remembers of a flow, the evidence
// for stale-entry bugs. On a cluster whose nodes this host cannot exec
// into (not a kind cluster here), it records why there is none.
func (e *Env) RecordConntrack(ctx context.Context, what string, filter ...string) {
	if e.Info.KindCluster == "" || e.Info.Engine == "" {
		AddReportEntry("conntrack: "+what, "not read: the nodes are not containers of this host's engine")
		return
	}
	var b strings.Builder
	for _, n := range e.Nodes(ctx) {
		args := append([]string{"exec", n.Name, "conntrack", "-L"}, filter...)
		out, err := run.Command(e.Info.Engine, args...).Output(ctx)
		fmt.Fprintf(&b, "%s:\n", n.Name)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "  (conntrack -L %s: %v)\n", strings.Join(filter, " "), err)
		case strings.TrimSpace(string(out)) == "":
			fmt.Fprintf(&b, "  (no entry)\n")
		default:
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				fmt.Fprintf(&b, "  %s\n", line)
			}
		}
	}
	AddReportEntry("conntrack: "+what, b.String())
}
