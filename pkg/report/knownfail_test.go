package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// The kube-router cell's kind of declarations: one spec by its full
// text, several by a regular expression.
var declarations = []Declaration{
	{Spec: "Service rejects connections", Message: `^client pod \S+ → [0-9.]+:3000 .*outcomes map\[timeout:1\]`,
		Reason: "kube-router accepts forwarded traffic first", Link: "https://github.com/cloudnativelabs/kube-router/issues/0"},
	{SpecMatches: `^Service drops when no local endpoint`, Message: `timed out`, Reason: "kube-router accepts forwarded traffic first"},
}

func mustCompile(t *testing.T, ds []Declaration) []Signature {
	t.Helper()
	sigs, err := Compile(ds)
	if err != nil {
		t.Fatal(err)
	}
	return sigs
}

// spec makes a spec report as Ginkgo writes it, in a container "Service".
func spec(text string, state types.SpecState, msg string) types.SpecReport {
	sr := types.SpecReport{
		ContainerHierarchyTexts: []string{"Service"},
		LeafNodeType:            types.NodeTypeIt,
		LeafNodeText:            text,
		State:                   state,
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

func TestMatchingSignatureIsKnown(t *testing.T) {
	reports := roundTrip(t, suite(false,
		spec("rejects connections", types.SpecStateFailed, "client pod ns/client → 10.96.4.4:3000 (no endpoints): not within 30s; outcomes map[timeout:1]\nmore detail"),
		spec("drops when no local endpoint (pod)", types.SpecStateTimedout, "timed out"),
		spec("spreads requests", types.SpecStatePassed, ""),
	))
	s := Classify(reports, mustCompile(t, declarations))
	if len(s.Known) != 2 || len(s.Stale) != 0 || len(s.Failures) != 0 || len(s.SuiteProblems) != 0 || len(s.NotRun) != 0 {
		t.Fatalf("summary %+v", s)
	}
	if s.Failed(true) {
		t.Error("a run whose only failures are declared must not fail")
	}
	if k := s.Known[0]; k.Kind != KnownFailure || k.Declared[0] != declarations[0] || k.Message != "client pod ns/client → 10.96.4.4:3000 (no endpoints): not within 30s; outcomes map[timeout:1]" ||
		k.Spec != "Service rejects connections" || k.State != "failed" || !strings.Contains(k.Location, "x_test.go:42") {
		t.Errorf("known failure entry %+v", k)
	}
	if k := s.Known[1]; k.Declared[0] != declarations[1] || k.State != "timedout" {
		t.Errorf("timed-out declared spec %+v", k)
	}
	var out strings.Builder
	s.Write(&out)
	for _, want := range []string{"Known failures declared for this cell: 2",
		`spec "Service rejects connections" failing with /^client pod`,
		"2 failed as declared, 0 declared but passed, 0 other failures, 0 declarations not run",
		"known failure: kube-router accepts forwarded traffic first (https://github.com/cloudnativelabs/kube-router/issues/0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// A declared spec failing with another message is a real failure: the
// declaration excuses one failure, not the spec.
func TestNonMatchingMessageIsAFailure(t *testing.T) {
	s := Classify(roundTrip(t, suite(false,
		spec("rejects connections", types.SpecStateFailed, "client pod ns/client → 10.96.4.4:3000 (no endpoints): answered by backend-1"),
	)), mustCompile(t, declarations))
	if len(s.Known) != 0 || len(s.Failures) != 1 || !s.Failed(true) {
		t.Fatalf("summary %+v", s)
	}
	f := s.Failures[0]
	if f.Kind != Failure || !strings.Contains(f.Mismatch, "matches no declared message") || len(f.Declared) != 1 {
		t.Errorf("failure entry %+v", f)
	}
	var out strings.Builder
	s.Write(&out)
	if !strings.Contains(out.String(), "declared as a known failure here, but its failure message matches no declared message (/^client pod") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestDeclaredSpecThatPassesFailsTheRun(t *testing.T) {
	s := Classify(roundTrip(t, suite(true,
		spec("rejects connections", types.SpecStatePassed, ""),
	)), mustCompile(t, declarations))
	if len(s.Stale) != 1 || s.Stale[0].Kind != UnexpectedPass {
		t.Fatalf("summary %+v", s)
	}
	if !s.Failed(false) {
		t.Error("a declared failure that passes must fail the run (stale declaration)")
	}
	var out strings.Builder
	s.Write(&out)
	if !strings.Contains(out.String(), `expected to fail here but passed (spec "Service rejects connections": kube-router`) {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestOtherFailuresStillFailTheRun(t *testing.T) {
	s := Classify(roundTrip(t, suite(false,
		spec("rejects connections", types.SpecStateFailed, "client pod ns/client → 10.96.4.4:3000 (x) outcomes map[timeout:1]"),
		spec("spreads requests", types.SpecStateFailed, "chi-square 40.1 > 13.8"),
		// A declared spec that panics did not fail as declared.
		spec("drops when no local endpoint", types.SpecStatePanicked, "timed out"),
		types.SpecReport{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStateFailed, Failure: types.Failure{Message: "no testbed"}},
	)), mustCompile(t, declarations))
	if len(s.Known) != 1 || len(s.Failures) != 3 {
		t.Fatalf("summary %+v", s)
	}
	if !s.Failed(true) {
		t.Error("an undeclared failure must fail the run")
	}
	if !strings.Contains(s.Failures[1].Mismatch, "panicked") {
		t.Errorf("panicked declared spec %+v", s.Failures[1])
	}
	if s.Failures[2].Spec != "[BeforeSuite]" || len(s.Failures[2].Declared) != 0 {
		t.Errorf("suite node entry %+v", s.Failures[2])
	}
}

func TestNothingDeclared(t *testing.T) {
	s := Classify(roundTrip(t, suite(false,
		spec("rejects connections", types.SpecStateFailed, "not refused"),
	)), nil)
	if len(s.Known) != 0 || len(s.Failures) != 1 || !s.Failed(true) {
		t.Errorf("without declarations every failure counts: %+v", s)
	}
	s = Classify(roundTrip(t, suite(true, spec("ok", types.SpecStatePassed, ""))), nil)
	if s.Failed(false) {
		t.Errorf("green run failed: %+v", s)
	}
}

// Declarations whose specs were skipped, or matched no spec at all, are
// reported as not run; they do not fail the run.
func TestDeclaredSpecsNotRun(t *testing.T) {
	s := Classify(roundTrip(t, suite(true,
		spec("rejects connections", types.SpecStateSkipped, ""),
		spec("spreads requests", types.SpecStatePassed, ""),
	)), mustCompile(t, declarations))
	if len(s.NotRun) != 2 || len(s.Stale) != 0 || s.Failed(false) {
		t.Fatalf("summary %+v", s)
	}
	var out strings.Builder
	s.Write(&out)
	for _, want := range []string{"2 declarations not run", "Declared but not run", `- specs matching /^Service drops when no local endpoint/: kube-router`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCompileRefusesBadDeclarations(t *testing.T) {
	for _, c := range []struct {
		d    Declaration
		want string
	}{
		{Declaration{Spec: "a", Message: "(unclosed", Reason: "r"}, `known failure 1 (spec "a"): message: error parsing regexp`},
		{Declaration{SpecMatches: "[z-a]", Message: "x", Reason: "r"}, "known failure 1 (specs matching /[z-a]/): specMatches: error parsing regexp"},
		{Declaration{Message: "x", Reason: "r"}, "one of the two"},
		{Declaration{Spec: "a", SpecMatches: "a", Message: "x", Reason: "r"}, "one of the two"},
		{Declaration{Spec: "a", Reason: "r"}, "would excuse any failure"},
		{Declaration{Spec: "a", Message: "x"}, "give the reason"},
	} {
		if _, err := Compile([]Declaration{c.d}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%+v) = %v, want an error with %q", c.d, err, c.want)
		}
	}
}

func TestSuiteProblems(t *testing.T) {
	r := suite(false)
	r.SpecialSuiteFailureReasons = []string{"Failed to compile networking:"}
	s := Classify(roundTrip(t, r), mustCompile(t, declarations))
	if len(s.SuiteProblems) != 1 || !s.Failed(true) {
		t.Errorf("summary %+v", s)
	}
	// Ginkgo failed but the report shows nothing that explains it.
	s = Classify(roundTrip(t, suite(false, spec("ok", types.SpecStatePassed, ""))), mustCompile(t, declarations))
	if !s.Failed(true) {
		t.Errorf("an unexplained Ginkgo failure must fail the run: %+v", s)
	}
	// Ginkgo exited non-zero and nothing in the report at all.
	if !(Summary{}).Failed(true) {
		t.Error("empty summary with a Ginkgo failure must fail")
	}
}
