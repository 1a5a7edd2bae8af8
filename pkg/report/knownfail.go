// Package report reads what a run's Ginkgo suites reported and decides,
// against the cell's declared known failures, whether the run failed.
//
// A matrix cell may declare failures expected on it (clusters/matrix.yaml,
// knownFailures), each by its signature: which spec (its full text, or a
// regular expression of it) and what it fails with (a regular expression
// of the failure message), with why and, where there is one, a link to the
// upstream issue. After the suites run:
//
//   - a declared spec that fails with a message its declaration matches is
//     a known failure: reported with its reason, and it does not fail the
//     run;
//   - a declared spec that fails otherwise (another message, a panic, an
//     interruption) is a failure like any other: the declared behaviour is
//     not what broke;
//   - a declared spec that passes fails the run: the declaration is stale
//     (the CNI or kube-proxy changed, or the spec no longer tests what it
//     claims), and a stale declaration would hide the next real failure;
//   - a declaration whose specs did not run (filtered out, skipped, or no
//     spec of the run has that text) is reported as not run;
//   - every other failure fails the run, as it always did.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// Declaration is one known failure a cell declares: its signature (the
// spec and the failure message), why it fails there, and optionally where
// the cause is tracked upstream.
type Declaration struct {
	// Spec is the spec's full text (containers and leaf, as Ginkgo reports
	// it), exactly. Set this or SpecMatches.
	Spec string `json:"spec,omitempty"`
	// SpecMatches is a regular expression (Go syntax) the spec's full text
	// must match, for one declaration covering several specs.
	SpecMatches string `json:"specMatches,omitempty"`
	// Message is a regular expression (Go syntax) the failure message must
	// match, somewhere in it; anchor it (^, $) to say more.
	Message string `json:"message"`
	Reason  string `json:"reason"`
	// Link is the upstream issue or document about the cause.
	Link string `json:"link,omitempty"`
}

// String names the declaration by its spec, for messages.
func (d Declaration) String() string {
	if d.Spec != "" {
		return fmt.Sprintf("spec %q", d.Spec)
	}
	return fmt.Sprintf("specs matching /%s/", d.SpecMatches)
}

// Signature is a declaration ready to match: its expressions compiled.
type Signature struct {
	Declaration
	spec    *regexp.Regexp // nil: Spec exactly
	message *regexp.Regexp
}

// Compile checks declarations and compiles their expressions. The error
// names the declaration (its position, from 1, and its spec) and what is
// wrong with it.
func Compile(ds []Declaration) ([]Signature, error) {
	var out []Signature
	for i, d := range ds {
		sig, err := compile(d)
		if err != nil {
			return nil, fmt.Errorf("known failure %d (%s): %w", i+1, d, err)
		}
		out = append(out, sig)
	}
	return out, nil
}

func compile(d Declaration) (Signature, error) {
	s := Signature{Declaration: d}
	var err error
	switch {
	case (d.Spec == "") == (d.SpecMatches == ""):
		return s, fmt.Errorf("give the spec's full text (spec) or a regular expression of it (specMatches), one of the two")
	case d.Message == "":
		return s, fmt.Errorf("give a regular expression of the failure message (message): a declaration without one would excuse any failure of the spec")
	case strings.TrimSpace(d.Reason) == "":
		return s, fmt.Errorf("give the reason the spec fails here (reason)")
	case d.SpecMatches != "":
		if s.spec, err = regexp.Compile(d.SpecMatches); err != nil {
			return s, fmt.Errorf("specMatches: %w", err)
		}
	}
	if s.message, err = regexp.Compile(d.Message); err != nil {
		return s, fmt.Errorf("message: %w", err)
	}
	return s, nil
}

// names says whether the signature declares the spec of that full text.
func (s Signature) names(fullText string) bool {
	if s.spec == nil {
		return s.Declaration.Spec == fullText
	}
	return s.spec.MatchString(fullText)
}

// Kind is how a spec outcome counts for the run.
type Kind string

const (
	// KnownFailure is a declared spec that failed, as declared.
	KnownFailure Kind = "known failure"
	// UnexpectedPass is a declared spec that passed.
	UnexpectedPass Kind = "expected to fail here but passed"
	// Failure is any other failure (an undeclared spec, or a declared one
	// that failed otherwise than declared).
	Failure Kind = "failure"
)

// Entry is one spec (or suite node) that matters for the verdict.
type Entry struct {
	Kind  Kind
	Suite string // the suite's description
	Spec  string // full text, containers and leaf
	State string // Ginkgo's state: failed, passed, panicked, ...
	// Declared are the declarations naming the spec (none for an
	// undeclared one); for a KnownFailure, the first is the one whose
	// message matched.
	Declared []Declaration
	// Mismatch says, for a declared spec counted as a Failure, how it
	// failed otherwise than declared.
	Mismatch string
	// Message is the first line of the failure message, and Location
	// where it happened.
	Message  string
	Location string
}

