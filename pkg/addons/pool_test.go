package addons

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPoolRange(t *testing.T) {
	for _, tc := range []struct {
		subnet      string
		first, last string
	}{
		// docker's default kind network: the range ENVIRONMENT.md saw work.
		{"172.18.0.0/16", "172.18.255.200", "172.18.255.250"},
		{"172.19.0.0/16", "172.19.255.200", "172.19.255.250"},
		{"10.89.0.0/24", "10.89.0.200", "10.89.0.250"},
		// An unmasked prefix (a gateway address with its length) is masked.
		{"172.18.0.1/16", "172.18.255.200", "172.18.255.250"},
		// The smallest accepted subnet keeps the pool in its upper half.
		{"192.168.7.128/25", "192.168.7.200", "192.168.7.250"},
		{"10.0.0.0/8", "10.255.255.200", "10.255.255.250"},
	} {
		first, last, err := PoolRange(netip.MustParsePrefix(tc.subnet), 0)
		if err != nil {
			t.Errorf("PoolRange(%s): %v", tc.subnet, err)
			continue
		}
		if first.String() != tc.first || last.String() != tc.last {
			t.Errorf("PoolRange(%s) = %s-%s, want %s-%s", tc.subnet, first, last, tc.first, tc.last)
		}
		if !netip.MustParsePrefix(tc.subnet).Masked().Contains(first) || !netip.MustParsePrefix(tc.subnet).Contains(last) {
			t.Errorf("PoolRange(%s) = %s-%s leaves the subnet", tc.subnet, first, last)
		}
	}
}

func TestPoolRangeRejects(t *testing.T) {
	for _, tc := range []struct {
		subnet netip.Prefix
		want   string
	}{
		{netip.Prefix{}, "no kind network subnet"},
		{netip.MustParsePrefix("fc00:f853:ccd:e793::/64"), "not IPv4"},
		{netip.MustParsePrefix("172.18.0.0/26"), "needs at least"},
		{netip.MustParsePrefix("172.18.0.1/32"), "needs at least"},
	} {
		_, _, err := PoolRange(tc.subnet, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PoolRange(%s) error = %v, want one mentioning %q", tc.subnet, err, tc.want)
		}
	}
}

func TestPoolAddresses(t *testing.T) {
	got, err := PoolAddresses(netip.MustParsePrefix("172.18.0.0/16"), 0)
	if err != nil || got != "172.18.255.200-172.18.255.250" {
		t.Fatalf("PoolAddresses = %q, %v", got, err)
	}
}

func TestPoolSlotsAreDisjoint(t *testing.T) {
	subnet := netip.MustParsePrefix("172.18.0.0/16")
	first, last, err := PoolRange(subnet, 1)
	if err != nil {
		t.Fatal(err)
	}
	if first.String() != "172.18.254.200" || last.String() != "172.18.254.250" {
		t.Errorf("slot 1 = %s-%s, want 172.18.254.200-172.18.254.250", first, last)
	}
	if _, _, err := PoolRange(netip.MustParsePrefix("172.18.0.0/24"), 1); err == nil {
		t.Error("a /24 has no room for slot 1")
	}
}
