package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	dp "github.com/netconform/netconform/pkg/dataplane"
	"github.com/netconform/netconform/pkg/dataplane/collect"
	"github.com/netconform/netconform/pkg/dataplane/iptables"
	"github.com/netconform/netconform/pkg/dataplane/ipvs"
	"github.com/netconform/netconform/pkg/dataplane/nftables"
	"github.com/netconform/netconform/pkg/probe/kube"
	"github.com/netconform/netconform/pkg/testbed"
)

// proxyMode is what the specs need from the rules of one kube-proxy mode.
type proxyMode interface {
	name() string
	// extra reads what the mode needs beyond collect.Rules.
	extra(ctx context.Context, n *nodeRules) error
	// check returns what differs on one node from what the namespace's
	// Services and EndpointSlices call for.
	check(n *nodeRules, s *snapshot) ([]string, error)
	// excerpt is the part of a node's rules the namespace's Services use.
	excerpt(n *nodeRules, s *snapshot) string
	// dumps are the node's full rules, by file name suffix.
	dumps(n *nodeRules) map[string]string
	tracer(n *nodeRules) (dp.Tracer, error)
	// forwardBypass lists what on the node lets a new forwarded
	// connection skip kube-proxy's filter rules (its REJECT for Services
	// without endpoints, its DROP for internalTrafficPolicy Local), with
	// the rules the verdict rests on.
	forwardBypass(n *nodeRules) (findings []string, evidence string, err error)
	// predictsMasquerade says whether the tracer's Masquerade is a
	// prediction (the ipvs reader does not model it).
	predictsMasquerade() bool
}

// kubeProxyConfig is the part of kube-proxy's configuration (the kubeadm
// ConfigMap kube-system/kube-proxy) that decides rules the API objects do
// not.
type kubeProxyConfig struct {
	Mode            string `json:"mode"`
	ClusterCIDR     string `json:"clusterCIDR"`
	DetectLocalMode string `json:"detectLocalMode"`
	IPVS            struct {
		Scheduler string `json:"scheduler"`
	} `json:"ipvs"`
}

// readKubeProxyConfig reads kube-system/kube-proxy's config.conf; a cluster
// without it (kube-proxy configured by flags) gets the zero value, and the
// checks that need the cluster CIDR are left out.
func readKubeProxyConfig(ctx context.Context) (kubeProxyConfig, string) {
	var c kubeProxyConfig
	cm, err := env.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return c, fmt.Sprintf("no kube-proxy ConfigMap (%v): cluster-CIDR masquerade rules not checked", err)
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.conf"]), &c); err != nil {
		return c, fmt.Sprintf("kube-proxy ConfigMap config.conf unreadable (%v): cluster-CIDR masquerade rules not checked", err)
	}
	return c, fmt.Sprintf("kube-proxy configuration: mode %q, clusterCIDR %q, detectLocalMode %q, ipvs scheduler %q", c.Mode, c.ClusterCIDR, c.DetectLocalMode, c.IPVS.Scheduler)
}

