// Package run executes external commands (docker, debootstrap, go, gcc) the
// way the rest of netconform wants them: cancelled with their whole process
// group when the context ends (so Ctrl-C leaves no stray children), output
// kept in a log file for long steps, and failures that say what was run and
// what it printed last.
package run

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Cmd describes one command.
type Cmd struct {
	Name  string
	Args  []string
	Dir   string
	Env   []string // added to the current environment
	Stdin io.Reader
	// Log, when set, receives stdout and stderr as they come (a step's log
	// file). The last lines are always kept for the error message.
	Log io.Writer
}

// Command is a shorthand for Cmd{Name: name, Args: args}.
func Command(name string, args ...string) *Cmd { return &Cmd{Name: name, Args: args} }

// String renders the command line for messages.
func (c *Cmd) String() string {
	return strings.TrimSpace(c.Name + " " + strings.Join(c.Args, " "))
}

// Output runs the command and returns its standard output.
func (c *Cmd) Output(ctx context.Context) ([]byte, error) {
	var out bytes.Buffer
	err := c.run(ctx, &out)
	return out.Bytes(), err
}

// Run runs the command, discarding standard output unless Log is set.
func (c *Cmd) Run(ctx context.Context) error { return c.run(ctx, nil) }

func (c *Cmd) run(ctx context.Context, stdout io.Writer) error {
	cmd := exec.Command(c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = c.Stdin
	tail := &tailBuffer{max: 4096}
	var outs, errs []io.Writer
	if stdout != nil {
		outs = append(outs, stdout)
	} else {
		outs = append(outs, tail)
	}
	errs = append(errs, tail)
	if c.Log != nil {
		outs = append(outs, c.Log)
		errs = append(errs, c.Log)
	}
	cmd.Stdout = io.MultiWriter(outs...)
	cmd.Stderr = io.MultiWriter(errs...)
	// A process group of its own, so that cancelling kills grandchildren too
	// (go build's compilers, debootstrap's dpkg).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", c, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return &Error{Cmd: c.String(), Err: err, Tail: tail.String()}
		}
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return fmt.Errorf("%s: %w", c, ctx.Err())
	}
}

// Error is a failed command with the end of what it printed.
type Error struct {
	Cmd  string
	Err  error
	Tail string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if t := strings.TrimSpace(e.Tail); t != "" {
		msg += "\n--- last output ---\n" + t
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
