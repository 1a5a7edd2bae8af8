package iptables

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dumpDir holds the seed dumps from a kind cluster running kube-proxy
// v1.34.4 in iptables mode.
var dumpDir = filepath.Join("..", "testdata", "v1.34.4-single-node", "iptables")

func readDump(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dumpDir, "iptables-save.txt"))
	if err != nil {
		t.Fatalf("reading seed dump: %v", err)
	}
	return string(b)
}

func parseDump(t testing.TB) *Ruleset {
	t.Helper()
	rs, err := ParseString(readDump(t))
	if err != nil {
		t.Fatalf("parsing seed dump: %v", err)
	}
	return rs
}

// findRule returns the first rule of a chain that pred accepts.
func findRule(t *testing.T, rs *Ruleset, table, chain string, pred func(*Rule) bool) *Rule {
	t.Helper()
	c := rs.Chain(table, chain)
	if c == nil {
		t.Fatalf("no chain %s/%s", table, chain)
	}
	for _, r := range c.Rules {
		if pred(r) {
			return r
		}
	}
	t.Fatalf("no matching rule in %s/%s", table, chain)
	return nil
}

func TestParseSeedDumpShape(t *testing.T) {
	rs := parseDump(t)
	var names []string
	for _, tb := range rs.Tables {
		names = append(names, tb.Name)
	}
	if got := strings.Join(names, ","); got != "mangle,filter,nat" {
		t.Fatalf("tables = %s, want mangle,filter,nat", got)
	}
	nat := rs.Table("nat")
	if n := len(nat.Chains); n != 35 {
		t.Errorf("nat chains = %d, want 35", n)
	}
	total := 0
	for _, c := range nat.Chains {
		total += len(c.Rules)
	}
	if total != 85 {
		t.Errorf("nat rules = %d, want 85", total)
	}
	pre := nat.Chain("PREROUTING")
	if pre.Policy != "ACCEPT" || pre.Counters != (Counters{Packets: 10, Bytes: 600}) || !pre.Builtin() {
		t.Errorf("nat PREROUTING = %+v", pre)
	}
	if c := nat.Chain("KUBE-SERVICES"); c.Builtin() || c.Policy != "" {
		t.Errorf("KUBE-SERVICES should be a user chain, got policy %q", c.Policy)
	}
	// The last nat rule in the dump must keep its line number and text.
	last := nat.Chain("KUBE-SVL-AOFE7JZSOCHI7LXR").Rules[1]
	if last.Line != 170 || !strings.HasPrefix(last.Text, "-A KUBE-SVL-AOFE7JZSOCHI7LXR -m comment") {
		t.Errorf("last rule line %d text %q", last.Line, last.Text)
	}
}

