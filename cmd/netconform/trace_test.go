package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var seedDumps = filepath.Join("..", "..", "pkg", "dataplane", "testdata", "v1.34.4-single-node")

func traceJSON(t *testing.T, f traceFlags, stdin string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runTrace(f, strings.NewReader(stdin), &out)
	return out.String(), err
}

func seedFlags(dst string, dport int) traceFlags {
	return traceFlags{
		rules:   filepath.Join(seedDumps, "iptables", "iptables-save.txt"),
		nodeIPs: []string{"172.18.0.3"},
		src:     "10.244.0.7", dst: dst, proto: "tcp", dport: dport, from: "pod",
	}
}

func TestTracePrintsResultJSON(t *testing.T) {
	out, err := traceJSON(t, seedFlags("10.96.177.129", 3000), "")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Verdict      string `json:"verdict"`
		Destinations []struct {
			IP          string   `json:"ip"`
			Port        int      `json:"port"`
			Probability float64  `json:"probability"`
			Masquerade  bool     `json:"masquerade"`
			Path        []string `json:"path"`
		} `json:"destinations"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q is not JSON: %v", out, err)
	}
	if got.Verdict != "accept" || len(got.Destinations) != 2 || got.Destinations[0].IP != "10.244.0.4" ||
		got.Destinations[0].Port != 3000 || got.Destinations[0].Probability != 0.5 || got.Destinations[1].IP != "10.244.0.9" {
		t.Errorf("result = %s", out)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "}\n") {
		t.Errorf("want one JSON line, got %q", out)
	}
}

func TestTraceEmptyDestinationsAreAnArray(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    traceFlags
		want string
	}{
		{"not a service", seedFlags("10.244.0.9", 3000), `{"verdict":"accept","destinations":[]}` + "\n"},
		{"rejected", seedFlags("10.96.187.144", 9999), `{"verdict":"reject","destinations":[],"rule":"-A KUBE-SERVICES -d 10.96.187.144/32`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := traceJSON(t, tc.f, "")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, tc.want) {
				t.Errorf("got %s, want it to start with %s", out, tc.want)
			}
		})
	}
}

func TestTraceReadsStdinAndDetectsFormat(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join(seedDumps, "iptables", "iptables-save.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f := seedFlags("10.96.177.129", 3000)
	f.rules = "-"
	out, err := traceJSON(t, f, string(dump))
	if err != nil || !strings.Contains(out, `"10.244.0.9"`) {
		t.Errorf("stdin trace = %s, %v", out, err)
	}

	// JSON content is read as nft -j output: the nftables seed dump's
	// backend-service has the same two-way split.
	f = traceFlags{rules: filepath.Join(seedDumps, "nftables", "nft-list-ruleset.json"), nodeIPs: []string{"172.18.0.2"},
		src: "10.244.0.7", dst: "10.96.85.230", proto: "tcp", dport: 3000, from: "pod"}
	out, err = traceJSON(t, f, "")
	if err != nil || !strings.HasPrefix(out, `{"verdict":"accept","destinations":[{"ip":"10.244.0.4","port":3000,"probability":0.5`) {
		t.Errorf("nft-json trace = %s, %v", out, err)
	}
}

func TestTraceRejectsBadInput(t *testing.T) {
	mod := func(change func(*traceFlags)) traceFlags {
		f := seedFlags("10.96.177.129", 3000)
		change(&f)
		return f
	}
	for _, tc := range []struct {
		name string
		f    traceFlags
		want string
	}{
		{"bad src", mod(func(f *traceFlags) { f.src = "10.0.0" }), `--src "10.0.0" is not an IP address`},
		{"bad dst", mod(func(f *traceFlags) { f.dst = "" }), `--dst "" is not an IP address`},
		{"mixed families", mod(func(f *traceFlags) { f.dst = "fd00::1" }), "different IP families"},
		{"bad proto", mod(func(f *traceFlags) { f.proto = "icmp" }), `--proto "icmp"`},
		{"bad port", mod(func(f *traceFlags) { f.dport = 0 }), "--dport 0"},
		{"bad origin", mod(func(f *traceFlags) { f.from = "space" }), `--from "space"`},
		{"bad node ip", mod(func(f *traceFlags) { f.nodeIPs = []string{"172.18.0.3", "nope"} }), `--node-ip "nope"`},
		{"no node ip", mod(func(f *traceFlags) { f.nodeIPs = nil }), "--node-ip"},
		{"missing file", mod(func(f *traceFlags) { f.rules = "/does/not/exist" }), "reading rules"},
		{"bad format", mod(func(f *traceFlags) { f.format = "ipvs" }), `--format "ipvs"`},
		{"wrong format", mod(func(f *traceFlags) { f.format = "nft-json" }), "as nft JSON"},
		{"not rules", mod(func(f *traceFlags) { f.rules = filepath.Join(seedDumps, "workloads.yaml") }), "as iptables-save output: line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := traceJSON(t, tc.f, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
