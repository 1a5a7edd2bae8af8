package cluster

import "testing"

func TestParseInspect(t *testing.T) {
	for _, c := range []struct{ out, bridge, subnet, gw string }{
		// docker with the bridge name netconform sets, IPv6 subnet first
		{"false 59f83264a7261234 br-netconform fc00::/64= 172.18.0.0/16=172.18.0.1", "br-netconform", "172.18.0.0/16", "172.18.0.1"},
		// docker network made by kind (no bridge-name option): br-<id12>
		{"false 59f83264a726abcdef - 172.18.0.0/16=172.18.0.1", "br-59f83264a726", "172.18.0.0/16", "172.18.0.1"},
		// podman
		{"false 0123456789abcdef br-nc-podman 172.29.0.0/16=172.29.0.1", "br-nc-podman", "172.29.0.0/16", "172.29.0.1"},
	} {
		info, err := parseInspect("kind", c.out)
		if err != nil {
			t.Fatalf("%q: %v", c.out, err)
		}
		if info.Bridge != c.bridge || info.Subnet.String() != c.subnet || info.Gateway.String() != c.gw {
			t.Errorf("%q: got bridge %s subnet %s gw %s", c.out, info.Bridge, info.Subnet, info.Gateway)
		}
	}
	if _, err := parseInspect("kind", "false abc"); err == nil {
		t.Error("no subnet must be an error")
	}
}
