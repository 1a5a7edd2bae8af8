package nftables

import (
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// nodeIP is the InternalIP of nft-control-plane in nodes.txt.
var nodeIP = netip.MustParseAddr("172.18.0.2")

func pkt(src, dst string, proto string, dport uint16, from dataplane.Origin) dataplane.Packet {
	return dataplane.Packet{
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Proto: proto, DPort: dport, From: from,
	}
}

// Chain names of the dump, to keep the expected paths readable.
const (
	backendSvc  = "service-TTACPZBM-default/backend-service/tcp/backend"
	backendEp4  = "endpoint-LZSRDGKX-default/backend-service/tcp/backend__10.244.0.4/3000"
	backendEp5  = "endpoint-DY7CHKFN-default/backend-service/tcp/backend__10.244.0.5/3000"
	frontendSvc = "service-WSSLWGAI-default/frontend-nodeport-service/tcp/frontend"
	frontendExt = "external-WSSLWGAI-default/frontend-nodeport-service/tcp/frontend"
	localSvc    = "service-36AIK6QE-default/local-service/tcp/"
	localExt    = "external-36AIK6QE-default/local-service/tcp/"
	localLocal  = "local-36AIK6QE-default/local-service/tcp/"
	localFW     = "firewall-36AIK6QE-default/local-service/tcp/"
	localEp10   = "endpoint-KDSXCVGR-default/local-service/tcp/__10.244.0.10/8080"
	localEp9    = "endpoint-CSAIBT4V-default/local-service/tcp/__10.244.0.9/8080"
	apiSvc      = "service-2QRHZV4L-default/kubernetes/tcp/https"
	apiEp       = "endpoint-KJBNWEXB-default/kubernetes/tcp/https__172.18.0.2/6443"
)

// Hook prologues and epilogues every routed packet of the dump walks.
var (
	prerouting  = []string{"filter-prerouting-pre-dnat", "firewall-check", "nat-prerouting", "services"}
	forwardPost = []string{"filter-forward", "service-endpoints-check", "cluster-ips-check", "nat-postrouting", "masquerading"}
)

func chainPath(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func dest(ip string, port uint16, prob float64, masq bool, p []string) dataplane.Destination {
	return dataplane.Destination{IP: netip.MustParseAddr(ip), Port: port, Probability: prob, Masquerade: masq, Path: p}
}

// TestTraceDump hand-checks the tracer on the v1.34.4 dump. Destinations
// come sorted by address (10.244.0.9 before 10.244.0.10).
func TestTraceDump(t *testing.T) {
	tr := NewTracer(loadDump(t), []netip.Addr{nodeIP})
	for _, tc := range []struct {
		name string
		p    dataplane.Packet
		want dataplane.Result
	}{
		{
			// A frontend pod (10.244.0.6) calls backend-service's
			// ClusterIP. services' first rule finds
			// "10.96.85.230 . tcp . 3000 : goto service-TTACPZBM..." in
			// @service-ips. That chain's masquerade rule needs a source
			// outside 10.244.0.0/16, so it does not fire; `numgen random
			// mod 2` picks endpoint .4 or .5 with 1/2 each, whose chains
			// only mark when the source is the endpoint itself, then
			// DNAT. In postrouting the mark is clear, so masquerading
			// returns: no masquerade on either branch.
			name: "backend ClusterIP from a frontend pod",
			p:    pkt("10.244.0.6", "10.96.85.230", "tcp", 3000, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("10.244.0.4", 3000, 0.5, false, chainPath(prerouting, []string{backendSvc, backendEp4}, forwardPost)),
				dest("10.244.0.5", 3000, 0.5, false, chainPath(prerouting, []string{backendSvc, backendEp5}, forwardPost)),
			}},
		},
		{
			// From outside (the kind network's gateway) to the node IP
			// on NodePort 30000. @service-ips has no 172.18.0.2 . tcp .
			// 30000, but the node IP is in @nodeport-ips and
			// @service-nodeports maps "tcp . 30000" to the external
			// chain, which (externalTrafficPolicy Cluster) jumps to
			// mark-for-masquerade and then goes to the service chain:
			// three endpoints, 1/3 each, all masqueraded in postrouting
			// because the 0x4000 mark is set.
			name: "frontend NodePort from outside",
			p:    pkt("172.18.0.1", "172.18.0.2", "tcp", 30000, dataplane.FromExternal),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("10.244.0.6", 8080, 1.0/3, true, chainPath(prerouting, []string{frontendExt, "mark-for-masquerade", frontendSvc,
					"endpoint-KC7OS3QX-default/frontend-nodeport-service/tcp/frontend__10.244.0.6/8080"}, forwardPost)),
				dest("10.244.0.7", 8080, 1.0/3, true, chainPath(prerouting, []string{frontendExt, "mark-for-masquerade", frontendSvc,
					"endpoint-AUUANHQA-default/frontend-nodeport-service/tcp/frontend__10.244.0.7/8080"}, forwardPost)),
				dest("10.244.0.8", 8080, 1.0/3, true, chainPath(prerouting, []string{frontendExt, "mark-for-masquerade", frontendSvc,
					"endpoint-KVAISHCR-default/frontend-nodeport-service/tcp/frontend__10.244.0.8/8080"}, forwardPost)),
			}},
		},
		{
			// Backend pod 10.244.0.4 calls its own Service. Half the
			// time numgen picks itself: endpoint-LZSRDGKX's first rule
			// (ip saddr 10.244.0.4) jumps to mark-for-masquerade, so
			// that branch is masqueraded and the reply comes back
			// through the node. The other half lands on .5 unmarked.
			name: "hairpin from a backend pod to its own Service",
			p:    pkt("10.244.0.4", "10.96.85.230", "tcp", 3000, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("10.244.0.4", 3000, 0.5, true, chainPath(prerouting, []string{backendSvc, backendEp4, "mark-for-masquerade"}, forwardPost)),
				dest("10.244.0.5", 3000, 0.5, false, chainPath(prerouting, []string{backendSvc, backendEp5}, forwardPost)),
			}},
		},
		{
			// no-endpoints-service has no @service-ips element, so
			// nothing DNATs; the packet is forwarded, and in
			// filter-forward service-endpoints-check finds
			// "10.96.134.101 . tcp . 9999 : goto reject-chain" in
			// @no-endpoint-services, whose only rule rejects.
			name: "no-endpoint Service from a pod",
			p:    pkt("10.244.0.6", "10.96.134.101", "tcp", 9999, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Reject,
				Rule: `reject-chain: reject (via @no-endpoint-services element 10.96.134.101 . tcp . 9999 comment "default/no-endpoints-service" : goto reject-chain)`},
		},
		{
			// The same from the node itself: output's filter chain runs
			// after nat-output (priority 0 > -100) and, the packet not
			// being DNATed, rejects it the same way.
			name: "no-endpoint Service from the node",
			p:    pkt("172.18.0.2", "10.96.134.101", "tcp", 9999, dataplane.FromLocal),
			want: dataplane.Result{Verdict: dataplane.Reject,
				Rule: `reject-chain: reject (via @no-endpoint-services element 10.96.134.101 . tcp . 9999 comment "default/no-endpoints-service" : goto reject-chain)`},
		},
		{
			// A ClusterIP on a port it does not serve: no element in
			// @service-ips or @no-endpoint-services, but the address is
			// in @cluster-ips, so cluster-ips-check rejects.
			name: "ClusterIP on a wrong port",
			p:    pkt("10.244.0.6", "10.96.85.230", "tcp", 3001, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Reject,
				Rule: `cluster-ips-check: ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`},
		},
		{
			// An unallocated address of the service CIDR is dropped by
			// cluster-ips-check's second rule.
			name: "unallocated ClusterIP",
			p:    pkt("10.244.0.6", "10.96.99.99", "tcp", 80, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Drop,
				Rule: `cluster-ips-check: ip daddr 10.96.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"`},
		},
		{
			// Not a Service: nothing matches, every base chain accepts
			// by policy, and no destination is reported.
			name: "not a Service",
			p:    pkt("10.244.0.6", "8.8.8.8", "udp", 53, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Accept},
		},
		{
			// local-service's LoadBalancer IP with
			// loadBalancerSourceRanges 192.168.0.0/16: firewall-check
			// (prerouting, before DNAT) finds it in @firewall-ips and
			// goes to the firewall chain, which drops other sources.
			name: "LoadBalancer source range refuses",
			p:    pkt("172.18.0.1", "172.18.255.11", "tcp", 80, dataplane.FromExternal),
			want: dataplane.Result{Verdict: dataplane.Drop,
				Rule: "firewall-36AIK6QE-default/local-service/tcp/: ip saddr != 192.168.0.0/16 drop (via @firewall-ips element 172.18.255.11 . tcp . 80 : goto firewall-36AIK6QE-default/local-service/tcp/)"},
		},
		{
			// An allowed source passes the firewall chain (it falls off
			// its end). externalTrafficPolicy Local: the external chain
			// neither short-circuits (not a pod, not a local source)
			// nor marks, and goes to local-36AIK6QE: both endpoints are
			// on this node, 1/2 each, source preserved.
			name: "LoadBalancer with externalTrafficPolicy Local from an allowed source",
			p:    pkt("192.168.1.1", "172.18.255.11", "tcp", 80, dataplane.FromExternal),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("10.244.0.9", 8080, 0.5, false, chainPath([]string{"filter-prerouting-pre-dnat", "firewall-check", localFW, "nat-prerouting", "services", localExt, localLocal, localEp9}, forwardPost)),
				dest("10.244.0.10", 8080, 0.5, false, chainPath([]string{"filter-prerouting-pre-dnat", "firewall-check", localFW, "nat-prerouting", "services", localExt, localLocal, localEp10}, forwardPost)),
			}},
		},
		{
			// The node itself calls the externalTrafficPolicy Local
			// NodePort: `fib saddr type local` is true for the node IP,
			// so the external chain marks for masquerade and
			// short-circuits to the cluster chain.
			name: "Local NodePort from the node",
			p:    pkt("172.18.0.2", "172.18.0.2", "tcp", 31990, dataplane.FromLocal),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("10.244.0.9", 8080, 0.5, true, []string{"filter-output-pre-dnat", "firewall-check", "nat-output", "services", localExt, "mark-for-masquerade", localSvc, localEp9,
					"filter-output", "service-endpoints-check", "cluster-ips-check", "nat-postrouting", "masquerading"}),
				dest("10.244.0.10", 8080, 0.5, true, []string{"filter-output-pre-dnat", "firewall-check", "nat-output", "services", localExt, "mark-for-masquerade", localSvc, localEp10,
					"filter-output", "service-endpoints-check", "cluster-ips-check", "nat-postrouting", "masquerading"}),
			}},
		},
		{
			// The node calls the kubernetes Service: the source is
			// outside the pod CIDR (mark), and the only endpoint is the
			// node itself (mark again, DNAT to 172.18.0.2:6443). The
			// packet is masqueraded in postrouting and then delivered
			// locally through filter-input, whose checks find nothing.
			name: "kubernetes API from the node",
			p:    pkt("172.18.0.2", "10.96.0.1", "tcp", 443, dataplane.FromLocal),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("172.18.0.2", 6443, 1, true, []string{"filter-output-pre-dnat", "firewall-check", "nat-output", "services", apiSvc, "mark-for-masquerade", apiEp, "mark-for-masquerade",
					"filter-output", "service-endpoints-check", "cluster-ips-check", "nat-postrouting", "masquerading",
					"filter-input", "nodeport-endpoints-check", "service-endpoints-check"}),
			}},
		},
		{
			// kube-dns over UDP: @service-ips keys on the protocol, so
			// "10.96.0.10 . udp . 53" picks the dns chain, not dns-tcp.
			name: "kube-dns over UDP from a pod",
			p:    pkt("10.244.0.6", "10.96.0.10", "udp", 53, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("10.244.0.2", 53, 0.5, false, chainPath(prerouting, []string{"service-FY5PMXPG-kube-system/kube-dns/udp/dns", "endpoint-2GKX576Q-kube-system/kube-dns/udp/dns__10.244.0.2/53"}, forwardPost)),
				dest("10.244.0.3", 53, 0.5, false, chainPath(prerouting, []string{"service-FY5PMXPG-kube-system/kube-dns/udp/dns", "endpoint-SHKW4FT7-kube-system/kube-dns/udp/dns__10.244.0.3/53"}, forwardPost)),
			}},
		},
		{
			// ClientIP affinity: the dumped affinity sets are empty, so
			// neither `ip saddr @affinity-...` rule matches and this
			// first connection is split by numgen like any other; the
			// endpoint chain's `update @affinity-...` does not change
			// the packet.
			name: "affinity Service, first connection",
			p:    pkt("10.244.0.6", "10.96.254.73", "tcp", 3001, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
				dest("10.244.0.4", 3000, 0.5, false, chainPath(prerouting, []string{"service-AT7S2JU6-default/affinity-service/tcp/", "endpoint-DH42Q33Z-default/affinity-service/tcp/__10.244.0.4/3000"}, forwardPost)),
				dest("10.244.0.5", 3000, 0.5, false, chainPath(prerouting, []string{"service-AT7S2JU6-default/affinity-service/tcp/", "endpoint-DVIXU6UP-default/affinity-service/tcp/__10.244.0.5/3000"}, forwardPost)),
			}},
		},
		{
			// The ip6 kube-proxy table exists but is empty of Services.
			name: "IPv6 packet, no IPv6 Services",
			p:    pkt("fd00::1", "fd00::2", "tcp", 80, dataplane.FromPod),
			want: dataplane.Result{Verdict: dataplane.Accept},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tr.Trace(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			compareResult(t, got, tc.want)
		})
	}
}