func TestParseSeedDumpTypedRules(t *testing.T) {
	rs := parseDump(t)

	// Statistic probability and the jump it guards.
	r := findRule(t, rs, "nat", "KUBE-SVC-L2KBDCMJUD65WX3D", func(r *Rule) bool { return r.Statistic() != nil })
	if st := r.Statistic(); st.Mode != "random" || st.Probability != 0.33333333349 || st.Negate {
		t.Errorf("statistic = %+v", st)
	}
	if r.Target.Kind != TargetJump || r.Target.Name != "KUBE-SEP-62M7JP4UVG6M4CLP" {
		t.Errorf("target = %+v", r.Target)
	}
	if c := r.Comment(); c != "default/frontend-nodeport-service:frontend -> 10.244.0.10:8080" {
		t.Errorf("comment = %q", c)
	}

	// Masquerade rule: negated source, destination, protocol, port.
	r = rs.Chain("nat", "KUBE-SVC-L2KBDCMJUD65WX3D").Rules[0]
	if !r.Source.Set || !r.Source.Negate || r.Source.Prefix != netip.MustParsePrefix("10.244.0.0/16") {
		t.Errorf("source = %+v", r.Source)
	}
	if r.Destination.Negate || r.Destination.Prefix != netip.MustParsePrefix("10.96.65.160/32") {
		t.Errorf("destination = %+v", r.Destination)
	}
	if p, ok := r.DPorts().Single(); !ok || p != 80 || r.Protocol.Name != "tcp" {
		t.Errorf("dport %d %v proto %q", p, ok, r.Protocol.Name)
	}

	// DNAT with session affinity recording.
	r = findRule(t, rs, "nat", "KUBE-SEP-5EWIIJKFOJOXCIGL", func(r *Rule) bool { return r.Target.Name == "DNAT" })
	d, ok := r.Target.Spec.(*DNATTarget)
	if !ok || d.Addr != netip.MustParseAddr("10.244.0.9") || d.Port != 3000 {
		t.Errorf("DNAT spec = %#v", r.Target.Spec)
	}
	rec, ok := r.Match("recent").Spec.(*RecentMatch)
	if !ok || rec.Action != "set" || rec.Name != "KUBE-SEP-5EWIIJKFOJOXCIGL" || rec.Side != "rsource" || rec.Mask != "255.255.255.255" {
		t.Errorf("recent = %#v", r.Match("recent").Spec)
	}
	r = findRule(t, rs, "nat", "KUBE-SVC-AEGTNIFGRXWJJUR2", func(r *Rule) bool { return r.Match("recent") != nil })
	rec = r.Match("recent").Spec.(*RecentMatch)
	if rec.Action != "rcheck" || rec.Seconds != 10800 || !rec.Reap {
		t.Errorf("rcheck = %+v", rec)
	}

	// addrtype, negated mark, MARK, MASQUERADE.
	r = findRule(t, rs, "nat", "KUBE-SERVICES", func(r *Rule) bool { return r.Match("addrtype") != nil })
	if at := r.Match("addrtype").Spec.(*AddrTypeMatch); at.DstType != "LOCAL" || at.DstNegate || at.SrcType != "" {
		t.Errorf("addrtype = %+v", at)
	}
	pr := rs.Chain("nat", "KUBE-POSTROUTING").Rules
	if mm := pr[0].Match("mark").Spec.(*MarkMatch); !mm.Negate || mm.Value != 0x4000 || mm.Mask != 0x4000 {
		t.Errorf("mark match = %+v", mm)
	}
	if mt := pr[1].Target.Spec.(*MarkTarget); mt.Apply(0x4000) != 0 || mt.Apply(0) != 0x4000 {
		t.Errorf("MARK --set-xmark 0x4000/0x0 = %+v", mt)
	}
	if mq := pr[2].Target.Spec.(*MasqueradeTarget); !mq.RandomFully {
		t.Errorf("masquerade = %+v", mq)
	}
	mk := rs.Chain("nat", "KUBE-MARK-MASQ").Rules[0].Target.Spec.(*MarkTarget)
	if mk.Apply(0) != 0x4000 || mk.Apply(0x4001) != 0x4001 {
		t.Errorf("KUBE-MARK-MASQ = %+v", mk)
	}

	// Negated conntrack state, including the virtual DNAT state.
	r = rs.Chain("filter", "KUBE-FIREWALL").Rules[0]
	ct := r.Match("conntrack").Spec.(*ConntrackMatch)
	if !ct.Negate || strings.Join(ct.States, ",") != "RELATED,ESTABLISHED,DNAT" {
		t.Errorf("conntrack = %+v", ct)
	}
	// nfacct with the double blank iptables-save prints.
	r = rs.Chain("filter", "KUBE-FORWARD").Rules[0]
	if nf, ok := r.Match("nfacct").Spec.(*NFAcctMatch); !ok || nf.Name != "ct_state_invalid_dropped_pkts" {
		t.Errorf("nfacct = %#v", r.Match("nfacct"))
	}
	// REJECT with its type.
	r = rs.Chain("filter", "KUBE-SERVICES").Rules[0]
	if rj := r.Target.Spec.(*RejectTarget); rj.With != "icmp-port-unreachable" {
		t.Errorf("reject = %+v", rj)
	}
	// A rule with no target (the FW chain's fall-through marker).
	r = rs.Chain("nat", "KUBE-FW-AOFE7JZSOCHI7LXR").Rules[1]
	if r.Target.Kind != TargetNone || r.Comment() != "other traffic to default/local-service will be dropped by KUBE-PROXY-FIREWALL" {
		t.Errorf("FW fall-through = %+v", r)
	}
}

