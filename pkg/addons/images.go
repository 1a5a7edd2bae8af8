package addons

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/nodeimage"
	"github.com/netconform/netconform/pkg/ociimage"
)

// Registry is the repository prefix of the add-on images. Nothing ever
// pulls from it: the archives are loaded into the nodes, and the manifests
// use IfNotPresent.
const Registry = "netconform.local"

// binaryImage is an image holding one static binary of a build and nothing
// else: the upstream images add only a distroless or Alpine base (CA
// bundle, time zones, passwd) that none of these programs needs in a kind
// cluster — they reach the API server with the service account's CA.
type binaryImage struct {
	Tag    string // e.g. netconform.local/metallb-speaker:v0.15.2
	Binary string // file name go build gives the main package
	Path   string // where the upstream image puts it, its entrypoint
	Title  string // org.opencontainers.image.title
}

// build is an add-on's binaries, from one Go module, and its images.
type build struct {
	Name   string // cache directory prefix, e.g. metallb
	Module nodeimage.GoModule
	Images []binaryImage
}

// cacheDir is where the build's binaries and archives are kept; the key
// covers everything that changes them, the Go toolchain included.
func (b build) cacheDir(ctx context.Context) string {
	parts := []string{"addons-v1", b.Module.Path, b.Module.Version, strings.Join(b.Module.Mains, ","), strings.Join(b.Module.LDFlags, " "), nodeimage.GoVersion(ctx)}
	for _, im := range b.Images {
		parts = append(parts, im.Tag, im.Binary, im.Path, im.Title)
	}
	return filepath.Join(nodeimage.CacheDir(), "addons", b.Name+"-"+b.Module.Version+"-"+nodeimage.Key(parts...))
}

// archiveName turns a tag into a file name: netconform.local/traefik:v3.6.12
// → traefik-v3.6.12.tar.
func archiveName(tag string) string {
	name := tag[strings.LastIndex(tag, "/")+1:]
	return strings.ReplaceAll(name, ":", "-") + ".tar"
}

// archives builds the binaries and image archives unless the cache has them,
// and returns the archive paths in the order of b.Images.
func (b build) archives(ctx context.Context, log io.Writer) ([]string, error) {
	dir := b.cacheDir(ctx)
	title := fmt.Sprintf("add-on %s: %s from %s@%s", b.Name, strings.Join(b.binaries(), ", "), b.Module.Path, b.Module.Version)
	err := progress.Step(title, func() error {
		return nodeimage.Cached(dir, func(tmp string) error {
			bin := filepath.Join(tmp, "bin")
			if err := nodeimage.BuildGoModule(ctx, b.Module, bin, nil, log); err != nil {
				return err
			}
			for _, im := range b.Images {
				if err := ociimage.WriteArchive(im.spec(filepath.Join(bin, im.Binary)), filepath.Join(tmp, archiveName(im.Tag))); err != nil {
					return fmt.Errorf("making the %s image: %w", im.Tag, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("building the %s add-on images: %w", b.Name, err)
	}
	var paths []string
	for _, im := range b.Images {
		paths = append(paths, filepath.Join(dir, archiveName(im.Tag)))
	}
	return paths, nil
}

func (b build) binaries() []string {
	var names []string
	for _, im := range b.Images {
		names = append(names, im.Binary)
	}
	return names
}

// spec is the image: the binary as the entrypoint, so that manifests that
// give only args (as MetalLB's do) run it as upstream images would.
func (im binaryImage) spec(binary string) ociimage.Spec {
	return ociimage.Spec{
		Tag:        im.Tag,
		Files:      []ociimage.File{{Path: im.Path, Mode: 0o755, Source: binary}},
		Entrypoint: []string{im.Path},
		Labels:     map[string]string{"org.opencontainers.image.title": im.Title},
	}
}
