package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// UpstreamSpec is a spec of Kubernetes' test/e2e/network, read from source.
type UpstreamSpec struct {
	It         string   // the It text as written (its first argument)
	Leaf       string   // every string argument of the It, joined (some add "[LinuxOnly]" as a second)
	Containers []string // the container texts, outermost first, without "[sig-network]"
	Text       string   // "[sig-network] " + container texts + It text; the tags the e2e framework adds for decorators (feature.X, WithSlow(), ConformanceIt's [Conformance], ...) are left out
	Pos        token.Position
}

// UpstreamSpecs reads the specs of the Go files in dir (test/e2e/network
// of a k8s.io/kubernetes source tree). The e2e framework's wrappers are
// recognised by name: <x>.SIGDescribe, Describe and Context (containers);
// It and ConformanceIt (leaves). Their string-literal arguments are the
// text, joined by spaces as the framework joins them; other arguments are
// decorators, whose tags are left out of Text.
func UpstreamSpecs(dir string) ([]UpstreamSpec, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var out []UpstreamSpec
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		var visit func(n ast.Node, stack []string)
		visit = func(n ast.Node, stack []string) {
			ast.Inspect(n, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				switch sel.Sel.Name {
				case "SIGDescribe", "Describe", "Context":
					text := literals(call.Args)
					inner := stack
					if text != "" {
						inner = append(append([]string{}, stack...), text)
					}
					for _, a := range call.Args {
						if fl, ok := a.(*ast.FuncLit); ok {
							visit(fl.Body, inner)
						}
					}
					return false
				case "It", "ConformanceIt":
					leaf := literals(call.Args)
					if leaf == "" || len(call.Args) == 0 {
						return true
					}
					out = append(out, UpstreamSpec{It: literal(call.Args[0]), Leaf: leaf, Containers: stack, Text: strings.Join(append([]string{"[sig-network]"}, append(append([]string{}, stack...), leaf)...), " "), Pos: fset.Position(call.Pos())})
					return false
				}
				return true
			})
		}
		visit(f, nil)
	}
	return out, nil
}

// literals joins a wrapper's string-literal arguments (and concatenations
// starting with one) by spaces.
func literals(args []ast.Expr) string {
	var texts []string
	for _, a := range args {
		if s := literal(a); s != "" {
			texts = append(texts, s)
		}
	}
	return strings.Join(texts, " ")
}

func literal(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, _ := strconv.Unquote(e.Value)
			return s
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			if x := literal(e.X); x != "" {
				y := literal(e.Y)
				if y == "" {
					y = "{…}"
				}
				return x + y
			}
		}
	}
	return ""
}

// resolve finds the upstream specs a row's code span names: those whose It
// text it is, or the one whose whole Text it is (to single out one of
// several specs that share an It text).
func resolve(ups []UpstreamSpec, name string) []UpstreamSpec {
	var out []UpstreamSpec
	for _, u := range ups {
		if u.Text == name {
			return []UpstreamSpec{u}
		}
		if u.It == name {
			out = append(out, u)
		}
	}
	return out
}

// CheckUpstream checks the document against upstream's specs: every It
// text a row names exists, and each focus expression selects exactly the
// specs the rows name (focus "current": the spec rows; "planned": the
// planned rows, less those a spec row already names), and as many as the
// document claims. ref names the source, for messages.
func CheckUpstream(ups []UpstreamSpec, doc Doc, docName, ref string) []string {
	var problems []string
	want := map[string]map[string]UpstreamSpec{"current": {}, "planned": {}}
	for _, r := range doc.Rows {
		set := "current"
		if r.Planned != "" {
			set = "planned"
		}
		for _, name := range r.Upstream {
			found := resolve(ups, name)
			if len(found) == 0 {
				problems = append(problems, fmt.Sprintf("%s:%d: %q is not the It text (nor the full text) of any spec in %s; copy the It text from there", docName, r.Line, name, ref))
			}
			for _, u := range found {
				want[set][u.Pos.String()] = u
			}
		}
	}
	for k := range want["current"] {
		delete(want["planned"], k)
	}
	seen := map[string]bool{}
	for _, f := range doc.Focuses {
		w, ok := want[f.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s:%d: a focus block is named focus-current or focus-planned, not focus-%s", docName, f.Line, f.Name))
			continue
		}
		seen[f.Name] = true
		suggest := fmt.Sprintf("; the expression that selects exactly the %d %s specs is:\n\t%s", len(w), f.Name, FocusFor(slices.Collect(maps.Values(w))))
		re, err := regexp.Compile(f.Expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: focus-%s does not compile: %v%s", docName, f.Line, f.Name, err, suggest))
			continue
		}
		var extra, missing []string
		n := 0
		for _, u := range ups {
			_, wanted := w[u.Pos.String()]
			switch sel := re.MatchString(u.Text); {
			case sel && !wanted:
				extra = append(extra, fmt.Sprintf("%q (%s)", u.Text, u.Pos))
			case !sel && wanted:
				missing = append(missing, fmt.Sprintf("%q (%s)", u.Text, u.Pos))
			}
			if re.MatchString(u.Text) {
				n++
			}
		}
		if len(extra) > 0 || len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: focus-%s selects %d specs no %s row names %s, and misses %d specs they name %s%s",
				docName, f.Line, f.Name, len(extra), f.Name, few(extra), len(missing), few(missing), suggest))
		}
		if f.Count != n {
			problems = append(problems, fmt.Sprintf("%s:%d: focus-%s selects %d upstream specs, the line after it claims %d; write **%d** specs there", docName, f.Line, f.Name, n, f.Count, n))
		}
	}
	for name := range want {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("%s: no ```focus-%s block; add one with:\n\t%s", docName, name, FocusFor(slices.Collect(maps.Values(want[name])))))
		}
	}
	return problems
}

// FocusFor is a --ginkgo.focus expression selecting the given specs (and
// any other spec with the same containers and It text): "[sig-network]",
// then per spec its container texts and It text, each of them followed by
// any tags the e2e framework adds for decorators (" [Feature:X]", ...),
// and nothing else.
func FocusFor(specs []UpstreamSpec) string {
	const tags = `( \[[^]]+\])*`
	byContainer := map[string][]string{}
	for _, u := range specs {
		var c []string
		for _, t := range u.Containers {
			c = append(c, regexp.QuoteMeta(t)+tags)
		}
		k := strings.Join(c, " ")
		if it := regexp.QuoteMeta(u.Leaf); !slices.Contains(byContainer[k], it) {
			byContainer[k] = append(byContainer[k], it)
		}
	}
	var alts []string
	for _, c := range slices.Sorted(maps.Keys(byContainer)) {
		its := byContainer[c]
		slices.Sort(its)
		alts = append(alts, c+" ("+strings.Join(its, "|")+")")
	}
	return `^\[sig-network\]` + tags + ` (` + strings.Join(alts, "|") + `)` + tags + `$`
}

// few lists the first of many items.
func few(items []string) string {
	const most = 5
	if len(items) > most {
		return fmt.Sprintf("[%s, and %d more]", strings.Join(items[:most], ", "), len(items)-most)
	}
	return "[" + strings.Join(items, ", ") + "]"
}
