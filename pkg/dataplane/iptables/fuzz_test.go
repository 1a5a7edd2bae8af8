package iptables

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/netconform/netconform/pkg/dataplane"
)

// FuzzParse feeds arbitrary text to Parse and, when it parses, traces a few
// packets through it and runs the node-wide checks: none of it may panic,
// and a failure to parse must be a *ParseError naming a line. The corpus in
// testdata/fuzz/FuzzParse holds the seed dump and pieces of it.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(dumpDir, "iptables-save.txt")); err == nil {
		f.Add(b)
	}
	nodeIPs := []netip.Addr{netip.MustParseAddr("172.18.0.3")}
	packets := []dataplane.Packet{
		pkt(dataplane.FromPod, "10.244.0.4", "10.96.177.129", "tcp", 3000),
		pkt(dataplane.FromExternal, "192.168.1.1", "172.18.0.3", "tcp", 30000),
		pkt(dataplane.FromLocal, "172.18.0.3", "10.96.0.10", "udp", 53),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseBytes(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a *ParseError with a line", err)
			}
			return
		}
		for _, tb := range rs.Tables {
			for _, c := range tb.Chains {
				if tb.Chain(c.Name) != c {
					t.Fatalf("chain %s not indexed", c.Name)
				}
				for _, r := range c.Rules {
					if r.Chain != c.Name {
						t.Fatalf("rule at line %d filed under %s, says %s", r.Line, c.Name, r.Chain)
					}
					if (r.Target.Kind == TargetJump || r.Target.Kind == TargetGoto) && tb.Chain(r.Target.Name) == nil {
						t.Fatalf("rule at line %d jumps to missing chain %s", r.Line, r.Target.Name)
					}
				}
			}
		}
		tr := NewTracer(rs, nodeIPs)
		for _, p := range packets {
			res, err := tr.Trace(p)
			if err != nil {
				continue
			}
			if res.Destinations == nil {
				t.Fatal("nil Destinations")
			}
		}
		CheckNode(rs)
	})
}
