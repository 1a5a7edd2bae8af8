package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/spf13/cobra"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/report"
	"github.com/netconform/netconform/pkg/testbed"
)

func init() { addCommand(newRunCmd) }

func newRunCmd() *cobra.Command {
	var f suiteFlags
	var labelFilter, focus string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the suites: against $KUBECONFIG's cluster, else a cluster created for CLUSTER_CONFIG (deleted afterwards unless --keep)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, o := cmd.Context(), f.options()
			runID := time.Now().UTC().Format("20060102-150405")
			dir := filepath.Join(f.reports, runID)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			absDir, _ := filepath.Abs(dir)
			info, release, err := acquireTestbed(ctx, o, f.keep)
			defer release()
			if err != nil {
				return err
			}
			tbPath := filepath.Join(absDir, "testbed.json")
			if err := info.Write(tbPath); err != nil {
				return err
			}
			latest := filepath.Join(f.reports, "latest")
			_ = os.Remove(latest)
			_ = os.Symlink(runID, latest)
			compiled, err := compileSuites(ctx, o.RepoRoot, f.suites)
			if err != nil {
				return err
			}
			defer compiled.Remove()
			out, err := runSuites(ctx, suiteRun{repoRoot: o.RepoRoot, testbed: tbPath, dir: absDir, labelFilter: labelFilter, focus: focus, suites: compiled, procs: f.procs}, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if len(info.KnownFailures) > 0 {
				return knownFailures(absDir, tbPath, info.KnownFailures, out, cmd.OutOrStdout())
			}
			if out.exit != nil {
				return fmt.Errorf("suites failed (exit %d); see %s/junit.xml", out.exit.ExitCode(), absDir)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&labelFilter, "label-filter", os.Getenv("LABEL_FILTER"), "Ginkgo label filter, e.g. 'dns || balancing' ($LABEL_FILTER)")
	cmd.Flags().StringVar(&focus, "focus", os.Getenv("FOCUS"), "run only the specs whose full text matches this regular expression, e.g. 'scale-up' ($FOCUS)")
	return cmd
}

// acquireTestbed gets the run its cluster: $KUBECONFIG's, else the one for
// o's cell, created unless it exists. release deletes a cluster this run
// created, unless keep; it is safe to call whatever happened.
func acquireTestbed(ctx context.Context, o testbed.Options, keep bool) (*testbed.Info, func(), error) {
	if kc := os.Getenv("KUBECONFIG"); kc != "" {
		info, err := testbed.Attach(ctx, kc, o.Config, o.Engine, o.RepoRoot)
		return info, func() {}, err
	}
	info, err := testbed.Up(ctx, o)
	if info != nil && info.Reused && !keep {
		progress.Printf("cluster %s existed before this run: keeping it", info.KindCluster)
	}
	release := func() {}
	if info != nil && !info.Reused && !keep {
		release = func() {
			// A fresh context: an interrupted run still deletes its cluster.
			dctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			o.Name = info.KindCluster
			if derr := testbed.Down(dctx, o); derr != nil {
				progress.Printf("deleting cluster %s: %v", info.KindCluster, derr)
			}
		}
	}
	return info, release, err
}

// suiteRun is one Ginkgo run of the suites against a described testbed.
type suiteRun struct {
	repoRoot, testbed, dir string // dir: where the reports go
	labelFilter            string
	focus                  string // a regular expression of the specs' full text
	suites                 *compiledSuites
	procs                  int
	env                    []string // added to the suites' environment
}

// suiteOutcome is what one Ginkgo run left: its merged report, one entry
// per suite, and Ginkgo's exit error (nil when every spec passed).
type suiteOutcome struct {
	reports []types.Report
	exit    *exec.ExitError
}

// runSuites runs the suites with Ginkgo, writing junit.xml and report.json
// into r.dir, and returns the report it wrote with Ginkgo's exit error when
// specs failed. It returns an error when Ginkgo could not run at all, or
// left a report that does not speak for every suite.
func runSuites(ctx context.Context, r suiteRun, stdout, stderr io.Writer) (suiteOutcome, error) {
	args := []string{"tool", "ginkgo", "run", "--output-dir=" + r.dir, "--junit-report=junit.xml", "--json-report=report.json",
		"--timeout=80m", "--poll-progress-after=120s", "--keep-going", "--silence-skips"}
	if r.procs > 1 {
		args = append(args, fmt.Sprintf("--procs=%d", r.procs))
	}
	if r.labelFilter != "" {
		args = append(args, "--label-filter="+r.labelFilter)
	}
	if r.focus != "" {
		args = append(args, "--focus="+r.focus)
	}
	args = append(args, r.suites.binaries...)
	progress.Printf("running suites (reports: %s): go %s", r.dir, strings.Join(args, " "))
	g := exec.CommandContext(ctx, "go", args...)
	g.Dir = r.repoRoot
	g.Stdout, g.Stderr = stdout, stderr
	g.Env = append(append(os.Environ(), testbed.EnvVar+"="+r.testbed, "NETCONFORM_REPORT_DIR="+r.dir), r.env...)
	err := g.Run()
	progress.Printf("reports: %s", r.dir)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return suiteOutcome{}, err
	}
	// Every verdict after this reads report.json: make sure it speaks for
	// every suite that ran (Ginkgo merges one part per suite).
	reports, rerr := report.ReadGinkgoJSON(filepath.Join(r.dir, "report.json"))
	if rerr != nil {
		return suiteOutcome{}, fmt.Errorf("reading the suites' report: %w", rerr)
	}
	if len(reports) != len(r.suites.binaries) {
		var got []string
		for _, rep := range reports {
			got = append(got, rep.SuiteDescription)
		}
		return suiteOutcome{}, fmt.Errorf("%s/report.json holds %d suite(s) %v, but %d ran (%v): the report is incomplete", r.dir, len(reports), got, len(r.suites.binaries), r.suites.binaries)
	}
	return suiteOutcome{reports: reports, exit: exit}, nil
}

// knownFailures applies the cell's declared known failures (signatures:
// spec and failure message) to the suites' JSON report: declared specs
// that fail as declared do not fail the run; declared specs that pass, or
// fail otherwise, do, and so does any other failure. The summary goes to
// dir/known-failures.txt and to out. tbPath is the testbed description the
// declarations came from; outcome is what the suites left.
func knownFailures(dir, tbPath string, declarations []report.Declaration, outcome suiteOutcome, out io.Writer) error {
	declared, err := report.Compile(declarations)
	if err != nil {
		return fmt.Errorf("the known failures in %s: %w", tbPath, err)
	}
	exit := outcome.exit
	s := report.Classify(outcome.reports, declared)
	var b strings.Builder
	s.Write(&b)
	path := filepath.Join(dir, "known-failures.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s(%s)\n", b.String(), path)
	if s.Failed(exit != nil) {
		return fmt.Errorf("suites failed: %d other failures, %d declared known failures that passed, %d suite failures; see %s and %s/junit.xml",
			len(s.Failures), len(s.Stale), len(s.SuiteProblems), path, dir)
	}
	if exit != nil {
		progress.Printf("suites exited %d, only for the cell's declared known failures (%d specs): the run passes; see %s", exit.ExitCode(), len(s.Known), path)
	}
	return nil
}
