package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/netconform/netconform/internal/run"
)

// ReportDirEnv names the run's report directory; evidence goes under it.
const ReportDirEnv = "NETCONFORM_REPORT_DIR"

// CollectEvidence saves what a failing spec leaves behind: the namespace's
// Services, EndpointSlices, Pods (where they ran, their IPs) and events, and
// each node's rules (iptables-save and nft list ruleset) and connection
// tracking table (conntrack -L) when the nodes are
// reachable through the engine. The file paths go into the report.
func (e *Env) CollectEvidence(ctx context.Context, ns string) {
	dir := filepath.Join(os.Getenv(ReportDirEnv), "evidence", ns)
	if os.Getenv(ReportDirEnv) == "" {
		dir = filepath.Join(os.TempDir(), "netconform-evidence", ns)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		GinkgoWriter.Printf("evidence: %v\n", err)
		return
	}
	save := func(name string, obj any, err error) {
		if err != nil {
			_ = os.WriteFile(filepath.Join(dir, name), []byte(err.Error()), 0o644)
			return
		}
		data, _ := yaml.Marshal(obj)
		_ = os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	svcs, err := e.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	save("services.yaml", svcs, err)
	slices, err := e.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
	save("endpointslices.yaml", slices, err)
	pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	save("pods.yaml", pods, err)
	events, err := e.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	save("events.yaml", events, err)
	nodes, err := e.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	save("nodes.yaml", nodes, err)

	var summary bytes.Buffer
	if err == nil && pods != nil {
		fmt.Fprintf(&summary, "pods in %s:\n", ns)
		for _, p := range pods.Items {
			fmt.Fprintf(&summary, "  %s on %s ip %s phase %s\n", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.Phase)
		}
	}
	if e.Info.KindCluster != "" && nodes != nil {
		for _, n := range nodes.Items {
			for _, dump := range [][]string{{"iptables-save"}, {"nft", "list", "ruleset"}, {"conntrack", "-L"}} {
				args := append([]string{"exec", n.Name}, dump...)
				out, err := run.Command(e.Info.Engine, args...).Output(ctx)
				name := fmt.Sprintf("%s.%s.txt", n.Name, strings.ReplaceAll(dump[0], "-", ""))
				if err != nil {
					out = []byte(err.Error())
				}
				_ = os.WriteFile(filepath.Join(dir, name), out, 0o644)
			}
		}
		fmt.Fprintf(&summary, "node rules (iptables-save, nft list ruleset) and connection tracking (conntrack -L) saved per node\n")
	}
	fmt.Fprintf(&summary, "evidence: %s\n", dir)
	AddReportEntry("evidence", summary.String())
}
