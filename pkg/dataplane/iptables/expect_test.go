package iptables

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// seedOptions are kube-proxy's settings in the seed kind cluster.
var seedOptions = Options{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}

func TestCheckSeedDumpIsClean(t *testing.T) {
	findings, err := Check(parseDump(t), readNode(t), readObjects(t), seedOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("unexpected finding [%s] %s", f.Check, f)
	}
}

func TestExpectSeedServices(t *testing.T) {
	objs := readObjects(t)
	node := readNode(t)
	byName := map[string]Expectation{}
	for i := range objs.Services {
		exps, err := Expect(&objs.Services[i], objs.EndpointSlices, node, seedOptions)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exps {
			byName[e.Port.Name+"/"+e.Port.Protocol] = e
		}
	}
	if _, ok := byName["default/my-headless-service/tcp"]; ok {
		t.Error("headless Service got an expectation")
	}
	local := byName["default/local-service/tcp"]
	if local.SVL != "KUBE-SVL-AOFE7JZSOCHI7LXR" || local.FW != "KUBE-FW-AOFE7JZSOCHI7LXR" || local.LBChain != local.FW ||
		local.ExternalPolicyChain != local.SVL || local.InternalChain != "KUBE-SVC-AOFE7JZSOCHI7LXR" || local.Port.HealthCheckNodePort != 31445 {
		t.Errorf("local-service expectation = %+v", local)
	}
	dns := byName["kube-system/kube-dns:dns/udp"]
	if dns.InternalFilter != "REJECT" || dns.InternalChain != "" || len(dns.Chains()) != 0 {
		t.Errorf("kube-dns:dns expectation = %+v", dns)
	}
	fe := byName["default/frontend-nodeport-service:frontend/tcp"]
	if got := len(fe.Endpoints.Cluster); got != 3 || fe.EXT != "KUBE-EXT-L2KBDCMJUD65WX3D" || fe.Port.NodePort != 30000 {
		t.Errorf("frontend expectation = %+v", fe)
	}
}

// mutation changes the seed dump and/or objects; every finding check must
// be made to fire by at least one.
type mutation struct {
	name  string
	dump  func(t *testing.T, s string) string
	objs  func(o *APIObjects)
	check string
	want  string // substring of one finding's message with that check
}

func deleteLines(substr string) func(*testing.T, string) string {
	return func(t *testing.T, s string) string {
		t.Helper()
		var kept []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, substr) {
				kept = append(kept, l)
			}
		}
		if len(kept) == strings.Count(s, "\n")+1 {
			t.Fatalf("no line contains %q", substr)
		}
		return strings.Join(kept, "\n")
	}
}

func replaceOnce(old, new string) func(*testing.T, string) string {
	return func(t *testing.T, s string) string {
		t.Helper()
		if strings.Count(s, old) != 1 {
			t.Fatalf("%q occurs %d times, want once", old, strings.Count(s, old))
		}
		return strings.Replace(s, old, new, 1)
	}
}

func service(o *APIObjects, name string) *corev1.Service {
	for i := range o.Services {
		if o.Services[i].Name == name {
			return &o.Services[i]
		}
	}
	panic("no service " + name)
}

func slicesOf(o *APIObjects, svc string) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for i := range o.EndpointSlices {
		if o.EndpointSlices[i].Labels[discoveryv1.LabelServiceName] == svc {
			out = append(out, &o.EndpointSlices[i])
		}
	}
	return out
}

