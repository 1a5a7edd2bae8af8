package main

import (
	"os"
	"path/filepath"
)

// providerName picks the node provider as kind's CLI does: a flag, else
// KIND_EXPERIMENTAL_PROVIDER, else docker.
func providerName(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("KIND_EXPERIMENTAL_PROVIDER"); p != "" {
		return p
	}
	return "docker"
}

// repoRoot is the directory holding go.mod: the make targets run from there,
// and builds of the project's own programs (shim, probe, CNI) need it.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
