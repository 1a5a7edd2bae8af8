// Package probeimage builds the suite's test image: netprobe, statically
// linked, alone in an image with no base (it needs no shell, libc or CA
// bundle), written as an archive that docker, podman and kind nodes load
// without a registry.
//
// The tag is the binary's content hash, so a changed probe can never be
// confused with a stale image already on a node, and an unchanged one is not
// rebuilt: `go build` is cached by Go, and the archive by its name.
package probeimage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/netconform/netconform/pkg/ociimage"
	"github.com/netconform/netconform/pkg/probe"
)

// Repository is the image name without a tag. The .local registry does not
// exist: nothing ever pulls it, and the fixtures use IfNotPresent.
const Repository = "netconform.local/netprobe"

// Package is netprobe's import path.
const Package = "github.com/netconform/netconform/cmd/netprobe"

// Tag is the image reference for a binary whose short content hash is hash.
func Tag(hash string) string { return Repository + ":" + hash }

// Alias is a stable reference to "the probe image of this checkout", for
// humans and scripts that retag the loaded image (docker tag / ctr images
// tag); specs use the content-hash Tag, which the archive carries.
func Alias() string { return Repository + ":current" }

// hashLen is how much of the SHA-256 hex digest a tag carries: 48 bits is
// plenty to tell builds of one probe apart.
const hashLen = 12

// Options for Build.
type Options struct {
	// Dir receives the binary and the archive; it is the cache.
	Dir string
	// ModuleDir is the netconform checkout to build from; empty means the
	// current directory, which must be inside the module.
	ModuleDir string
	// Go is the go command; "go" when empty.
	Go string
}

// Image is a built probe image.
type Image struct {
	Tag     string // Repository:<hash>
	Hash    string // short content hash of the binary
	Archive string // docker-style image archive carrying Tag
	Binary  string // the netprobe binary in it
	Cached  bool   // the archive already existed and was not rewritten
}

// Build compiles netprobe for linux/amd64 (CGO_ENABLED=0, -trimpath, no
// symbol tables) into o.Dir, names it by content hash, and writes the image
// archive for that hash unless it is already there.
func Build(ctx context.Context, o Options) (Image, error) {
	if o.Dir == "" {
		return Image{}, fmt.Errorf("building the probe image: no output directory")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Image{}, fmt.Errorf("creating probe image directory: %w", err)
	}
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	tmp, err := os.CreateTemp(o.Dir, "netprobe-build-*")
	if err != nil {
		return Image{}, fmt.Errorf("creating a file for the probe binary: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op

	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", tmp.Name(), Package)
	cmd.Dir = o.ModuleDir
	// ociimage writes linux/amd64 images, so that is what is built
	// whatever the host.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("building netprobe (%s in %q): %w\n%s", strings.Join(cmd.Args, " "), o.ModuleDir, err, out)
	}

	hash, err := fileHash(tmp.Name())
	if err != nil {
		return Image{}, err
	}
	img := Image{
		Tag:     Tag(hash),
		Hash:    hash,
		Binary:  filepath.Join(o.Dir, "netprobe-"+hash),
		Archive: filepath.Join(o.Dir, "netprobe-"+hash+".tar"),
	}
	if err := os.Rename(tmp.Name(), img.Binary); err != nil {
		return Image{}, fmt.Errorf("keeping the probe binary: %w", err)
	}
	if _, err := os.Stat(img.Archive); err == nil {
		img.Cached = true
		return img, nil
	}
	if err := ociimage.WriteArchive(Spec(img.Tag, img.Binary), img.Archive); err != nil {
		// Another process building the same probe may have just won the
		// race to the same name; its archive is as good as ours.
		if _, serr := os.Stat(img.Archive); serr == nil {
			img.Cached = true
			return img, nil
		}
		return Image{}, fmt.Errorf("writing the probe image archive: %w", err)
	}
	return img, nil
}

// Spec is the image: the binary as the entrypoint, run as nobody (the probe
// binds only unprivileged ports and needs no capability), serving by default.
func Spec(tag, binary string) ociimage.Spec {
	return ociimage.Spec{
		Tag:        tag,
		Files:      []ociimage.File{{Path: probe.BinaryPath, Mode: 0o755, Source: binary}},
		Entrypoint: []string{probe.BinaryPath},
		Cmd:        []string{"serve"},
		User:       "65534:65534",
		Labels:     map[string]string{"org.opencontainers.image.title": "netprobe"},
	}
}

func fileHash(path string) (string, error) {
	d, err := ociimage.FileDigest(path)
	if err != nil {
		return "", fmt.Errorf("hashing the probe binary: %w", err)
	}
	return d[:hashLen], nil
}