func TestCheckFindsMutations(t *testing.T) {
	falsy := false
	elsewhere := "other-node"
	mutations := []mutation{
		{name: "PREROUTING jump removed", check: CheckHookJump,
			dump: deleteLines(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`),
			want: "nat PREROUTING does not jump to KUBE-SERVICES"},
		{name: "filter FORWARD jump removed", check: CheckHookJump,
			dump: deleteLines(`-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`),
			want: "filter FORWARD does not jump to KUBE-FORWARD"},
		{name: "wrong masquerade bit", check: CheckMarkMasq,
			dump: replaceOnce("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000", "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x8000/0x8000"),
			want: "nat KUBE-MARK-MASQ has no unconditional MARK rule setting 0x4000"},
		{name: "MASQUERADE removed", check: CheckPostrouting,
			dump: deleteLines("-j MASQUERADE --random-fully"),
			want: "nat KUBE-POSTROUTING does not masquerade packets marked 0x4000"},
		{name: "unmarked RETURN removed", check: CheckPostrouting,
			dump: deleteLines("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"),
			want: "nat KUBE-POSTROUTING masquerades packets without mark 0x4000"},
		{name: "forward accept removed", check: CheckForwardAccept,
			dump: deleteLines("-m mark --mark 0x4000/0x4000 -j ACCEPT"),
			want: "filter KUBE-FORWARD does not accept packets marked 0x4000"},
		// kube-router v2.1.0's routing controller: these three rules at the
		// top of FORWARD, re-inserted on every sync (docs/cni.md).
		{name: "CNI accepts ahead of kube-proxy", check: CheckForwardOrder,
			dump: replaceOnce(`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall"`,
				"-A FORWARD -i kube-bridge -m comment --comment \"allow outbound node port traffic on node interface with which node ip is associated\" -j ACCEPT\n"+
					"-A FORWARD -o kube-bridge -j ACCEPT\n-A FORWARD -o eth0 -j ACCEPT\n"+
					`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall"`),
			want: `filter FORWARD rule 1 "-A FORWARD -i kube-bridge`},
		{name: "nodeports jump removed", check: CheckNodePortsLast,
			dump: deleteLines("NOTE: this must be the last rule in this chain"),
			want: "nat KUBE-SERVICES does not end with the jump to KUBE-NODEPORTS"},
		{name: "ClusterIP capture removed", check: CheckClusterIP,
			dump: deleteLines("-A KUBE-SERVICES -d 10.96.177.129/32"),
			want: "nat KUBE-SERVICES has no rule for default/backend-service:backend cluster IP 10.96.177.129:3000/tcp, want -j KUBE-SVC-RMXBZCT6XVCXF3QP"},
		{name: "ClusterIP to the wrong chain", check: CheckClusterIP,
			dump: replaceOnce("--dport 3000 -j KUBE-SVC-RMXBZCT6XVCXF3QP", "--dport 3000 -j KUBE-SVC-AEGTNIFGRXWJJUR2"),
			want: "nat KUBE-SERVICES sends default/backend-service:backend cluster IP 10.96.177.129:3000/tcp to KUBE-SVC-AEGTNIFGRXWJJUR2, want KUBE-SVC-RMXBZCT6XVCXF3QP"},
		{name: "REJECT removed", check: CheckClusterIPFilter,
			dump: deleteLines("default/no-endpoints-service has no endpoints"),
			want: "filter KUBE-SERVICES has no REJECT rule for default/no-endpoints-service cluster IP 10.96.187.144:9999/tcp (no ready endpoints)"},
		{name: "internalTrafficPolicy Local without local endpoints", check: CheckClusterIPFilter,
			objs: func(o *APIObjects) {
				local := corev1.ServiceInternalTrafficPolicyLocal
				service(o, "backend-service").Spec.InternalTrafficPolicy = &local
				for _, s := range slicesOf(o, "backend-service") {
					for i := range s.Endpoints {
						s.Endpoints[i].NodeName = &elsewhere
					}
				}
			},
			want: "filter KUBE-SERVICES has no DROP rule for default/backend-service:backend cluster IP 10.96.177.129:3000/tcp (internalTrafficPolicy Local and no ready endpoints on t1-control-plane)"},
		{name: "ClusterIP masquerade rule removed", check: CheckMasqRule,
			dump: deleteLines("-A KUBE-SVC-RMXBZCT6XVCXF3QP ! -s 10.244.0.0/16"),
			want: "KUBE-SVC-RMXBZCT6XVCXF3QP for default/backend-service:backend has no rule marking traffic from outside 10.244.0.0/16 to 10.96.177.129:3000 for masquerade"},
		{name: "SEP chain removed", check: CheckChain,
			dump: deleteLines("KUBE-SEP-RHEF5C7JXHNXCF5V"),
			want: "nat chain KUBE-SEP-RHEF5C7JXHNXCF5V (endpoint 10.244.0.9:3000 of default/backend-service:backend) is missing"},
		{name: "SEP jump removed", check: CheckEndpointJumps,
			dump: deleteLines(`-A KUBE-SVC-L2KBDCMJUD65WX3D -m comment --comment "default/frontend-nodeport-service:frontend -> 10.244.0.8:8080"`),
			want: "KUBE-SVC-L2KBDCMJUD65WX3D for default/frontend-nodeport-service:frontend has 2 KUBE-SEP jumps, want 3 (ready endpoints 10.244.0.10:8080, 10.244.0.7:8080, 10.244.0.8:8080)"},
		{name: "SVL jump removed", check: CheckEndpointJumps,
			dump: deleteLines(`-A KUBE-SVL-AOFE7JZSOCHI7LXR -m comment --comment "default/local-service -> 10.244.0.6:8080"`),
			want: "KUBE-SVL-AOFE7JZSOCHI7LXR for default/local-service has 1 KUBE-SEP jump, want 2 (ready endpoints on t1-control-plane 10.244.0.5:8080, 10.244.0.6:8080)"},
		{name: "endpoint not ready", check: CheckEndpointJumps,
			objs: func(o *APIObjects) { slicesOf(o, "backend-service")[0].Endpoints[1].Conditions.Ready = &falsy },
			want: "KUBE-SVC-RMXBZCT6XVCXF3QP for default/backend-service:backend has 2 KUBE-SEP jumps, want 1 (ready endpoints 10.244.0.4:3000)"},
		{name: "probability changed", check: CheckProbability,
			dump: replaceOnce("--probability 0.33333333349", "--probability 0.50000000000"),
			want: "KUBE-SVC-L2KBDCMJUD65WX3D for default/frontend-nodeport-service:frontend: KUBE-SEP jump 1 of 3 (to KUBE-SEP-62M7JP4UVG6M4CLP, line 158) has probability 0.50000000000, want 0.3333333333"},
		{name: "affinity look-up removed", check: CheckAffinity,
			dump: deleteLines("-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-IF67CD7ESLGSGP6Q"),
			want: "KUBE-SVC-AEGTNIFGRXWJJUR2 for default/affinity-service has no session-affinity look-up (-m recent --rcheck --name KUBE-SEP-IF67CD7ESLGSGP6Q) for endpoint 10.244.0.4:3000"},
		{name: "affinity recording removed", check: CheckAffinity,
			dump: replaceOnce("-m recent --set --name KUBE-SEP-5EWIIJKFOJOXCIGL --mask 255.255.255.255 --rsource ", ""),
			want: "KUBE-SEP-5EWIIJKFOJOXCIGL for default/affinity-service: DNAT rule (line 119) does not record the client"},
		{name: "hairpin masquerade removed", check: CheckSEPHairpin,
			dump: deleteLines("-A KUBE-SEP-VQYECCHHW77CXMGL -s 10.244.0.4/32"),
			want: "KUBE-SEP-VQYECCHHW77CXMGL for default/backend-service:backend has no rule marking traffic from 10.244.0.4 itself for masquerade"},
		{name: "DNAT to the wrong port", check: CheckSEPDNAT,
			dump: replaceOnce(`"default/backend-service:backend" -m tcp -j DNAT --to-destination 10.244.0.4:3000`, `"default/backend-service:backend" -m tcp -j DNAT --to-destination 10.244.0.4:3001`),
			want: "KUBE-SEP-VQYECCHHW77CXMGL for default/backend-service:backend DNATs with"},
		{name: "NodePort capture removed", check: CheckNodePort,
			dump: deleteLines(`-A KUBE-NODEPORTS -p tcp -m comment --comment "default/frontend-nodeport-service:frontend" -m tcp --dport 30000 -j KUBE-EXT-L2KBDCMJUD65WX3D`),
			want: "nat KUBE-NODEPORTS has no rule for default/frontend-nodeport-service:frontend node port 30000/tcp, want -j KUBE-EXT-L2KBDCMJUD65WX3D"},
		{name: "NodePort Service loses its endpoints", check: CheckNodePortFilter,
			objs: func(o *APIObjects) {
				for _, s := range slicesOf(o, "frontend-nodeport-service") {
					for i := range s.Endpoints {
						s.Endpoints[i].Conditions.Ready, s.Endpoints[i].Conditions.Serving = &falsy, &falsy
					}
				}
			},
			want: "filter KUBE-EXTERNAL-SERVICES has no REJECT rule for default/frontend-nodeport-service:frontend node port 30000/tcp (no ready endpoints)"},
		{name: "EXT masquerade removed", check: CheckEXT,
			dump: deleteLines(`"masquerade traffic for default/frontend-nodeport-service:frontend external destinations"`),
			want: "KUBE-EXT-L2KBDCMJUD65WX3D for default/frontend-nodeport-service:frontend does not mark all external traffic for masquerade (externalTrafficPolicy Cluster)"},
		{name: "EXT local short-circuit removed", check: CheckEXT,
			dump: deleteLines(`"route LOCAL traffic for default/local-service external destinations"`),
			want: "KUBE-EXT-AOFE7JZSOCHI7LXR for default/local-service does not send traffic from the node (addrtype --src-type LOCAL) to KUBE-SVC-AOFE7JZSOCHI7LXR"},
		{name: "LB capture removed", check: CheckLB,
			dump: deleteLines(`"default/foo-service loadbalancer IP"`),
			want: "nat KUBE-SERVICES has no rule for default/foo-service load-balancer IP 172.18.255.10:5678/tcp, want -j KUBE-EXT-L6225SIXICQL5TGT"},
		{name: "externalTrafficPolicy Local without local endpoints", check: CheckLBFilter,
			objs: func(o *APIObjects) {
				for _, s := range slicesOf(o, "local-service") {
					for i := range s.Endpoints {
						s.Endpoints[i].NodeName = &elsewhere
					}
				}
			},
			want: "filter KUBE-EXTERNAL-SERVICES has no DROP rule for default/local-service load-balancer IP 172.18.255.11:80/tcp (externalTrafficPolicy Local and no ready endpoints on t1-control-plane)"},
		{name: "external IP added", check: CheckExternalIP,
			objs: func(o *APIObjects) { service(o, "backend-service").Spec.ExternalIPs = []string{"192.0.2.50"} },
			want: "nat KUBE-SERVICES has no rule for default/backend-service:backend external IP 192.0.2.50:3000/tcp, want -j KUBE-EXT-RMXBZCT6XVCXF3QP"},
		{name: "external IP without endpoints", check: CheckExternalFilter,
			objs: func(o *APIObjects) { service(o, "no-endpoints-service").Spec.ExternalIPs = []string{"192.0.2.51"} },
			want: "filter KUBE-EXTERNAL-SERVICES has no REJECT rule for default/no-endpoints-service external IP 192.0.2.51:9999/tcp (no ready endpoints)"},
		{name: "FW source range removed", check: CheckFW,
			dump: deleteLines("-A KUBE-FW-AOFE7JZSOCHI7LXR -s 192.168.0.0/16"),
			want: "KUBE-FW-AOFE7JZSOCHI7LXR for default/local-service does not let source 192.168.0.0/16 through to KUBE-EXT-AOFE7JZSOCHI7LXR"},
		{name: "source range holding the node", check: CheckFW,
			objs: func(o *APIObjects) {
				service(o, "local-service").Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/16", "172.18.0.0/16"}
			},
			want: "KUBE-FW-AOFE7JZSOCHI7LXR for default/local-service does not let source 172.18.255.11/32 through to KUBE-EXT-AOFE7JZSOCHI7LXR"},
		{name: "LB firewall DROP removed", check: CheckFWDrop,
			dump: deleteLines("traffic not accepted by KUBE-FW-AOFE7JZSOCHI7LXR"),
			want: "filter KUBE-PROXY-FIREWALL has no DROP for default/local-service load-balancer IP 172.18.255.11:80/tcp from outside its source ranges"},
		{name: "health check accept removed", check: CheckHealthCheck,
			dump: deleteLines(`"default/local-service health check node port"`),
			want: "filter KUBE-NODEPORTS does not accept default/local-service health check node port 31445/tcp"},
		{name: "stray chain", check: CheckStale,
			dump: replaceOnce(":KUBE-SVC-AEGTNIFGRXWJJUR2 - [0:0]\n", ":KUBE-SVC-AEGTNIFGRXWJJUR2 - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n"),
			want: "nat chain KUBE-SVC-AAAAAAAAAAAAAAAA (line 80) belongs to no Service port with endpoints on this node"},
		{name: "Service deleted", check: CheckStale,
			objs: func(o *APIObjects) {
				svcs := o.Services[:0]
				for _, s := range o.Services {
					if s.Name != "affinity-service" {
						svcs = append(svcs, s)
					}
				}
				o.Services = svcs
			},
			want: "nat chain KUBE-SVC-AEGTNIFGRXWJJUR2 (line 79) belongs to no Service port"},
	}

	fired := map[string]bool{}
	ran := 0
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			ran++
			dump := readDump(t)
			if m.dump != nil {
				dump = m.dump(t, dump)
			}
			objs := readObjects(t)
			if m.objs != nil {
				m.objs(objs)
			}
			rs, err := ParseString(dump)
			if err != nil {
				t.Fatalf("mutated dump does not parse: %v", err)
			}
			findings, err := Check(rs, readNode(t), objs, seedOptions)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				if f.Check == m.check && strings.Contains(f.Message, m.want) {
					fired[m.check] = true
					return
				}
			}
			t.Errorf("no [%s] finding containing %q; got:", m.check, m.want)
			for _, f := range findings {
				t.Logf("  [%s] %s", f.Check, f)
			}
		})
	}
	if ran < len(mutations) {
		return // -run picked some mutations only
	}
	for _, c := range AllChecks {
		if !fired[c] {
			t.Errorf("check %s was never seen to fail", c)
		}
	}
}

