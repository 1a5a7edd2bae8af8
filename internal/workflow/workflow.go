// Package workflow writes the GitHub Actions workflows that run the test
// matrix. clusters/matrix.yaml is the one source of the cells: the nightly
// workflow's job matrix is generated from it (TestNightlyMatchesMatrix fails
// when the checked-in file and the matrix disagree; `go test
// ./internal/workflow -update` rewrites it), so a cell added to the matrix
// cannot be forgotten by CI.
package workflow

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/netconform/netconform/pkg/cluster"
)

// NightlyPath and PullRequestPath are where the workflows live, relative to
// the repository root.
const (
	NightlyPath     = ".github/workflows/nightly.yaml"
	PullRequestPath = ".github/workflows/pull-request.yaml"
)

// job is one cell as the nightly workflow's matrix carries it. A cell the
// runner cannot run (requires: ipvs without IPVS) still gets its job:
// netconform reports it unsupported, with the reason, rather than CI
// guessing the runner's kernel.
type job struct {
	Cell, Config, Kubernetes, Artifact string
}

func jobs(m *cluster.Matrix) []job {
	out := make([]job, 0, len(m.Cells))
	for _, c := range m.Cells {
		out = append(out, job{
			Cell:       c.Name,
			Config:     "clusters/" + c.Config,
			Kubernetes: c.Kubernetes,
			// Artifact names may not hold '/'.
			Artifact: "report-" + strings.ReplaceAll(c.Name, "/", "-"),
		})
	}
	return out
}

// Nightly renders the nightly workflow for the matrix: one job per cell on a
// schedule and on demand, each uploading its run's reports, and a last job
// that merges them into one report and writes the Markdown summary to the
// job summary.
func Nightly(m *cluster.Matrix) ([]byte, error) {
	if len(m.Cells) == 0 {
		return nil, fmt.Errorf("the matrix in %s has no cells", m.Dir)
	}
	var b bytes.Buffer
	if err := nightly.Execute(&b, jobs(m)); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", NightlyPath, err)
	}
	return b.Bytes(), nil
}

// The cell job's steps mirror .ci/run: host packages, then the README's
// command for one cell. GitHub's runners reach the registries, so the node
// image is kindest/node and the add-ons are upstream's images; the caches
// keep Go builds and netconform's own build cache (offline node images,
// the probe image) between nights.
var nightly = template.Must(template.New("nightly").Parse(`# Generated from clusters/matrix.yaml by internal/workflow; do not edit.
# Regenerate with: go test ./internal/workflow -update
name: nightly

on:
  schedule:
    - cron: "17 2 * * *"
  workflow_dispatch: {}

permissions:
  contents: read

concurrency:
  group: nightly
  cancel-in-progress: false

jobs:
  cell:
    name: ${{"{{"}} matrix.cell {{"}}"}}
    runs-on: ubuntu-24.04
    timeout-minutes: 90
    strategy:
      fail-fast: false
      matrix:
        include:
{{- range .}}
          - cell: {{.Cell}}
            config: {{.Config}}
            kubernetes: {{.Kubernetes}}
            artifact: {{.Artifact}}
{{- end}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version-file: go.mod
      - name: netconform build cache
        uses: actions/cache@v4
        with:
          path: ~/.cache/netconform
          key: netconform-${{"{{"}} matrix.kubernetes {{"}}"}}-${{"{{"}} hashFiles('go.sum', 'pkg/nodeimage/**', 'pkg/addons/**') {{"}}"}}
          restore-keys: netconform-${{"{{"}} matrix.kubernetes {{"}}"}}-
      - name: host packages
        run: |
          sudo apt-get update -qq
          sudo apt-get install -y -qq --no-install-recommends debootstrap gcc libc6-dev jq iptables iproute2 conntrack
      # netconform needs root (the engine, the host's isolation rule); -E and
      # PATH keep setup-go's Go and the runner's Go caches.
      - name: make test-networking CLUSTER_CONFIG=${{"{{"}} matrix.config {{"}}"}}
        env:
          CLUSTER_CONFIG: ${{"{{"}} matrix.config {{"}}"}}
        run: sudo -E env "PATH=$PATH" make test-networking
      - name: upload the cell's reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: ${{"{{"}} matrix.artifact {{"}}"}}
          path: reports/
          if-no-files-found: warn

  report:
    name: merged report
    needs: cell
    if: always()
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version-file: go.mod
      - uses: actions/download-artifact@v4
        with:
          pattern: report-*
          path: cells
      - name: merge the cells' reports
        run: go run ./cmd/netconform report --out reports/nightly cells/*/[0-9]*
      - name: job summary
        if: always()
        run: cat reports/nightly/summary.md >> "$GITHUB_STEP_SUMMARY"
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: report-merged
          path: reports/nightly/
`))
