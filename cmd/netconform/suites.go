package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/internal/run"
	"github.com/netconform/netconform/pkg/testbed"
)

// suiteFlags are the flags of every command that runs the suites on a
// cluster (run, mutants): which cluster, which suites, where reports go.
type suiteFlags struct {
	opts                      testbed.Options
	provider, suites, reports string
	keep                      bool
	procs                     int
}

func (f *suiteFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.opts.Config, "config", os.Getenv("CLUSTER_CONFIG"), "kind config of a matrix cell ($CLUSTER_CONFIG)")
	cmd.Flags().StringVar(&f.opts.Name, "name", os.Getenv("CLUSTER_NAME"), "cluster name ($CLUSTER_NAME)")
	cmd.Flags().StringVar(&f.provider, "provider", "", "node provider: docker or podman")
	cmd.Flags().StringVar(&f.suites, "suites", "./suites/...", "suite packages")
	cmd.Flags().StringVar(&f.reports, "reports", "reports", "reports directory")
	cmd.Flags().BoolVar(&f.keep, "keep", os.Getenv("KEEP_CLUSTER") == "1", "keep a cluster created for this run ($KEEP_CLUSTER=1)")
	def := defaultProcs(runtime.NumCPU())
	if v, err := strconv.Atoi(os.Getenv("PROCS")); err == nil && v > 0 {
		def = v
	}
	cmd.Flags().IntVar(&f.procs, "procs", def, "parallel Ginkgo processes ($PROCS; default from the host's CPUs)")
}

// options completes the testbed options from the flags and the environment.
func (f *suiteFlags) options() testbed.Options {
	o := f.opts
	o.RepoRoot, o.Engine = repoRoot(), providerName(f.provider)
	o.Offline = os.Getenv("NETCONFORM_OFFLINE") == "1"
	return o
}

// defaultProcs is the number of spec processes for a host with cpus CPUs.
// A spec spends most of its time waiting on the cluster (pods starting,
// the data plane converging, probes' timeouts), not on this host's CPU,
// so even a 2-core host runs more processes than it has cores; beyond
// that, the cluster's own nodes (on the same host) need the CPU. Measured
// in docs/measurements.md ("Parallel specs").
func defaultProcs(cpus int) int {
	return min(max(cpus+1, 3), 6)
}

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
	list := &run.Cmd{Name: "go", Args: append([]string{"list", "-f", "{{if .TestGoFiles}}{{.ImportPath}} {{.Name}}{{end}}"}, strings.Fields(patterns)...), Dir: repoRoot}
	out, err := list.Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the suites %q: %w", patterns, err)
	}
	dir, err := os.MkdirTemp("", "netconform-suites-")
	if err != nil {
		return nil, err
	}
	c := &compiledSuites{dir: dir}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, name, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(pkg+"/", "/internal/") {
			// suites/internal/... holds the harness and its unit tests
			// (make test runs those), not suites.
			continue
		}
		// One directory per suite: Ginkgo names each suite's part of the
		// merged reports after the directory its binary is in.
		bin := filepath.Join(dir, name, name+".test")
		err := progress.Step("compiling suite "+pkg, func() error {
			return (&run.Cmd{Name: "go", Args: []string{"test", "-c", "-o", bin, pkg}, Dir: repoRoot}).Run(ctx)
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
