// Package iptables reads a node's iptables-save dump into a typed model and
// predicts, from it, what kube-proxy's iptables mode does to a packet.
//
// Parse keeps every table, chain and rule of the dump in order. Matches and
// targets the package models get a typed view (Match.Spec, Target.Spec);
// the rest are kept as written (Match.Options), so nothing in a dump is
// silently dropped.
package iptables
