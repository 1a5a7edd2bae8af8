package iptables

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// readObjects decodes the seed dump's services-endpointslices.yaml.
func readObjects(t testing.TB) *APIObjects {
	t.Helper()
	f, err := os.Open(filepath.Join(dumpDir, "services-endpointslices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := DecodeAPIObjects(f)
	if err != nil {
		t.Fatalf("decoding seed objects: %v", err)
	}
	return objs
}

// readNode turns the seed dump's `kubectl get nodes -o wide` text into the
// Node object the expectations need: its name and InternalIP.
func readNode(t testing.TB) *corev1.Node {
	t.Helper()
	f, err := os.Open(filepath.Join(dumpDir, "nodes.txt"))
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
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fields[0]}}
		for i, h := range header {
			if h == "INTERNAL-IP" && i < len(fields) {
				n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: fields[i]})
			}
		}
		return n
	}
	t.Fatal("nodes.txt has no node row")
	return nil
}

// nodeIP is the seed node's InternalIP.
func nodeIP(t testing.TB) netip.Addr {
	t.Helper()
	return netip.MustParseAddr(readNode(t).Status.Addresses[0].Address)
}
