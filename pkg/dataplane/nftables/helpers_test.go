package nftables

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// seedCluster reads the Services, EndpointSlices and node of the v1.34.4
// dump, with kind's pod CIDR as kube-proxy's cluster CIDR.
func seedCluster(t testing.TB) Cluster {
	t.Helper()
	f, err := os.Open(dumpDir + "services-endpointslices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := Cluster{Node: seedNode(t), ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		err := dec.Decode(&list)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding services-endpointslices.yaml: %v", err)
		}
		for i, raw := range list.Items {
			var head struct{ Kind string }
			if err := json.Unmarshal(raw, &head); err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
			switch head.Kind {
			case "Service":
				var s corev1.Service
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("item %d: %v", i, err)
				}
				c.Services = append(c.Services, s)
			case "EndpointSlice":
				var s discoveryv1.EndpointSlice
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("item %d: %v", i, err)
				}
				c.EndpointSlices = append(c.EndpointSlices, s)
			}
		}
	}
	if len(c.Services) != 9 || len(c.EndpointSlices) != 9 {
		t.Fatalf("read %d Services and %d EndpointSlices, want 9 and 9", len(c.Services), len(c.EndpointSlices))
	}
	return c
}

// seedNode builds the node from nodes.txt (`kubectl get nodes -o wide`).
func seedNode(t testing.TB) *corev1.Node {
	t.Helper()
	f, err := os.Open(dumpDir + "nodes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var header []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if header == nil {
			header = fields
			continue
		}
		n := &corev1.Node{}
		for i, h := range header {
			if i >= len(fields) {
				break
			}
			switch h {
			case "NAME":
				n.Name = fields[i]
			case "INTERNAL-IP":
				n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: fields[i]})
			}
		}
		return n
	}
	t.Fatal("nodes.txt has no node")
	return nil
}
