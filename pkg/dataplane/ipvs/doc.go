// Package ipvs reads a node's IPVS table, as `ipvsadm -Ln` (or
// `ipvsadm -Ln --stats`) prints it or as the kernel prints
// /proc/net/ip_vs, and checks it against the Services and EndpointSlices
// kube-proxy's ipvs mode programs it from.
//
// # Reading
//
// Parse keeps every virtual service (protocol, address and port, or a
// firewall mark) with its scheduler and flags, and every real server under
// it with its forwarding method, weight and connection counts (or, from a
// --stats listing, its packet and byte counters). Addresses must be numeric
// (ipvsadm's -n); /proc/net/ip_vs's hexadecimal addresses are decoded.
// Anything else gives a *ParseError naming the line.
//
// The two sources differ in one respect a reader should know: ipvsadm
// prints a persistent service's timeout in seconds, while /proc/net/ip_vs
// prints the kernel's stored value, which is in jiffies (seconds × HZ, and
// HZ is a kernel build option). Table.Source says which was read; Check
// compares timeouts only for ipvsadm output.
//
// # Expectations
//
// Expect derives from API objects the virtual services kube-proxy's ipvs
// proxier must have created on a node for each Service port — the ClusterIP
// (internal traffic policy), each NodePort on the node's addresses, each
// LoadBalancer ingress IP and external IP (external traffic policy) — with
// one real server per usable endpoint at weight 1, forwarding by
// masquerade, under the configured scheduler (rr unless told otherwise) and
// with persistence for ClientIP session affinity. Check compares them with a
// table; see Finding. Real servers at weight 0 that no endpoint accounts for
// are tolerated: that is how kube-proxy drains a removed endpoint's
// connections (graceful termination) before deleting it.
//
// Which endpoints are usable on a node (ready ones, else serving and
// terminating ones; this node's only under a Local policy) is decided as
// for the iptables mode, by iptables.ServicePorts and Categorize: kube-proxy
// shares that logic between its proxiers.
package ipvs
