// Package doccheck keeps docs/coverage.md true to the suites: it reads the
// Ginkgo specs of each suite from source (go/ast, no cluster, no build),
// computes each spec's full text and labels as Ginkgo reports them, and
// compares them with the rows of the coverage table.
package doccheck

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Spec is one Ginkgo spec as the suite reports it.
type Spec struct {
	Suite  string   // the suite's directory name (suites/<Suite>)
	Texts  []string // container texts, then the leaf text (with {expr} for a part read only at run time)
	Labels []string // every label of the spec and its containers, sorted, without repeats
	Pos    token.Position
	parts  [][]part
}

// FullText is the text Ginkgo reports: container and leaf texts joined by
// spaces. A part computed only at run time (a field of a value built while
// the tree is constructed, say) reads {expr}.
func (s Spec) FullText() string { return strings.Join(s.Texts, " ") }

// Exact says whether every part of the text is known from source.
func (s Spec) Exact() bool {
	for _, t := range s.parts {
		for _, p := range t {
			if p.wild != "" {
				return false
			}
		}
	}
	return true
}

// Matches says whether text is this spec's full text; a run-time part
// matches any non-empty text.
func (s Spec) Matches(text string) bool {
	var re strings.Builder
	re.WriteString("^")
	for i, t := range s.parts {
		if i > 0 {
			re.WriteString(" ")
		}
		for _, p := range t {
			if p.wild != "" {
				re.WriteString(".+?")
			} else {
				re.WriteString(regexp.QuoteMeta(p.lit))
			}
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(text)
}

// part is a piece of a node's text: literal, or (wild != "") the source of
// an expression known only at run time.
type part struct{ lit, wild string }

func render(ps []part) string {
	var b strings.Builder
	for _, p := range ps {
		if p.wild != "" {
			b.WriteString("{" + p.wild + "}")
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

const ginkgoPath = "github.com/onsi/ginkgo/v2"

var (
	containerNames = set("Describe", "FDescribe", "PDescribe", "XDescribe", "Context", "FContext", "PContext", "XContext", "When", "FWhen", "PWhen", "XWhen")
	leafNames      = set("It", "FIt", "PIt", "XIt", "Specify", "FSpecify", "PSpecify", "XSpecify")
	tableNames     = set("DescribeTable", "FDescribeTable", "PDescribeTable", "XDescribeTable")
	entryNames     = set("Entry", "FEntry", "PEntry", "XEntry")
)

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// pkg is one suite directory's parsed source.
type pkg struct {
	fset   *token.FileSet
	files  []*ast.File
	consts map[string]ast.Expr      // package-level constants (value expressions)
	vars   map[string]ast.Expr      // package-level variables with one value each
	funcs  map[string]*ast.FuncDecl // package-level functions (no receiver)
}

// SuiteSpecs reads every spec of the Ginkgo suite in dir (its *_test.go
// files, following calls to the package's own functions from container
// bodies). Texts are string literals, constants, + and fmt.Sprintf of
// those; anything else becomes a {expr} part. Labels must be constants.
func SuiteSpecs(dir string) ([]Spec, error) {
	p := &pkg{fset: token.NewFileSet(), consts: map[string]ast.Expr{}, vars: map[string]ast.Expr{}, funcs: map[string]*ast.FuncDecl{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var tests []*ast.File
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(p.fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
		if strings.HasSuffix(name, "_test.go") {
			tests = append(tests, f)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Body != nil {
					p.funcs[d.Name.Name] = d
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					vs, ok := s.(*ast.ValueSpec)
					if !ok || len(vs.Values) != len(vs.Names) {
						continue
					}
					for i, n := range vs.Names {
						if d.Tok == token.CONST {
							p.consts[n.Name] = vs.Values[i]
						} else {
							p.vars[n.Name] = vs.Values[i]
						}
					}
				}
			}
		}
	}
	w := &walker{pkg: p, suite: filepath.Base(dir), visiting: map[string]bool{}}
	for _, f := range tests {
		w.file = f
		w.ginkgoNames = importNames(f, ginkgoPath)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				if d.Tok == token.VAR {
					w.block(d, nil)
				}
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == "init" {
					w.block(d.Body, nil)
				}
			}
		}
	}
	if len(w.errs) > 0 {
		return w.specs, fmt.Errorf("%s", strings.Join(w.errs, "\n"))
	}
	return w.specs, nil
}

// importNames is the set of names under which file f imports path ("." for
// a dot import).
func importNames(f *ast.File, path string) map[string]bool {
	m := map[string]bool{}
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == path {
			name := filepath.Base(strings.TrimSuffix(path, "/v2"))
			if im.Name != nil {
				name = im.Name.Name
			}
			m[name] = true
		}
	}
	return m
}

type frame struct {
	text   []part
	labels []string
}

type walker struct {
	*pkg
	suite       string
	file        *ast.File
	ginkgoNames map[string]bool
	visiting    map[string]bool
	specs       []Spec
	errs        []string
}

func (w *walker) errorf(n ast.Node, format string, args ...any) {
	w.errs = append(w.errs, fmt.Sprintf("%s: %s", w.fset.Position(n.Pos()), fmt.Sprintf(format, args...)))
}

// ginkgo names the Ginkgo function fun calls, or "".
func (w *walker) ginkgo(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		if w.ginkgoNames["."] {
			return f.Name
		}
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok && w.ginkgoNames[x.Name] {
			return f.Sel.Name
		}
	}
	return ""
}

// block finds the specs under n, with the containers of stack around them.
func (w *walker) block(n ast.Node, stack []frame) {
	ast.Inspect(n, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		name := w.ginkgo(call.Fun)
		switch {
		case containerNames[name]:
			w.container(call, stack)
			return false
		case tableNames[name]:
			w.table(call, stack)
			return false
		case leafNames[name]:
			w.leaf(call, call.Args, stack)
			return false
		case entryNames[name]:
			w.errorf(call, "%s outside a DescribeTable", name)
			return false
		}
		if id, ok := call.Fun.(*ast.Ident); ok {
			w.call(id.Name, stack)
		}
		return true
	})
}

// call follows a call to the package's own function name into its body,
// once on any path (recursion is not followed).
func (w *walker) call(name string, stack []frame) {
	fd := w.funcs[name]
	if fd == nil || w.visiting[name] {
		return
	}
	w.visiting[name] = true
	w.block(fd.Body, stack)
	delete(w.visiting, name)
}

// open reads a container's call (Describe…, DescribeTable): its text and
// decorators become a frame on top of stack. It reports false, and an
// error naming what, when the call has no text.
func (w *walker) open(call *ast.CallExpr, stack []frame, what string) ([]frame, bool) {
	if len(call.Args) == 0 {
		w.errorf(call, "%s without text", what)
		return nil, false
	}
	return append(slices.Clip(stack), frame{text: w.text(call.Args[0]), labels: w.decorators(call.Args[1:])}), true
}

func (w *walker) container(call *ast.CallExpr, stack []frame) {
	inner, ok := w.open(call, stack, "container")
	if !ok {
		return
	}
	for _, a := range call.Args[1:] {
		switch a := a.(type) {
		case *ast.FuncLit:
			w.block(a.Body, inner)
		case *ast.Ident:
			w.call(a.Name, inner)
		}
	}
}

func (w *walker) table(call *ast.CallExpr, stack []frame) {
	inner, ok := w.open(call, stack, "DescribeTable")
	if !ok {
		return
	}
	for _, a := range call.Args[1:] {
		ast.Inspect(a, func(n ast.Node) bool {
			e, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if name := w.ginkgo(e.Fun); entryNames[name] {
				if len(e.Args) == 0 {
					w.errorf(e, "Entry without a description")
					return false
				}
				if id, ok := e.Args[0].(*ast.Ident); ok && id.Name == "nil" {
					w.errorf(e, "Entry(nil, ...) takes its text from its parameters at run time; give it a description")
					return false
				}
				w.leaf(e, e.Args, inner)
				return false
			}
			return true
		})
	}
}

func (w *walker) leaf(call *ast.CallExpr, args []ast.Expr, stack []frame) {
	if len(args) == 0 {
		w.errorf(call, "spec without text")
		return
	}
	s := Spec{Suite: w.suite, Pos: w.fset.Position(call.Pos())}
	var labels []string
	for _, f := range stack {
		s.parts = append(s.parts, f.text)
		labels = append(labels, f.labels...)
	}
	s.parts = append(s.parts, w.text(args[0]))
	labels = append(labels, w.decorators(args[1:])...)
	for _, t := range s.parts {
		s.Texts = append(s.Texts, render(t))
	}
	slices.Sort(labels)
	s.Labels = slices.Compact(labels)
	w.specs = append(w.specs, s)
}

// decorators returns the labels among a node's arguments: Label(...)
// calls, package variables holding one, and Serial (which Ginkgo reports
// as the label "Serial").
func (w *walker) decorators(args []ast.Expr) []string {
	var labels []string
	for _, a := range args {
		switch a := a.(type) {
		case *ast.CallExpr:
			labels = append(labels, w.labelCall(a)...)
		case *ast.Ident:
			if a.Name == "Serial" && w.ginkgoNames["."] {
				labels = append(labels, "Serial")
			} else if v, ok := w.vars[a.Name].(*ast.CallExpr); ok {
				labels = append(labels, w.labelCall(v)...)
			}
		case *ast.SelectorExpr:
			if x, ok := a.X.(*ast.Ident); ok && w.ginkgoNames[x.Name] && a.Sel.Name == "Serial" {
				labels = append(labels, "Serial")
			}
		}
	}
	return labels
}

func (w *walker) labelCall(c *ast.CallExpr) []string {
	if w.ginkgo(c.Fun) != "Label" {
		return nil
	}
	var labels []string
	for _, a := range c.Args {
		v := w.constant(a)
		if v == nil || v.Kind() != constant.String {
			w.errorf(a, "label %s is not a constant string", w.source(a))
			continue
		}
		labels = append(labels, constant.StringVal(v))
	}
	return labels
}

// text evaluates a node's text.
func (w *walker) text(e ast.Expr) []part {
	if v := w.constant(e); v != nil && v.Kind() == constant.String {
		return []part{{lit: constant.StringVal(v)}}
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return w.text(e.X)
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			return join(w.text(e.X), w.text(e.Y))
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sprintf" && len(e.Args) > 0 {
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "fmt" {
				if f := w.constant(e.Args[0]); f != nil && f.Kind() == constant.String {
					return w.sprintf(constant.StringVal(f), e.Args[1:])
				}
			}
		}
	}
	return []part{{wild: w.source(e)}}
}

