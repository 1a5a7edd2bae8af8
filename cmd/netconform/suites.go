package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/netconform/netconform/internal/progress"
)

// compiledSuites are the suites' test binaries, built once into a private
// directory. Ginkgo would otherwise build each into its package directory
// (suites/<name>/<name>.test) and delete it after the run, so two runs from
// one checkout (two cells side by side, or `run` beside `mutants`) would
// delete each other's binaries; and `mutants` would relink both suites for
// every fault.
type compiledSuites struct {
	dir      string
	binaries []string
}

// compileSuites builds the test binary of every package matching patterns
// (e.g. ./suites/...) that has tests.
func compileSuites(ctx context.Context, repoRoot, patterns string) (*compiledSuites, error) {
	list := exec.CommandContext(ctx, "go", append([]string{"list", "-f", "{{if .TestGoFiles}}{{.ImportPath}} {{.Name}}{{end}}"}, strings.Fields(patterns)...)...)
	list.Dir = repoRoot
	var stderr bytes.Buffer
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the suites %q: %w: %s", patterns, err, strings.TrimSpace(stderr.String()))
	}
	dir, err := os.MkdirTemp("", "netconform-suites-")
	if err != nil {
		return nil, err
	}
	c := &compiledSuites{dir: dir}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		bin := filepath.Join(dir, name+".test")
		err := progress.Step("compiling suite "+pkg, func() error {
			build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, pkg)
			build.Dir = repoRoot
			var stderr bytes.Buffer
			build.Stdout, build.Stderr = &stderr, &stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("%w\n%s", err, stderr.String())
			}
			return nil
		})
		if err != nil {
			c.Remove()
			return nil, fmt.Errorf("compiling suite %s: %w", pkg, err)
		}
		c.binaries = append(c.binaries, bin)
	}
	if len(c.binaries) == 0 {
		c.Remove()
		return nil, fmt.Errorf("no suites with tests match %q", patterns)
	}
	return c, nil
}

// Remove deletes the binaries.
func (c *compiledSuites) Remove() { _ = os.RemoveAll(c.dir) }
