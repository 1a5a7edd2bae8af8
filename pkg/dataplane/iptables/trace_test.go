package iptables

import (
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// wantDest is a predicted destination; path is checked only when set.
type wantDest struct {
	ip   string
	port uint16
	prob float64
	masq bool
	path []string
}

type traceCase struct {
	name    string
	pkt     dataplane.Packet
	verdict dataplane.Verdict
	dests   []wantDest
	rule    string // substring of the deciding rule; "" means none
}

func pkt(from dataplane.Origin, src, dst, proto string, dport uint16) dataplane.Packet {
	return dataplane.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: proto, DPort: dport, From: from}
}

func checkTrace(t *testing.T, tr dataplane.Tracer, tc traceCase) {
	t.Helper()
	res, err := tr.Trace(tc.pkt)
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	if res.Verdict != tc.verdict {
		t.Errorf("verdict = %s, want %s (rule %q)", res.Verdict, tc.verdict, res.Rule)
	}
	if res.Destinations == nil {
		t.Errorf("Destinations is nil, want an empty or full slice")
	}
	if tc.rule == "" && res.Rule != "" {
		t.Errorf("rule = %q, want none", res.Rule)
	}
	if tc.rule != "" && !strings.Contains(res.Rule, tc.rule) {
		t.Errorf("rule = %q, want it to contain %q", res.Rule, tc.rule)
	}
	if len(res.Destinations) != len(tc.dests) {
		t.Fatalf("destinations = %+v, want %d", res.Destinations, len(tc.dests))
	}
	sum := 0.0
	for i, w := range tc.dests {
		d := res.Destinations[i]
		sum += d.Probability
		if d.IP != netip.MustParseAddr(w.ip) || d.Port != w.port || d.Masquerade != w.masq || math.Abs(d.Probability-w.prob) > 1e-12 {
			t.Errorf("destination %d = %s:%d p=%.12f masq=%v, want %s:%d p=%.12f masq=%v",
				i, d.IP, d.Port, d.Probability, d.Masquerade, w.ip, w.port, w.prob, w.masq)
		}
		if w.path != nil && strings.Join(d.Path, " ") != strings.Join(w.path, " ") {
			t.Errorf("destination %d path =\n  %v\nwant\n  %v", i, d.Path, w.path)
		}
	}
	if len(tc.dests) > 0 && tc.verdict == dataplane.Accept && tc.rule == "" && math.Abs(sum-1) > 1e-12 {
		t.Errorf("probabilities sum to %.15f, want 1", sum)
	}
}

// The frontend SVC chain's first rule carries the probability iptables-save
// printed for kube-proxy's 1/3 (0.3333333333 rounded to the kernel's 2^-31
// steps); the other two share what is left, half each.
const (
	third     = 0.33333333349
	restThird = (1 - third) * 0.5
)

