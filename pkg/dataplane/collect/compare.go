package collect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Compare says how two reads of one node's rules differ once what changes
// by itself is taken out (NormalizeIPTablesSave, NormalizeNFTJSON,
// NormalizeIPVS): a line per dump that differs, quoting its first
// differing line, or nothing when the two reads hold the same rules.
func Compare(a, b Node) ([]string, error) {
	var out []string
	if a.Name != b.Name {
		return []string{fmt.Sprintf("node %s read, then node %s", a.Name, b.Name)}, nil
	}
	if d := firstDifference(NormalizeIPTablesSave(a.IPTablesSave), NormalizeIPTablesSave(b.IPTablesSave)); d != "" {
		out = append(out, "iptables-save: "+d)
	}
	na, err := NormalizeNFTJSON(a.NFTJSON)
	if err != nil {
		return nil, fmt.Errorf("node %s, first read: %w", a.Name, err)
	}
	nb, err := NormalizeNFTJSON(b.NFTJSON)
	if err != nil {
		return nil, fmt.Errorf("node %s, second read: %w", b.Name, err)
	}
	if d := firstDifference(na, nb); d != "" {
		out = append(out, "nft -j list ruleset: "+d)
	}
	if d := firstDifference(NormalizeIPVS(a.IPVS), NormalizeIPVS(b.IPVS)); d != "" {
		out = append(out, "/proc/net/ip_vs: "+d)
	}
	return out, nil
}

// firstDifference quotes the first line where a and b part, or is "".
func firstDifference(a, b string) string {
	if a == b {
		return ""
	}
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(la), len(lb)); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: %q, then %q", i+1, x, y)
		}
	}
	return ""
}

// The packet and byte counters iptables-save prints on a chain's
// declaration (":KUBE-SERVICES - [0:0]"), and before each rule with -c.
var (
	chainCounters = regexp.MustCompile(`^(:\S+ \S+) \[[0-9]+:[0-9]+\]$`)
	ruleCounters  = regexp.MustCompile(`^\[[0-9]+:[0-9]+\] `)
)

// NormalizeIPTablesSave drops from an iptables-save dump what changes
// without the rules changing: the comment lines (their timestamps) and
// every packet and byte counter.
func NormalizeIPTablesSave(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		l = strings.TrimSpace(l)
		l = chainCounters.ReplaceAllString(l, "$1")
		b.WriteString(ruleCounters.ReplaceAllString(l, ""))
		b.WriteByte('\n')
	}
	return b.String()
}

// NormalizeNFTJSON re-renders an `nft -j list ruleset` dump, one object a
// line, without what changes when the rules do not: the metainfo object,
// every handle (kube-proxy's nftables mode flushes and refills chains, so
// a rule written again with the same content gets a new one), the time
// left to elements of sets with timeouts (session affinity), the packet
// and byte counts of counters and the usage of quotas; set and map
// elements are sorted, the kernel's listing order being no part of them.
// An empty dump (the mode does not use nft) stays empty.
func NormalizeNFTJSON(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	var doc struct {
		NFTables []map[string]any `json:"nftables"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("parsing nft -j list ruleset: %w", err)
	}
	var b bytes.Buffer
	for _, obj := range doc.NFTables {
		if _, ok := obj["metainfo"]; ok {
			continue
		}
		line, err := json.Marshal(scrub(obj, ""))
		if err != nil {
			return "", err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// scrub is NormalizeNFTJSON's walk: v is the value found under key.
func scrub(v any, key string) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			switch {
			case k == "handle", k == "expires":
			case key == "counter" && (k == "packets" || k == "bytes"):
			case key == "quota" && (k == "used" || k == "used_unit"):
			default:
				out[k] = scrub(x, k)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = scrub(x, key)
		}
		if key == "elem" {
			sort.Slice(out, func(i, j int) bool {
				a, _ := json.Marshal(out[i])
				b, _ := json.Marshal(out[j])
				return string(a) < string(b)
			})
		}
		return out
	}
	return v
}

// NormalizeIPVS drops from /proc/net/ip_vs the connection counts of each
// real server (ActiveConn, InActConn: the last two fields of a "->" line),
// which traffic changes, and the padding.
func NormalizeIPVS(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if f[0] == "->" && len(f) >= 5 {
			f = f[:len(f)-2]
		}
		b.WriteString(strings.Join(f, " "))
		b.WriteByte('\n')
	}
	return b.String()
}
