// Package report reads what a run's Ginkgo suites reported and decides,
// against the cell's declared known failures, whether the run failed.
//
// A matrix cell may declare specs (by label) that are expected to fail on
// it, with why (clusters/matrix.yaml, knownFailures). After the suites run:
//
//   - a declared spec that fails is a known failure: reported with its
//     reason, and it does not fail the run;
//   - a declared spec that passes fails the run: the declaration is stale
//     (the CNI or kube-proxy changed, or the spec no longer tests what it
//     claims), and a stale declaration would hide the next real failure;
//   - every other failure fails the run, as it always did.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// Kind is how a spec outcome counts for the run.
type Kind string

const (
	// KnownFailure is a declared spec that failed, as declared.
	KnownFailure Kind = "known failure"
	// UnexpectedPass is a declared spec that passed.
	UnexpectedPass Kind = "expected to fail here but passed"
	// Failure is any other failure (an undeclared spec, or a declared one
	// that panicked or was interrupted: that is not the declared behaviour).
	Failure Kind = "failure"
)

// Entry is one spec (or suite node) that matters for the verdict.
type Entry struct {
	Kind  Kind
	Suite string // the suite's description
	Spec  string // full text, containers and leaf
	State string // Ginkgo's state: failed, passed, panicked, ...
	// Labels are the spec's labels that are declared known failures
	// (empty for an undeclared failure).
	Labels []string
	// Reason is the declaration's reason (KnownFailure, UnexpectedPass).
	Reason string
	// Message is the first line of the failure message, and Location
	// where it happened.
	Message  string
	Location string
}

// Summary classifies a run's outcomes.
type Summary struct {
	// Declared maps labels to reasons, as the cell declares them.
	Declared map[string]string
	Known    []Entry
	Stale    []Entry // UnexpectedPass
	Failures []Entry
	// SuiteProblems are failures of whole suites that no spec explains
	// (did not compile, interrupted, programmatic focus).
	SuiteProblems []string
	// NotRun counts declared specs that were skipped or pending (for
	// instance filtered out by a label filter).
	NotRun int
}

// failedAsDeclared are the states a declared failure may show: an
// assertion failed, or the spec ran out of its time waiting for the
// behaviour. A panic, an interruption or an abort is something else.
var failedAsDeclared = types.SpecStateFailed | types.SpecStateTimedout

// ReadGinkgoJSON reads a report written with --json-report (one Report
// per suite).
func ReadGinkgoJSON(path string) ([]types.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the Ginkgo report: %w", err)
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("decoding the Ginkgo report %s: %w", path, err)
	}
	return reports, nil
}

// Classify sorts the specs of reports by the declared known failures
// (label → reason).
func Classify(reports []types.Report, declared map[string]string) Summary {
	s := Summary{Declared: declared}
	for _, r := range reports {
		explained := false
		for _, sr := range r.SpecReports {
			e := entry(r, sr, declared)
			isSpec := sr.LeafNodeType == types.NodeTypeIt
			switch {
			case isSpec && len(e.Labels) > 0 && sr.State.Is(failedAsDeclared):
				e.Kind = KnownFailure
				s.Known = append(s.Known, e)
				explained = true
			case isSpec && len(e.Labels) > 0 && sr.State == types.SpecStatePassed:
				e.Kind = UnexpectedPass
				s.Stale = append(s.Stale, e)
			case isSpec && len(e.Labels) > 0 && sr.State.Is(types.SpecStateSkipped|types.SpecStatePending):
				s.NotRun++
			case sr.State.Is(types.SpecStateFailureStates):
				e.Kind, e.Reason = Failure, ""
				s.Failures = append(s.Failures, e)
				explained = true
			}
		}
		for _, why := range r.SpecialSuiteFailureReasons {
			s.SuiteProblems = append(s.SuiteProblems, r.SuiteDescription+": "+why)
		}
		if !r.SuiteSucceeded && !explained && len(r.SpecialSuiteFailureReasons) == 0 {
			s.SuiteProblems = append(s.SuiteProblems, r.SuiteDescription+" ("+r.SuitePath+"): failed without a failing spec")
		}
	}
	return s
}

func entry(r types.Report, sr types.SpecReport, declared map[string]string) Entry {
	e := Entry{Suite: r.SuiteDescription, Spec: sr.FullText(), State: sr.State.String()}
	if e.Spec == "" {
		e.Spec = "[" + sr.LeafNodeType.String() + "]"
	}
	var reasons []string
	for _, l := range sr.Labels() {
		if why, ok := declared[l]; ok {
			e.Labels = append(e.Labels, l)
			if !contains(reasons, why) {
				reasons = append(reasons, why)
			}
		}
	}
	sort.Strings(e.Labels)
	e.Reason = strings.Join(reasons, "; ")
	if sr.State.Is(types.SpecStateFailureStates) {
		e.Message, _, _ = strings.Cut(strings.TrimSpace(sr.Failure.Message), "\n")
		e.Location = sr.Failure.Location.String()
	}
	return e
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Failed says whether the run failed. ginkgoFailed is whether Ginkgo
// itself exited non-zero: it then failed for a reason the report must
// explain (declared failures, other failures, suite problems), or the run
// fails anyway.
func (s Summary) Failed(ginkgoFailed bool) bool {
	if len(s.Stale) > 0 || len(s.Failures) > 0 || len(s.SuiteProblems) > 0 {
		return true
	}
	return ginkgoFailed && len(s.Known) == 0
}

// Write prints the summary for people: the known failures with their
// reasons, then stale declarations and other failures.
func (s Summary) Write(w io.Writer) {
	labels := make([]string, 0, len(s.Declared))
	for l := range s.Declared {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	fmt.Fprintf(w, "Known failures declared for this cell: %s\n", strings.Join(labels, ", "))
	fmt.Fprintf(w, "  %d failed as declared, %d declared but passed, %d other failures", len(s.Known), len(s.Stale), len(s.Failures))
	if s.NotRun > 0 {
		fmt.Fprintf(w, ", %d declared specs not run", s.NotRun)
	}
	fmt.Fprintln(w)
	section := func(title string, es []Entry) {
		if len(es) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, e := range es {
			fmt.Fprintf(w, "- [%s] %s\n", e.State, e.Spec)
			switch e.Kind {
			case KnownFailure:
				fmt.Fprintf(w, "  known failure (%s): %s\n", strings.Join(e.Labels, ", "), e.Reason)
			case UnexpectedPass:
				fmt.Fprintf(w, "  expected to fail here but passed (%s: %s); the declaration is stale: remove it from clusters/matrix.yaml or find out why the behaviour changed\n", strings.Join(e.Labels, ", "), e.Reason)
			}
			if e.Message != "" {
				fmt.Fprintf(w, "  failure: %s\n", e.Message)
			}
			if e.Location != "" {
				fmt.Fprintf(w, "  at %s\n", e.Location)
			}
		}
	}
	section("Known failures (do not fail the run)", s.Known)
	section("Expected to fail here but passed (fail the run)", s.Stale)
	section("Other failures (fail the run)", s.Failures)
	if len(s.SuiteProblems) > 0 {
		fmt.Fprintf(w, "\nSuite failures (fail the run):\n")
		for _, p := range s.SuiteProblems {
			fmt.Fprintf(w, "- %s\n", p)
		}
	}
}
