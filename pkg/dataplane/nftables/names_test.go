package nftables

import (
	"net/netip"
	"strings"
	"testing"
)

// TestChainNamesMatchDump recomputes every Service and endpoint chain name
// of the v1.34.4 dump from its readable part, which pins the hashing
// scheme to what kube-proxy really writes.
func TestChainNamesMatchDump(t *testing.T) {
	kp := loadDump(t).Table("ip", KubeProxyTable)
	checked := 0
	for _, c := range kp.Chains {
		prefix, rest, ok := strings.Cut(c.Name, "-")
		if !ok || !strings.Contains(rest, "/") {
			continue // a fixed chain such as services or reject-chain
		}
		text := rest[9:] // after "HASH-"
		svcPart, epPart, isEndpoint := strings.Cut(text, "__")
		parts := strings.Split(svcPart, "/")
		if len(parts) != 4 {
			t.Errorf("chain %q: service part %q has %d fields", c.Name, svcPart, len(parts))
			continue
		}
		var want string
		if isEndpoint {
			ipText, portText, _ := strings.Cut(epPart, "/")
			ip := netip.MustParseAddr(ipText)
			var port uint16
			for _, d := range portText {
				port = port*10 + uint16(d-'0')
			}
			want = prefix + "-" + EndpointChainBase(parts[0], parts[1], strings.ToUpper(parts[2]), parts[3], ip, port)
		} else {
			want = prefix + "-" + ServiceChainBase(parts[0], parts[1], parts[2], parts[3])
		}
		if c.Name != want {
			t.Errorf("chain %q, recomputed %q", c.Name, want)
		}
		checked++
	}
	if checked < 25 {
		t.Errorf("checked only %d chains", checked)
	}
}

func TestChainNameEdgeCases(t *testing.T) {
	v6 := EndpointChainBase("ns", "svc", "TCP", "http", netip.MustParseAddr("fd00:10:244::5"), 80)
	if !strings.HasSuffix(v6, "-ns/svc/tcp/http__fd00.10.244..5/80") {
		t.Errorf("IPv6 endpoint base %q", v6)
	}
	long := ServiceChainBase(strings.Repeat("n", 63), strings.Repeat("s", 63), "sctp", strings.Repeat("p", 63))
	if len(long) > nameBaseMax {
		t.Errorf("base of %d characters, over %d", len(long), nameBaseMax)
	}
	longer := EndpointChainBase(strings.Repeat("n", 63), strings.Repeat("s", 63), "sctp", strings.Repeat("p", 63),
		netip.MustParseAddr("fd00:1111:2222:3333:4444:5555:6666:7777"), 65535)
	if len(longer) != nameBaseMax || !strings.HasSuffix(longer, "...") {
		t.Errorf("over-long endpoint base not truncated to %d with ...: %d %q", nameBaseMax, len(longer), longer)
	}
}
