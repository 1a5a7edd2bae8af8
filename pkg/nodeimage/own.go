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
// static binaries into the cache. Each lands under a name carrying its
// content hash, built under a name of this process's own: several checkouts
// may bring up clusters at once, and none may rename another's binary away
// or swap it under it.
func buildOwnPrograms(ctx context.Context, repoRoot string, log io.Writer) (ownPrograms, error) {
	dir := filepath.Join(CacheDir(), "own")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ownPrograms{}, err
	}
	var p ownPrograms
	var keys []string
	for _, b := range []struct {
		pkg string
		out *string
	}{{"./cmd/netconform-runc", &p.shim}, {"./cmd/podnet", &p.podnet}} {
		tmp := filepath.Join(dir, fmt.Sprintf("%s.tmp-%d", filepath.Base(b.pkg), os.Getpid()))
		c := &run.Cmd{Name: "go", Args: []string{"build", "-trimpath", "-ldflags=-s -w", "-o", tmp, b.pkg},
			Dir: repoRoot, Env: []string{"CGO_ENABLED=0"}, Log: log}
		if err := c.Run(ctx); err != nil {
			os.Remove(tmp)
			return p, fmt.Errorf("building %s: %w", b.pkg, err)
		}
		k, err := fileKey(tmp)
		if err != nil {
			return p, err
		}
		keys = append(keys, k)
		*b.out = filepath.Join(dir, filepath.Base(b.pkg)+"-"+k)
		// Same name, same content: replacing a file another process
		// placed is harmless, and rename is atomic.
		if err := os.Rename(tmp, *b.out); err != nil {
			return p, err
		}
	}
	p.podnetKey = keys[1]
	p.key = key(keys...)
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
