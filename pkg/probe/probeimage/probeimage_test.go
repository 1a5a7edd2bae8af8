package probeimage

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/netconform/netconform/pkg/probe"
)

func TestBuildWritesLoadableArchiveAndCaches(t *testing.T) {
	if testing.Short() {
		t.Skip("builds netprobe")
	}
	dir := t.TempDir()
	img, err := Build(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if img.Cached || len(img.Hash) != hashLen || img.Tag != Repository+":"+img.Hash {
		t.Errorf("image %+v", img)
	}
	if h, _ := fileHash(img.Binary); h != img.Hash {
		t.Errorf("binary hash %s, tag says %s", h, img.Hash)
	}

	tag, err := name.NewTag(img.Tag)
	if err != nil {
		t.Fatal(err)
	}
	v1img, err := tarball.ImageFromPath(img.Archive, &tag)
	if err != nil {
		t.Fatalf("reading archive %s as %s: %v", img.Archive, img.Tag, err)
	}
	cfg, err := v1img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Config.Entrypoint, []string{probe.BinaryPath}) || cfg.OS != "linux" || cfg.Architecture != "amd64" || cfg.Config.User != "65534:65534" {
		t.Errorf("config %+v", cfg.Config)
	}

	bin, err := os.ReadFile(img.Binary)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(v1img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if "/"+h.Name == probe.BinaryPath {
			found = true
			if h.Mode&0o777 != 0o755 || h.Size != int64(len(bin)) {
				t.Errorf("%s: mode %o size %d, binary is %d bytes", h.Name, h.Mode, h.Size, len(bin))
			}
		}
	}
	if !found {
		t.Errorf("%s not in the image", probe.BinaryPath)
	}

	// The binary really is netprobe (where this host can run it).
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		out, err := exec.Command(img.Binary).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage: netprobe") {
			t.Errorf("running the binary: %v %q", err, out)
		}
	}

	st, _ := os.Stat(img.Archive)
	again, err := Build(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Tag != img.Tag || again.Archive != img.Archive {
		t.Errorf("second build %+v, first %+v", again, img)
	}
	if st2, _ := os.Stat(img.Archive); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("cached archive was rewritten")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "netprobe-build-") {
			t.Errorf("temporary binary %s left behind", e.Name())
		}
	}
}

func TestBuildReportsFailures(t *testing.T) {
	if _, err := Build(context.Background(), Options{}); err == nil {
		t.Error("no directory accepted")
	}
	_, err := Build(context.Background(), Options{Dir: t.TempDir(), ModuleDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "building netprobe") {
		t.Errorf("build outside the module: %v", err)
	}
}

func TestTags(t *testing.T) {
	if Tag("0123456789ab") != "netconform.local/netprobe:0123456789ab" || Alias() != "netconform.local/netprobe:current" {
		t.Error(Tag("0123456789ab"), Alias())
	}
	for _, s := range []string{Tag("0123456789ab"), Alias()} {
		if _, err := name.NewTag(s, name.StrictValidation); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}
