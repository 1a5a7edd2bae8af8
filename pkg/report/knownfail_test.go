package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

var declared = map[string]string{
	"no-endpoints":            "kube-router accepts forwarded traffic first",
	"internal-traffic-policy": "kube-router accepts forwarded traffic first",
}

// spec makes a spec report as Ginkgo writes it: labels on the container
// and on the leaf.
func spec(text string, containerLabels, leafLabels []string, state types.SpecState, msg string) types.SpecReport {
	sr := types.SpecReport{
		ContainerHierarchyTexts:  []string{"Service"},
		ContainerHierarchyLabels: [][]string{containerLabels},
		LeafNodeType:             types.NodeTypeIt,
		LeafNodeText:             text,
		LeafNodeLabels:           leafLabels,
		State:                    state,
	}
	if msg != "" {
		sr.Failure = types.Failure{Message: msg, Location: types.CodeLocation{FileName: "/repo/suites/networking/x_test.go", LineNumber: 42}}
	}
	return sr
}

func suite(succeeded bool, specs ...types.SpecReport) types.Report {
	return types.Report{SuiteDescription: "networking", SuitePath: "/repo/suites/networking", SuiteSucceeded: succeeded, SpecReports: specs}
}

// roundTrip writes reports as Ginkgo's JSON report and reads them back, so
// that the states go through their JSON form as in a real run.
func roundTrip(t *testing.T, reports ...types.Report) []types.Report {
	t.Helper()
	data, err := json.Marshal(reports)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadGinkgoJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestKnownFailuresDoNotFailTheRun(t *testing.T) {
	reports := roundTrip(t, suite(false,
		spec("rejects connections", []string{"no-endpoints"}, nil, types.SpecStateFailed, "connection to 10.96.4.4:80 was not refused: connected\nmore detail"),
		spec("drops when no local endpoint", nil, []string{"internal-traffic-policy", "slow"}, types.SpecStateTimedout, "timed out"),
		spec("spreads requests", []string{"balancing"}, nil, types.SpecStatePassed, ""),
	))
	s := Classify(reports, declared)
	if len(s.Known) != 2 || len(s.Stale) != 0 || len(s.Failures) != 0 || len(s.SuiteProblems) != 0 {
		t.Fatalf("summary %+v", s)
	}
	if s.Failed(true) {
		t.Error("a run whose only failures are declared must not fail")
	}
	if k := s.Known[0]; k.Kind != KnownFailure || k.Reason != declared["no-endpoints"] || k.Message != "connection to 10.96.4.4:80 was not refused: connected" ||
		k.Spec != "Service rejects connections" || k.State != "failed" || !strings.Contains(k.Location, "x_test.go:42") {
		t.Errorf("known failure entry %+v", k)
	}
	if k := s.Known[1]; len(k.Labels) != 1 || k.Labels[0] != "internal-traffic-policy" || k.State != "timedout" {
		t.Errorf("timed-out declared spec %+v", k)
	}
	var out strings.Builder
	s.Write(&out)
	for _, want := range []string{"Known failures declared for this cell: internal-traffic-policy, no-endpoints",
		"2 failed as declared, 0 declared but passed, 0 other failures",
		"known failure (no-endpoints): kube-router accepts forwarded traffic first"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDeclaredSpecThatPassesFailsTheRun(t *testing.T) {
	s := Classify(roundTrip(t, suite(true,
		spec("rejects connections", []string{"no-endpoints"}, nil, types.SpecStatePassed, ""),
	)), declared)
	if len(s.Stale) != 1 || s.Stale[0].Kind != UnexpectedPass {
		t.Fatalf("summary %+v", s)
	}
	if !s.Failed(false) {
		t.Error("a declared failure that passes must fail the run (stale declaration)")
	}
	var out strings.Builder
	s.Write(&out)
	if !strings.Contains(out.String(), "expected to fail here but passed (no-endpoints") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestOtherFailuresStillFailTheRun(t *testing.T) {
	s := Classify(roundTrip(t, suite(false,
		spec("rejects connections", []string{"no-endpoints"}, nil, types.SpecStateFailed, "not refused"),
		spec("spreads requests", []string{"balancing"}, nil, types.SpecStateFailed, "chi-square 40.1 > 13.8"),
		// A declared spec that panics did not fail as declared.
		spec("drops", []string{"internal-traffic-policy"}, nil, types.SpecStatePanicked, "nil pointer"),
		types.SpecReport{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStateFailed, Failure: types.Failure{Message: "no testbed"}},
	)), declared)
	if len(s.Known) != 1 || len(s.Failures) != 3 {
		t.Fatalf("summary %+v", s)
	}
	if !s.Failed(true) {
		t.Error("an undeclared failure must fail the run")
	}
	if s.Failures[2].Spec != "[BeforeSuite]" {
		t.Errorf("suite node entry %+v", s.Failures[2])
	}
}

func TestNothingDeclared(t *testing.T) {
	s := Classify(roundTrip(t, suite(false,
		spec("rejects connections", []string{"no-endpoints"}, nil, types.SpecStateFailed, "not refused"),
	)), nil)
	if len(s.Known) != 0 || len(s.Failures) != 1 || !s.Failed(true) {
		t.Errorf("without declarations every failure counts: %+v", s)
	}
	s = Classify(roundTrip(t, suite(true, spec("ok", nil, nil, types.SpecStatePassed, ""))), nil)
	if s.Failed(false) {
		t.Errorf("green run failed: %+v", s)
	}
}

func TestSkippedDeclaredSpecsAreNotStale(t *testing.T) {
	s := Classify(roundTrip(t, suite(true,
		spec("rejects connections", []string{"no-endpoints"}, nil, types.SpecStateSkipped, ""),
	)), declared)
	if s.NotRun != 1 || len(s.Stale) != 0 || s.Failed(false) {
		t.Errorf("summary %+v", s)
	}
}

func TestSuiteProblems(t *testing.T) {
	r := suite(false)
	r.SpecialSuiteFailureReasons = []string{"Failed to compile networking:"}
	s := Classify(roundTrip(t, r), declared)
	if len(s.SuiteProblems) != 1 || !s.Failed(true) {
		t.Errorf("summary %+v", s)
	}
	// Ginkgo failed but the report shows nothing that explains it.
	s = Classify(roundTrip(t, suite(false, spec("ok", nil, nil, types.SpecStatePassed, ""))), declared)
	if !s.Failed(true) {
		t.Errorf("an unexplained Ginkgo failure must fail the run: %+v", s)
	}
	// Ginkgo exited non-zero and nothing in the report at all.
	if !(Summary{}).Failed(true) {
		t.Error("empty summary with a Ginkgo failure must fail")
	}
}
