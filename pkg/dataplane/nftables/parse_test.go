package nftables

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

const dumpDir = "../testdata/v1.34.4-single-node/nftables/"

func loadDump(t testing.TB) *Ruleset {
	t.Helper()
	f, err := os.Open(dumpDir + "nft-list-ruleset.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := ParseJSON(f)
	if err != nil {
		t.Fatalf("parsing the v1.34.4 dump: %v", err)
	}
	return rs
}

func TestParseDumpStructure(t *testing.T) {
	rs := loadDump(t)
	if rs.Version != "1.0.6" {
		t.Errorf("Version = %q, want 1.0.6", rs.Version)
	}
	if got := len(rs.Tables); got != 8 {
		t.Errorf("%d tables, want 8", got)
	}
	kp := rs.Table("ip", KubeProxyTable)
	if kp == nil || rs.Table("ip6", KubeProxyTable) == nil {
		t.Fatal("missing ip or ip6 kube-proxy table")
	}
	// nft 1.0.6 leaves the table comment out of its JSON, so
	// kp.Comment is empty here although the text dump shows it.

	pre := kp.Chain("filter-prerouting-pre-dnat")
	if pre == nil || pre.Hook != "prerouting" || pre.Type != "filter" || pre.Priority != -110 || pre.Policy != "accept" {
		t.Errorf("filter-prerouting-pre-dnat = %+v", pre)
	}
	var hooks []string
	for _, c := range kp.BaseChains("output") {
		hooks = append(hooks, c.Name)
	}
	if got, want := strings.Join(hooks, ","), "filter-output-pre-dnat,nat-output,filter-output"; got != want {
		t.Errorf("output base chains by priority = %s, want %s", got, want)
	}

	sips := kp.Set("service-ips")
	if sips == nil || !sips.IsVerdictMap() || len(sips.Elements) != 11 {
		t.Fatalf("service-ips = %+v", sips)
	}
	if got, want := strings.Join(sips.Type, " . "), "ipv4_addr . inet_proto . inet_service"; got != want {
		t.Errorf("service-ips type %q, want %q", got, want)
	}
	el := sips.Elements[7]
	if got, want := el.String(), "10.96.85.230 . tcp . 3000 : goto service-TTACPZBM-default/backend-service/tcp/backend"; got != want {
		t.Errorf("service-ips[7] = %q, want %q", got, want)
	}
	noep := kp.Set("no-endpoint-services").Elements
	if len(noep) != 1 || noep[0].Comment != "default/no-endpoints-service" {
		t.Errorf("no-endpoint-services elements = %v", noep)
	}
	aff := kp.Set("affinity-DH42Q33Z-default/affinity-service/tcp/__10.244.0.4/3000")
	if aff == nil || aff.Timeout != 10800 || aff.IsMap() {
		t.Errorf("affinity set = %+v", aff)
	}

	// The backend Service chain's load-balancing rule is typed all the
	// way down: a vmap keyed by numgen over an anonymous map of gotos.
	svc := kp.Chain("service-TTACPZBM-default/backend-service/tcp/backend")
	vm, ok := svc.Rules[1].Stmts[0].(VMap)
	if !ok {
		t.Fatalf("rule 1 statement 0 is %T, want VMap", svc.Rules[1].Stmts[0])
	}
	if ng, ok := vm.Key.(Numgen); !ok || ng.Mod != 2 || ng.Mode != "random" {
		t.Errorf("vmap key = %#v", vm.Key)
	}
	m, ok := vm.Data.(AnonSet)
	if !ok || len(m) != 2 {
		t.Fatalf("vmap data = %#v", vm.Data)
	}
	if v, ok := m[1].Value.(VerdictExpr); !ok || v.Kind != "goto" || v.Target != "endpoint-DY7CHKFN-default/backend-service/tcp/backend__10.244.0.5/3000" {
		t.Errorf("element 1 value = %#v", m[1].Value)
	}
	dnat, ok := kp.Chain("endpoint-DY7CHKFN-default/backend-service/tcp/backend__10.244.0.5/3000").Rules[1].Stmts[1].(NAT)
	if !ok || dnat.Kind != "dnat" || dnat.Addr != String("10.244.0.5") || dnat.Port != Number(3000) {
		t.Errorf("dnat = %#v", dnat)
	}

	// Foreign tables parse too, with what the JSON hides kept opaque.
	dockerOut := rs.Table("ip", "nat").Chain("DOCKER_OUTPUT")
	if x, ok := dockerOut.Rules[0].Stmts[3].(XT); !ok || x.Name != "DNAT" {
		t.Errorf("DOCKER_OUTPUT rule 0 statement 3 = %#v", dockerOut.Rules[0].Stmts[3])
	}
}

// TestRenderMatchesText checks the parser and the renderer together: each
// rule of the kube-proxy tables, rendered back, must be a line of the text
// dump that nft printed from the same ruleset.
func TestRenderMatchesText(t *testing.T) {
	rs := loadDump(t)
	f, err := os.Open(dumpDir + "nft-list-ruleset.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines[strings.TrimSpace(sc.Text())] = true
	}
	n := 0
	for _, tb := range rs.Tables {
		if tb.Name != KubeProxyTable {
			continue
		}
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				n++
				if !lines[r.String()] {
					t.Errorf("%s chain %s: rendered rule %q is not a line of the text dump", tb, c.Name, r)
				}
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d kube-proxy rules checked", n)
	}
}

func TestParseErrors(t *testing.T) {
	const tbl = `{"table": {"family": "ip", "name": "t", "handle": 1}}`
	const chain = `{"chain": {"family": "ip", "table": "t", "name": "c", "handle": 2}}`
	doc := func(items ...string) string { return `{"nftables": [` + strings.Join(items, ",") + `]}` }
	rule := func(exprs string) string {
		return `{"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 3, "expr": [` + exprs + `]}}`
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not json", `{"nftables": [`, "decoding document"},
		{"trailing", doc() + `]`, "trailing data"},
		{"no nftables", `{"foo": []}`, `document: missing "nftables"`},
		{"nftables not a list", `{"nftables": 5}`, "nftables: want a list, got a number"},
		{"item with two keys", doc(`{"table": {}, "chain": {}}`), "nftables[0]: want an object with exactly one key, got 2 keys"},
		{"table without name", doc(`{"table": {"family": "ip"}}`), `nftables[0].table: missing "name"`},
		{"duplicate table", doc(tbl, tbl), "nftables[1]: table ip t listed twice"},
		{"chain of unknown table", doc(chain), "nftables[0].chain: table ip t is not listed before it"},
		{"duplicate chain", doc(tbl, chain, chain), `nftables[2] (chain ip t "c"): chain listed twice`},
		{"bad priority", doc(tbl, `{"chain": {"family": "ip", "table": "t", "name": "b", "hook": "input", "prio": "sideways"}}`), `unknown priority "sideways"`},
		{"rule before chain", doc(tbl, rule(`{"accept": null}`)), `nftables[1] (rule in ip t chain "c"): chain is not listed before the rule`},
		{"rule without expr", doc(tbl, chain, `{"rule": {"family": "ip", "table": "t", "chain": "c"}}`), `missing "expr"`},
		{"jump to missing chain", doc(tbl, chain, rule(`{"jump": {"target": "nope"}}`)), `nftables[2] (rule in ip t chain "c").expr[0]: jump target chain "nope" does not exist in table ip t`},
		{"goto without target", doc(tbl, chain, rule(`{"goto": {}}`)), `expr[0].goto: missing "target"`},
		{"accept with body", doc(tbl, chain, rule(`{"accept": {"x": 1}}`)), `expr[0].accept: want null, got an object`},
		{"unknown match op", doc(tbl, chain, rule(`{"match": {"op": "~", "left": 1, "right": 2}}`)), `expr[0].match.op: unknown match operator "~"`},
		{"match without right", doc(tbl, chain, rule(`{"match": {"op": "==", "left": {"meta": {"key": "mark"}}}}`)), `expr[0].match: missing "right"`},
		{"null expression", doc(tbl, chain, rule(`{"match": {"op": "==", "left": null, "right": 1}}`)), `expr[0].match.left: null expression`},
		{"negative number", doc(tbl, chain, rule(`{"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": -1}}`)), `expr[0].match.right: want an unsigned integer`},
		{"missing set", doc(tbl, chain, rule(`{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@nope"}}`)), "set or map @nope does not exist in table ip t"},
		{"vmap data not a map", doc(tbl, chain, rule(`{"vmap": {"key": {"meta": {"key": "mark"}}, "data": 7}}`)), "expr[0].vmap.data: want a map reference or an anonymous map, got 7"},
		{"numgen mod 0", doc(tbl, chain, rule(`{"vmap": {"key": {"numgen": {"mode": "random", "mod": 0}}, "data": {"set": [[0, {"accept": null}]]}}}`)), "expr[0].vmap.key.numgen.mod: modulus 0 out of range"},
		{"binop with one operand", doc(tbl, chain, rule(`{"match": {"op": "==", "left": {"&": [1]}, "right": 0}}`)), `expr[0].match.left.&: want a list of two operands`},
		{"prefix too long", doc(tbl, chain, rule(`{"match": {"op": "==", "left": 1, "right": {"prefix": {"addr": "10.0.0.0", "len": 200}}}}`)), "prefix length 200 over 128"},
		{"empty concat", doc(tbl, chain, rule(`{"match": {"op": "==", "left": {"concat": []}, "right": 1}}`)), "empty concatenation"},
		{"mixed anonymous set", doc(tbl, chain, rule(`{"vmap": {"key": 1, "data": {"set": [[0, {"accept": null}], 1]}}}`)), "anonymous set mixes plain elements and key : value pairs"},
		{"map element not a pair", doc(tbl, `{"map": {"family": "ip", "table": "t", "name": "m", "type": "inet_service", "map": "verdict", "elem": [5]}}`), `nftables[1] (map ip t "m").elem[0]: want a [key, value] pair`},
		{"map element to missing chain", doc(tbl, `{"map": {"family": "ip", "table": "t", "name": "m", "type": "inet_service", "map": "verdict", "elem": [[5, {"goto": {"target": "x"}}]]}}`), `(map ip t "m").elem[0]: goto target chain "x" does not exist`},
		{"map without value type", doc(tbl, `{"map": {"family": "ip", "table": "t", "name": "m", "type": "inet_service"}}`), `map without "map"`},
		{"vmap over a plain set", doc(tbl, chain, `{"set": {"family": "ip", "table": "t", "name": "s", "type": "mark"}}`, rule(`{"vmap": {"key": 1, "data": "@s"}}`)), "vmap uses @s, which is a set, not a verdict map"},
		{"elements of unknown set", doc(tbl, `{"element": {"family": "ip", "table": "t", "name": "s", "elem": [1]}}`), `set "s" is not listed before its elements`},
		{"string as handle", doc(`{"table": {"family": "ip", "name": "t", "handle": "1"}}`), "nftables[0].table.handle: want a number, got a string"},
		{"deep nesting", doc(tbl, chain, rule(`{"match": {"op": "==", "left": `+strings.Repeat(`{"&": [`, 70)+`1`+strings.Repeat(`, 1]}`, 70)+`, "right": 1}}`)), "nested deeper than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJSON(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestParseKeepsUnknownThings(t *testing.T) {
	in := `{"nftables": [
	  {"table": {"family": "inet", "name": "x"}},
	  {"flowtable": {"family": "inet", "table": "x", "name": "f"}},
	  {"chain": {"family": "inet", "table": "x", "name": "c", "type": "filter", "hook": "input", "prio": "filter - 5"}},
	  {"set": {"family": "inet", "table": "x", "name": "s", "type": "ipv4_addr", "flags": "interval", "elem": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
	  {"element": {"family": "inet", "table": "x", "name": "s", "elem": [{"range": ["192.168.0.1", "192.168.0.9"]}]}},
	  {"rule": {"family": "inet", "table": "x", "chain": "c", "expr": [
	    {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
	    {"limit": {"rate": 10, "per": "second"}},
	    {"log": {"prefix": "x"}},
	    {"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}},
	    {"accept": null}]}}
	]}`
	rs, err := ParseJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Others["flowtable"] != 1 {
		t.Errorf("Others = %v", rs.Others)
	}
	tb := rs.Table("inet", "x")
	c := tb.Chain("c")
	if c.Priority != -5 || c.Policy != "accept" {
		t.Errorf("chain = %+v", c)
	}
	if got := len(tb.Set("s").Elements); got != 2 {
		t.Errorf("set s has %d elements, want 2 (one inline, one from an element item)", got)
	}
	r := c.Rules[0]
	if _, ok := r.Stmts[1].(OtherStmt); !ok {
		t.Errorf("limit parsed as %T", r.Stmts[1])
	}
	if m, ok := r.Stmts[3].(Match); !ok {
		t.Errorf("osf match parsed as %T", r.Stmts[3])
	} else if _, ok := m.Left.(OtherExpr); !ok {
		t.Errorf("osf expression parsed as %T", m.Left)
	}
	if got, want := r.Stmts[0].String(), "ct state { established, related }"; got != want {
		t.Errorf("flag list renders %q, want %q", got, want)
	}
}
