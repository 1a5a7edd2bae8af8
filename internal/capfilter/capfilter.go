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
	"golang.org/x/sys/unix"
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
	changed := FilterProcess(process, held)
	if !held["CAP_SYS_RESOURCE"] && ClampRlimits(process, OwnHardLimit) {
		changed = true
	}
	if !changed {
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

// rlimitTypes maps OCI rlimit names to their resource numbers.
var rlimitTypes = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// ClampRlimits lowers, in an OCI process object, resource limits whose hard
// value exceeds this process's own hard limit: raising a hard limit needs
// CAP_SYS_RESOURCE, so without it runc fails with "error setting rlimit".
// Podman asks for RLIMIT_NOFILE 1048576 by default. It reports whether
// anything changed.
func ClampRlimits(process map[string]any, limit func(resource int) (uint64, bool)) bool {
	list, ok := process["rlimits"].([]any)
	if !ok {
		return false
	}
	changed := false
	for _, item := range list {
		rl, ok := item.(map[string]any)
		if !ok {
			continue
		}
		typ, _ := rl["type"].(string)
		res, known := rlimitTypes[typ]
		if !known {
			continue
		}
		max, ok := limit(res)
		if !ok {
			continue
		}
		for _, k := range []string{"hard", "soft"} {
			if v, ok := rl[k].(float64); ok && v > float64(max) {
				rl[k] = float64(max)
				changed = true
			}
		}
	}
	return changed
}

// OwnHardLimit is this process's hard limit for a resource.
func OwnHardLimit(resource int) (uint64, bool) {
	var r unix.Rlimit
	if err := unix.Getrlimit(resource, &r); err != nil {
		return 0, false
	}
	return r.Max, true
}