// TestTraceSeedDumpHandChecked predicts, rule by rule from the seed dump,
// where the seed Services send a first packet.
func TestTraceSeedDumpHandChecked(t *testing.T) {
	tr := NewTracer(parseDump(t), []netip.Addr{nodeIP(t)})
	for _, tc := range []traceCase{
		{
			// backend-service ClusterIP from a pod that is not a backend:
			// KUBE-SERVICES matches -d 10.96.177.129 --dport 3000 and jumps
			// to KUBE-SVC-RMX...; its masquerade rule is "! -s
			// 10.244.0.0/16" so a pod source is not marked; the first SEP
			// rule has probability 0.5 and the second takes the rest. Neither
			// SEP's "-s <own ip>" matches 10.244.0.7, so no mark, so
			// KUBE-POSTROUTING RETURNs: no masquerade. The pod IPs are not
			// local, so the packet is forwarded; filter KUBE-FORWARD does not
			// accept it (no mark), filter KUBE-SERVICES and
			// KUBE-EXTERNAL-SERVICES have nothing for 10.244.0.x, and the
			// FORWARD policy accepts.
			name:    "backend ClusterIP from another pod",
			pkt:     pkt(dataplane.FromPod, "10.244.0.7", "10.96.177.129", "tcp", 3000),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.4", 3000, 0.5, false, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-SVC-RMXBZCT6XVCXF3QP", "KUBE-SEP-VQYECCHHW77CXMGL",
					"filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
				{"10.244.0.9", 3000, 0.5, false, nil},
			},
		},
		{
			// Hairpin: backend pod 10.244.0.4 calls its own Service. On the
			// branch that picks KUBE-SEP-VQY... (10.244.0.4) the rule "-s
			// 10.244.0.4/32 -j KUBE-MARK-MASQ" sets 0x4000, so filter
			// KUBE-FORWARD accepts on the mark and KUBE-POSTROUTING
			// masquerades; the branch to 10.244.0.9 is not marked.
			name:    "backend hairpin",
			pkt:     pkt(dataplane.FromPod, "10.244.0.4", "10.96.177.129", "tcp", 3000),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.4", 3000, 0.5, true, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-SVC-RMXBZCT6XVCXF3QP", "KUBE-SEP-VQYECCHHW77CXMGL", "KUBE-MARK-MASQ",
					"filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
				{"10.244.0.9", 3000, 0.5, false, nil},
			},
		},
		{
			// backend ClusterIP from the node itself: nat OUTPUT ->
			// KUBE-SERVICES -> KUBE-SVC, whose first rule marks it (source
			// 172.18.0.3 is not in 10.244.0.0/16), so both branches are
			// masqueraded.
			name:    "backend ClusterIP from the node",
			pkt:     pkt(dataplane.FromLocal, "172.18.0.3", "10.96.177.129", "tcp", 3000),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.4", 3000, 0.5, true, []string{"nat/OUTPUT", "KUBE-SERVICES", "KUBE-SVC-RMXBZCT6XVCXF3QP", "KUBE-MARK-MASQ", "KUBE-SEP-VQYECCHHW77CXMGL",
					"filter/OUTPUT", "KUBE-PROXY-FIREWALL", "KUBE-SERVICES", "KUBE-FIREWALL", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
				{"10.244.0.9", 3000, 0.5, true, nil},
			},
		},
		{
			// frontend NodePort on the node IP from outside: no ClusterIP
			// rule matches, the last KUBE-SERVICES rule (addrtype dst LOCAL:
			// 172.18.0.3 is the node) jumps to KUBE-NODEPORTS; the
			// 127.0.0.0/8 rule does not match, the next (--dport 30000) jumps
			// to KUBE-EXT-L2K..., which marks unconditionally
			// (externalTrafficPolicy Cluster) and jumps to KUBE-SVC-L2K...:
			// three SEPs at 0.33333333349, then 0.5 of the rest, then the
			// rest. Every branch is marked, so masqueraded.
			name:    "frontend NodePort from outside",
			pkt:     pkt(dataplane.FromExternal, "192.168.7.7", "172.18.0.3", "tcp", 30000),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.10", 8080, third, true, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXT-L2KBDCMJUD65WX3D", "KUBE-MARK-MASQ",
					"KUBE-SVC-L2KBDCMJUD65WX3D", "KUBE-SEP-62M7JP4UVG6M4CLP", "filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
				{"10.244.0.7", 8080, restThird, true, nil},
				{"10.244.0.8", 8080, restThird, true, nil},
			},
		},
		{
			// frontend NodePort on localhost from the node: the KUBE-NODEPORTS
			// rule for -d 127.0.0.0/8 (with its nfacct counter) matches first.
			// After DNAT the ctstate includes DNAT, so KUBE-FIREWALL's
			// localnet DROP does not apply.
			name:    "frontend NodePort on localhost",
			pkt:     pkt(dataplane.FromLocal, "127.0.0.1", "127.0.0.1", "tcp", 30000),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.10", 8080, third, true, nil},
				{"10.244.0.7", 8080, restThird, true, nil},
				{"10.244.0.8", 8080, restThird, true, nil},
			},
		},
		{
			// frontend ClusterIP port 80 from a pod: same endpoints and
			// shares, not marked.
			name:    "frontend ClusterIP from a pod",
			pkt:     pkt(dataplane.FromPod, "10.244.0.4", "10.96.65.160", "tcp", 80),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.10", 8080, third, false, nil},
				{"10.244.0.7", 8080, restThird, false, nil},
				{"10.244.0.8", 8080, restThird, false, nil},
			},
		},
		{
			// no-endpoints-service: nat has nothing for 10.96.187.144, and it
			// is not local, so the packet is forwarded unchanged and filter
			// FORWARD -> KUBE-SERVICES rejects it.
			name:    "no-endpoints-service rejects",
			pkt:     pkt(dataplane.FromPod, "10.244.0.4", "10.96.187.144", "tcp", 9999),
			verdict: dataplane.Reject,
			rule:    `-A KUBE-SERVICES -d 10.96.187.144/32 -p tcp -m comment --comment "default/no-endpoints-service has no endpoints" -m tcp --dport 9999 -j REJECT --reject-with icmp-port-unreachable`,
		},
		{
			// kube-dns has endpoints, none ready: the UDP port is rejected
			// from the node by filter OUTPUT -> KUBE-SERVICES.
			name:    "kube-dns udp without ready endpoints",
			pkt:     pkt(dataplane.FromLocal, "172.18.0.3", "10.96.0.10", "udp", 53),
			verdict: dataplane.Reject,
			rule:    `"kube-system/kube-dns:dns has no endpoints" -m udp --dport 53 -j REJECT`,
		},
		{
			// local-service LoadBalancer IP from a source outside
			// loadBalancerSourceRanges: KUBE-FW-AOFE... only jumps for
			// 192.168.0.0/16, its last rule only counts, so the packet
			// returns to KUBE-SERVICES undNATed; 172.18.255.11 is not local,
			// so it is forwarded, and filter KUBE-PROXY-FIREWALL drops it.
			name:    "local-service LB from a blocked source",
			pkt:     pkt(dataplane.FromExternal, "1.2.3.4", "172.18.255.11", "tcp", 80),
			verdict: dataplane.Drop,
			rule:    `"default/local-service traffic not accepted by KUBE-FW-AOFE7JZSOCHI7LXR" -m tcp --dport 80 -j DROP`,
		},
		{
			// local-service LoadBalancer IP from an allowed source:
			// KUBE-FW -> KUBE-EXT; not a pod source and not LOCAL, so it
			// falls to KUBE-SVL (externalTrafficPolicy Local: both endpoints
			// are on this node), half each, and is never marked: the client
			// IP is kept.
			name:    "local-service LB from an allowed source",
			pkt:     pkt(dataplane.FromExternal, "192.168.1.10", "172.18.255.11", "tcp", 80),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.5", 8080, 0.5, false, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-FW-AOFE7JZSOCHI7LXR", "KUBE-EXT-AOFE7JZSOCHI7LXR",
					"KUBE-SVL-AOFE7JZSOCHI7LXR", "KUBE-SEP-3OPY4GMSHI5JLLKV", "filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES",
					"KUBE-EXTERNAL-SERVICES", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
				{"10.244.0.6", 8080, 0.5, false, nil},
			},
		},
		{
			// local-service NodePort from the node itself: KUBE-EXT's
			// "addrtype --src-type LOCAL" rules mark it and send it to the
			// cluster-policy KUBE-SVC chain, not KUBE-SVL.
			name:    "local-service NodePort from the node",
			pkt:     pkt(dataplane.FromLocal, "172.18.0.3", "172.18.0.3", "tcp", 32262),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.5", 8080, 0.5, true, []string{"nat/OUTPUT", "KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXT-AOFE7JZSOCHI7LXR", "KUBE-MARK-MASQ",
					"KUBE-SVC-AOFE7JZSOCHI7LXR", "KUBE-SEP-3OPY4GMSHI5JLLKV", "filter/OUTPUT", "KUBE-PROXY-FIREWALL", "KUBE-SERVICES", "KUBE-FIREWALL",
					"nat/POSTROUTING", "KUBE-POSTROUTING"}},
				{"10.244.0.6", 8080, 0.5, true, nil},
			},
		},
		{
			// foo-service LoadBalancer IP (no source ranges) goes straight to
			// KUBE-EXT-L62..., which masquerades (Cluster policy).
			name:    "foo-service LB from outside",
			pkt:     pkt(dataplane.FromExternal, "8.8.8.8", "172.18.255.10", "tcp", 5678),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.5", 8080, 0.5, true, nil},
				{"10.244.0.6", 8080, 0.5, true, nil},
			},
		},
		{
			// affinity-service: the --rcheck rules find no entry for a new
			// client, so the statistic rules decide, as without affinity.
			name:    "affinity-service first packet",
			pkt:     pkt(dataplane.FromPod, "10.244.0.7", "10.96.91.111", "tcp", 3001),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"10.244.0.4", 3000, 0.5, false, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-SVC-AEGTNIFGRXWJJUR2", "KUBE-SEP-IF67CD7ESLGSGP6Q",
					"filter/FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "nat/POSTROUTING", "KUBE-POSTROUTING"}},
				{"10.244.0.9", 3000, 0.5, false, nil},
			},
		},
		{
			// kubernetes:https from a pod: one endpoint, the node's own
			// apiserver at 172.18.0.3:6443, which is local: filter INPUT, no
			// POSTROUTING, so no masquerade even though nothing marks it.
			name:    "kubernetes Service to the local apiserver",
			pkt:     pkt(dataplane.FromPod, "10.244.0.4", "10.96.0.1", "tcp", 443),
			verdict: dataplane.Accept,
			dests: []wantDest{
				{"172.18.0.3", 6443, 1, false, []string{"nat/PREROUTING", "KUBE-SERVICES", "KUBE-SVC-NPX46M4PTMTKRN6Y", "KUBE-SEP-QKX4QX54UKWK6JIY",
					"filter/INPUT", "KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL", "nat/INPUT"}},
			},
		},
		{
			// Not a Service: nothing DNATs, every policy accepts.
			name:    "plain pod-to-pod",
			pkt:     pkt(dataplane.FromPod, "10.244.0.4", "10.244.0.9", "tcp", 3000),
			verdict: dataplane.Accept,
		},
		{
			// A ClusterIP on a port the Service does not have.
			name:    "backend ClusterIP wrong port",
			pkt:     pkt(dataplane.FromPod, "10.244.0.4", "10.96.177.129", "tcp", 3001),
			verdict: dataplane.Accept,
		},
		{
			// A node port on a non-local address is not a NodePort: the
			// addrtype dst LOCAL rule does not match.
			name:    "NodePort on a foreign address",
			pkt:     pkt(dataplane.FromExternal, "192.168.7.7", "172.18.0.99", "tcp", 30000),
			verdict: dataplane.Accept,
		},
		{
			// Someone else on the node's network probing 127.0.0.1: the
			// kubelet's localnet firewall (KUBE-FIREWALL in filter INPUT)
			// drops it, not being DNATed.
			name:    "localnet from outside is dropped",
			pkt:     pkt(dataplane.FromExternal, "172.18.0.9", "127.0.0.1", "tcp", 8080),
			verdict: dataplane.Drop,
			rule:    `"block incoming localnet connections"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTrace(t, tr, tc) })
	}
}
