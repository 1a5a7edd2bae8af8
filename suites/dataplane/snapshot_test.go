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

	. "github.com/onsi/ginkgo/v2"
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

// nodeRules is one node's rules as text (in ipvs mode with its
// /proc/net/ip_vs), with its Node object.
type nodeRules struct {
	collect.Node
	obj *corev1.Node
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

// rulesRead is one probe of the rules: a snapshot that counts only when
// two consecutive reads of every node's rules agree (collect.Compare: the
// same rules once counters, handles and timestamps are set aside), so
// that a verdict rests on a state the proxy holds, not on one caught in
// the middle of a change or one it flips in and out of. Unstable lists
// where the two reads differed; Findings is what the checks found in the
// second read.
type rulesRead struct {
	Unstable []string
	Findings []string
	s        *snapshot
}

// readTwice is the probe behind every verdict of this suite on the rules:
// two snapshots, one right after the other, compared node by node; with
// check set, the second one checked against the namespace's objects.
// latest, when not nil, is kept pointing at the newest snapshot read, for
// the evidence.
func readTwice(m proxyMode, ns string, check bool, latest **snapshot) harness.Probe[rulesRead] {
	return func(ctx context.Context) (rulesRead, error) {
		first, err := takeSnapshot(ctx, m, ns)
		if err != nil {
			return rulesRead{}, err
		}
		second, err := takeSnapshot(ctx, m, ns)
		if err != nil {
			return rulesRead{}, err
		}
		if latest != nil {
			*latest = second
		}
		r := rulesRead{s: second}
		if len(first.nodes) != len(second.nodes) || !slices.Equal(first.unproxied, second.unproxied) {
			r.Unstable = append(r.Unstable, fmt.Sprintf("nodes read: %s, then %s", nodeNames(first), nodeNames(second)))
		} else {
			for i := range first.nodes {
				d, err := collect.Compare(first.nodes[i].Node, second.nodes[i].Node)
				if err != nil {
					return r, err
				}
				for _, line := range d {
					r.Unstable = append(r.Unstable, "node "+first.nodes[i].Name+": "+line)
				}
			}
		}
		if check {
			if r.Findings, err = second.findings(m); err != nil {
				return r, err
			}
		}
		return r, nil
	}
}

// agreed says why a read does not count: its two reads differed.
func agreed(r rulesRead) error {
	if len(r.Unstable) > 0 {
		return fmt.Errorf("two consecutive reads of the rules differ:\n  %s", strings.Join(r.Unstable, "\n  "))
	}
	return nil
}

func nodeNames(s *snapshot) string {
	var names []string
	for _, n := range s.nodes {
		names = append(names, n.Name)
	}
	return fmt.Sprintf("%v (without kube-proxy: %v)", names, s.unproxied)
}

// stableSnapshot waits (within harness.Converge) for a read of the rules
// that counts (readTwice), confirms it with a second such read, and
// returns the latter: the rules a node-wide check judges.
func stableSnapshot(ctx context.Context, m proxyMode, ns string) *snapshot {
	st := harness.Settle(ctx, fmt.Sprintf("kube-proxy (%s mode) rules on every node read the same twice in a row", m.name()), harness.Converge,
		readTwice(m, ns, false, nil), agreed, harness.Again[rulesRead]())
	return st.Confirmed().s
}

// converged waits (within harness.Converge) until every node's rules hold
// what the namespace's objects call for, in a read that counts
// (readTwice), and confirms it with one more such read, which it returns.
// kube-proxy syncs a second or so after an EndpointSlice changes; the
// first snapshots of a fresh namespace may predate that.
//
// On failure the spec's report gets, per node, the part of its rules the
// namespace's Services use, and the evidence directory every node's full
// dumps as they were checked.
func converged(ctx context.Context, m proxyMode, ns string) *snapshot {
	var last *snapshot
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() && last != nil {
			attachRules(m, last)
		}
	})
	st := harness.Settle(ctx, fmt.Sprintf("kube-proxy (%s mode) rules on every node match the Services and EndpointSlices of %s", m.name(), ns), harness.Converge,
		readTwice(m, ns, true, &last), func(r rulesRead) error {
			if err := agreed(r); err != nil {
				return err
			}
			if len(r.Findings) > 0 {
				return fmt.Errorf("on %d node(s), %d finding(s):\n  %s", nodeCount(r.s), len(r.Findings), strings.Join(r.Findings, "\n  "))
			}
			return nil
		}, harness.Again[rulesRead]())
	return st.Confirmed().s
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