func join(a, b []part) []part {
	out := slices.Clone(a)
	for _, p := range b {
		if n := len(out); n > 0 && p.wild == "" && out[n-1].wild == "" {
			out[n-1].lit += p.lit
			continue
		}
		out = append(out, p)
	}
	return out
}

var verb = regexp.MustCompile(`%[-+# 0]*(\d+|\*)?(\.(\d+|\*)?)?[a-zA-Z%]`)

// sprintf formats the constant arguments and leaves the others as {expr}.
func (w *walker) sprintf(format string, args []ast.Expr) []part {
	var out []part
	last := 0
	for _, loc := range verb.FindAllStringIndex(format, -1) {
		out = join(out, []part{{lit: format[last:loc[0]]}})
		last = loc[1]
		v := format[loc[0]:loc[1]]
		if v == "%%" {
			out = join(out, []part{{lit: "%"}})
			continue
		}
		if len(args) == 0 {
			out = join(out, []part{{lit: "%!" + v[len(v)-1:] + "(MISSING)"}})
			continue
		}
		a := args[0]
		args = args[1:]
		if c := w.constant(a); c != nil {
			out = join(out, []part{{lit: fmt.Sprintf(v, goValue(c))}})
		} else {
			out = join(out, []part{{wild: w.source(a)}})
		}
	}
	return join(out, []part{{lit: format[last:]}})
}

