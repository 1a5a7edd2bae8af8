package mutant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/netconform/netconform/pkg/nodeimage"
)

// Workspace is a writable copy of k8s.io/kubernetes at one version, where
// faults are applied one at a time and kube-proxy is built from them. The
// copy is made once per version and kept (under the netconform cache); a
// fault's files are restored from the module cache before the next one is
// applied, so the build cache serves every package a fault did not touch.
type Workspace struct {
	Version  string
	Dir      string // the copy
	pristine string // the module cache's read-only source
}

// OpenWorkspace downloads the module (when the module cache lacks it) and
// makes or reuses the copy under cacheDir.
func OpenWorkspace(ctx context.Context, version, cacheDir string) (*Workspace, error) {
	src, err := nodeimage.KubernetesSource(ctx, version)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, "mutants", version, "src")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	// Another process may be making or using the copy.
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, fmt.Errorf("locking the mutants' source copy %s: %w", dir, err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		tmp := dir + ".partial"
		_ = os.RemoveAll(tmp)
		if err := copyTree(src, tmp); err != nil {
			return nil, fmt.Errorf("copying k8s.io/kubernetes@%s to %s: %w", version, tmp, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, err
		}
	}
	// A run that stopped with a fault applied is no matter: every build
	// starts by restoring what any fault touches.
	return &Workspace{Version: version, Dir: dir, pristine: src}, nil
}

// Build writes kube-proxy with fault f (none: the zero Fault) to out.
//
// The copy is shared by every netconform process on the host (two cells'
// mutants runs at once, say), so a build holds an exclusive lock on it,
// starts from pristine files (whatever another process left) and leaves
// them pristine: a fault is never built together with another's edit.
// (flock excludes other open files of the same path in this process too.)
func (w *Workspace) Build(ctx context.Context, f Fault, out string, log io.Writer) error {
	unlock, err := lockFile(w.Dir + ".lock")
	if err != nil {
		return fmt.Errorf("locking the mutants' source copy %s: %w", w.Dir, err)
	}
	defer unlock()
	all := catalogFiles()
	if err := w.restore(all); err != nil {
		return err
	}
	defer func() { _ = w.restore(f.Files()) }()
	if err := f.Apply(w.Dir); err != nil {
		return err
	}
	if err := nodeimage.BuildKubeBinary(ctx, w.Version, w.Dir, "kube-proxy", out, log); err != nil {
		return fmt.Errorf("building kube-proxy %s with fault %s: %w", w.Version, f.Name, err)
	}
	return nil
}

// catalogFiles lists every file any fault edits.
func catalogFiles() []string {
	var all []string
	for _, f := range Catalog {
		all = append(all, f.Files()...)
	}
	return all
}

// lockFile takes an exclusive flock on path (created if missing), waiting
// for another process that holds it, and returns its release.
func lockFile(path string) (func(), error) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX); err != nil {
		fh.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(fh.Fd()), syscall.LOCK_UN)
		fh.Close()
	}, nil
}

// restore copies files back from the module cache.
func (w *Workspace) restore(files []string) error {
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(w.pristine, rel))
		if err != nil {
			return fmt.Errorf("restoring %s: %w", rel, err)
		}
		if err := os.WriteFile(filepath.Join(w.Dir, rel), data, 0o644); err != nil {
			return fmt.Errorf("restoring %s: %w", rel, err)
		}
	}
	return nil
}

// copyTree copies a directory of regular files (the module cache holds
// nothing else), making everything writable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// ImageKey names what a fault's mutant image is made of: the Kubernetes
// version, the fault's edits and the base image archive (its digest, from
// ociimage.FileDigest). An archive built under the same key is the same
// image, so a later run on the same host reuses it instead of compiling
// kube-proxy again (about 30 s of both cores a fault, taken from the
// specs running beside it).
func ImageKey(version string, f Fault, baseDigest string) string {
	h := sha256.New()
	edits, _ := json.Marshal(f.Edits)
	fmt.Fprintf(h, "kube-proxy %s\nfault %s\nbase %s\n%s\n", version, f.Name, baseDigest, edits)
	return hex.EncodeToString(h.Sum(nil))
}

// Cached reports whether archive exists and was built under key (its key
// file, written by MarkBuilt, says so).
func Cached(archive, key string) bool {
	got, err := os.ReadFile(archive + ".key")
	if err != nil {
		return false
	}
	if _, err := os.Stat(archive); err != nil {
		return false
	}
	return strings.TrimSpace(string(got)) == key
}

// MarkBuilt records that archive was built under key.
func MarkBuilt(archive, key string) error {
	return os.WriteFile(archive+".key", []byte(key+"\n"), 0o644)
}