func compareResult(t *testing.T, got, want dataplane.Result) {
	t.Helper()
	if got.Verdict != want.Verdict {
		t.Errorf("verdict %s, want %s", got.Verdict, want.Verdict)
	}
	if got.Rule != want.Rule {
		t.Errorf("rule\n got %q\nwant %q", got.Rule, want.Rule)
	}
	if len(got.Destinations) != len(want.Destinations) {
		t.Fatalf("%d destinations, want %d: %+v", len(got.Destinations), len(want.Destinations), got.Destinations)
	}
	sum := 0.0
	for i, g := range got.Destinations {
		w := want.Destinations[i]
		sum += g.Probability
		if g.IP != w.IP || g.Port != w.Port || g.Masquerade != w.Masquerade || math.Abs(g.Probability-w.Probability) > 1e-9 {
			t.Errorf("destination %d = %s:%d p=%v masq=%v, want %s:%d p=%v masq=%v",
				i, g.IP, g.Port, g.Probability, g.Masquerade, w.IP, w.Port, w.Probability, w.Masquerade)
		}
		if strings.Join(g.Path, " > ") != strings.Join(w.Path, " > ") {
			t.Errorf("destination %d path\n got %s\nwant %s", i, strings.Join(g.Path, " > "), strings.Join(w.Path, " > "))
		}
	}
	if len(got.Destinations) > 0 && got.Verdict == dataplane.Accept && math.Abs(sum-1) > 1e-9 {
		t.Errorf("probabilities sum to %v, want 1", sum)
	}
}