func goValue(v constant.Value) any {
	switch v.Kind() {
	case constant.String:
		return constant.StringVal(v)
	case constant.Bool:
		return constant.BoolVal(v)
	case constant.Int:
		if i, ok := constant.Int64Val(v); ok {
			return i
		}
	case constant.Float:
		f, _ := constant.Float64Val(v)
		return f
	}
	return v.ExactString()
}

// constant evaluates an untyped constant expression of the package
// (literals, its own constants, operators), or returns nil.
func (w *walker) constant(e ast.Expr) constant.Value {
	return w.eval(e, map[string]bool{})
}

func (w *walker) eval(e ast.Expr, seen map[string]bool) constant.Value {
	switch e := e.(type) {
	case *ast.BasicLit:
		return constant.MakeFromLiteral(e.Value, e.Kind, 0)
	case *ast.ParenExpr:
		return w.eval(e.X, seen)
	case *ast.Ident:
		if x, ok := w.consts[e.Name]; ok && !seen[e.Name] {
			seen[e.Name] = true
			defer delete(seen, e.Name)
			return w.eval(x, seen)
		}
	case *ast.UnaryExpr:
		if x := w.eval(e.X, seen); x != nil {
			return constant.UnaryOp(e.Op, x, 0)
		}
	case *ast.BinaryExpr:
		x, y := w.eval(e.X, seen), w.eval(e.Y, seen)
		if x == nil || y == nil {
			return nil
		}
		switch e.Op {
		case token.EQL, token.NEQ, token.LSS, token.LEQ, token.GTR, token.GEQ:
			return constant.MakeBool(constant.Compare(x, e.Op, y))
		case token.SHL, token.SHR:
			s, ok := constant.Uint64Val(y)
			if !ok {
				return nil
			}
			return constant.Shift(x, e.Op, uint(s))
		}
		if (x.Kind() == constant.String) != (y.Kind() == constant.String) {
			return nil
		}
		if (e.Op == token.QUO || e.Op == token.REM) && constant.Sign(y) == 0 {
			return nil
		}
		if e.Op == token.QUO && x.Kind() == constant.Int && y.Kind() == constant.Int {
			return constant.BinaryOp(x, token.QUO_ASSIGN, y) // integer division
		}
		return constant.BinaryOp(x, e.Op, y)
	}
	return nil
}

func (w *walker) source(e ast.Expr) string {
	start, end := w.fset.Position(e.Pos()), w.fset.Position(e.End())
	src, err := os.ReadFile(start.Filename)
	if err != nil || end.Offset > len(src) {
		return "?"
	}
	return string(src[start.Offset:end.Offset])
}
