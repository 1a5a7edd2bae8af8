package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Merged is many cells' runs side by side: a row per spec, a column per
// run.
type Merged struct {
	Runs []CellRun
	Rows []Row
}

// Row is one spec across the runs; Cells[i] is its result in Runs[i]
// (nil where that run did not have the spec).
type Row struct {
	Suite, Spec string
	Labels      []string
	Cells       []*Result
}

// Merge lines up the runs' results by suite and spec text.
func Merge(runs []CellRun) Merged {
	m := Merged{Runs: runs}
	index := map[string]int{}
	for i, run := range runs {
		for j := range run.Results {
			r := &run.Results[j]
			key := r.Suite + "\x00" + r.Spec
			k, ok := index[key]
			if !ok {
				k = len(m.Rows)
				index[key] = k
				m.Rows = append(m.Rows, Row{Suite: r.Suite, Spec: r.Spec, Labels: r.Labels, Cells: make([]*Result, len(runs))})
			}
			m.Rows[k].Cells[i] = r
		}
	}
	sort.SliceStable(m.Rows, func(i, j int) bool {
		a, b := m.Rows[i], m.Rows[j]
		if a.Suite != b.Suite {
			return a.Suite < b.Suite
		}
		if la, lb := firstLabel(a.Labels), firstLabel(b.Labels); la != lb {
			return la < lb
		}
		return a.Spec < b.Spec
	})
	return m
}

func firstLabel(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return ls[0]
}

// Counts is how many results of a run ended each way.
func (r CellRun) Counts() map[Outcome]int {
	c := map[Outcome]int{}
	for _, res := range r.Results {
		c[res.Outcome]++
	}
	return c
}

// Green says whether the run passes: nothing failed but declared failures,
// no declaration went stale, no suite failed on its own.
func (r CellRun) Green() bool {
	c := r.Counts()
	return c[Failed] == 0 && c[PassedDeclared] == 0 && len(r.Problems) == 0
}

var mark = map[Outcome]string{Passed: "✅", Failed: "❌", Known: "⚠️", Skipped: "⏭️", PassedDeclared: "❗"}

// WriteSummary writes the Markdown summary CI shows: a verdict per cell,
// then every spec that did not simply pass, by cell, with its reason or
// the first line of its failure.
func (m Merged) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "# netconform: %d cell(s)\n\n", len(m.Runs))
	fmt.Fprintln(w, "| cell | proxy mode | verdict | passed | failed | known failures | skipped | suites' wall time |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range m.Runs {
		c := r.Counts()
		verdict := "passed"
		if !r.Green() {
			verdict = "**failed**"
		}
		var wall time.Duration
		for _, d := range r.Suites {
			wall += d
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %d | %d | %s |\n", r.Cell, r.ProxyMode, verdict, c[Passed], c[Failed]+c[PassedDeclared], c[Known], c[Skipped], wall.Round(time.Second))
	}
	fmt.Fprintln(w)
	for i, r := range m.Runs {
		var lines []string
		for _, row := range m.Rows {
			res := row.Cells[i]
			if res == nil || res.Outcome == Passed {
				continue
			}
			why := res.Reason
			if res.Outcome == Failed {
				why, _, _ = strings.Cut(res.Message, "\n")
			}
			lines = append(lines, fmt.Sprintf("- %s **%s** %s — %s", mark[res.Outcome], res.Outcome, row.Spec, mdEscape(why)))
		}
		for _, p := range r.Problems {
			lines = append(lines, "- ❌ **suite problem** "+mdEscape(p))
		}
		if len(lines) > 0 {
			fmt.Fprintf(w, "## %s\n\n%s\n\n", r.Cell, strings.Join(lines, "\n"))
		}
	}
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ", "<", "&lt;").Replace(s)
}

// Conformance is a cell's conformance report, modelled on the Gateway and
// network-policy APIs' ConformanceReport: the implementation, the cell,
// and which areas (labels) and specs passed.
type Conformance struct {
	APIVersion     string            `json:"apiVersion"`
	Kind           string            `json:"kind"`
	Date           string            `json:"date"`
	Implementation Implementation    `json:"implementation"`
	Cell           string            `json:"cell"`
	Result         string            `json:"result"` // success or failure
	Areas          []AreaConformance `json:"areas"`
}

// Implementation names the proxy under test.
type Implementation struct {
	Name      string `json:"name"`
	Mode      string `json:"mode,omitempty"`
	NodeImage string `json:"nodeImage,omitempty"`
}

// AreaConformance is one area's specs in a cell.
type AreaConformance struct {
	Area    string   `json:"area"`
	Result  string   `json:"result"` // success, partial, failure or skipped
	Passed  []string `json:"passed,omitempty"`
	Failed  []string `json:"failed,omitempty"`
	Known   []string `json:"knownFailures,omitempty"`
	Skipped []string `json:"skipped,omitempty"`
}

// Conformance summarises the run by area. An area's result is failure if
// any of its specs failed, partial if some are known failures or skipped,
// skipped if none ran, success otherwise.
func (r CellRun) Conformance() Conformance {
	c := Conformance{APIVersion: "netconform.io/v1alpha1", Kind: "ConformanceReport", Date: r.Started.UTC().Format(time.RFC3339),
		Implementation: Implementation{Name: "kube-proxy", Mode: r.ProxyMode, NodeImage: r.NodeImage}, Cell: r.Cell, Result: "success"}
	if !r.Green() {
		c.Result = "failure"
	}
	areas := map[string]*AreaConformance{}
	var names []string
	for _, res := range r.Results {
		for _, l := range res.Labels {
			a := areas[l]
			if a == nil {
				a = &AreaConformance{Area: l}
				areas[l] = a
				names = append(names, l)
			}
			switch res.Outcome {
			case Passed:
				a.Passed = append(a.Passed, res.Spec)
			case Failed, PassedDeclared:
				a.Failed = append(a.Failed, res.Spec)
			case Known:
				a.Known = append(a.Known, res.Spec)
			case Skipped:
				a.Skipped = append(a.Skipped, res.Spec)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		a := areas[n]
		switch {
		case len(a.Failed) > 0:
			a.Result = "failure"
		case len(a.Passed) == 0:
			a.Result = "skipped"
		case len(a.Known) > 0 || len(a.Skipped) > 0:
			a.Result = "partial"
		default:
			a.Result = "success"
		}
		c.Areas = append(c.Areas, *a)
	}
	return c
}

// YAML renders the conformance report.
func (c Conformance) YAML() ([]byte, error) { return yaml.Marshal(c) }
