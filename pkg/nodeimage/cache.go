package nodeimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// CreateLog opens (truncating) the build log for a Kubernetes version under
// the cache, where a failed build's details stay for the user to read.
func CreateLog(version string) (*os.File, error) {
	p := filepath.Join(CacheDir(), "logs", "node-image-"+version+".log")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("creating the node image build log: %w", err)
	}
	return os.Create(p)
}

// CacheDir is where built artifacts are kept between runs: $NETCONFORM_CACHE,
// else $XDG_CACHE_HOME/netconform, else ~/.cache/netconform. It lives outside
// the repository so that `make clean` does not throw away a ten-minute build.
func CacheDir() string {
	if d := os.Getenv("NETCONFORM_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "netconform")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "netconform-cache")
	}
	return filepath.Join(home, ".cache", "netconform")
}

// key hashes the inputs of a step into a short content address.
func key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// fileKey hashes a file's content, for inputs that are files.
func fileKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16], nil
}

// cached makes dir by calling build on a temporary sibling and renaming it
// into place only on success, so an interrupted or failed build never leaves
// a half-made directory under the final name. An existing dir is reused.
//
// Builds of one dir are serialized within the process (add-ons are built
// alongside the node image, and two of them may share a step); another
// process building the same dir at the same time (two checkouts bringing up
// clusters) is not waited for, and whichever finishes second keeps the
// first one's result.
func cached(dir string, build func(tmp string) error) error {
	mu := buildLock(dir)
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	removeStale(dir)
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := build(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			os.RemoveAll(tmp) // another process finished the same build first
			return nil
		}
		return err
	}
	return nil
}

var (
	buildLocksMu sync.Mutex
	buildLocks   = map[string]*sync.Mutex{}
)

func buildLock(dir string) *sync.Mutex {
	buildLocksMu.Lock()
	defer buildLocksMu.Unlock()
	if buildLocks[dir] == nil {
		buildLocks[dir] = &sync.Mutex{}
	}
	return buildLocks[dir]
}

// removeStale deletes leftovers of builds of dir that were killed.
func removeStale(dir string) {
	matches, _ := filepath.Glob(dir + ".tmp-*")
	for _, m := range matches {
		pid := strings.TrimPrefix(m, dir+".tmp-")
		if _, err := os.Stat("/proc/" + pid); err == nil && pid != fmt.Sprint(os.Getpid()) {
			continue // another build is still at work on it
		}
		os.RemoveAll(m)
	}
}
