package nodeimage

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestCachedBuildsOnceForConcurrentCallers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "step")
	var builds atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cached(dir, func(tmp string) error {
				builds.Add(1)
				return os.WriteFile(filepath.Join(tmp, "out"), []byte("x"), 0o644)
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("build ran %d times, want once", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err != nil {
		t.Errorf("result missing: %v", err)
	}
}

func TestCachedKeepsAnotherProcesssResult(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "step")
	err := cached(dir, func(tmp string) error {
		// Another process renames its finished build into place first.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "theirs"), nil, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "ours"), nil, 0o644)
	})
	if err != nil {
		t.Fatalf("cached: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "theirs")); err != nil {
		t.Errorf("the first finished build was not kept: %v", err)
	}
	left, _ := filepath.Glob(dir + ".tmp-*")
	if len(left) != 0 {
		t.Errorf("temporary directories left: %v", left)
	}
}

func TestCachedLeavesNothingOnFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "step")
	boom := errors.New("boom")
	if err := cached(dir, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s exists after a failed build", dir)
	}
	left, _ := filepath.Glob(dir + ".tmp-*")
	if len(left) != 0 {
		t.Errorf("temporary directories left: %v", left)
	}
}
