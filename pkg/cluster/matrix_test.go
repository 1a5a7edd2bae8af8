package cluster

import (
	"slices"
	"strings"
	"testing"
)

func TestMatrixLoadsEveryCell(t *testing.T) {
	m, err := LoadMatrix("../../clusters")
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int{}
	for _, c := range m.Cells {
		if c.CNI == "podnet" {
			modes[c.ProxyMode]++
		} else {
			// Another CNI is an add-on; kind's default must be off.
			if !c.Kind.Networking.DisableDefaultCNI || !slices.Contains(c.Addons, c.CNI) {
				t.Errorf("%s: cni %s needs networking.disableDefaultCNI (got %v) and %s among its addons (%v)", c.Name, c.CNI, c.Kind.Networking.DisableDefaultCNI, c.CNI, c.Addons)
			}
		}
		for _, kf := range c.KnownFailures {
			if kf.Link != "" && !strings.HasPrefix(kf.Link, "https://") {
				t.Errorf("%s: known failure %s: link %q is not an https URL", c.Name, kf, kf.Link)
			}
		}
		if len(c.Kind.Nodes) != 3 {
			t.Errorf("%s: %d nodes, want 1 control plane + 2 workers", c.Name, len(c.Kind.Nodes))
		}
		if !strings.HasPrefix(c.Name, c.Kubernetes[:5]) {
			t.Errorf("%s: directory minor and kubernetes %s disagree", c.Name, c.Kubernetes)
		}
	}
	if modes["iptables"] == 0 || modes["nftables"] != modes["iptables"] || modes["ipvs"] != modes["iptables"] {
		t.Errorf("every minor needs iptables, nftables and ipvs cells: %v", modes)
	}
	noIPVS := func(f string) bool { return f != "ipvs" }
	d, err := m.Default("iptables", noIPVS)
	if err != nil {
		t.Fatal(err)
	}
	if d.ProxyMode != "iptables" || d.Kubernetes != "v1.37.2" {
		t.Errorf("default cell = %s (%s)", d.Name, d.Kubernetes)
	}
	ipvs, _ := m.Lookup("clusters/v1.34/ipvs.yaml")
	if ipvs == nil || !strings.Contains(ipvs.Unsupported(noIPVS), "ipvs") {
		t.Errorf("an ipvs cell on a host without IPVS must say it is unsupported")
	}
}

func TestLookupErrorsNameTheFix(t *testing.T) {
	m, err := LoadMatrix("../../clusters")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Lookup("clusters/v9.99/iptables.yaml")
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "clusters/v1.34/iptables.yaml") {
		t.Errorf("unknown config: %v", err)
	}
}

func TestParseKindConfigIsStrict(t *testing.T) {
	for _, bad := range []string{
		"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodez: []\n",
		"kind: Pod\napiVersion: v1\n",
		"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: [\n",
	} {
		if _, err := ParseKindConfig([]byte(bad)); err == nil {
			t.Errorf("accepted malformed config:\n%s", bad)
		}
	}
}
