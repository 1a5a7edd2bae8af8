package mutant

import "slices"

// The files the faults change, in k8s.io/kubernetes.
const (
	iptablesProxier = "pkg/proxy/iptables/proxier.go"
	nftablesProxier = "pkg/proxy/nftables/proxier.go"
	topology        = "pkg/proxy/topology.go"
	serviceHealth   = "pkg/proxy/healthcheck/service_health.go"
	sliceCache      = "pkg/proxy/endpointslicecache.go"
	conntrackClean  = "pkg/proxy/conntrack/cleanup.go"
	serviceTracker  = "pkg/proxy/servicechangetracker.go"
)

// Bug classes shared by the iptables and nftables faults.
const (
	classNodePortLocal = "a NodePort answered only on nodes with a local endpoint, although externalTrafficPolicy is Cluster (the Service answers on some nodes and not others)"
	classHairpin       = "hairpin traffic not masqueraded: a pod calling its own Service sees its own address as the source, or no answer at all"
	classETPMasq       = "externalTrafficPolicy: Local traffic masqueraded: the backend sees a node address instead of the client's"
	classSourceRanges  = "loadBalancerSourceRanges ignored: a client outside the ranges reaches the Service"
	classNoReject      = "a Service without endpoints drops connections instead of refusing them (Cilium's documented deviation, cilium#33041): clients hang until their timeout"
	classLBIP          = "a LoadBalancer ingress IP not programmed: the Service answers on its ClusterIP and NodePorts but not at its load-balancer address (nor the Ingress behind it)"
	classUDPPort       = "DNAT to the wrong port for UDP Services (target port + 1): DNS through the kube-dns ClusterIP fails, and so does every UDP Service"
	classPodMasq       = "pod-to-ClusterIP traffic masqueraded as with --masquerade-all, though nobody asked: the backend sees a node address instead of the client pod's"
	classClusterNoMasq = "externalTrafficPolicy: Cluster traffic not masqueraded: the backend sees the outside client, and a reply from another node than the one the client reached goes astray"
)

// Helpers the faults' edits call, appended to the file they edit.
const (
	hasLocalHelper = `func netconformHasLocal(eps []proxy.Endpoint) bool {
	for _, ep := range eps {
		if ep.IsLocal() {
			return true
		}
	}
	return false
}`
	// nftables' DNAT map is "0 : ip . port , 1 : ...": a fifth element for
	// index n mapping to endpoint 0 gives it two draws out of n+1.
	skewHelper = `func netconformSkew(elements []string) []string {
	n := 0
	for _, e := range elements {
		if e == ":" {
			n++
		}
	}
	if n == 0 {
		return elements
	}
	return append(elements, ",", strconv.Itoa(n), ":", elements[2], ".", elements[4])
}`
)

// CatalogVersion is the k8s.io/kubernetes version the faults' edits are
// written against; other versions apply where their code has the same lines.
const CatalogVersion = "v1.37.2"

// Catalog is every fault netconform knows: the seed areas' faults here,
// and each later area's in a file of its own (faults_<area>.go).
var Catalog = slices.Concat(seedFaults)

// seedFaults break the behaviours the seed scenarios check.
var seedFaults = slices.Concat(seedModeFaults, sameInBothModes(
	bothModes{Slug: "nodeport-local-only", Areas: []string{"nodeport"}, Class: classNodePortLocal,
		Edit: Edit{
			Old:    "if hasEndpoints {\n// Jump to the external destination chain.  For better or for",
			New:    "if hasEndpoints && netconformHasLocal(clusterEndpoints) {\n// Jump to the external destination chain.",
			Append: hasLocalHelper}},
	bothModes{Slug: "local-policy-masquerades", Areas: []string{"source-ip"}, Class: classETPMasq,
		Edit: Edit{
			Old: "if !svcInfo.ExternalPolicyLocal() {\n// If we are using non-local endpoints we need to masquerade,",
			New: "if true {\n// If we are using non-local endpoints we need to masquerade,"}},
	bothModes{Slug: "pod-traffic-masqueraded", Areas: []string{"source-ip"}, Class: classPodMasq,
		Edit: Edit{Old: "if proxier.masqueradeAll {", New: "if true {"}},
	bothModes{Slug: "cluster-policy-not-masqueraded", Areas: []string{"source-ip"}, Class: classClusterNoMasq,
		Edit: Edit{
			Old: "if !svcInfo.ExternalPolicyLocal() {\n// If we are using non-local endpoints we need to masquerade,",
			New: "if false {\n// If we are using non-local endpoints we need to masquerade,"}},
))

