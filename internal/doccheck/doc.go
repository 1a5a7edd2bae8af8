package doccheck

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Row is one row of a coverage table: a table whose header starts with the
// cells "Suite" and "Spec". A row whose spec cell starts with "(planned)"
// stands for a spec being written; the check skips it (Planned is set) but
// still reads its upstream cell.
type Row struct {
	Line     int
	Suite    string
	Spec     string   // the spec's full text (the cell's code span)
	Planned  string   // the planned row's description, when the row is planned
	Labels   []string // sorted
	Upstream []string // the upstream It texts (code spans of the cell); none when the cell says "none"
	Beyond   string
}

// Focus is a focus expression given in the document: a fenced code block
// whose info string is "focus-<name>", and the count claimed on the first
// non-empty line after it ("... **N** specs ...").
type Focus struct {
	Name  string
	Expr  string
	Count int // -1 when the line after the block claims none
	Line  int
}

// Doc is what the check reads from the coverage document.
type Doc struct {
	Rows    []Row
	Focuses []Focus
}

var (
	codeSpan   = regexp.MustCompile("(`+)(.+?)(`+)")
	countClaim = regexp.MustCompile(`\*\*(\d+)\*\* (upstream )?specs?`)
)

// ParseDoc reads the coverage tables and focus expressions of a document.
func ParseDoc(r io.Reader) (Doc, []string) {
	var (
		d        Doc
		problems []string
		inTable  bool
		fence    string // the open fenced block's info, "" outside one
		fenceAt  int
		body     []string
		awaiting *Focus
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" || strings.HasPrefix(trimmed, "```") {
			switch {
			case fence == "":
				fence, fenceAt, body = strings.TrimPrefix(trimmed, "```")+" ", n, nil
			case trimmed == "```":
				if name, ok := strings.CutPrefix(strings.TrimSpace(fence), "focus-"); ok {
					d.Focuses = append(d.Focuses, Focus{Name: name, Expr: strings.TrimSpace(strings.Join(body, "")), Count: -1, Line: fenceAt})
					awaiting = &d.Focuses[len(d.Focuses)-1]
				}
				fence = ""
			default:
				body = append(body, trimmed)
			}
			continue
		}
		if awaiting != nil && trimmed != "" {
			if m := countClaim.FindStringSubmatch(trimmed); m != nil {
				fmt.Sscan(m[1], &awaiting.Count)
			}
			awaiting = nil
		}
		if !strings.HasPrefix(trimmed, "|") {
			inTable = false
			continue
		}
		cells := splitRow(trimmed)
		if len(cells) >= 2 && strings.EqualFold(cells[0], "suite") && strings.HasPrefix(strings.ToLower(cells[1]), "spec") {
			if len(cells) != 5 {
				problems = append(problems, fmt.Sprintf("line %d: a coverage table has five columns: Suite | Spec | Labels | Upstream | Beyond upstream", n))
			}
			inTable = true
			continue
		}
		if !inTable || strings.Trim(trimmed, "|-: ") == "" {
			continue
		}
		row, err := parseRow(n, cells)
		if err != "" {
			problems = append(problems, fmt.Sprintf("line %d: %s", n, err))
			continue
		}
		d.Rows = append(d.Rows, row)
	}
	return d, problems
}

// splitRow splits a table row on the pipes that are not escaped (\|).
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	if strings.HasSuffix(line, "|") && !strings.HasSuffix(line, `\|`) {
		line = line[:len(line)-1]
	}
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

func parseRow(line int, cells []string) (Row, string) {
	if len(cells) != 5 {
		return Row{}, fmt.Sprintf("a row has %d cells, want 5: Suite | Spec | Labels | Upstream | Beyond upstream", len(cells))
	}
	r := Row{Line: line, Suite: strings.Trim(cells[0], "` "), Beyond: cells[4]}
	switch spec := cells[1]; {
	case strings.HasPrefix(spec, "(planned)"):
		r.Planned = strings.TrimSpace(strings.TrimPrefix(spec, "(planned)"))
	default:
		m := codeSpan.FindStringSubmatch(spec)
		if m == nil || m[0] != spec || m[1] != m[3] {
			return r, fmt.Sprintf("the spec cell %q must be the spec's full text in one code span (`...`), or start with (planned)", spec)
		}
		r.Spec = strings.TrimSpace(m[2])
	}
	for _, l := range strings.Split(cells[2], ",") {
		if l = strings.Trim(l, "` "); l != "" && l != "—" && l != "-" {
			r.Labels = append(r.Labels, l)
		}
	}
	slices.Sort(r.Labels)
	up := cells[3]
	for _, m := range codeSpan.FindAllStringSubmatch(up, -1) {
		r.Upstream = append(r.Upstream, strings.TrimSpace(m[2]))
	}
	if len(r.Upstream) == 0 && !strings.HasPrefix(strings.ToLower(up), "none") {
		return r, fmt.Sprintf("the upstream cell %q must name upstream It texts in code spans, or start with \"none\"", up)
	}
	if r.Planned == "" && (r.Beyond == "" || strings.EqualFold(r.Beyond, "todo")) {
		return r, "the last cell must say what netconform asserts beyond the upstream spec (or what it asserts, when upstream has none)"
	}
	return r, ""
}

// Check compares the specs with the document's spec rows. Each problem
// names what is wrong and the fix.
func Check(specs []Spec, doc Doc, docName string) []string {
	var problems []string
	used := make([]bool, len(doc.Rows))
	for _, s := range specs {
		var found []int
		for i, r := range doc.Rows {
			if r.Planned == "" && r.Suite == s.Suite && s.Matches(r.Spec) {
				found = append(found, i)
			}
		}
		labels := strings.Join(s.Labels, ", ")
		if labels == "" {
			labels = "—"
		}
		hint := ""
		if !s.Exact() {
			hint = " (write each {…} part as the run reports it)"
		}
		switch len(found) {
		case 0:
			problems = append(problems, fmt.Sprintf("%s: spec %q has no row in %s; add one%s:\n\t| %s | `%s` | %s | <upstream It text(s) in `…`, or none> | <what netconform asserts beyond it> |",
				s.Pos, s.FullText(), docName, hint, s.Suite, s.FullText(), labels))
			continue
		case 1:
		default:
			var lines []string
			for _, i := range found {
				lines = append(lines, fmt.Sprint(doc.Rows[i].Line))
			}
			problems = append(problems, fmt.Sprintf("%s: spec %q has %d rows in %s (lines %s); keep one", s.Pos, s.FullText(), len(found), docName, strings.Join(lines, ", ")))
		}
		for _, i := range found {
			used[i] = true
			if r := doc.Rows[i]; !slices.Equal(r.Labels, s.Labels) {
				problems = append(problems, fmt.Sprintf("%s:%d: spec %q has labels [%s] (%s), the row says [%s]; set the row's Labels cell to: %s",
					docName, r.Line, s.FullText(), strings.Join(s.Labels, ", "), s.Pos, strings.Join(r.Labels, ", "), labels))
			}
		}
	}
	for i, r := range doc.Rows {
		if r.Planned != "" || used[i] {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s:%d: the row names spec %q in suite %q, which has no such spec (renamed or removed?); make the row's Suite and Spec cells the spec's suite and full text, or delete the row",
			docName, r.Line, r.Spec, r.Suite))
	}
	return problems
}