func TestParseQuotingCountersAndUnknownMatches(t *testing.T) {
	const dump = `*filter
:INPUT DROP [12:3456]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:X - [0:0]
[5:300] -A INPUT -m comment --comment "say \"hi\" \\ it's" -j X
-A INPUT -m set --match-set KUBE-LB dst,dst -m physdev --physdev-is-bridged -j ACCEPT
-A INPUT -m comment --comment "-x" -p udp --dport 53 -j ACCEPT
-A INPUT -m multiport --dports 80,443,8000:8080 -p tcp -g X
-A X -s 10.0.0.0/255.255.0.0 ! -i eth0 -o cni+ -c 7 8 -j CT --notrack
COMMIT
`
	rs, err := ParseString(dump)
	if err != nil {
		t.Fatal(err)
	}
	in := rs.Chain("filter", "INPUT")
	if in.Policy != "DROP" || in.Counters.Bytes != 3456 {
		t.Errorf("INPUT = %+v", in)
	}
	r := in.Rules[0]
	if r.Counters == nil || *r.Counters != (Counters{5, 300}) {
		t.Errorf("counters = %v", r.Counters)
	}
	if c := r.Comment(); c != `say "hi" \ it's` {
		t.Errorf("comment = %q", c)
	}
	if r.Target.Kind != TargetJump || r.Target.Name != "X" {
		t.Errorf("target = %+v", r.Target)
	}

	// Unknown modules are kept whole, without a typed view.
	r = in.Rules[1]
	if len(r.Matches) != 2 {
		t.Fatalf("matches = %+v", r.Matches)
	}
	set := r.Matches[0]
	if set.Module != "set" || set.Spec != nil || len(set.Options) != 1 ||
		set.Options[0].Name != "--match-set" || strings.Join(set.Options[0].Args, " ") != "KUBE-LB dst,dst" {
		t.Errorf("set = %+v", set)
	}
	if pd := r.Matches[1]; pd.Module != "physdev" || pd.Spec != nil || pd.Options[0].Name != "--physdev-is-bridged" || len(pd.Options[0].Args) != 0 {
		t.Errorf("physdev = %+v", pd)
	}

	// A quoted comment that starts with a dash is a value; --dport after -p
	// alone belongs to the protocol's implicit match.
	r = in.Rules[2]
	if r.Comment() != "-x" {
		t.Errorf("comment = %q", r.Comment())
	}
	if p, ok := r.DPorts().Single(); !ok || p != 53 || r.Match("udp") == nil {
		t.Errorf("implicit udp match: %+v", r.Matches)
	}

	r = in.Rules[3]
	ds := r.DPorts()
	if ds == nil || len(ds.Ranges) != 3 || !ds.Contains(8042) || ds.Contains(8081) || !ds.Contains(443) {
		t.Errorf("multiport = %+v", ds)
	}
	if r.Target.Kind != TargetGoto || r.Target.Name != "X" {
		t.Errorf("goto = %+v", r.Target)
	}

	r = rs.Chain("filter", "X").Rules[0]
	if r.Source.Prefix != netip.MustParsePrefix("10.0.0.0/16") || !r.InIface.Negate || r.InIface.Name != "eth0" || r.OutIface.Name != "cni+" {
		t.Errorf("base matches = %+v %+v %+v", r.Source, r.InIface, r.OutIface)
	}
	if r.Counters == nil || r.Counters.Packets != 7 {
		t.Errorf("-c counters = %v", r.Counters)
	}
	if r.Target.Kind != TargetBuiltin || r.Target.Name != "CT" || r.Target.Spec != nil || r.Target.Options[0].Name != "--notrack" {
		t.Errorf("unknown target = %+v", r.Target)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	head := "*nat\n:PREROUTING ACCEPT [0:0]\n:X - [0:0]\n"
	for _, tc := range []struct {
		name, in string
		line     int
		want     string
	}{
		{"rule outside table", "-A X -j ACCEPT\n", 1, "outside a table"},
		{"no commit", head, 3, "no COMMIT"},
		{"undeclared chain", head + "-A Y -j ACCEPT\nCOMMIT\n", 4, "undeclared chain Y"},
		{"bad policy", "*nat\n:PREROUTING MAYBE [0:0]\nCOMMIT\n", 2, "unknown policy"},
		{"bad counters", "*nat\n:PREROUTING ACCEPT [x:0]\nCOMMIT\n", 2, "bad counters"},
		{"duplicate chain", head + ":X - [0:0]\nCOMMIT\n", 4, "declared twice"},
		{"duplicate table", head + "COMMIT\n*nat\nCOMMIT\n", 5, "appears twice"},
		{"nested table", head + "*filter\n", 4, "before table nat was committed"},
		{"bad address", head + "-A X -s 10.0.0.300 -j ACCEPT\nCOMMIT\n", 4, "bad address"},
		{"bad mask", head + "-A X -d 10.0.0.0/255.0.255.0 -j ACCEPT\nCOMMIT\n", 4, "non-contiguous"},
		{"unterminated quote", head + "-A X -m comment --comment \"oops -j ACCEPT\nCOMMIT\n", 4, "unterminated"},
		{"bad probability", head + "-A X -m statistic --mode random --probability 1.5 -j ACCEPT\nCOMMIT\n", 4, "bad probability"},
		{"missing value", head + "-A X -m comment --comment\nCOMMIT\n", 4, "needs 1 value"},
		{"stray word", head + "-A X tcp -j ACCEPT\nCOMMIT\n", 4, "unexpected word"},
		{"goto unknown", head + "-A X -g NOPE\nCOMMIT\n", 4, "goto to unknown chain"},
		{"jump builtin", head + "-A X -j PREROUTING\nCOMMIT\n", 4, "jump to builtin"},
		{"two targets", head + "-A X -j ACCEPT -j DROP\nCOMMIT\n", 4, "more than one target"},
		{"dangling bang", head + "-A X -j ACCEPT !\nCOMMIT\n", 4, "! at end"},
		{"option outside match", head + "-A X --dport 80 -j ACCEPT\nCOMMIT\n", 4, "outside any match"},
		{"bad DNAT", head + "-A X -p tcp -j DNAT --to-destination nowhere\nCOMMIT\n", 4, "bad --to-destination"},
		{"bad mark", head + "-A X -m mark --mark 0xZZ -j ACCEPT\nCOMMIT\n", 4, "bad mark"},
		{"not a rule", head + "hello\nCOMMIT\n", 4, "expected -A CHAIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseString(tc.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Error(), tc.want) {
				t.Errorf("err = %v, want line %d containing %q", err, tc.line, tc.want)
			}
		})
	}
}
