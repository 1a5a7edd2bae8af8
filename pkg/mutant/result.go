package mutant

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// SmokeLabel marks the first end-to-end spec, run beside every fault's own.
const SmokeLabel = "smoke"

// LabelFilter is the Ginkgo label filter of a fault's run: its areas and
// the smoke spec.
func (f Fault) LabelFilter() string {
	return strings.Join(append(slices.Clone(f.Areas), SmokeLabel), " || ")
}

// Spec is one spec's outcome in a fault's run.
type Spec struct {
	Text    string   `json:"text"`
	Labels  []string `json:"labels"`
	State   string   `json:"state"`
	Message string   `json:"message,omitempty"` // first line of the failure
}

// Result is what one fault (or the baseline, Fault "baseline") did to the
// suites.
type Result struct {
	Fault       string   `json:"fault"`
	Mode        string   `json:"mode"`
	Class       string   `json:"class,omitempty"`
	Areas       []string `json:"areas"`
	LabelFilter string   `json:"labelFilter"`
	Image       string   `json:"image,omitempty"`
	// Ran counts the specs that ran; Failed lists those that failed.
	Ran    int    `json:"ran"`
	Failed []Spec `json:"failed"`
	// CaughtBy maps each area to the failing specs carrying its label.
	CaughtBy map[string][]string `json:"caughtBy"`
	// Caught: every area has a failing spec. For the baseline, nothing
	// failed.
	Caught      bool          `json:"caught"`
	SmokePassed bool          `json:"smokePassed"`
	Build       time.Duration `json:"buildNs"`
	Duration    time.Duration `json:"durationNs"` // roll-out and specs
	Reports     string        `json:"reports"`
	Error       string        `json:"error,omitempty"` // the run could not be made
}

// Judge fills r from the suites' Ginkgo reports.
func (r *Result) Judge(reports []types.Report) {
	r.CaughtBy = map[string][]string{}
	r.Failed = nil
	r.Ran = 0
	smokeRan, smokeFailed := false, false
	for _, rep := range reports {
		for _, sr := range rep.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt || sr.State.Is(types.SpecStateSkipped|types.SpecStatePending) {
				continue
			}
			r.Ran++
			labels := sr.Labels()
			smoke := slices.Contains(labels, SmokeLabel)
			smokeRan = smokeRan || smoke
			if !sr.State.Is(types.SpecStateFailureStates) {
				continue
			}
			smokeFailed = smokeFailed || smoke
			msg, _, _ := strings.Cut(sr.FailureMessage(), "\n")
			r.Failed = append(r.Failed, Spec{Text: sr.FullText(), Labels: labels, State: sr.State.String(), Message: msg})
			for _, a := range r.Areas {
				if slices.Contains(labels, a) {
					r.CaughtBy[a] = append(r.CaughtBy[a], sr.FullText())
				}
			}
		}
	}
	r.SmokePassed = smokeRan && !smokeFailed
	if r.Fault == BaselineName {
		r.Caught = len(r.Failed) == 0 && r.Ran > 0
		return
	}
	r.Caught = r.Ran > 0
	for _, a := range r.Areas {
		if len(r.CaughtBy[a]) == 0 {
			r.Caught = false
		}
	}
}

// BaselineName is the Result.Fault of the run with the cluster's own
// kube-proxy.
const BaselineName = "baseline"

// WriteTable writes results as the Markdown table of docs/detection.md.
func WriteTable(w io.Writer, results []Result) {
	fmt.Fprintln(w, "| fault | bug class | specs expected to catch it (labels) | specs that failed | caught | what the first failure said | smoke | build | roll-out + specs |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		var failed []string
		for _, s := range r.Failed {
			failed = append(failed, fmt.Sprintf("%s [%s]", s.Text, strings.Join(s.Labels, ", ")))
		}
		caught := "**no**"
		switch {
		case r.Error != "":
			caught = "error: " + r.Error
		case r.Fault == BaselineName && r.Caught:
			caught = "baseline passed"
		case r.Fault == BaselineName:
			caught = "**baseline failed**"
		case r.Caught:
			caught = "yes"
		}
		smoke := "passed"
		if !r.SmokePassed {
			smoke = "failed"
		}
		said := ""
		if len(r.Failed) > 0 {
			said = clip(r.Failed[0].Message, 240)
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Fault, cell(r.Class), strings.Join(r.Areas, ", "),
			cell(strings.Join(failed, "<br>")), caught, cell(said), smoke, r.Build.Round(time.Second), r.Duration.Round(time.Second))
	}
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n]) + "…"
}

func cell(s string) string {
	if s == "" {
		return "—"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}