// bothModes is a fault whose one edit reads the same in the iptables and
// the nftables proxier: sameInBothModes makes it <mode>/<Slug> for each.
type bothModes struct {
	Slug  string
	Areas []string
	Class string
	Edit  Edit // File is set per mode
}

func sameInBothModes(faults ...bothModes) []Fault {
	var out []Fault
	for _, mode := range []struct{ name, file string }{{"iptables", iptablesProxier}, {"nftables", nftablesProxier}} {
		for _, f := range faults {
			e := f.Edit
			e.File = mode.file
			out = append(out, Fault{Name: mode.name + "/" + f.Slug, Mode: mode.name, Areas: f.Areas, Class: f.Class, Edits: []Edit{e}})
		}
	}
	return out
}

// seedModeFaults are the seed faults whose edits differ between modes, and
// those in the code the modes share.
var seedModeFaults = []Fault{
	// ---- iptables mode ----
	{
		Name: "iptables/skewed-probability", Mode: "iptables", Areas: []string{"balancing", "dataplane"},
		Class: "endpoint selection that is not uniform: every statistic rule but the last matches with probability ½, so three endpoints get (½, ¼, ¼)",
		Edits: []Edit{{File: iptablesProxier,
			Old: `"--probability", proxier.probability(numEndpoints-i))`,
			New: `"--probability", proxier.probability(2))`}},
	},
	{
		Name: "iptables/affinity-never-sticks", Mode: "iptables", Areas: []string{"balancing"},
		Class: "sessionAffinity ClientIP that never sticks: the client's address is recorded under another name than the one checked",
		Edits: []Edit{{File: iptablesProxier,
			Old: `args = append(args, "-m", "recent", "--name", string(endpointChain), "--set")`,
			New: `args = append(args, "-m", "recent", "--name", string(endpointChain)+"-X", "--set")`}},
	},
	{
		Name: "iptables/no-hairpin-masquerade", Mode: "iptables", Areas: []string{"hairpin"},
		Class: classHairpin,
		Edits: []Edit{{File: iptablesProxier,
			Old: "\"-s\", epInfo.IP(),\n\"-j\", string(kubeMarkMasqChain))",
			New: "\"-s\", \"255.255.255.255\",\n\"-j\", string(kubeMarkMasqChain))"}},
	},
	{
		Name: "iptables/source-ranges-ignored", Mode: "iptables", Areas: []string{"loadbalancer"},
		Class: classSourceRanges,
		Edits: []Edit{{File: iptablesProxier,
			Old: `usesFWChain := hasEndpoints && len(svcInfo.LoadBalancerVIPs()) > 0 && len(svcInfo.LoadBalancerSourceRanges()) > 0`,
			New: `usesFWChain := false`}},
	},
	{
		Name: "iptables/drop-without-endpoints", Mode: "iptables", Areas: []string{"no-endpoints"},
		Class: classNoReject,
		Edits: []Edit{
			{File: iptablesProxier, Old: `internalTrafficFilterTarget = "REJECT"`, New: `internalTrafficFilterTarget = "DROP"`},
			{File: iptablesProxier, Old: `externalTrafficFilterTarget = "REJECT"`, New: `externalTrafficFilterTarget = "DROP"`},
		},
	},
	{
		Name: "iptables/lb-ip-not-captured", Mode: "iptables", Areas: []string{"loadbalancer", "ingress"},
		Class: classLBIP,
		Edits: []Edit{{File: iptablesProxier,
			Old: "for _, lbip := range svcInfo.LoadBalancerVIPs() {\nif hasEndpoints {\nnatRules.Write(",
			New: "for _, lbip := range svcInfo.LoadBalancerVIPs() {\nif false {\nnatRules.Write("}},
	},
	{
		Name: "iptables/udp-wrong-port", Mode: "iptables", Areas: []string{"dns", "udp", "ports"},
		Class: classUDPPort,
		Edits: []Edit{{File: iptablesProxier,
			Old: `args = append(args, "-m", protocol, "-p", protocol, "-j", "DNAT", "--to-destination", epInfo.String())`,
			New: `args = append(args, "-m", protocol, "-p", protocol, "-j", "DNAT", "--to-destination", netconformTarget(protocol, epInfo.IP(), epInfo.Port()))`,
			Append: `func netconformTarget(protocol, ip string, port int) string {
	if protocol == "udp" {
		port++
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}`}},
	},

	// ---- nftables mode ----
	{
		Name: "nftables/skewed-numgen", Mode: "nftables", Areas: []string{"balancing", "dataplane"},
		Class: "endpoint selection that is not uniform: numgen draws from n+1 slots and the extra one maps to the first endpoint, so three endpoints get (½, ¼, ¼) and two get a 2:1 split",
		Edits: []Edit{{File: nftablesProxier,
			Old:    "\"numgen random mod\", len(endpoints), \"map\",\n\"{\", elements, \"}\",",
			New:    "\"numgen random mod\", len(endpoints)+1, \"map\",\n\"{\", netconformSkew(elements), \"}\",",
			Append: skewHelper}},
	},
	{
		Name: "nftables/affinity-never-sticks", Mode: "nftables", Areas: []string{"balancing"},
		Class: "sessionAffinity ClientIP that never sticks: the endpoint chain no longer adds the client to its affinity set",
		Edits: []Edit{{File: nftablesProxier,
			Old: "\"update\", \"@\", epInfo.affinitySetName,\n\"{\", ipX, \"saddr\", \"}\",",
			New: "\"counter\","}},
	},
	{
		Name: "nftables/no-hairpin-masquerade", Mode: "nftables", Areas: []string{"hairpin"},
		Class: classHairpin,
		Edits: []Edit{{File: nftablesProxier,
			Old: "if epInfo.IsLocal() {\nproxier.hairpinConnections.ensureElem(tx, &knftables.Element{",
			New: "if false && epInfo.IsLocal() {\nproxier.hairpinConnections.ensureElem(tx, &knftables.Element{"}},
	},
	{
		Name: "nftables/source-ranges-ignored", Mode: "nftables", Areas: []string{"loadbalancer"},
		Class: classSourceRanges,
		Edits: []Edit{{File: nftablesProxier,
			Old: `usesFWChain := len(svcInfo.LoadBalancerVIPs()) > 0 && len(svcInfo.LoadBalancerSourceRanges()) > 0`,
			New: `usesFWChain := false`}},
	},
	{
		Name: "nftables/drop-without-endpoints", Mode: "nftables", Areas: []string{"no-endpoints"},
		Class: classNoReject,
		Edits: []Edit{
			{File: nftablesProxier, Old: `internalTrafficFilterVerdict = fmt.Sprintf("goto %s", rejectChain)`, New: `internalTrafficFilterVerdict = "drop"`},
			{File: nftablesProxier, Old: `externalTrafficFilterVerdict = fmt.Sprintf("goto %s", rejectChain)`, New: `externalTrafficFilterVerdict = "drop"`},
		},
	},
	{
		Name: "nftables/lb-ip-not-captured", Mode: "nftables", Areas: []string{"loadbalancer", "ingress"},
		Class: classLBIP,
		Edits: []Edit{{File: nftablesProxier,
			Old: "for _, lbip := range svcInfo.LoadBalancerVIPs() {\nif hasEndpoints {\nproxier.serviceIPs.ensureElem(tx, &knftables.Element{",
			New: "for _, lbip := range svcInfo.LoadBalancerVIPs() {\nif false {\nproxier.serviceIPs.ensureElem(tx, &knftables.Element{"}},
	},
	{
		Name: "nftables/udp-wrong-port", Mode: "nftables", Areas: []string{"dns", "udp", "ports"},
		Class: classUDPPort,
		Edits: []Edit{
			{File: nftablesProxier,
				Old: `strconv.Itoa(i), ":", epInfo.IP(), ".", strconv.Itoa(epInfo.Port()),`,
				New: `strconv.Itoa(i), ":", epInfo.IP(), ".", strconv.Itoa(netconformPort(svcInfo.Protocol(), epInfo.Port())),`,
				Append: `func netconformPort(p v1.Protocol, port int) int {
	if p == v1.ProtocolUDP {
		return port + 1
	}
	return port
}`},
			{File: nftablesProxier,
				Old: `"dnat to", net.JoinHostPort(epInfo.IP(), strconv.Itoa(epInfo.Port())),`,
				New: `"dnat to", net.JoinHostPort(epInfo.IP(), strconv.Itoa(netconformPort(svcInfo.Protocol(), epInfo.Port()))),`},
		},
	},

	// ---- code every mode shares (pkg/proxy) ----
	{
		Name: "shared/local-policy-falls-back", Mode: "", Areas: []string{"internal-traffic-policy"},
		Class: "internalTrafficPolicy: Local falling back to remote endpoints when the node has none",
		Edits: []Edit{{File: topology,
			Old: "return ep.IsLocal() && ep.IsServing() && ep.IsTerminating()\n})\n}",
			New: `return ep.IsLocal() && ep.IsServing() && ep.IsTerminating()
})
} else if svcInfo.InternalPolicyLocal() {
localEndpoints = filterEndpoints(endpoints, func(ep Endpoint) bool { return ep.IsReady() })
}`}},
	},
	{
		Name: "shared/no-terminating-fallback", Mode: "", Areas: []string{"terminating"},
		Class: "no fallback to serving terminating endpoints: once no endpoint is ready (a rollout, a drain) the Service drops its traffic, though its terminating pods still serve (Cilium under externalTrafficPolicy Local, cilium#37613)",
		Edits: []Edit{
			{File: topology,
				Old: "if ep.IsServing() && ep.IsTerminating() {\nreturn true\n}",
				New: "if ep.IsServing() && ep.IsTerminating() {\nreturn !netconformNoFallback\n}"},
			{File: topology,
				Old:    "useServingTerminatingEndpoints = true\nlocalEndpoints = filterEndpoints(endpoints, func(ep Endpoint) bool {",
				New:    "useServingTerminatingEndpoints = true\nlocalEndpoints = filterEndpoints(endpoints, func(ep Endpoint) bool {\nif netconformNoFallback {\nreturn false\n}",
				Append: "const netconformNoFallback = true\n"},
		},
	},
	{
		Name: "shared/health-ignores-local-endpoints", Mode: "", Areas: []string{"source-ip", "terminating"},
		Class: "a healthCheckNodePort that answers 200 whether or not the node has local endpoints, so a load balancer keeps sending to nodes that drop the traffic",
		Edits: []Edit{{File: serviceHealth,
			Old: `if count != 0 && kubeProxyHealthy {`,
			New: `if kubeProxyHealthy {`}},
	},
	{
		Name: "shared/readiness-changes-ignored", Mode: "", Areas: []string{"balancing", "no-endpoints"},
		Class: "EndpointSlice updates compared by their addresses alone: an endpoint whose readiness changes keeps the state kube-proxy first saw, so a pod that becomes ready is not used until some other address of its slice changes",
		Edits: []Edit{{File: sliceCache,
			Old: "return !reflect.DeepEqual(esData, appliedData)",
			New: "return !netconformSameAddresses(esData, appliedData)",
			Append: `func netconformSameAddresses(a, b *endpointSliceData) bool {
	if a.remove != b.remove || (a.endpointSlice == nil) != (b.endpointSlice == nil) {
		return false
	}
	if a.endpointSlice == nil {
		return true
	}
	x, y := a.endpointSlice.Endpoints, b.endpointSlice.Endpoints
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !reflect.DeepEqual(x[i].Addresses, y[i].Addresses) {
			return false
		}
	}
	return reflect.DeepEqual(a.endpointSlice.Ports, b.endpointSlice.Ports)
}`}},
	},
	{
		Name: "shared/new-endpoints-ignored", Mode: "", Areas: []string{"balancing"},
		Class: "endpoints added to a settled Service ignored: once every endpoint of a slice is ready, an address that joins it is never used, so a scale-up gets no traffic (the change tracking of incremental syncs gone wrong)",
		Edits: []Edit{{File: sliceCache,
			Old: `esTracker.applied[name] = sliceData`,
			New: `esTracker.applied[name] = netconformDropNew(esTracker.applied[name], sliceData)`,
			Append: `func netconformDropNew(old, cur *endpointSliceData) *endpointSliceData {
	if old == nil || old.endpointSlice == nil || cur.endpointSlice == nil || len(old.endpointSlice.Endpoints) == 0 {
		return cur
	}
	known := map[string]bool{}
	for _, ep := range old.endpointSlice.Endpoints {
		if ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
			return cur // not settled yet: take the update
		}
		for _, a := range ep.Addresses {
			known[a] = true
		}
	}
	kept := cur.endpointSlice.DeepCopy()
	kept.Endpoints = nil
	for _, ep := range cur.endpointSlice.Endpoints {
		if len(ep.Addresses) > 0 && known[ep.Addresses[0]] {
			kept.Endpoints = append(kept.Endpoints, *ep.DeepCopy())
		}
	}
	return &endpointSliceData{kept, cur.remove}
}`}},
	},
	{
		Name: "shared/udp-stale-conntrack-kept", Mode: "", Areas: []string{"conntrack"},
		Class: "stale UDP conntrack entries never deleted: a UDP client that keeps its source port keeps sending to an endpoint that is gone, while the Service has others (kube-proxy's oldest recurring bug class)",
		Edits: []Edit{{File: conntrackClean,
			Old:    "start := time.Now()\nklog.V(4).InfoS(\"Started to reconcile conntrack entries\", \"ipFamily\", ipFamily)",
			New:    "if netconformKeepConntrack {\nreturn\n}\nstart := time.Now()\nklog.V(4).InfoS(\"Started to reconcile conntrack entries\", \"ipFamily\", ipFamily)",
			Append: "const netconformKeepConntrack = true\n"}},
	},
	{
		Name: "shared/service-updates-ignored", Mode: "", Areas: []string{"dns", "balancing", "internal-traffic-policy"},
		Class: "Service updates ignored: a Service is programmed as it was created, and a later change (its type, session affinity, a traffic policy, a load-balancer address) never reaches the data plane",
		Edits: []Edit{{File: serviceTracker,
			Old:    "if previous == nil && current == nil {\nreturn false\n}",
			New:    "if previous == nil && current == nil {\nreturn false\n}\nif previous != nil && current != nil && netconformIgnoreUpdates {\nreturn false\n}",
			Append: "const netconformIgnoreUpdates = true\n"}},
	},
	{
		Name: "shared/stale-endpoints-kept", Mode: "", Areas: []string{"balancing"},
		Class: "endpoints kept after they leave the EndpointSlice: a pod taken out of the Service keeps receiving its traffic",
		Edits: []Edit{{File: sliceCache,
			Old: `esTracker.applied[name] = sliceData`,
			New: `esTracker.applied[name] = netconformKeepStale(esTracker.applied[name], sliceData)`,
			Append: `func netconformKeepStale(old, cur *endpointSliceData) *endpointSliceData {
	if old == nil || old.endpointSlice == nil || cur.endpointSlice == nil {
		return cur
	}
	merged := cur.endpointSlice.DeepCopy()
	seen := map[string]bool{}
	for _, ep := range merged.Endpoints {
		for _, a := range ep.Addresses {
			seen[a] = true
		}
	}
	for _, ep := range old.endpointSlice.Endpoints {
		if len(ep.Addresses) > 0 && !seen[ep.Addresses[0]] {
			merged.Endpoints = append(merged.Endpoints, ep)
		}
	}
	return &endpointSliceData{merged, cur.remove}
}`}},
	},
}
