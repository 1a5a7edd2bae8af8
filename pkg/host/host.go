// Package host makes sure this machine can run kind nodes: a container engine
// that is up, and, where the capability bounding set is short, the project's
// OCI runtime shim registered as the engine's default runtime.
//
// It changes nothing it does not need to: an engine that already works is
// used as it is; packages are installed only when the engine is missing and
// we run as root on Debian; dockerd is started only when it is not running.
package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/netconform/netconform/internal/capfilter"
	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/internal/run"
)

// ShimPath is where the runtime shim is installed on the host.
const ShimPath = "/usr/local/sbin/netconform-runc"

// ShimRuntimeName is the name the shim is registered under with dockerd.
const ShimRuntimeName = "netconform"

// DockerdLog is where a dockerd we start writes its log.
const DockerdLog = "/var/log/netconform-dockerd.log"

// Report says what Ensure found and did.
type Report struct {
	Engine        string   // docker or podman
	MissingCaps   []string // capabilities outside the bounding set
	ShimNeeded    bool
	ShimInstalled bool
	Started       bool // we started the engine
	Installed     bool // we installed packages
}

// NeedsShim reports whether privileged containers need the runtime shim
// here, and which capabilities are missing.
func NeedsShim() (bool, []string, error) {
	held, err := capfilter.Bounding()
	if err != nil {
		return false, nil, err
	}
	missing := capfilter.Missing(held)
	return len(missing) > 0, missing, nil
}

// Ensure makes the engine named by provider ("docker" or "podman") usable.
// repoRoot is where the shim's source lives (cmd/netconform-runc).
func Ensure(ctx context.Context, provider, repoRoot string) (*Report, error) {
	rep := &Report{Engine: provider}
	need, missing, err := NeedsShim()
	if err != nil {
		return nil, err
	}
	rep.ShimNeeded, rep.MissingCaps = need, missing
	if err := ensureInotify(); err != nil {
		return nil, err
	}
	if need {
		progress.Printf("capability bounding set lacks %s: privileged containers need the runtime shim", strings.Join(missing, ", "))
		if err := installShim(ctx, repoRoot); err != nil {
			return nil, err
		}
		rep.ShimInstalled = true
	}
	switch provider {
	case "docker":
		return rep, ensureDocker(ctx, rep)
	case "podman":
		return rep, ensurePodman(ctx, rep)
	default:
		return nil, fmt.Errorf("unknown node provider %q: use docker or podman (KIND_EXPERIMENTAL_PROVIDER)", provider)
	}
}

func isRoot() bool { return os.Geteuid() == 0 }

