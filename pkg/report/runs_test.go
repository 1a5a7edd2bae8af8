package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The testdata is a real run: `make test-mutants` on v1.37/iptables with
// the fault iptables/skewed-probability (3 specs failed), trimmed to its
// failed specs, two passed and one skipped, with report entries cut short.
const (
	skewedRun       = "testdata/iptables-skewed-probability"
	clusterIPSpread = "load balancing spreads fresh connections to the ClusterIP uniformly over 3 endpoints (χ² at α=0.001, K=296)"
)

func TestLoadRunClassifiesARealRun(t *testing.T) {
	run, err := LoadRun(skewedRun)
	if err != nil {
		t.Fatal(err)
	}
	if run.Cell != "v1.37/iptables · iptables-skewed-probability" || run.ProxyMode != "iptables" {
		t.Errorf("cell %q mode %q, want the testbed's cell with the fault's directory, iptables", run.Cell, run.ProxyMode)
	}
	c := run.Counts()
	if c[Failed] != 3 || c[Passed] != 4 || c[Skipped] != 1 || run.Green() {
		t.Errorf("counts %v green %v; want 3 failed, 4 passed, 1 skipped, not green", c, run.Green())
	}
	var found bool
	for _, r := range run.Results {
		if r.Spec == clusterIPSpread {
			found = true
			if r.Outcome != Failed || !strings.HasPrefix(r.Message, "ClusterIP http://") || len(r.Evidence) == 0 {
				t.Errorf("%s: outcome %q message %.60q, %d report entries; want failed with its message and evidence", r.Spec, r.Outcome, r.Message, len(r.Evidence))
			}
		}
		if r.Outcome == Skipped && !strings.HasPrefix(r.Reason, "not selected by the label filter ") {
			t.Errorf("%s skipped with reason %q; want the label filter named", r.Spec, r.Reason)
		}
	}
	if !found {
		t.Fatalf("no result for %q", clusterIPSpread)
	}
	conf := run.Conformance()
	if conf.Result != "failure" {
		t.Errorf("conformance result %q, want failure", conf.Result)
	}
	for _, a := range conf.Areas {
		if a.Area == "balancing" && (a.Result != "failure" || len(a.Failed) != 2) {
			t.Errorf("area balancing: %+v; want failure with 2 failed specs", a)
		}
	}
}

// A declared known failure that fails as declared is amber, and the run is
// green; the same declaration with another message is a failure.
func TestLoadRunAppliesKnownFailures(t *testing.T) {
	for _, tc := range []struct {
		message string
		want    Outcome
		green   bool
	}{
		{`^ClusterIP http://\S+: 296 answers`, Known, false}, // the two other failures remain
		{`^something else`, Failed, false},
	} {
		dir := t.TempDir()
		run := filepath.Join(dir, "run")
		data, _ := os.ReadFile(filepath.Join(skewedRun, "report.json"))
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(run, "report.json"), data, 0o644)
		tb, _ := json.Marshal(map[string]any{"cell": "v1.37/iptables", "proxyMode": "iptables",
			"knownFailures": []Declaration{{Spec: clusterIPSpread, Message: tc.message, Reason: "a test reason"}}})
		_ = os.WriteFile(filepath.Join(run, "testbed.json"), tb, 0o644)
		r, err := LoadRun(run)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range r.Results {
			if res.Spec == clusterIPSpread && (res.Outcome != tc.want || (tc.want == Known) != (res.Reason == "a test reason")) {
				t.Errorf("declared with message /%s/: outcome %q reason %q, want %q", tc.message, res.Outcome, res.Reason, tc.want)
			}
		}
		if r.Green() != tc.green {
			t.Errorf("declared with message /%s/: green %v", tc.message, r.Green())
		}
	}
}

func TestSummaryAndHTMLNameTheFailure(t *testing.T) {
	run, err := LoadRun(skewedRun)
	if err != nil {
		t.Fatal(err)
	}
	m := Merge([]CellRun{run, run})
	if len(m.Rows) != 8 || len(m.Rows[0].Cells) != 2 {
		t.Fatalf("%d rows of %d cells; want 8 specs × 2 runs", len(m.Rows), len(m.Rows[0].Cells))
	}
	var md, html bytes.Buffer
	m.WriteSummary(&md)
	for _, want := range []string{"| v1.37/iptables · iptables-skewed-probability | iptables | **failed** | 4 | 3 | 0 | 1 |", "❌ **failed** " + clusterIPSpread + " — ClusterIP http://"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md.String())
		}
	}
	if err := m.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`class="o fail"`, `<pre class="message">ClusterIP http://`, "<svg"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if strings.Contains(html.String(), `src="http`) || strings.Contains(html.String(), `href="http`) {
		t.Error("index.html refers to an external asset")
	}
}
