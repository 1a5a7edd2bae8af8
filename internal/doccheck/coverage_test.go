package doccheck

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/netconform/netconform/pkg/nodeimage"
)

// upstreamVersion is the Kubernetes release whose test/e2e/network
// docs/coverage.md compares netconform with.
const upstreamVersion = "v1.37.2"

const docPath = "../../docs/coverage.md"

func readDoc(t *testing.T) Doc {
	t.Helper()
	f, err := os.Open(docPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, problems := ParseDoc(f)
	for _, p := range problems {
		t.Errorf("docs/coverage.md %s", p)
	}
	return doc
}

// TestCoverageDocListsEverySpec keeps docs/coverage.md true to the suites:
// one row per spec of every suite under suites/, with the spec's full text
// and labels, and no row for a spec that does not exist.
func TestCoverageDocListsEverySpec(t *testing.T) {
	dirs, err := filepath.Glob("../../suites/*")
	if err != nil {
		t.Fatal(err)
	}
	var specs []Spec
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || filepath.Base(dir) == "internal" {
			continue
		}
		s, err := SuiteSpecs(dir)
		if err != nil {
			t.Errorf("reading the specs of %s: %v", dir, err)
		}
		specs = append(specs, s...)
	}
	if len(specs) == 0 {
		t.Fatal("no specs found under suites/")
	}
	for _, p := range Check(specs, readDoc(t), "docs/coverage.md") {
		t.Error(p)
	}
}

// TestCoverageDocNamesRealUpstreamSpecs checks the upstream side of
// docs/coverage.md against Kubernetes' own source (the module cache's, or
// downloaded through the Go module proxy as the mutant tests do): every It
// text it names exists in test/e2e/network, and the focus expressions
// select exactly the specs the rows name, as many as the document says.
func TestCoverageDocNamesRealUpstreamSpecs(t *testing.T) {
	src, err := nodeimage.KubernetesSource(context.Background(), upstreamVersion)
	if err != nil {
		t.Fatalf("the Go module proxy must serve k8s.io/kubernetes@%s for this test: %v", upstreamVersion, err)
	}
	ups, err := UpstreamSpecs(filepath.Join(src, "test", "e2e", "network"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) < 100 {
		t.Fatalf("only %d specs read from %s/test/e2e/network; the reader no longer understands upstream's source", len(ups), src)
	}
	for _, p := range CheckUpstream(ups, readDoc(t), "docs/coverage.md", "k8s.io/kubernetes@"+upstreamVersion+"/test/e2e/network") {
		t.Error(p)
	}
}
