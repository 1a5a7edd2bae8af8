package mutant

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netconform/netconform/pkg/nodeimage"
)

func TestEditMatchesWholeLinesIgnoringIndentation(t *testing.T) {
	src := "func f() {\n\tif a {\n\t\tx()\n\t}\n\tif b {\n\t\tx()\n\t}\n}\n"
	e := Edit{Old: "if b {\n  x()", New: "if b {\ny()"}
	out, err := e.apply(src)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "if b {\ny()\n\t}") || !strings.Contains(out, "if a {\n\t\tx()") {
		t.Errorf("edit went wrong:\n%s", out)
	}
	if _, err := (Edit{Old: "x()", New: "y()"}).apply(src); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Errorf("an ambiguous anchor must be refused, got %v", err)
	}
	if _, err := (Edit{Old: "z()", New: "y()"}).apply(src); err == nil || !strings.Contains(err.Error(), "not there") {
		t.Errorf("a missing anchor must be refused, got %v", err)
	}
	// A partial line is not a match: anchors are whole statements.
	if _, err := (Edit{Old: "if", New: "y()"}).apply(src); err == nil {
		t.Error("a partial line must not match")
	}
}

func TestApplyChangesNothingUnlessEveryEditApplies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.go")
	orig := "package a\n\nvar x = 1\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	f := Fault{Name: "t", Edits: []Edit{{File: "a.go", Old: "var x = 1", New: "var x = 2"}, {File: "a.go", Old: "var y = 1", New: ""}}}
	if err := f.Apply(dir); err == nil {
		t.Fatal("want an error for the second edit")
	}
	got, _ := os.ReadFile(path)
	if string(got) != orig {
		t.Errorf("file changed although an edit failed:\n%s", got)
	}
}

// TestCatalogAppliesToKubernetes applies every fault to the real source of
// the version the catalog is written against, so that an anchor that
// drifted fails here rather than in a live run. It downloads the module
// through the Go module proxy (about 30 MB) when the module cache lacks it.
func TestCatalogAppliesToKubernetes(t *testing.T) {
	src, err := nodeimage.KubernetesSource(context.Background(), CatalogVersion)
	if err != nil {
		t.Fatalf("the Go module proxy must serve k8s.io/kubernetes@%s for this test: %v", CatalogVersion, err)
	}
	names := map[string]bool{}
	areas := map[string]bool{}
	for _, f := range Catalog {
		if names[f.Name] {
			t.Errorf("fault %s is listed twice", f.Name)
		}
		names[f.Name] = true
		if len(f.Areas) == 0 || f.Class == "" || len(f.Edits) == 0 {
			t.Errorf("fault %s needs areas, a class and edits", f.Name)
		}
		for _, a := range f.Areas {
			areas[a] = true
		}
		dir := t.TempDir()
		for _, rel := range f.Files() {
			data, err := os.ReadFile(filepath.Join(src, rel))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Apply(dir); err != nil {
			t.Errorf("%v", err)
		}
	}
	for _, want := range []string{"balancing", "dataplane", "nodeport", "hairpin", "source-ip", "loadbalancer", "ingress", "no-endpoints", "internal-traffic-policy", "dns"} {
		if !areas[want] {
			t.Errorf("no fault targets area %s", want)
		}
	}
	if len(Catalog) < 15 {
		t.Errorf("%d faults; the detection table promises at least 15", len(Catalog))
	}
}

func TestImageKeyNamesWhatTheImageIsMadeOf(t *testing.T) {
	f := Catalog[0]
	k := ImageKey("v1.37.2", f, "base1")
	if ImageKey("v1.37.2", f, "base1") != k {
		t.Fatal("the same inputs gave two keys")
	}
	other := f
	other.Edits = append([]Edit(nil), f.Edits...)
	other.Edits[0].New += "\n// changed"
	for what, got := range map[string]string{
		"version": ImageKey("v1.36.1", f, "base1"),
		"base":    ImageKey("v1.37.2", f, "base2"),
		"edits":   ImageKey("v1.37.2", other, "base1"),
		"fault":   ImageKey("v1.37.2", Catalog[1], "base1"),
	} {
		if got == k {
			t.Errorf("another %s gave the same key", what)
		}
	}
	archive := filepath.Join(t.TempDir(), "m.tar")
	if Cached(archive, k) {
		t.Fatal("cached before anything was built")
	}
	if err := MarkBuilt(archive, k); err != nil {
		t.Fatal(err)
	}
	if Cached(archive, k) {
		t.Fatal("cached with a key file but no archive")
	}
	if err := os.WriteFile(archive, []byte("image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !Cached(archive, k) || Cached(archive, ImageKey("v1.36.1", f, "base1")) {
		t.Fatal("Cached does not follow the key")
	}
}