// clusterCIDRs are the prefixes kube-proxy's local-traffic detector uses,
// when it detects by cluster CIDR (the default).
func (c kubeProxyConfig) clusterCIDRs() []netip.Prefix {
	if c.DetectLocalMode != "" && c.DetectLocalMode != "ClusterCIDR" {
		return nil
	}
	var out []netip.Prefix
	for _, s := range strings.Split(c.ClusterCIDR, ",") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// currentMode picks the rule reader for the cluster's proxy mode, or skips
// the spec saying why none applies.
func currentMode(ctx context.Context) proxyMode {
	mode := env.Info.ProxyMode
	if mode == "" {
		mode = testbed.DetectProxyMode(ctx, env.Client)
	}
	cfg, about := readKubeProxyConfig(ctx)
	AddReportEntry("proxy mode", fmt.Sprintf("testbed says %q; %s", mode, about))
	switch mode {
	case "iptables":
		opts := iptables.Options{}
		for _, p := range cfg.clusterCIDRs() {
			if p.Addr().Is4() {
				opts.ClusterCIDR = p
			}
		}
		return &iptablesMode{opts: opts}
	case "nftables":
		return &nftablesMode{cidrs: cfg.clusterCIDRs()}
	case "ipvs":
		requireIPVS(ctx)
		return &ipvsMode{opts: ipvs.Options{Scheduler: cfg.IPVS.Scheduler}}
	case "":
		Skip("the cluster has no kube-proxy configuration (no kube-system/kube-proxy ConfigMap): its service proxy is not kube-proxy, whose rules these specs read")
	}
	Skip(fmt.Sprintf("kube-proxy runs in %q mode; netconform reads the rules of the iptables, nftables and ipvs modes only", mode))
	return nil
}

// requireIPVS skips the spec when kube-proxy is set to ipvs mode on nodes
// whose kernel has no IPVS (such as this project's CI hosts): then there is
// no table to read. It fails when kube-proxy is not running for another
// reason.
func requireIPVS(ctx context.Context) {
	pods, err := env.Client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
	if err != nil {
		Fail(fmt.Sprintf("listing kube-proxy pods: %v", err))
	}
	if len(pods.Items) == 0 {
		Fail("kube-proxy is configured for ipvs mode but no kube-proxy pod exists (label k8s-app=kube-proxy in kube-system)")
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || !containerRunning(&p) {
			if line := ipvsComplaint(ctx, &p); line != "" {
				Skip(fmt.Sprintf("kube-proxy is configured for ipvs mode but cannot run on node %s, whose kernel lacks IPVS (pod %s logs: %q); the ipvs checks need nodes with the ip_vs module", p.Spec.NodeName, p.Name, line))
			}
			Fail(fmt.Sprintf("kube-proxy pod %s on node %s is not running (phase %s) and its logs do not blame IPVS", p.Name, p.Spec.NodeName, p.Status.Phase))
		}
		r, err := kube.NewPodExec(env.Config, "kube-system", p.Name, "kube-proxy")
		if err != nil {
			Fail(err.Error())
		}
		r.Command = []string{"sh", "-c", "test -e /proc/net/ip_vs && echo present || echo missing"}
		out, err := r.Run(ctx, nil)
		if err != nil {
			Fail(fmt.Sprintf("checking for /proc/net/ip_vs in %s: %v", r, err))
		}
		if strings.TrimSpace(string(out)) != "present" {
			Skip(fmt.Sprintf("kube-proxy is configured for ipvs mode but node %s has no IPVS (/proc/net/ip_vs is missing in its network namespace: the kernel has no ip_vs); the ipvs checks need nodes with the ip_vs module", p.Spec.NodeName))
		}
	}
}

func containerRunning(p *corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == "kube-proxy" {
			return c.State.Running != nil
		}
	}
	return false
}

var ipvsWords = regexp.MustCompile(`(?i)ipvs|ip_vs`)

// ipvsComplaint returns the first line of a kube-proxy pod's logs (its
// last run's, then the current one's) that mentions IPVS.
func ipvsComplaint(ctx context.Context, p *corev1.Pod) string {
	tail := int64(200)
	for _, previous := range []bool{true, false} {
		b, err := env.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "kube-proxy", Previous: previous, TailLines: &tail}).DoRaw(ctx)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if ipvsWords.MatchString(l) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

// --- iptables ---

type iptablesMode struct{ opts iptables.Options }

func (*iptablesMode) name() string                            { return "iptables" }
func (*iptablesMode) extra(context.Context, *nodeRules) error { return nil }
func (*iptablesMode) predictsMasquerade() bool                { return true }
func (*iptablesMode) dumps(n *nodeRules) map[string]string {
	return map[string]string{"iptables-save.txt": n.IPTablesSave}
}

func (m *iptablesMode) parse(n *nodeRules) (*iptables.Ruleset, error) {
	rs, err := iptables.ParseString(n.IPTablesSave)
	if err != nil {
		return nil, fmt.Errorf("parsing iptables-save: %w", err)
	}
	return rs, nil
}

