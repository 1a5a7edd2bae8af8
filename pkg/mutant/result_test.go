package mutant

import (
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func spec(text string, state types.SpecState, labels ...string) types.SpecReport {
	return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: text, LeafNodeLabels: labels, State: state,
		Failure: types.Failure{Message: "saw X\nmore"}}
}

func TestJudgeNeedsAFailingSpecInEveryArea(t *testing.T) {
	reports := []types.Report{{SpecReports: []types.SpecReport{
		spec("smoke", types.SpecStatePassed, "smoke", "dns"),
		spec("lb spread", types.SpecStateFailed, "loadbalancer"),
		spec("ingress host", types.SpecStatePassed, "ingress"),
		spec("skipped", types.SpecStateSkipped, "ingress"),
	}}}
	r := Result{Fault: "x", Areas: []string{"loadbalancer", "ingress"}}
	r.Judge(reports)
	if r.Caught {
		t.Error("ingress had no failing spec: the fault is not caught in every area")
	}
	if r.Ran != 3 || len(r.Failed) != 1 || r.Failed[0].Message != "saw X" || !r.SmokePassed {
		t.Errorf("judged %+v", r)
	}
	r = Result{Fault: "x", Areas: []string{"loadbalancer"}}
	r.Judge(reports)
	if !r.Caught || len(r.CaughtBy["loadbalancer"]) != 1 {
		t.Errorf("want caught by the loadbalancer spec, got %+v", r)
	}
	// The baseline passes only when nothing failed.
	b := Result{Fault: BaselineName, Areas: []string{"loadbalancer"}}
	b.Judge(reports)
	if b.Caught {
		t.Error("a baseline with a failing spec must not pass")
	}
	var sb strings.Builder
	WriteTable(&sb, []Result{b, r})
	if !strings.Contains(sb.String(), "**baseline failed**") || !strings.Contains(sb.String(), "| yes |") {
		t.Errorf("table:\n%s", sb.String())
	}
}

func TestNothingRanIsNotCaught(t *testing.T) {
	r := Result{Fault: "x", Areas: []string{"dns"}}
	r.Judge(nil)
	if r.Caught {
		t.Error("a run where no spec ran proves nothing")
	}
}
