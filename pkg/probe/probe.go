// Package probe is the suite's side of netprobe, the one small program in the
// test image: the JSON it prints, the options it takes, and the typed helpers
// (HTTP, Connect, DNS) that run it somewhere and decode what it said.
//
// Where it runs is a Runner: inside a pod (probe/kube.PodExec, an exec like
// kubectl's) or as an external client in a container on the cluster's network
// (Container). Helpers never interpret outcomes; they return exactly what the
// probe printed so specs assert on it, and when running or decoding fails the
// error carries the command line and everything the probe wrote.
//
// This package imports nothing from client-go, so netprobe itself can share
// these types and stay a small static binary.
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs netprobe with args (subcommand first) somewhere and returns
// what it printed on stdout. A non-zero exit is an error; runners return an
// *ExitError so that stderr travels with it.
type Runner interface {
	Run(ctx context.Context, args []string) (stdout []byte, err error)
}

// ExitError is a probe run that failed: the process could not start or
// exited non-zero. Stderr is what it wrote, usually the reason.
type ExitError struct {
	Stderr []byte
	Err    error
}

func (e *ExitError) Error() string {
	if s := strings.TrimSpace(string(e.Stderr)); s != "" {
		return fmt.Sprintf("%v; stderr: %s", e.Err, s)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// RunError is what the typed helpers return: which command ran where, what
// it printed, and why that was not a result.
type RunError struct {
	Where  string   // the runner, e.g. "pod ns/client" or "docker run ... image"
	Args   []string // netprobe's arguments
	Stdout []byte
	Err    error
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "netprobe %s", strings.Join(e.Args, " "))
	if e.Where != "" {
		fmt.Fprintf(&b, " (%s)", e.Where)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if s := strings.TrimSpace(string(e.Stdout)); s != "" {
		const limit = 4096
		if len(s) > limit {
			s = s[:limit] + "…"
		}
		fmt.Fprintf(&b, "; stdout: %s", s)
	}
	return b.String()
}

func (e *RunError) Unwrap() error { return e.Err }

// HTTP runs `netprobe http` through r.
func HTTP(ctx context.Context, r Runner, o HTTPOptions) (HTTPResult, error) {
	var res HTTPResult
	return res, run(ctx, r, o.Args(), &res)
}

// Connect runs `netprobe connect` through r.
func Connect(ctx context.Context, r Runner, o ConnectOptions) (ConnectResult, error) {
	var res ConnectResult
	return res, run(ctx, r, o.Args(), &res)
}

// DNS runs `netprobe dns` through r.
func DNS(ctx context.Context, r Runner, o DNSOptions) (DNSResult, error) {
	var res DNSResult
	return res, run(ctx, r, o.Args(), &res)
}

func run(ctx context.Context, r Runner, args []string, into any) error {
	where := ""
	if s, ok := r.(fmt.Stringer); ok {
		where = s.String()
	}
	out, err := r.Run(ctx, args)
	if err != nil {
		return &RunError{Where: where, Args: args, Stdout: out, Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return &RunError{Where: where, Args: args, Stdout: out, Err: fmt.Errorf("decoding probe output: %w", err)}
	}
	return nil
}

// Container runs netprobe as an external client: a throwaway container on
// the container network the cluster's nodes are on (kind's "kind"), not on
// the host network, so its packets reach Services from outside the cluster
// the way a real client's would.
type Container struct {
	// Engine is the container CLI, "docker" when empty (or "podman").
	Engine string
	// Network is passed as --network; empty leaves the engine's default.
	Network string
	// Image is the probe image, already loaded (see Load); it is never pulled.
	Image string
	// RunArgs are extra `run` flags placed before the image, e.g. --dns.
	RunArgs []string
}

func (c Container) engine() string {
	if c.Engine == "" {
		return "docker"
	}
	return c.Engine
}

// Command is the full command line Run executes for args.
func (c Container) Command(args []string) []string {
	cmd := []string{c.engine(), "run", "--rm", "--pull=never"}
	if c.Network != "" {
		cmd = append(cmd, "--network", c.Network)
	}
	cmd = append(cmd, c.RunArgs...)
	cmd = append(cmd, c.Image)
	return append(cmd, args...)
}

// Run implements Runner.
func (c Container) Run(ctx context.Context, args []string) ([]byte, error) {
	return runCommand(ctx, c.Command(args))
}

// Resident is an external client that stays up: Start runs one
// container (netprobe idle) and each probe is exec'd in it. A container
// per probe (Container.Run) costs about 2 s of engine work on a busy
// 2-core host; an exec, a fraction of that. Stop removes it; so does
// `netconform clean`, by its label, after an interrupt that skipped Stop.
type Resident struct {
	Engine, Name string
}

// ResidentLabel marks resident clients' containers.
const ResidentLabel = "netconform.io/resident-client"

// Start runs c's container detached under name, as a resident client.
func (c Container) Start(ctx context.Context, name string) (*Resident, error) {
	argv := []string{c.engine(), "run", "-d", "--rm", "--pull=never", "--name", name, "--label", ResidentLabel + "=true"}
	if c.Network != "" {
		argv = append(argv, "--network", c.Network)
	}
	argv = append(argv, c.RunArgs...)
	argv = append(argv, c.Image, "idle")
	if _, err := runCommand(ctx, argv); err != nil {
		return nil, fmt.Errorf("starting resident client %s: %w", name, err)
	}
	return &Resident{Engine: c.engine(), Name: name}, nil
}

// Run implements Runner.
func (r *Resident) Run(ctx context.Context, args []string) ([]byte, error) {
	return runCommand(ctx, append([]string{r.Engine, "exec", r.Name, BinaryPath}, args...))
}

// Stop removes the container.
func (r *Resident) Stop(ctx context.Context) error {
	if _, err := runCommand(ctx, []string{r.Engine, "rm", "-f", r.Name}); err != nil {
		return fmt.Errorf("removing resident client %s: %w", r.Name, err)
	}
	return nil
}

func (r *Resident) String() string { return r.Engine + " exec " + r.Name + " " + BinaryPath }

// Load makes the image archive (see probe/probeimage) available to the engine.
func (c Container) Load(ctx context.Context, archive string) error {
	if _, err := runCommand(ctx, []string{c.engine(), "load", "-i", archive}); err != nil {
		return fmt.Errorf("loading probe image archive %s into %s: %w", archive, c.engine(), err)
	}
	return nil
}

func (c Container) String() string {
	return strings.Join(c.Command(nil), " ")
}

func runCommand(ctx context.Context, argv []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return stdout.Bytes(), &ExitError{Stderr: stderr.Bytes(), Err: err}
	}
	return stdout.Bytes(), nil
}
