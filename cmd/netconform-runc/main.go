// Command netconform-runc is an OCI runtime shim for hosts whose capability
// bounding set is short (see internal/capfilter). Registered as the engine's
// default runtime (dockerd --add-runtime / containerd's BinaryName), it drops
// unheld capabilities from the bundle's config.json on create/run and from the
// --process file on exec, then executes the real runc with the same arguments.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/netconform/netconform/internal/capfilter"
)

// realRuncCandidates are tried in order when NETCONFORM_REAL_RUNC is unset.
var realRuncCandidates = []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"}

// globalWithValue are runc's global flags that take a separate value, so that
// the value is not mistaken for the subcommand.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "netconform-runc: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	real, err := realRunc()
	if err != nil {
		return err
	}
	if err := filterFor(args); err != nil {
		return err
	}
	return syscall.Exec(real, append([]string{real}, args...), os.Environ())
}

// filterFor finds the subcommand and the file it reads the process from.
func filterFor(args []string) error {
	sub, bundle, process := "", "", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
				return v
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--bundle" || a == "-b" || strings.HasPrefix(a, "--bundle="):
			bundle = val()
		case a == "--process" || a == "-p" || strings.HasPrefix(a, "--process="):
			process = val()
		case sub == "" && globalWithValue[a]:
			i++ // skip the global flag's value
		case sub == "" && !strings.HasPrefix(a, "-"):
			sub = a
		}
	}
	switch sub {
	case "create", "run":
	case "exec":
		if process == "" {
			return nil
		}
	default:
		return nil
	}
	held, err := capfilter.Bounding()
	if err != nil {
		return err
	}
	if len(capfilter.Missing(held)) == 0 {
		return nil
	}
	if sub == "exec" {
		return capfilter.FilterFile(process, false, held)
	}
	if bundle == "" {
		bundle = "."
	}
	return capfilter.FilterFile(filepath.Join(bundle, "config.json"), true, held)
}

func realRunc() (string, error) {
	if p := os.Getenv("NETCONFORM_REAL_RUNC"); p != "" {
		return p, nil
	}
	self, _ := os.Executable()
	for _, c := range realRuncCandidates {
		if c == self {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	if p, err := exec.LookPath("runc"); err == nil && p != self {
		return p, nil
	}
	return "", fmt.Errorf("no runc found (tried %s and PATH); install runc or set NETCONFORM_REAL_RUNC", strings.Join(realRuncCandidates, ", "))
}
