package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netconform/netconform/pkg/dataplane/collect"
	"github.com/netconform/netconform/suites/internal/harness"
)

// snapshot is one look at the cluster: every node's rules and the spec
// namespace's Services and EndpointSlices, read one right after the other,
// so the rules are judged against the objects kube-proxy was last given.
type snapshot struct {
	ns    string
	nodes []*nodeRules
	// unproxied are nodes without a running kube-proxy pod: their rules
	// cannot be read, which is a finding of its own.
	unproxied []string
	services  []corev1.Service
	slices    []discoveryv1.EndpointSlice
}

// nodeRules is one node's rules as text, with its Node object.
type nodeRules struct {
	collect.Node
	obj *corev1.Node
	// ipvs is the node's /proc/net/ip_vs (ipvs mode only).
	ipvs string
}

func (s *snapshot) node(name string) *nodeRules {
	for _, n := range s.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// takeSnapshot reads every node's rules through its kube-proxy pod, then
// the namespace's objects.
func takeSnapshot(ctx context.Context, m proxyMode, ns string) (*snapshot, error) {
	rules, err := collect.Rules(ctx, env.Config, env.Client)
	if err != nil {
		return nil, err
	}
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	s := &snapshot{ns: ns}
	for _, n := range nodes.Items {
		if !slices.ContainsFunc(rules, func(r collect.Node) bool { return r.Name == n.Name }) {
			s.unproxied = append(s.unproxied, n.Name)
		}
	}
	for _, r := range rules {
		n := &nodeRules{Node: r}
		for i := range nodes.Items {
			if nodes.Items[i].Name == r.Name {
				n.obj = &nodes.Items[i]
			}
		}
		if n.obj == nil {
			return nil, fmt.Errorf("node %s has a kube-proxy pod but no Node object", r.Name)
		}
		if err := m.extra(ctx, n); err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
	}
	svcs, err := env.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Services in %s: %w", ns, err)
	}
	s.services = svcs.Items
	eps, err := env.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing EndpointSlices in %s: %w", ns, err)
	}
	s.slices = eps.Items
	return s, nil
}

// findings checks every node and returns what is wrong, node by node.
func (s *snapshot) findings(m proxyMode) ([]string, error) {
	var out []string
	for _, name := range s.unproxied {
		out = append(out, "node "+name+": no running kube-proxy pod (label k8s-app=kube-proxy in kube-system), so its rules cannot be read")
	}
	for _, n := range s.nodes {
		fs, err := m.check(n, s)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		for _, f := range fs {
			out = append(out, "node "+n.Name+": "+f)
		}
	}
	return out, nil
}

// converged waits (within harness.Converge) until every node's rules hold
// what the namespace's objects call for, and returns the snapshot that
// showed it. kube-proxy syncs a second or so after an EndpointSlice
// changes; the first snapshots of a fresh namespace may predate that.
//
// On failure the spec's report gets, per node, the part of its rules the
// namespace's Services use, and the evidence directory every node's full
// dumps as they were checked.
func converged(ctx context.Context, m proxyMode, ns string) *snapshot {
	var last *snapshot
	start := time.Now()
	attempts := 0
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() && last != nil {
			attachRules(m, last)
		}
	})
	Eventually(ctx, func(ctx context.Context) error {
		attempts++
		s, err := takeSnapshot(ctx, m, ns)
		if err != nil {
			return err
		}
		fs, err := s.findings(m)
		if err != nil {
			return err
		}
		last = s
		if len(fs) > 0 {
			return fmt.Errorf("%d finding(s):\n  %s", len(fs), strings.Join(fs, "\n  "))
		}
		return nil
	}).WithTimeout(harness.Converge).WithPolling(time.Second).Should(Succeed(), func() string {
		return fmt.Sprintf("kube-proxy (%s mode) rules on %d node(s) still differ from the Services and EndpointSlices of %s after %s (%d snapshots; the last one's findings follow)",
			m.name(), nodeCount(last), ns, harness.Converge, attempts)
	})
	AddReportEntry("rules converged", fmt.Sprintf("%s mode: every node's rules matched %s after %s (%d snapshots)", m.name(), ns, time.Since(start).Round(10*time.Millisecond), attempts))
	return last
}

func nodeCount(s *snapshot) int {
	if s == nil {
		return 0
	}
	return len(s.nodes)
}

// attachRules adds each node's relevant rules to the report and saves the
// full dumps under the evidence directory.
func attachRules(m proxyMode, s *snapshot) {
	dir := evidenceDir(s.ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		GinkgoWriter.Printf("evidence: %v\n", err)
	}
	var saved []string
	for _, n := range s.nodes {
		AddReportEntry("rules on "+n.Name+" ("+m.name()+", the namespace's part)", m.excerpt(n, s))
		for name, data := range m.dumps(n) {
			p := filepath.Join(dir, n.Name+"."+name)
			if err := os.WriteFile(p, []byte(data), 0o644); err == nil {
				saved = append(saved, p)
			}
		}
	}
	sort.Strings(saved)
	AddReportEntry("rules checked (full dumps)", strings.Join(saved, "\n"))
}

// evidenceDir is where harness.CollectEvidence puts a namespace's
// evidence; the rules this suite checked go beside it, under rules/.
func evidenceDir(ns string) string {
	base := os.Getenv(harness.ReportDirEnv)
	if base == "" {
		return filepath.Join(os.TempDir(), "netconform-evidence", ns, "rules")
	}
	return filepath.Join(base, "evidence", ns, "rules")
}

// podIPs maps the namespace's endpoint addresses to pod names, from the
// EndpointSlices (targetRef), as kube-proxy knows them.
func (s *snapshot) podIPs() map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, sl := range s.slices {
		for _, ep := range sl.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					out[ip.Unmap()] = ep.TargetRef.Name
				}
			}
		}
	}
	return out
}

// service returns the namespace's Service of that name from the snapshot.
func (s *snapshot) service(name string) *corev1.Service {
	for i := range s.services {
		if s.services[i].Name == name {
			return &s.services[i]
		}
	}
	Fail(fmt.Sprintf("Service %s/%s is not in the snapshot", s.ns, name))
	return nil
}
