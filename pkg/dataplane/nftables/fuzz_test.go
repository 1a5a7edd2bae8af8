package nftables

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// Packets every parsed fuzz input is traced with: enough to walk each hook
// and both families.
var fuzzPackets = []dataplane.Packet{
	pkt("10.244.0.4", "10.96.85.230", "tcp", 3000, dataplane.FromPod),
	pkt("172.18.0.1", "172.18.0.2", "tcp", 30000, dataplane.FromExternal),
	pkt("172.18.0.2", "10.96.0.1", "tcp", 443, dataplane.FromLocal),
	pkt("10.244.0.6", "10.96.0.10", "udp", 53, dataplane.FromPod),
	pkt("fd00::1", "fd00::2", "sctp", 80, dataplane.FromExternal),
}

// FuzzParseJSON feeds ParseJSON arbitrary bytes (seeded from the v1.34.4
// dump in testdata/fuzz/FuzzParseJSON, one seed per rule shape) and, when
// they parse, renders, traces and checks the result: none of it may panic
// or loop, whatever the input.
func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"nftables": []}`))
	cluster := seedCluster(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseJSON(bytes.NewReader(data))
		if err != nil {
			if rs != nil {
				t.Fatal("ParseJSON returned both a ruleset and an error")
			}
			return
		}
		for _, tb := range rs.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					_ = r.String()
				}
			}
			for _, s := range tb.Sets {
				for _, el := range s.Elements {
					_ = el.String()
				}
			}
		}
		tr := NewTracer(rs, []netip.Addr{nodeIP})
		for _, p := range fuzzPackets {
			res, err := tr.Trace(p)
			if err != nil {
				continue
			}
			sum := 0.0
			for _, d := range res.Destinations {
				if d.Probability <= 0 || d.Probability > 1+1e-9 {
					t.Fatalf("%v: destination probability %v", p, d.Probability)
				}
				sum += d.Probability
			}
			if sum > 1+1e-9 {
				t.Fatalf("%v: probabilities sum to %v", p, sum)
			}
		}
		_ = Check(rs, cluster)
	})
}
