// Package kube runs netprobe inside a pod, through the API server's exec
// subresource, the way kubectl exec does.
//
// It is apart from package probe so that netprobe, which shares probe's
// types, does not link client-go.
package kube

import (
	"bytes"
	"context"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/netconform/netconform/pkg/probe"
)

// PodExec is a probe.Runner that execs netprobe in a container of a running
// pod, so the probe's packets leave from that pod's network namespace.
type PodExec struct {
	// Config authenticates to the API server; it also configures the
	// streaming transports.
	Config *rest.Config
	// REST is a client for the core/v1 API group, used to build the exec URL.
	REST      rest.Interface
	Namespace string
	Pod       string
	// Container may be empty when the pod has one container.
	Container string
	// Command is what runs before the probe's arguments; probe.BinaryPath
	// when empty.
	Command []string

	// newExecutor is replaced in tests.
	newExecutor func(*rest.Config, *url.URL) (remotecommand.Executor, error)
}

// NewPodExec returns a runner for one container of one pod.
func NewPodExec(cfg *rest.Config, namespace, pod, container string) (*PodExec, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("making a client for exec into pod %s/%s: %w", namespace, pod, err)
	}
	return &PodExec{Config: cfg, REST: cs.CoreV1().RESTClient(), Namespace: namespace, Pod: pod, Container: container}, nil
}

// URL is the exec subresource request for command, stdout and stderr only
// (no stdin, no TTY: a TTY would merge the streams and mangle the JSON).
func (p *PodExec) URL(command []string) *url.URL {
	return p.REST.Post().
		Resource("pods").
		Namespace(p.Namespace).
		Name(p.Pod).
		SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: p.Container,
			Command:   command,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec).
		URL()
}

// Run implements probe.Runner. A probe that exits non-zero comes back as a
// *probe.ExitError with its stderr; the exit code is in the wrapped error
// (k8s.io/client-go/util/exec.CodeExitError).
func (p *PodExec) Run(ctx context.Context, args []string) ([]byte, error) {
	command := append(append([]string{}, p.command()...), args...)
	newExec := p.newExecutor
	if newExec == nil {
		newExec = fallbackExecutor
	}
	exec, err := newExec(p.Config, p.URL(command))
	if err != nil {
		return nil, &probe.ExitError{Err: fmt.Errorf("preparing exec in %s: %w", p, err)}
	}
	var stdout, stderr bytes.Buffer
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return stdout.Bytes(), &probe.ExitError{Stderr: stderr.Bytes(), Err: fmt.Errorf("exec in %s: %w", p, err)}
	}
	return stdout.Bytes(), nil
}

func (p *PodExec) command() []string {
	if len(p.Command) == 0 {
		return []string{probe.BinaryPath}
	}
	return p.Command
}

func (p *PodExec) String() string {
	s := "pod " + p.Namespace + "/" + p.Pod
	if p.Container != "" {
		s += " container " + p.Container
	}
	return s
}

// fallbackExecutor is kubectl's choice: the WebSocket (v5) protocol first,
// and SPDY when the upgrade is refused, as by an older API server or a proxy
// in between that does not pass WebSockets.
//
// The upgrade-failure test must come from k8s.io/streaming/pkg/httpstream,
// the package client-go's transports now return errors from; the copy left
// in k8s.io/apimachinery/pkg/util/httpstream is a distinct type, and testing
// against it would never fall back (TestFallsBackToSPDY catches that).
func fallbackExecutor(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		return nil, fmt.Errorf("SPDY executor: %w", err)
	}
	// RFC 6455 requires GET for the WebSocket handshake.
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		return nil, fmt.Errorf("WebSocket executor: %w", err)
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}
