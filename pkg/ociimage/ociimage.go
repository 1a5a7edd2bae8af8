// Package ociimage builds container images without a Dockerfile, a base image
// or a registry: a list of files (and optionally whole root file system
// tarballs) becomes layers, and the result is written as an image archive that
// both `docker load` and `ctr images import` accept.
//
// Hosts without a registry can build every image the suite needs this way, and
// the archives are plain files that can be cached and loaded into kind nodes.
package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one regular file placed in the image.
type File struct {
	Path string // absolute path inside the image, e.g. /usr/local/bin/kube-proxy
	Mode int64  // permission bits, e.g. 0o755
	// Exactly one of Source (a file on the host) or Content is used.
	Source  string
	Content []byte
}

// Symlink is a symbolic link placed in the image.
type Symlink struct {
	Path, Target string
}

// Spec describes an image.
type Spec struct {
	// Tag is the full reference the archive carries, e.g.
	// registry.k8s.io/kube-proxy:v1.34.4.
	Tag string
	// BaseLayers are tarballs of file systems applied first, in order
	// (for example a Debian root file system with iptables for kube-proxy).
	BaseLayers []string
	Files      []File
	Symlinks   []Symlink
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	Labels     map[string]string
}

// epoch keeps layers reproducible: the same inputs give the same digest.
var epoch = time.Unix(0, 0).UTC()

// Build assembles the image described by spec.
func Build(spec Spec) (v1.Image, error) {
	img := empty.Image
	var layers []v1.Layer
	for _, base := range spec.BaseLayers {
		base := base
		l, err := tarball.LayerFromFile(base)
		if err != nil {
			return nil, fmt.Errorf("reading base layer %s: %w", base, err)
		}
		layers = append(layers, l)
	}
	if len(spec.Files) > 0 || len(spec.Symlinks) > 0 {
		data, err := filesLayer(spec.Files, spec.Symlinks)
		if err != nil {
			return nil, err
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			return nil, fmt.Errorf("making file layer: %w", err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = "amd64"
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = spec.Entrypoint
	cfg.Config.Cmd = spec.Cmd
	cfg.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, spec.Env...)
	cfg.Config.WorkingDir = spec.WorkingDir
	cfg.Config.User = spec.User
	cfg.Config.Labels = spec.Labels
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting image config: %w", err)
	}
	return img, nil
}

// WriteArchive builds the image and writes it to dst as a docker-style image
// archive, atomically: a reader never sees a half-written file under dst.
func WriteArchive(spec Spec, dst string) error {
	img, err := Build(spec)
	if err != nil {
		return fmt.Errorf("building image %s: %w", spec.Tag, err)
	}
	return writeImage(img, spec.Tag, dst)
}

// Derive writes to dst, tagged tag, the image of the archive base (which
// must hold exactly one image) with files laid over it in one new layer:
// an image that differs from one a cluster already runs in a binary or two,
// and in nothing else (its entrypoint, user and environment are kept).
func Derive(base string, files []File, tag, dst string) error {
	img, err := tarball.ImageFromPath(base, nil)
	if err != nil {
		return fmt.Errorf("reading base image archive %s: %w", base, err)
	}
	data, err := filesLayer(files, nil)
	if err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return fmt.Errorf("making file layer: %w", err)
	}
	img, err = mutate.AppendLayers(img, l)
	if err != nil {
		return fmt.Errorf("appending a layer to %s: %w", base, err)
	}
	return writeImage(img, tag, dst)
}

// writeImage writes img to dst as a docker-style archive tagged tag,
// through a temporary file renamed into place.
func writeImage(img v1.Image, tag, dst string) error {
	ref, err := name.NewTag(tag, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", tag, err)
	}
	if err := os.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".partial"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing image archive %s: %w", dst, err)
	}
	return os.Rename(tmp, dst)
}

// filesLayer makes an uncompressed tar of the given files, creating parent
// directories, in a stable order.
func filesLayer(files []File, links []Symlink) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var mkdirs func(p string) error
	mkdirs = func(p string) error {
		if p == "/" || p == "." || dirs[p] {
			return nil
		}
		if err := mkdirs(path.Dir(p)); err != nil {
			return err
		}
		dirs[p] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p[1:] + "/", Mode: 0o755, ModTime: epoch})
	}
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("image file path %q is not absolute", f.Path)
		}
		data := f.Content
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, fmt.Errorf("reading %s for the image: %w", f.Source, err)
			}
		}
		if err := mkdirs(path.Dir(f.Path)); err != nil {
			return nil, err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path[1:], Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	for _, l := range links {
		if err := mkdirs(path.Dir(l.Path)); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: l.Path[1:], Linkname: l.Target, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FileDigest is the hex SHA-256 of a file's content: what an image built
// from the file (a binary, a base archive) is keyed by in a cache.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