func TestTraceRejectsBadPackets(t *testing.T) {
	tr := NewTracer(loadDump(t), []netip.Addr{nodeIP})
	for _, tc := range []struct {
		name string
		p    dataplane.Packet
		want string
	}{
		{"no source", dataplane.Packet{Dst: nodeIP, Proto: "tcp", From: dataplane.FromPod}, "must be set"},
		{"mixed families", pkt("10.0.0.1", "fd00::1", "tcp", 1, dataplane.FromPod), "different IP families"},
		{"icmp", pkt("10.0.0.1", "10.0.0.2", "icmp", 0, dataplane.FromPod), `protocol "icmp"`},
		{"unknown origin", pkt("10.0.0.1", "10.0.0.2", "tcp", 1, "mars"), `unknown origin "mars"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.Trace(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestTraceAffinityRemembered: once the client is in an endpoint's affinity
// set (as a dump taken after a first connection shows), the Service chain's
// `ip saddr @affinity-... goto endpoint-...` rule sends it there every time,
// before numgen is reached.
func TestTraceAffinityRemembered(t *testing.T) {
	d := loadDoc(t)
	d.addElem(t, "set", "affinity-DVIXU6UP-default/affinity-service/tcp/__10.244.0.5/3000", `{"elem": {"val": "10.244.0.6", "expires": 10000}}`)
	got, err := NewTracer(d.ruleset(t), []netip.Addr{nodeIP}).Trace(pkt("10.244.0.6", "10.96.254.73", "tcp", 3001, dataplane.FromPod))
	if err != nil {
		t.Fatal(err)
	}
	compareResult(t, got, dataplane.Result{Verdict: dataplane.Accept, Destinations: []dataplane.Destination{
		dest("10.244.0.5", 3000, 1, false, chainPath(prerouting, []string{"service-AT7S2JU6-default/affinity-service/tcp/", "endpoint-DVIXU6UP-default/affinity-service/tcp/__10.244.0.5/3000"}, forwardPost)),
	}})
}
