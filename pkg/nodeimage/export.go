package nodeimage

import (
	"context"
	"io"
)

// This file exports the module builder and the build cache for packages
// that build other components from Go module sources the same way (the
// add-ons of pkg/addons), so that there is one way to build offline and one
// cache layout. The wrappers are thin on purpose: the behaviour lives, and
// is documented, in gobuild.go and cache.go.

// GoModule describes main packages to build from a published Go module; see
// goModule.
type GoModule = goModule

// BuildGoModule builds m's main packages into outDir as static binaries
// through a generated wrapper module; see buildGoModule. nestedVersion may be
// nil when m has no replace directives that point into its own tree.
func BuildGoModule(ctx context.Context, m GoModule, outDir string, nestedVersion func(string) string, log io.Writer) error {
	return buildGoModule(ctx, m, outDir, nestedVersion, log)
}

// ModuleDir downloads path@version through the Go module proxy and returns
// the module cache directory holding its source.
func ModuleDir(ctx context.Context, path, version string, log io.Writer) (string, error) {
	return moduleDir(ctx, path, version, log)
}

// Cached makes dir with build, atomically, unless it already exists; see
// cached.
func Cached(dir string, build func(tmp string) error) error { return cached(dir, build) }

// Key hashes the inputs of a build step into a short content address.
func Key(parts ...string) string { return key(parts...) }

// GoVersion is the go command's version, part of every build key: a new
// toolchain must not reuse binaries the old one built.
func GoVersion(ctx context.Context) string { return goVersion(ctx) }
