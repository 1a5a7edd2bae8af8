// Package iptables reads a node's iptables-save dump into a typed model,
// predicts from it what kube-proxy's iptables mode does to a packet, and
// checks the dump against the Services and EndpointSlices it was built from.
//
// # Parsing
//
// Parse keeps every table, chain and rule of the dump in order, with line
// numbers and the rule text as written. Matches and targets the package
// models get a typed view (Match.Spec, Target.Spec); the rest are kept as
// written (Match.Options, Target.Options), so nothing in a dump is silently
// dropped. Input that cannot be read gives a *ParseError with the line.
//
// # Tracing
//
// Tracer follows the first packet of a connection (conntrack state NEW)
// through the nat and filter tables in the order of the netfilter hooks:
//
//   - from a pod or from outside: nat PREROUTING, then, by the destination
//     after DNAT, either filter INPUT and nat INPUT (a node address) or
//     filter FORWARD and nat POSTROUTING;
//   - from the node: nat OUTPUT, filter OUTPUT, nat POSTROUTING, and filter
//     INPUT when the destination is a node address.
//
// The model, and what it leaves out on purpose:
//
//   - Branches. A -m statistic rule splits a branch: the matching share
//     takes the rule's target, the rest goes on to the next rule, so
//     kube-proxy's 1/n, 1/(n-1), ... rules give each endpoint 1/n. Each
//     branch carries its own packet mark, so KUBE-MARK-MASQ on a hairpin
//     branch marks only that branch. --mode nth is taken as probability
//     1/every.
//   - Session affinity. -m recent is read as for a client never seen
//     before: --set matches, --rcheck/--update/--remove do not. Affinity
//     therefore never changes a first packet's destination.
//   - Conntrack. The packet's state is NEW, plus DNAT once a branch was
//     DNATed and SNAT once it was masqueraded (the virtual states
//     -m conntrack --ctstate knows), never ESTABLISHED, RELATED or INVALID.
//   - Addresses. -m addrtype LOCAL is an address among the node IPs given to
//     NewTracer, or loopback; other address types are not modelled.
//     Load-balancer IPs are not local unless listed as node IPs.
//   - Tables. raw, mangle and security are not walked; kube-proxy writes
//     only canary chains there. Routing is reduced to "is the destination a
//     node address".
//   - Outcomes. Verdict accept lists every accepted branch as a Destination
//     (after DNAT, or unchanged when a branch was not DNATed while another
//     was) with its probability; when no branch is DNATed, Destinations is
//     empty. When every branch is dropped or rejected, the verdict and Rule
//     are those of the branch with the largest share. When some branches are
//     accepted and others not, the verdict is accept, the Destinations are
//     the accepted ones only (their shares then sum to less than 1), and
//     Rule names the heaviest branch's dropping rule. A builtin chain's
//     policy is quoted as its ":CHAIN POLICY [p:b]" line.
//   - Paths. Destination.Path lists the chains the branch entered, in
//     order, across both tables: builtin chains as "table/CHAIN" (each marks
//     a hook, and tells nat KUBE-SERVICES from filter KUBE-SERVICES), user
//     chains by name.
//   - Masquerade is true for a destination whose branch met a MASQUERADE or
//     SNAT target (in nat POSTROUTING or nat INPUT).
//   - Refusals. A rule the packet reaches whose match cannot be decided from
//     a Packet (-i/-o, source ports, -m set, physdev, ...) or whose target
//     is not modelled makes Trace return an error naming the rule rather
//     than guess. Matches are evaluated in order and stop at the first that
//     fails, so such a rule is harmless when an earlier match rules it out.
//
// # Expectations
//
// Expect derives, from API objects, the rules kube-proxy must have written
// on a node for each Service port, and Check compares them with a dump; see
// Finding.
package iptables