func installPackages(ctx context.Context, pkgs ...string) error {
	if !isRoot() {
		return fmt.Errorf("%s not installed and not running as root: install it (Debian: sudo apt-get install -y %s)", pkgs[0], strings.Join(pkgs, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%s not installed and this is not a Debian-like host (no apt-get): install a container engine (Docker Engine or Podman) and retry", pkgs[0])
	}
	return progress.Step("installing "+strings.Join(pkgs, " ")+" from Debian", func() error {
		env := []string{"DEBIAN_FRONTEND=noninteractive"}
		if err := (&run.Cmd{Name: "apt-get", Args: []string{"update"}, Env: env}).Run(ctx); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		args := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
		return (&run.Cmd{Name: "apt-get", Args: args, Env: env}).Run(ctx)
	})
}

// installShim builds the shim from this repository and installs it, unless
// an identical binary is already there.
func installShim(ctx context.Context, repoRoot string) error {
	tmp := fmt.Sprintf("%s.new-%d", ShimPath, os.Getpid()) // concurrent runs must not share it
	c := &run.Cmd{Name: "go", Args: []string{"build", "-trimpath", "-ldflags=-s -w", "-o", tmp, "./cmd/netconform-runc"},
		Dir: repoRoot, Env: []string{"CGO_ENABLED=0"}}
	if err := c.Run(ctx); err != nil {
		return fmt.Errorf("building the runtime shim: %w", err)
	}
	if same(tmp, ShimPath) {
		return os.Remove(tmp)
	}
	if err := os.Rename(tmp, ShimPath); err != nil {
		return fmt.Errorf("installing the runtime shim at %s: %w", ShimPath, err)
	}
	progress.Printf("installed runtime shim %s", ShimPath)
	return nil
}

func same(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func dockerInfo(ctx context.Context, format string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := run.Command("docker", "info", "--format", format).Output(ctx)
	return strings.TrimSpace(string(out)), err
}

func ensureDocker(ctx context.Context, rep *Report) error {
	if _, err := exec.LookPath("dockerd"); err != nil {
		if _, cerr := exec.LookPath("docker"); cerr == nil {
			if _, ierr := dockerInfo(ctx, "{{.ServerVersion}}"); ierr == nil {
				return checkDockerRuntime(ctx, rep) // a remote or rootless engine that works
			}
		}
		if err := installPackages(ctx, "docker.io"); err != nil {
			return err
		}
		rep.Installed = true
	}
	if _, err := dockerInfo(ctx, "{{.ServerVersion}}"); err == nil {
		return checkDockerRuntime(ctx, rep)
	}
	if !isRoot() {
		return errors.New("the Docker engine is not running and this user cannot start it: start dockerd (sudo systemctl start docker) or run as root")
	}
	if err := startDockerd(ctx, rep.ShimNeeded); err != nil {
		return err
	}
	rep.Started = true
	return checkDockerRuntime(ctx, rep)
}

// startDockerd starts dockerd in the background, detached from us so it
// outlives this process, and waits until it answers.
func startDockerd(ctx context.Context, withShim bool) error {
	args := []string{}
	if withShim {
		args = append(args, "--add-runtime", ShimRuntimeName+"="+ShimPath, "--default-runtime", ShimRuntimeName)
	}
	return progress.Step("starting dockerd (log: "+DockerdLog+")", func() error {
		logf, err := os.OpenFile(DockerdLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := exec.Command("dockerd", args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting dockerd: %w", err)
		}
		go cmd.Wait() //nolint:errcheck // reaped if it exits early; we poll docker info below
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := dockerInfo(ctx, "{{.ServerVersion}}"); err == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		return fmt.Errorf("dockerd did not answer within 90s; see %s", DockerdLog)
	})
}

// checkDockerRuntime makes sure privileged containers can start: where the
// shim is needed, the running engine must use it by default.
func checkDockerRuntime(ctx context.Context, rep *Report) error {
	if !rep.ShimNeeded {
		return nil
	}
	def, err := dockerInfo(ctx, "{{.DefaultRuntime}}")
	if err != nil {
		return fmt.Errorf("asking docker for its default runtime: %w", err)
	}
	if def == ShimRuntimeName {
		return nil
	}
	return fmt.Errorf("dockerd is running with default runtime %q, but this host's capability bounding set lacks %s, so privileged kind nodes cannot start. "+
		"Restart dockerd with: dockerd --add-runtime %s=%s --default-runtime %s (or add them to /etc/docker/daemon.json: "+
		`{"runtimes":{"%s":{"path":"%s"}},"default-runtime":"%s"})`,
		def, strings.Join(rep.MissingCaps, ", "), ShimRuntimeName, ShimPath, ShimRuntimeName, ShimRuntimeName, ShimPath, ShimRuntimeName)
}

// podman is daemonless: it needs the package, and on a short bounding set a
// containers.conf drop-in naming the shim as the default OCI runtime.
func ensurePodman(ctx context.Context, rep *Report) error {
	if _, err := exec.LookPath("podman"); err != nil {
		if err := installPackages(ctx, "podman"); err != nil {
			return err
		}
		rep.Installed = true
	}
	if !rep.ShimNeeded {
		return nil
	}
	dropin := "/etc/containers/containers.conf.d/50-netconform.conf"
	want := fmt.Sprintf("# written by netconform: privileged containers need the shim on this host\n[engine]\nruntime = %q\n\n[engine.runtimes]\n%s = [%q]\n", ShimRuntimeName, ShimRuntimeName, ShimPath)
	if cur, err := os.ReadFile(dropin); err == nil && string(cur) == want {
		return nil
	}
	if !isRoot() {
		return fmt.Errorf("podman needs the runtime shim on this host: as root, write %s with:\n%s", dropin, want)
	}
	if err := os.MkdirAll(filepath.Dir(dropin), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dropin, []byte(want), 0o644)
}
