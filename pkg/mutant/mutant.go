// Package mutant builds kube-proxies with one known fault each, so that the
// suites can be shown to catch a broken proxy: a fault is a small edit of
// kube-proxy's own source (k8s.io/kubernetes, at the cell's version), and
// a mutant is kube-proxy built from the edited copy.
//
// A fault names the bug class it models (one that real proxies have
// shipped), the spec labels that must catch it, and the edits. Edits match
// whole lines of the upstream source with their indentation ignored, so a
// fault says exactly which statement it changes and fails loudly, naming
// the file and the lines, when a version no longer has them.
package mutant

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Fault is one deliberate bug in kube-proxy.
type Fault struct {
	// Name is "<mode>/<what breaks>", or "shared/<what breaks>" for code
	// every proxy mode uses (pkg/proxy).
	Name string
	// Mode is the proxy mode whose code the fault changes; "" for shared code.
	Mode string
	// Areas are the spec labels of which at least one spec must fail.
	Areas []string
	// Class is the bug class the fault models, as a reader of the
	// detection table needs it.
	Class string
	Edits []Edit
}

// Edit changes one file of the k8s.io/kubernetes module.
type Edit struct {
	File string // relative to the module root
	// Old is one or more whole lines; each must equal a line of the file
	// once leading and trailing blanks are trimmed, consecutively, and the
	// run must occur exactly once. New replaces it (indentation is cosmetic:
	// the result is compiled, not read).
	Old, New string
	// Append is Go source added at the end of the file (helpers for New).
	Append string
}

// Files lists the files a fault changes.
func (f Fault) Files() []string {
	var out []string
	for _, e := range f.Edits {
		if !contains(out, e.File) {
			out = append(out, e.File)
		}
	}
	return out
}

// Apply makes f's edits in the module source tree at root. It changes
// nothing unless every edit applies.
func (f Fault) Apply(root string) error {
	changed := map[string]string{}
	for _, e := range f.Edits {
		path := filepath.Join(root, e.File)
		src, ok := changed[path]
		if !ok {
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("fault %s: reading %s: %w", f.Name, e.File, err)
			}
			src = string(data)
		}
		out, err := e.apply(src)
		if err != nil {
			return fmt.Errorf("fault %s does not apply to %s: %w", f.Name, e.File, err)
		}
		changed[path] = out
	}
	for path, src := range changed {
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			return fmt.Errorf("fault %s: writing %s: %w", f.Name, path, err)
		}
	}
	return nil
}

// apply returns src with e made.
func (e Edit) apply(src string) (string, error) {
	if e.Old != "" {
		lines := strings.Split(src, "\n")
		old := strings.Split(strings.TrimSpace(e.Old), "\n")
		at := -1
		for i := 0; i+len(old) <= len(lines); i++ {
			if matchAt(lines, i, old) {
				if at >= 0 {
					return "", fmt.Errorf("the lines %q occur more than once (lines %d and %d); give more context", e.Old, at+1, i+1)
				}
				at = i
			}
		}
		if at < 0 {
			return "", fmt.Errorf("the lines %q are not there (the upstream code changed; update the fault)", e.Old)
		}
		out := append([]string{}, lines[:at]...)
		out = append(out, "// netconform fault:")
		out = append(out, strings.Split(e.New, "\n")...)
		out = append(out, lines[at+len(old):]...)
		src = strings.Join(out, "\n")
	}
	if e.Append != "" {
		src += "\n// netconform fault helpers:\n" + e.Append + "\n"
	}
	return src, nil
}

func matchAt(lines []string, at int, want []string) bool {
	for j, w := range want {
		if strings.TrimSpace(lines[at+j]) != strings.TrimSpace(w) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Lookup returns the fault of that name.
func Lookup(name string) (Fault, error) {
	var names []string
	for _, f := range Catalog {
		if f.Name == name {
			return f, nil
		}
		names = append(names, f.Name)
	}
	return Fault{}, fmt.Errorf("no fault %q; the faults are: %s", name, strings.Join(names, ", "))
}

// ForMode returns the faults that change a kube-proxy running in mode:
// that mode's own and the shared ones.
func ForMode(mode string) []Fault {
	var out []Fault
	for _, f := range Catalog {
		if f.Mode == mode || f.Mode == "" {
			out = append(out, f)
		}
	}
	return out
}
