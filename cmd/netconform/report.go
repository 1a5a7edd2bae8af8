package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/report"
)

func init() { addCommand(newReportCmd) }

func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report [--out DIR] RUN_DIR...",
		Short: "Merge runs' reports (reports/<run>/) into DIR/index.html, DIR/summary.md and a conformance YAML per cell",
		Long: `report reads the directories that 'netconform run' leaves under reports/
(testbed.json and Ginkgo's report.json), one or many cells, and writes:
  index.html               one static page: spec × cell heatmap, each failure's
                           message and evidence, wall time per spec
  summary.md               a verdict per cell and every spec that did not pass
  conformance-<cell>.yaml  per cell: the implementation and which areas passed
With no RUN_DIR it reads reports/latest.`,
		RunE: func(cmd *cobra.Command, dirs []string) error {
			if len(dirs) == 0 {
				dirs = []string{filepath.Join("reports", "latest")}
			}
			var runs []report.CellRun
			for _, d := range dirs {
				run, err := report.LoadRun(d)
				if err != nil {
					return err
				}
				runs = append(runs, run)
			}
			if out == "" {
				out = dirs[0]
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating the report directory: %w", err)
			}
			m := report.Merge(runs)
			var html, md bytes.Buffer
			if err := m.WriteHTML(&html); err != nil {
				return fmt.Errorf("rendering the HTML report: %w", err)
			}
			m.WriteSummary(&md)
			files := map[string][]byte{"index.html": html.Bytes(), "summary.md": md.Bytes()}
			for _, r := range runs {
				y, err := r.Conformance().YAML()
				if err != nil {
					return fmt.Errorf("the conformance report of %s: %w", r.Cell, err)
				}
				files["conformance-"+fileSafe(r.Cell)+".yaml"] = y
			}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
					return fmt.Errorf("writing the report: %w", err)
				}
			}
			progress.Printf("report of %d run(s): %s", len(runs), filepath.Join(out, "index.html"))
			fmt.Fprint(cmd.OutOrStdout(), md.String())
			for _, r := range runs {
				if !r.Green() {
					return fmt.Errorf("cell %s failed (see %s)", r.Cell, filepath.Join(out, "summary.md"))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the report (default: the first RUN_DIR)")
	return cmd
}

// fileSafe turns a cell name (v1.37/iptables, "v1.37/iptables · baseline")
// or a kubeconfig path into a file name part.
func fileSafe(cell string) string {
	if filepath.IsAbs(cell) {
		cell = filepath.Base(cell)
	}
	return strings.Trim(unsafeChars.ReplaceAllString(cell, "-"), "-")
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._]+`)
