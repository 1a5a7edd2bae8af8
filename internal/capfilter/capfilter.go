// Package capfilter removes, from OCI runtime specs, the capabilities that the
// current process's capability bounding set does not hold.
//
// Docker's --privileged and Kubernetes' privileged pods ask for every
// capability the runtime knows. On a host whose bounding set is short (seen:
// CAP_SYS_RESOURCE missing) runc then fails with "unable to apply caps:
// operation not permitted". Asking only for what the bounding set holds is
// what such a host can honour; nothing else in the spec is touched.
package capfilter

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/capability"
)

// Bounding returns the names (CAP_X) of the capabilities in this process's
// bounding set.
func Bounding() (map[string]bool, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("reading capabilities of this process: %w", err)
	}
	if err := c.Load(); err != nil {
		return nil, fmt.Errorf("loading capabilities of this process: %w", err)
	}
	held := map[string]bool{}
	for _, cp := range capability.ListKnown() {
		if c.Get(capability.BOUNDING, cp) {
			held["CAP_"+strings.ToUpper(cp.String())] = true
		}
	}
	return held, nil
}

// Missing lists the known capabilities that the bounding set lacks.
func Missing(held map[string]bool) []string {
	var out []string
	for _, cp := range capability.ListKnown() {
		name := "CAP_" + strings.ToUpper(cp.String())
		if !held[name] {
			out = append(out, name)
		}
	}
	return out
}

// capSets are the five capability lists of an OCI process.
var capSets = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// FilterProcess removes unheld capabilities from an OCI "process" object
// (decoded as generic JSON so that unknown fields survive). It reports
// whether anything changed.
func FilterProcess(process map[string]any, held map[string]bool) bool {
	caps, ok := process["capabilities"].(map[string]any)
	if !ok {
		return false
	}
	changed := false
	for _, set := range capSets {
		list, ok := caps[set].([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			if name, ok := c.(string); ok && !held[name] {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	return changed
}

// FilterFile rewrites an OCI file in place: a bundle's config.json (process
// under "process") when isSpec, or the bare process JSON that `runc exec
// --process` reads.
func FilterFile(path string, isSpec bool, held map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	process := doc
	if isSpec {
		p, ok := doc["process"].(map[string]any)
		if !ok {
			return nil
		}
		process = p
	}
	if !FilterProcess(process, held) {
		return nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, info.Mode().Perm())
}