// check runs the node-wide checks and each of the namespace's Service
// ports' checks. Cluster-wide stale-chain checks are left out: other
// namespaces' Services change while a spec runs.
func (m *iptablesMode) check(n *nodeRules, s *snapshot) ([]string, error) {
	rs, err := m.parse(n)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range iptables.CheckNode(rs) {
		if f.Check == iptables.CheckForwardOrder {
			continue // a spec of its own, so a CNI's accepts are reported apart from kube-proxy's rules
		}
		out = append(out, "["+f.Check+"] "+f.Message)
	}
	for i := range s.services {
		exps, err := iptables.Expect(&s.services[i], s.slices, n.obj, m.opts)
		if err != nil {
			return nil, err
		}
		for j := range exps {
			for _, f := range exps[j].Check(rs, m.opts) {
				out = append(out, "["+f.Check+"] "+f.Message)
			}
		}
	}
	return out, nil
}

// excerpt keeps the iptables-save lines of the namespace's chains (the
// expected ones, and any whose comment names the namespace) and the
// builtin chains' jumps into kube-proxy's, under their table headers.
func (m *iptablesMode) excerpt(n *nodeRules, s *snapshot) string {
	chains := map[string]bool{"KUBE-MARK-MASQ": true, "KUBE-POSTROUTING": true, "KUBE-FORWARD": true}
	for i := range s.services {
		exps, err := iptables.Expect(&s.services[i], s.slices, n.obj, m.opts)
		if err != nil {
			continue
		}
		for _, e := range exps {
			for _, c := range e.Chains() {
				chains[c] = true
			}
		}
	}
	builtin := map[string]bool{"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true}
	var b strings.Builder
	for _, l := range strings.Split(n.IPTablesSave, "\n") {
		f := strings.Fields(l)
		keep := false
		switch {
		case strings.HasPrefix(l, "*"):
			keep = true
		case strings.HasPrefix(l, ":") && len(f) > 0:
			keep = chains[strings.TrimPrefix(f[0], ":")]
		case strings.HasPrefix(l, "-A ") && len(f) > 1:
			keep = chains[f[1]] || strings.Contains(l, s.ns+"/") ||
				(builtin[f[1]] && strings.Contains(l, "-j KUBE-"))
		}
		if keep {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (m *iptablesMode) tracer(n *nodeRules) (dp.Tracer, error) {
	rs, err := m.parse(n)
	if err != nil {
		return nil, err
	}
	return iptables.NewTracer(rs, n.NodeIPs), nil
}

// --- nftables ---

type nftablesMode struct{ cidrs []netip.Prefix }

func (*nftablesMode) name() string                            { return "nftables" }
func (*nftablesMode) extra(context.Context, *nodeRules) error { return nil }
func (*nftablesMode) predictsMasquerade() bool                { return true }
func (*nftablesMode) dumps(n *nodeRules) map[string]string {
	return map[string]string{"nft-ruleset.json": n.NFTJSON, "iptables-save.txt": n.IPTablesSave}
}

func (m *nftablesMode) parse(n *nodeRules) (*nftables.Ruleset, error) {
	rs, err := nftables.ParseJSON(strings.NewReader(n.NFTJSON))
	if err != nil {
		return nil, fmt.Errorf("parsing nft -j list ruleset: %w", err)
	}
	return rs, nil
}

// check runs nftables.Check with the namespace's objects only, and drops
// its "unexpected element" findings: those are every other namespace's
// Services, which come and go while the spec runs.
func (m *nftablesMode) check(n *nodeRules, s *snapshot) ([]string, error) {
	rs, err := m.parse(n)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range nftables.Check(rs, nftables.Cluster{Node: n.obj, Services: s.services, EndpointSlices: s.slices, ClusterCIDRs: m.cidrs}) {
		if f.Check == nftables.CheckUnexpected {
			continue
		}
		out = append(out, f.String())
	}
	if tb := rs.Table("ip", nftables.KubeProxyTable); len(out) > 0 && tb != nil {
		out = append(out, fmt.Sprintf("note: the ip kube-proxy table was checked as kube-proxy %s's layout", nftables.DetectLayout(tb)))
	}
	return out, nil
}

// excerpt lists, from the kube-proxy tables, the chains named after the
// namespace's Services and the map elements whose comment names them.
func (m *nftablesMode) excerpt(n *nodeRules, s *snapshot) string {
	rs, err := m.parse(n)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, tb := range rs.Tables {
		if tb.Name != nftables.KubeProxyTable {
			continue
		}
		fmt.Fprintf(&b, "table %s {\n", tb)
		for _, set := range tb.Sets {
			var els []string
			for _, el := range set.Elements {
				if strings.HasPrefix(el.Comment, s.ns+"/") {
					els = append(els, "\t\t"+el.String())
				}
			}
			if len(els) > 0 {
				fmt.Fprintf(&b, "\tmap %s { # the namespace's elements\n%s\n\t}\n", set.Name, strings.Join(els, "\n"))
			}
		}
		for _, c := range tb.Chains {
			if !strings.Contains(c.Name, "-"+s.ns+"/") {
				continue
			}
			fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
			for _, r := range c.Rules {
				fmt.Fprintf(&b, "\t\t%s\n", r)
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func (m *nftablesMode) tracer(n *nodeRules) (dp.Tracer, error) {
	rs, err := m.parse(n)
	if err != nil {
		return nil, err
	}
	return nftables.NewTracer(rs, n.NodeIPs), nil
}

// --- ipvs ---

type ipvsMode struct{ opts ipvs.Options }

func (*ipvsMode) name() string             { return "ipvs" }
func (*ipvsMode) predictsMasquerade() bool { return false }
func (*ipvsMode) dumps(n *nodeRules) map[string]string {
	return map[string]string{"proc-net-ip_vs.txt": n.IPVS, "iptables-save.txt": n.IPTablesSave}
}

// extra reads /proc/net/ip_vs through the node's kube-proxy pod: kube-proxy
// images carry no ipvsadm, and the kernel's listing says the same.
func (*ipvsMode) extra(ctx context.Context, n *nodeRules) error {
	pods, err := collect.KubeProxyPods(ctx, env.Client)
	if err != nil {
		return err
	}
	r, err := kube.NewPodExec(env.Config, "kube-system", pods[n.Name], "kube-proxy")
	if err != nil {
		return err
	}
	r.Command = []string{"cat", "/proc/net/ip_vs"}
	out, err := r.Run(ctx, nil)
	if err != nil {
		return fmt.Errorf("reading /proc/net/ip_vs in %s: %w", r, err)
	}
	n.IPVS = string(out)
	return nil
}

func (m *ipvsMode) table(n *nodeRules) (*ipvs.Table, error) {
	t, err := ipvs.ParseString(n.IPVS)
	if err != nil {
		return nil, fmt.Errorf("parsing /proc/net/ip_vs: %w", err)
	}
	return t, nil
}

func (m *ipvsMode) expectations(n *nodeRules, s *snapshot) ([]ipvs.Expectation, error) {
	var out []ipvs.Expectation
	for i := range s.services {
		exps, err := ipvs.Expect(&s.services[i], s.slices, n.obj, m.opts)
		if err != nil {
			return nil, err
		}
		out = append(out, exps...)
	}
	return out, nil
}

func (m *ipvsMode) check(n *nodeRules, s *snapshot) ([]string, error) {
	t, err := m.table(n)
	if err != nil {
		return nil, err
	}
	exps, err := m.expectations(n, s)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range ipvs.Check(t, exps) {
		out = append(out, "["+f.Check+"] "+f.Message)
	}
	return out, nil
}

func (m *ipvsMode) excerpt(n *nodeRules, s *snapshot) string {
	t, err := m.table(n)
	if err != nil {
		return err.Error()
	}
	exps, _ := m.expectations(n, s)
	var b strings.Builder
	for _, e := range exps {
		v := t.Service(e.Protocol, e.Addr)
		if v == nil {
			fmt.Fprintf(&b, "%s: no virtual service\n", e)
			continue
		}
		fmt.Fprintf(&b, "%s: %s %s persistent=%v\n", e, v.Key(), v.Scheduler, v.Persistent)
		for _, rs := range v.RealServers {
			fmt.Fprintf(&b, "  -> %s %s weight %d\n", rs.Addr, rs.Forward, rs.Weight)
		}
	}
	return b.String()
}

func (m *ipvsMode) tracer(n *nodeRules) (dp.Tracer, error) {
	t, err := m.table(n)
	if err != nil {
		return nil, err
	}
	return ipvsTracer{t}, nil
}

// ipvsTracer predicts only where IPVS sends a connection; whether it is
// masqueraded is up to kube-proxy's iptables rules in ipvs mode, which
// ipvsTracer does not read (Masquerade is always false).
type ipvsTracer struct{ t *ipvs.Table }

func (x ipvsTracer) Trace(p dp.Packet) (dp.Result, error) {
	shares, err := x.t.Shares(p.Proto, netip.AddrPortFrom(p.Dst, p.DPort))
	if err != nil {
		return dp.Result{}, err
	}
	res := dp.Result{Verdict: dp.Accept}
	for _, s := range shares {
		res.Destinations = append(res.Destinations, dp.Destination{IP: s.Addr.Addr(), Port: s.Addr.Port(), Probability: s.Probability,
			Path: []string{"ipvs " + strings.ToUpper(p.Proto) + " " + netip.AddrPortFrom(p.Dst, p.DPort).String()}})
	}
	return res, nil
}

func (m *iptablesMode) forwardBypass(n *nodeRules) ([]string, string, error) {
	return iptablesForwardBypass(n)
}

// The ipvs mode filters forwarded traffic with iptables chains too.
func (m *ipvsMode) forwardBypass(n *nodeRules) ([]string, string, error) {
	return iptablesForwardBypass(n)
}

// iptablesForwardBypass: iptables stops at the first ACCEPT, so any rule
// ahead of kube-proxy's jumps in filter FORWARD that accepts new
// connections lets the traffic it matches skip them.
func iptablesForwardBypass(n *nodeRules) ([]string, string, error) {
	rs, err := iptables.ParseString(n.IPTablesSave)
	if err != nil {
		return nil, "", fmt.Errorf("parsing iptables-save: %w", err)
	}
	var out []string
	for _, f := range iptables.ForwardOrder(rs) {
		out = append(out, f.Message)
	}
	var ev []string
	if c := rs.Chain("filter", "FORWARD"); c != nil {
		ev = append(ev, fmt.Sprintf(":FORWARD %s", c.Policy))
		for _, r := range c.Rules {
			ev = append(ev, r.Text)
		}
	}
	return out, strings.Join(ev, "\n"), nil
}

// In nftables mode kube-proxy filters forwarded traffic in base chains of
// its own table. nftables runs every base chain on a hook, and an accept
// ends only the chain that gave it, so another table's rules (a CNI's
// iptables-nft FORWARD accepts) cannot skip kube-proxy's; what must hold is
// that the table has such a chain on the forward hook.
func (m *nftablesMode) forwardBypass(n *nodeRules) ([]string, string, error) {
	rs, err := m.parse(n)
	if err != nil {
		return nil, "", err
	}
	tb := rs.Table("ip", nftables.KubeProxyTable)
	if tb == nil {
		return []string{"no ip " + nftables.KubeProxyTable + " table"}, "", nil
	}
	var ev []string
	for _, c := range tb.BaseChains("forward") {
		ev = append(ev, fmt.Sprintf("chain %s: type %s hook forward priority %d, %d rules", c.Name, c.Type, c.Priority, len(c.Rules)))
	}
	if len(ev) == 0 {
		return []string{"table ip " + nftables.KubeProxyTable + " has no base chain on the forward hook: forwarded traffic meets none of kube-proxy's filter rules"}, "", nil
	}
	return nil, strings.Join(ev, "\n"), nil
}
