package nodeimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/netconform/netconform/internal/run"
)

// ownPrograms are this repository's programs that go into node images.
type ownPrograms struct {
	shim, podnet string // binaries
	podnetKey    string // content hash of podnet, its image tag
	key          string // content hash of both
}

// buildOwnPrograms builds the runtime shim and the default CNI daemon as
// static binaries into the cache.
func buildOwnPrograms(ctx context.Context, repoRoot string, log io.Writer) (ownPrograms, error) {
	dir := filepath.Join(CacheDir(), "own")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ownPrograms{}, err
	}
	var p ownPrograms
	for _, b := range []struct {
		pkg string
		out *string
	}{{"./cmd/netconform-runc", &p.shim}, {"./cmd/podnet", &p.podnet}} {
		*b.out = filepath.Join(dir, filepath.Base(b.pkg))
		c := &run.Cmd{Name: "go", Args: []string{"build", "-trimpath", "-ldflags=-s -w", "-o", *b.out + ".new", b.pkg},
			Dir: repoRoot, Env: []string{"CGO_ENABLED=0"}, Log: log}
		if err := c.Run(ctx); err != nil {
			return p, fmt.Errorf("building %s: %w", b.pkg, err)
		}
		if err := os.Rename(*b.out+".new", *b.out); err != nil {
			return p, err
		}
	}
	shimKey, err := fileKey(p.shim)
	if err != nil {
		return p, err
	}
	if p.podnetKey, err = fileKey(p.podnet); err != nil {
		return p, err
	}
	p.key = key(shimKey, p.podnetKey)
	return p, nil
}

// pinnedVersion reads the version of a dependency that the project's go.mod
// pins, so that the kind node layout matches the kind library in use.
func pinnedVersion(ctx context.Context, repoRoot, module string) (string, error) {
	out, err := (&run.Cmd{Name: "go", Args: []string{"list", "-m", "-f", "{{.Version}}", module}, Dir: repoRoot}).Output(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the version of %s pinned in %s/go.mod: %w", module, repoRoot, err)
	}
	return strings.TrimSpace(string(out)), nil
}
