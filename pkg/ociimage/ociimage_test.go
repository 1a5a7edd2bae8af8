package ociimage

import (
	"archive/tar"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Derive must keep the base image (its layers and entrypoint) and lay the
// new file over it, in a last layer of its own.
func TestDeriveLaysFilesOverTheBase(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.tar")
	if err := WriteArchive(Spec{Tag: "example.test/proxy:v1", Entrypoint: []string{"/usr/local/bin/proxy"},
		Files: []File{{Path: "/usr/local/bin/proxy", Mode: 0o755, Content: []byte("good")}, {Path: "/etc/keep", Mode: 0o644, Content: []byte("kept")}}}, base); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "mutant.tar")
	if err := Derive(base, []File{{Path: "/usr/local/bin/proxy", Mode: 0o755, Content: []byte("bad")}}, "example.test/proxy:v1-mutant", out); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/usr/local/bin/proxy" {
		t.Errorf("entrypoint not kept: %v", cfg.Config.Entrypoint)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("want the base layer and one more, got %d (%v)", len(layers), err)
	}
	rc, err := layers[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "usr/local/bin/proxy" || h.Name == "/usr/local/bin/proxy" {
			data, _ := io.ReadAll(tr)
			found = string(data) == "bad"
		}
	}
	if !found {
		t.Error("the new layer does not carry the replaced binary")
	}
}
