package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// Outcome is how one spec ended in one cell, as a person reads a report.
type Outcome string

const (
	Passed         Outcome = "passed"
	Failed         Outcome = "failed"
	Known          Outcome = "known failure"
	Skipped        Outcome = "skipped"
	PassedDeclared Outcome = "passed, declared failing" // a stale known-failure declaration
)

// Result is one spec's outcome in one cell, with what explains it.
type Result struct {
	Suite    string
	Spec     string // full text, containers and leaf
	Labels   []string
	Outcome  Outcome
	Reason   string // why skipped, or the declared known failure's reason
	Message  string // the whole failure message
	Location string
	Duration time.Duration
	Evidence []Evidence // the spec's report entries: probes, samples, rules, evidence
}

// Evidence is one report entry of a spec.
type Evidence struct{ Name, Value string }

// CellRun is one run of the suites on one cell: a directory that
// `netconform run` wrote (testbed.json, report.json).
type CellRun struct {
	Dir       string
	Cell      string // matrix cell, or the kind cluster / kubeconfig for a cluster outside it
	ProxyMode string
	NodeImage string
	Started   time.Time
	Results   []Result
	Suites    map[string]time.Duration // wall time per suite
	Problems  []string                 // suite failures no spec explains
}

// testbedFields are the fields of testbed.json a report needs (pkg/testbed
// writes it and imports this package, so it is read here by shape).
type testbedFields struct {
	Kubeconfig    string        `json:"kubeconfig"`
	Cell          string        `json:"cell"`
	KindCluster   string        `json:"kindCluster"`
	NodeImage     string        `json:"nodeImage"`
	ProxyMode     string        `json:"proxyMode"`
	KnownFailures []Declaration `json:"knownFailures"`
}

// LoadRun reads the run in dir and classifies every spec, applying the
// cell's declared known failures as the run did.
func LoadRun(dir string) (CellRun, error) {
	run := CellRun{Dir: dir, Suites: map[string]time.Duration{}}
	var tb testbedFields
	// A mutants run keeps one testbed.json beside its per-fault runs.
	data, err := os.ReadFile(filepath.Join(dir, "testbed.json"))
	inMutants := false
	if errors.Is(err, fs.ErrNotExist) {
		if data, err = os.ReadFile(filepath.Join(dir, "..", "testbed.json")); err == nil {
			inMutants = true
		}
	}
	if err != nil {
		return run, fmt.Errorf("reading the run in %s: %w (a run directory is what `netconform run` or `netconform mutants` leaves under reports/)", dir, err)
	}
	if err := json.Unmarshal(data, &tb); err != nil {
		return run, fmt.Errorf("decoding %s/testbed.json: %w", dir, err)
	}
	run.Cell, run.ProxyMode, run.NodeImage = tb.Cell, tb.ProxyMode, tb.NodeImage
	if run.Cell == "" {
		run.Cell = firstNonEmpty(tb.KindCluster, tb.Kubeconfig, filepath.Base(dir))
	}
	if inMutants {
		run.Cell += " · " + filepath.Base(dir)
	}
	reports, err := ReadGinkgoJSON(filepath.Join(dir, "report.json"))
	if err != nil {
		return run, err
	}
	declared, err := Compile(tb.KnownFailures)
	if err != nil {
		return run, fmt.Errorf("the known failures in %s/testbed.json: %w", dir, err)
	}
	s := Classify(reports, declared)
	known := map[string]Entry{}
	for _, e := range s.Known {
		known[e.Suite+"\x00"+e.Spec] = e
	}
	stale := map[string]bool{}
	for _, e := range s.Stale {
		stale[e.Suite+"\x00"+e.Spec] = true
	}
	run.Problems = s.SuiteProblems
	for _, r := range reports {
		run.Suites[r.SuiteDescription] = r.RunTime
		if run.Started.IsZero() || r.StartTime.Before(run.Started) {
			run.Started = r.StartTime
		}
		for _, sr := range r.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt {
				continue
			}
			res := Result{Suite: r.SuiteDescription, Spec: sr.FullText(), Labels: sr.Labels(), Duration: sr.RunTime}
			key := res.Suite + "\x00" + res.Spec
			switch {
			case sr.State.Is(types.SpecStatePending | types.SpecStateSkipped):
				res.Outcome, res.Reason = Skipped, skipReason(r, sr)
			case stale[key]:
				res.Outcome = PassedDeclared
			case sr.State == types.SpecStatePassed:
				res.Outcome = Passed
			default:
				res.Outcome, res.Message, res.Location = Failed, strings.TrimSpace(sr.Failure.Message), sr.Failure.Location.String()
				if e, ok := known[key]; ok {
					res.Outcome, res.Reason = Known, e.Declared[0].Reason
				}
			}
			for _, re := range sr.ReportEntries {
				res.Evidence = append(res.Evidence, Evidence{Name: re.Name, Value: re.StringRepresentation()})
			}
			run.Results = append(run.Results, res)
		}
	}
	sort.SliceStable(run.Results, func(i, j int) bool { return run.Results[i].Spec < run.Results[j].Spec })
	return run, nil
}

// skipReason is what the spec said when it skipped, or why Ginkgo did not
// run it.
func skipReason(r types.Report, sr types.SpecReport) string {
	if m := strings.TrimSpace(sr.Failure.Message); m != "" {
		return m
	}
	if sr.State == types.SpecStatePending {
		return "pending (not written yet)"
	}
	if f := r.SuiteConfig.LabelFilter; f != "" {
		return "not selected by the label filter " + f
	}
	if f := r.SuiteConfig.FocusStrings; len(f) > 0 {
		return "not selected by the focus " + strings.Join(f, ", ")
	}
	return "not run"
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
