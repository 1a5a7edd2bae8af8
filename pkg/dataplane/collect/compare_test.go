package collect

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const dumps = "../testdata/v1.37.2-3-node-nftables/netconform-v1-37-nftables-worker"

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func node(t *testing.T) Node {
	return Node{Name: "worker", IPTablesSave: read(t, dumps+".iptables-save.txt"), NFTJSON: read(t, dumps+".nft.json"),
		IPVS: read(t, "../ipvs/testdata/proc-net-ip_vs.txt")}
}

func TestCompareSameRules(t *testing.T) {
	a := node(t)
	if d, err := Compare(a, a); err != nil || len(d) != 0 {
		t.Fatalf("a read against itself: %v %v", d, err)
	}
}

// Counters, handles, timestamps, element order and connection counts move
// while the rules stay: two such reads agree.
func TestCompareIgnoresWhatChangesByItself(t *testing.T) {
	a := node(t)
	b := a
	b.IPTablesSave = strings.Replace(a.IPTablesSave, "on Thu Nov 26 13:33:56 2026", "on Thu Nov 26 13:34:01 2026", 1)
	b.IPTablesSave = strings.Replace(b.IPTablesSave, ":INPUT ACCEPT [0:0]", ":INPUT ACCEPT [1234:99887]", 1)
	b.NFTJSON = strings.Replace(a.NFTJSON, `"counter": {"packets": 0, "bytes": 0}`, `"counter": {"packets": 7, "bytes": 420}`, 1)
	b.NFTJSON = strings.Replace(b.NFTJSON, `"handle": 8,`, `"handle": 80,`, 1)
	b.NFTJSON = strings.Replace(b.NFTJSON, `"version": "1.0.6"`, `"version": "1.0.7"`, 1)
	b.IPVS = strings.Replace(a.IPVS, "Masq    1      2          0", "Masq    1      0          9", 1)
	for name, pair := range map[string][2]string{"iptables": {a.IPTablesSave, b.IPTablesSave}, "nft": {a.NFTJSON, b.NFTJSON}, "ipvs": {a.IPVS, b.IPVS}} {
		if pair[0] == pair[1] {
			t.Errorf("%s: the test's edit did not apply", name)
		}
	}
	if d, err := Compare(a, b); err != nil || len(d) != 0 {
		t.Errorf("reads differing only in counters, handles, timestamps: %v %v", d, err)
	}

	sets := `{"nftables": [{"map": {"family": "ip", "table": "kube-proxy", "name": "service-ips", "handle": 3, "elem": [[1, "a"], [2, "b"]]}}]}`
	swapped := `{"nftables": [{"map": {"family": "ip", "table": "kube-proxy", "name": "service-ips", "handle": 9, "elem": [[2, "b"], [1, "a"]]}}]}`
	x, _ := NormalizeNFTJSON(sets)
	y, _ := NormalizeNFTJSON(swapped)
	if x != y {
		t.Errorf("element order:\n%s\n%s", x, y)
	}
	affinity := `{"nftables": [{"set": {"name": "affinity-x", "elem": [{"elem": {"val": "10.244.1.5", "timeout": 10800, "expires": %d}}]}}]}`
	x, _ = NormalizeNFTJSON(fmt.Sprintf(affinity, 10799))
	y, _ = NormalizeNFTJSON(fmt.Sprintf(affinity, 10790))
	if x != y || !strings.Contains(x, `"timeout":10800`) {
		t.Errorf("an affinity element's time left:\n%s\n%s", x, y)
	}
}

func TestCompareFindsChangedRules(t *testing.T) {
	a := node(t)
	for name, edit := range map[string]func(*Node){
		"iptables rule": func(n *Node) {
			n.IPTablesSave = strings.Replace(n.IPTablesSave, ":INPUT ACCEPT [0:0]\n", ":INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n", 1)
		},
		"nft rule": func(n *Node) {
			n.NFTJSON = strings.Replace(n.NFTJSON, `{"jump": {"target": "DOCKER_OUTPUT"}}`, `{"jump": {"target": "ELSEWHERE"}}`, 1)
		},
		"ipvs weight": func(n *Node) { n.IPVS = strings.Replace(n.IPVS, "Masq    1      2", "Masq    0      2", 1) },
	} {
		b := a
		edit(&b)
		if b.IPTablesSave == a.IPTablesSave && b.NFTJSON == a.NFTJSON && b.IPVS == a.IPVS {
			t.Fatalf("%s: the test's edit did not apply", name)
		}
		d, err := Compare(a, b)
		if err != nil || len(d) != 1 || !strings.Contains(d[0], "line ") {
			t.Errorf("%s: %v %v", name, d, err)
		}
	}
	if _, err := Compare(a, Node{Name: "worker", NFTJSON: "{"}); err == nil {
		t.Error("an unreadable nft dump must be an error")
	}
}
