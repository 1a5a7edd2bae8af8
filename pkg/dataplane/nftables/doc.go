// Package nftables reads a node's `nft -j list ruleset` dump, predicts what
// kube-proxy's nftables mode does to a packet, and checks that the dump holds
// what a set of Services and EndpointSlices require.
//
// It has three parts:
//
//   - ParseJSON turns the JSON dump into a typed Ruleset: every table, chain,
//     rule, set and map, with rule statements and expressions as Go values
//     (Match, VerdictStmt, VMap, NAT, Mangle, ...). Tables other than
//     kube-proxy's are kept too; statements this package does not model
//     (xt, log, limit, ...) are kept opaque as OtherStmt, so a whole host
//     ruleset parses. Malformed input is an error naming the place.
//
//   - NewTracer walks the kube-proxy table(s) of the packet's family the way
//     netfilter would for the first packet of a connection, forking at
//     `numgen random mod N vmap { ... }` with probability 1/N per element
//     (and likewise at kube-proxy v1.37's `dnat ip to numgen random mod N
//     map { i : addr . port }`), and returns a dataplane.Result: destinations with probabilities, per-branch
//     masquerade and chain path, or the rule that dropped or rejected.
//
//   - Check derives, from corev1.Service, discoveryv1.EndpointSlice and the
//     node, what kube-proxy must have written for each Service port, in the
//     table's layout (DetectLayout: v1.34's endpoint chains and
//     mark-for-masquerade chain, or v1.37's DNAT maps, inline masquerade
//     marks and @hairpin-connections), and returns precise Findings for
//     what the dump lacks or gets wrong.
//
// # Chain names
//
// kube-proxy's nftables mode names per-Service chains
// "<prefix><HASH>-<ns>/<svc>/<proto>/<portname>" and per-endpoint chains
// "endpoint-<HASH>-<ns>/<svc>/<proto>/<portname>__<ip>/<port>", where HASH is
// the first 8 characters of the standard base32 encoding of the SHA-256 of
// the text after the hash ("<ns>/<svc>/<proto>/<portname>[__<ip>/<port>]").
// This differs from iptables mode (16 characters, hash of "ns/svc:port" plus
// protocol); see ServiceChainBase and EndpointChainBase.
//
// # What the tracer simplifies
//
//   - Only the tables named "kube-proxy" of the packet's family (ip or ip6,
//     and inet) are evaluated. Other tables (Docker's, iptables-nft's compat
//     tables) are parsed but not walked, because they are not kube-proxy's
//     contract and often hold xt statements whose meaning the JSON hides.
//   - Hooks: a packet From pod or external meets prerouting, then input when
//     its (possibly DNATed) destination is a node address or loopback, else
//     forward then postrouting. A packet From local meets output and
//     postrouting, then input when its destination is local; the prerouting
//     pass of a looped-back packet is skipped.
//   - Within a hook, base chains run in priority order (ties in handle order);
//     accept and NAT statements end a base chain, drop and reject end the
//     packet. A chain's policy applies when it falls off its end.
//   - The packet is the first of its connection: `ct state` is "new",
//     `ct status` has "dnat" once a DNAT ran, `ct direction` is "original".
//     Other ct keys, interface names and source ports cannot be known and make
//     Trace fail rather than guess.
//   - `fib saddr|daddr type` is "local" for the node IPs given to NewTracer
//     and loopback addresses, "unicast" otherwise.
//   - Session affinity: sets are read as dumped (normally empty), so the
//     first-connection split is predicted; `update @set` is a no-op.
//   - Masquerade is reported per branch when a masquerade statement ran in
//     postrouting. A branch delivered locally (input) meets no postrouting and
//     is never masqueraded even if marked.
//   - Numbers are compared as unsigned integers; named protocol and address
//     literals are canonicalised; probabilities are float64.
//   - When branches end differently (a numgen map that does not cover its
//     modulus, say), Verdict is accept, Destinations hold the accepted
//     branches (their probabilities then sum to less than 1) and Rule names
//     the rules that dropped or rejected the others.
//   - Runaway rulesets are cut off with an error: 64 nested jumps or gotos,
//     4,096 forks, 2^18 rule evaluations per trace.
//
// # What Check simplifies
//
//   - It restates kube-proxy v1.34's syncProxyRules decisions (cluster and
//     local endpoints, ready before serving-terminating, internal and
//     external traffic policy, no-endpoint reject versus drop) but ignores
//     topology hints and trafficDistribution, which would narrow the
//     endpoint set on some nodes.
//   - It checks what must be present, and reports map elements no Service
//     accounts for; it does not report stale chains, which kube-proxy
//     flushes at once but deletes only later.
//   - nodeport-ips is checked only when the dump has it (nodePortAddresses
//     set); the health-check NodePort is not checked (it is served by
//     kube-proxy's own listener, not by rules).
//   - Without Cluster.ClusterCIDRs the masquerade and short-circuit rules
//     are checked for their shape, whatever source prefix they name.
package nftables