// Rules that cannot accept a connection's first packet may precede
// kube-proxy's jumps; rules after them do not matter.
func TestForwardOrderAllows(t *testing.T) {
	dump := replaceOnce(`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall"`,
		"-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"+
			"-A FORWARD -m conntrack ! --ctstate NEW -j ACCEPT\n"+
			"-A FORWARD -i eth0 -j DROP\n"+
			`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall"`)(t, readDump(t))
	dump = replaceOnce("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n",
		"-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n-A FORWARD -o eth0 -j ACCEPT\n")(t, dump)
	rs, err := ParseString(dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range CheckNode(rs) {
		if f.Check == CheckForwardOrder {
			t.Errorf("unexpected finding: %s", f)
		}
	}
	// ...but one more rule accepting NEW traffic ahead of them is caught.
	rs, err = ParseString(replaceOnce("-A FORWARD -i eth0 -j DROP\n", "-A FORWARD -i eth0 -j DROP\n-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED -s 10.244.0.0/16 -j ACCEPT\n")(t, dump))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range CheckNode(rs) {
		if f.Check == CheckForwardOrder {
			got = append(got, f.Message)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], "rule 4") || !strings.Contains(got[0], "KUBE-PROXY-FIREWALL, KUBE-FORWARD, KUBE-SERVICES, KUBE-EXTERNAL-SERVICES") {
		t.Errorf("findings = %q, want one naming rule 4 and all four jumps", got)
	}
}
