package report

import (
	"fmt"
	"html/template"
	"io"
	"time"
)

// WriteHTML writes the merged report as one static page with no external
// assets: a spec × cell heatmap whose failed, known and skipped cells link
// to their drill-down (message, reason, the spec's evidence), and the wall
// time per suite and per spec as inline SVG bars.
func (m Merged) WriteHTML(w io.Writer) error {
	type cell struct {
		Class, Title, Anchor string
		Res                  *Result
	}
	type row struct {
		Spec, Labels string
		Cells        []cell
	}
	type bar struct {
		Label    string
		Width, Y int
		Seconds  string
	}
	type detail struct {
		Anchor, Cell, Spec string
		Res                *Result
	}
	var rows []row
	var details []detail
	var longest time.Duration
	for _, r := range m.Rows {
		for _, res := range r.Cells {
			if res != nil && res.Duration > longest {
				longest = res.Duration
			}
		}
	}
	for ri, r := range m.Rows {
		out := row{Spec: r.Spec, Labels: fmt.Sprint(r.Labels)}
		for ci, res := range r.Cells {
			c := cell{Class: "none", Title: "not in this run", Res: res}
			if res != nil {
				c.Class, c.Title = classOf[res.Outcome], string(res.Outcome)+" in "+fmt.Sprint(res.Duration.Round(time.Second))
				if res.Outcome != Passed || len(res.Evidence) > 0 {
					c.Anchor = fmt.Sprintf("d-%d-%d", ri, ci)
					details = append(details, detail{Anchor: c.Anchor, Cell: m.Runs[ci].Cell, Spec: r.Spec, Res: res})
				}
			}
			out.Cells = append(out.Cells, c)
		}
		rows = append(rows, out)
	}
	type runView struct {
		CellRun
		Bars   []bar
		Wall   map[string]string // per suite, rounded
		Height int
		Green  bool
	}
	var runs []runView
	for _, r := range m.Runs {
		v := runView{CellRun: r, Green: r.Green(), Wall: map[string]string{}}
		for suite, d := range r.Suites {
			v.Wall[suite] = d.Round(time.Second).String()
		}
		for i, res := range r.Results {
			width := 1
			if longest > 0 {
				width = 1 + int(600*res.Duration/longest)
			}
			v.Bars = append(v.Bars, bar{Label: res.Spec, Width: width, Y: 14 * i, Seconds: fmt.Sprintf("%.1fs", res.Duration.Seconds())})
		}
		v.Height = 14*len(r.Results) + 4
		runs = append(runs, v)
	}
	return page.Execute(w, map[string]any{"Runs": runs, "Rows": rows, "Details": details})
}

var classOf = map[Outcome]string{Passed: "pass", Failed: "fail", Known: "known", Skipped: "skip", PassedDeclared: "fail"}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netconform report</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table.heat{border-collapse:collapse}
table.heat td,table.heat th{border:1px solid #ccc;padding:2px 6px}
table.heat th.cell{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
td.o{width:2.2em;text-align:center}
td.pass{background:#2e9b4f}td.fail{background:#d62f2f}td.known{background:#e8a317}td.skip{background:#9aa4b1}td.none{background:#fff}
td.o a{display:block;color:#fff;text-decoration:none}
details{border:1px solid #ccc;margin:.5em 0;padding:.3em .6em}
details:target{border-color:#d62f2f;box-shadow:0 0 0 2px #d62f2f}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;max-height:30em;overflow:auto}
.verdict-fail{color:#d62f2f;font-weight:bold}.verdict-pass{color:#2e9b4f;font-weight:bold}
</style></head><body>
<h1>netconform report</h1>
<table class="runs"><tr><th>cell</th><th>proxy mode</th><th>verdict</th><th>run</th><th>suites</th></tr>
{{range .Runs}}<tr><td>{{.Cell}}</td><td>{{.ProxyMode}}</td><td>{{if .Green}}<span class="verdict-pass">passed</span>{{else}}<span class="verdict-fail">failed</span>{{end}}</td><td>{{.Dir}}</td><td>{{range $s, $d := .Wall}}{{$s}}: {{$d}}; {{end}}</td></tr>
{{range .Problems}}<tr><td colspan="5" class="verdict-fail">suite problem: {{.}}</td></tr>{{end}}{{end}}
</table>
<h2>Specs × cells</h2>
<p>Green passed, red failed, amber a declared known failure, grey skipped; a marked cell opens its details.</p>
<table class="heat" id="heatmap"><tr><th>spec</th><th>labels</th>{{range .Runs}}<th class="cell">{{.Cell}}</th>{{end}}</tr>
{{range .Rows}}<tr><td>{{.Spec}}</td><td>{{.Labels}}</td>{{range .Cells}}<td class="o {{.Class}}" title="{{.Title}}">{{if .Anchor}}<a href="#{{.Anchor}}">{{if eq .Class "fail"}}✗{{else if eq .Class "known"}}!{{else if eq .Class "skip"}}–{{else}}i{{end}}</a>{{end}}</td>{{end}}</tr>
{{end}}</table>
<h2>Details</h2>
{{range .Details}}<details id="{{.Anchor}}" class="{{.Res.Outcome}}"><summary><b>{{.Res.Outcome}}</b> in {{.Cell}}: {{.Spec}}</summary>
{{if .Res.Reason}}<p>Reason: {{.Res.Reason}}</p>{{end}}
{{if .Res.Message}}<h4>Failure ({{.Res.Location}})</h4><pre class="message">{{.Res.Message}}</pre>{{end}}
{{range .Res.Evidence}}<h4>{{.Name}}</h4><pre>{{.Value}}</pre>{{end}}
</details>
{{end}}
<h2>Wall time per spec</h2>
{{range .Runs}}<h3>{{.Cell}}</h3>
<svg xmlns="http://www.w3.org/2000/svg" width="1100" height="{{.Height}}" font-size="10">
{{range .Bars}}<g><rect x="0" y="{{.Y}}" width="{{.Width}}" height="12" fill="#4a78c2"><title>{{.Label}}: {{.Seconds}}</title></rect><text x="{{.Width}}" dx="4" y="{{.Y}}" dy="10">{{.Seconds}} {{.Label}}</text></g>
{{end}}</svg>
{{end}}
<script>
// Open the drill-down a heatmap cell links to.
function openTarget(){var d=location.hash&&document.getElementById(location.hash.slice(1));if(d&&d.tagName==="DETAILS"){d.open=true;}}
window.addEventListener("hashchange",openTarget);openTarget();
document.querySelectorAll("#heatmap a").forEach(function(a){a.addEventListener("click",function(){var d=document.getElementById(a.getAttribute("href").slice(1));if(d){d.open=true;}});});
</script>
</body></html>
`))