// Summary classifies a run's outcomes.
type Summary struct {
	// Declared are the cell's declarations.
	Declared []Signature
	Known    []Entry
	Stale    []Entry // UnexpectedPass
	Failures []Entry
	// SuiteProblems are failures of whole suites that no spec explains
	// (did not compile, interrupted, programmatic focus).
	SuiteProblems []string
	// NotRun are the declarations none of whose specs ran (filtered out by
	// a label filter, skipped, or no spec of the run has that text).
	NotRun []Declaration
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

// Classify sorts the specs of reports by the declared known failures.
func Classify(reports []types.Report, declared []Signature) Summary {
	s := Summary{Declared: declared}
	ran := make([]bool, len(declared))
	for _, r := range reports {
		explained := false
		for _, sr := range r.SpecReports {
			e, sigs := entry(r, sr, declared)
			isSpec := sr.LeafNodeType == types.NodeTypeIt
			if isSpec && sr.State.Is(types.SpecStatePassed|failedAsDeclared|types.SpecStateFailureStates) {
				for _, i := range sigs {
					ran[i] = true
				}
			}
			switch {
			case isSpec && len(sigs) > 0 && sr.State.Is(failedAsDeclared):
				if i, ok := matching(declared, sigs, sr.Failure.Message); ok {
					e.Kind = KnownFailure
					e.Declared = append([]Declaration{declared[i].Declaration}, without(e.Declared, declared[i].Declaration)...)
					s.Known = append(s.Known, e)
				} else {
					e.Kind = Failure
					e.Mismatch = "declared as a known failure here, but its failure message matches no declared message (" + messages(declared, sigs) + "): it is not the declared failure"
					s.Failures = append(s.Failures, e)
				}
				explained = true
			case isSpec && len(sigs) > 0 && sr.State == types.SpecStatePassed:
				e.Kind = UnexpectedPass
				s.Stale = append(s.Stale, e)
			case sr.State.Is(types.SpecStateFailureStates):
				e.Kind = Failure
				if len(sigs) > 0 {
					e.Mismatch = "declared as a known failure here, but it " + sr.State.String() + ", which is not the declared failure"
				}
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
	for i, ok := range ran {
		if !ok {
			s.NotRun = append(s.NotRun, declared[i].Declaration)
		}
	}
	return s
}

// entry describes a spec report, with the indexes of the declarations
// naming it.
func entry(r types.Report, sr types.SpecReport, declared []Signature) (Entry, []int) {
	e := Entry{Suite: r.SuiteDescription, Spec: sr.FullText(), State: sr.State.String()}
	if e.Spec == "" {
		e.Spec = "[" + sr.LeafNodeType.String() + "]"
	}
	var sigs []int
	if sr.LeafNodeType == types.NodeTypeIt {
		for i, d := range declared {
			if d.names(e.Spec) {
				sigs = append(sigs, i)
				e.Declared = append(e.Declared, d.Declaration)
			}
		}
	}
	if sr.State.Is(types.SpecStateFailureStates) {
		e.Message, _, _ = strings.Cut(strings.TrimSpace(sr.Failure.Message), "\n")
		e.Location = sr.Failure.Location.String()
	}
	return e, sigs
}

// matching is the first of the declarations sigs whose message matches.
func matching(declared []Signature, sigs []int, message string) (int, bool) {
	for _, i := range sigs {
		if declared[i].message.MatchString(message) {
			return i, true
		}
	}
	return 0, false
}

func messages(declared []Signature, sigs []int) string {
	var out []string
	for _, i := range sigs {
		out = append(out, "/"+declared[i].Message+"/")
	}
	return strings.Join(out, ", ")
}

func without(ds []Declaration, d Declaration) []Declaration {
	var out []Declaration
	for _, x := range ds {
		if x != d {
			out = append(out, x)
		}
	}
	return out
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

// Write prints the summary for people: the declarations, the known
// failures with their reasons, then stale declarations, other failures
// and declarations not run.
func (s Summary) Write(w io.Writer) {
	fmt.Fprintf(w, "Known failures declared for this cell: %d\n", len(s.Declared))
	for _, d := range s.Declared {
		fmt.Fprintf(w, "  - %s failing with /%s/: %s%s\n", d.Declaration, d.Message, d.Reason, link(d.Declaration))
	}
	fmt.Fprintf(w, "  %d failed as declared, %d declared but passed, %d other failures, %d declarations not run\n", len(s.Known), len(s.Stale), len(s.Failures), len(s.NotRun))
	section := func(title string, es []Entry) {
		if len(es) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, e := range es {
			fmt.Fprintf(w, "- [%s] %s\n", e.State, e.Spec)
			switch {
			case e.Kind == KnownFailure:
				fmt.Fprintf(w, "  known failure: %s%s\n", e.Declared[0].Reason, link(e.Declared[0]))
			case e.Kind == UnexpectedPass:
				for _, d := range e.Declared {
					fmt.Fprintf(w, "  expected to fail here but passed (%s: %s); the declaration is stale: remove it from clusters/matrix.yaml or find out why the behaviour changed\n", d, d.Reason)
				}
			case e.Mismatch != "":
				fmt.Fprintf(w, "  %s\n", e.Mismatch)
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
	if len(s.NotRun) > 0 {
		fmt.Fprintf(w, "\nDeclared but not run (no spec of this run with that text ran: filtered out, skipped, or renamed):\n")
		for _, d := range s.NotRun {
			fmt.Fprintf(w, "- %s: %s\n", d, d.Reason)
		}
	}
}

func link(d Declaration) string {
	if d.Link == "" {
		return ""
	}
	return " (" + d.Link + ")"
}
