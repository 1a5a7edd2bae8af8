package workflow

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/cluster"
)

var update = flag.Bool("update", false, "rewrite "+NightlyPath+" from clusters/matrix.yaml")

const root = "../.."

func TestNightlyMatchesMatrix(t *testing.T) {
	m, err := cluster.LoadMatrix(filepath.Join(root, "clusters"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Nightly(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, NightlyPath)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./internal/workflow -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s disagrees with clusters/matrix.yaml; regenerate it: go test ./internal/workflow -update\nfirst difference: %s", NightlyPath, firstDiff(string(got), string(want)))
	}
	for _, c := range m.Cells {
		if !bytes.Contains(got, []byte("config: clusters/"+c.Config+"\n")) {
			t.Errorf("%s has no job for cell %s", NightlyPath, c.Name)
		}
	}
}

// TestNightlyFollowsACellChange checks the generator, not the file: a cell
// added to the matrix gets its job, with its artifact name.
func TestNightlyFollowsACellChange(t *testing.T) {
	m, err := cluster.LoadMatrix(filepath.Join(root, "clusters"))
	if err != nil {
		t.Fatal(err)
	}
	extra := *m.Cells[0]
	extra.Name, extra.Config, extra.Requires = "v9.99/iptables", "v9.99/iptables.yaml", []string{"ipvs"}
	m.Cells = append(m.Cells, &extra)
	out, err := Nightly(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cell: v9.99/iptables\n", "config: clusters/v9.99/iptables.yaml\n", "artifact: report-v9.99-iptables\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the workflow for a matrix with cell v9.99/iptables lacks %q", want)
		}
	}
	if _, err := Nightly(&cluster.Matrix{Dir: "x"}); err == nil {
		t.Error("a matrix without cells must be refused")
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: the file has %q, the matrix gives %q", i+1, x, y)
		}
	}
	return "none"
}
