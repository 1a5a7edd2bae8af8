package kube

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/netconform/netconform/pkg/probe"
)

func newPodExec(t *testing.T, host string) *PodExec {
	t.Helper()
	p, err := NewPodExec(&rest.Config{Host: host}, "ns1", "client", "probe")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecURL(t *testing.T) {
	p := newPodExec(t, "https://127.0.0.1:6443")
	u := p.URL([]string{probe.BinaryPath, "http", "--url", "http://backend-service:3000/"})
	if u.Path != "/api/v1/namespaces/ns1/pods/client/exec" {
		t.Errorf("path %q", u.Path)
	}
	q := u.Query()
	if !reflect.DeepEqual(q["command"], []string{probe.BinaryPath, "http", "--url", "http://backend-service:3000/"}) {
		t.Errorf("command %q", q["command"])
	}
	if q.Get("container") != "probe" || q.Get("stdout") != "true" || q.Get("stderr") != "true" || q.Has("stdin") || q.Has("tty") {
		t.Errorf("query %v", q)
	}
	if p.String() != "pod ns1/client container probe" {
		t.Errorf("String %q", p.String())
	}
}

// fakeExecAPI answers the exec subresource with the WebSocket v5 protocol
// the way a kubelet behind the API server does: stdout on channel 1, stderr
// on 2 and the exit status on 3.
type fakeExecAPI struct {
	stdout, stderr string
	exitCode       int
	refuseWS       bool

	mu       sync.Mutex
	requests []string // method and upgrade protocol of each request
	command  []string
}

func (f *fakeExecAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.Header.Get("Upgrade"))
	f.command = r.URL.Query()["command"]
	f.mu.Unlock()
	if f.refuseWS || !wsstream.IsWebSocketRequest(r) {
		http.Error(w, "upgrade refused", http.StatusBadRequest)
		return
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"v5.channel.k8s.io": {Binary: true, Channels: []wsstream.ChannelType{
			wsstream.IgnoreChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.IgnoreChannel,
		}},
	})
	_, ch, err := conn.Open(w, r)
	if err != nil {
		return
	}
	defer conn.Close()
	ch[1].Write([]byte(f.stdout))
	ch[2].Write([]byte(f.stderr))
	status := metav1.Status{Status: metav1.StatusSuccess}
	if f.exitCode != 0 {
		status = metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  "NonZeroExitCode",
			Message: "command terminated with non-zero exit code",
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "2"}}},
		}
	}
	b, _ := json.Marshal(status)
	ch[3].Write(b)
}

func TestRunOverWebSocket(t *testing.T) {
	api := &fakeExecAPI{stdout: `{"addr":"a:1"}` + "\n"}
	ts := httptest.NewServer(api)
	defer ts.Close()
	p := newPodExec(t, ts.URL)

	out, err := p.Run(context.Background(), []string{"connect", "--addr", "a:1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"addr":"a:1"}`+"\n" {
		t.Errorf("stdout %q", out)
	}
	if want := []string{probe.BinaryPath, "connect", "--addr", "a:1"}; !reflect.DeepEqual(api.command, want) {
		t.Errorf("command %q, want %q", api.command, want)
	}
	if len(api.requests) != 1 || !strings.HasPrefix(api.requests[0], "GET websocket") {
		t.Errorf("requests %q", api.requests)
	}
}

func TestRunNonZeroExitCarriesStderr(t *testing.T) {
	api := &fakeExecAPI{stdout: "partial", stderr: "netprobe http: URL \"x\" is not absolute\n", exitCode: 2}
	ts := httptest.NewServer(api)
	defer ts.Close()
	p := newPodExec(t, ts.URL)

	_, err := probe.HTTP(context.Background(), p, probe.HTTPOptions{URL: "x"})
	var ee *probe.ExitError
	var code utilexec.CodeExitError
	if !errors.As(err, &ee) || !errors.As(err, &code) || code.Code != 2 {
		t.Fatalf("error %T %v", err, err)
	}
	msg := err.Error()
	for _, want := range []string{"netprobe http --url x", "pod ns1/client container probe", "not absolute", "stdout: partial"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestFallsBackToSPDY(t *testing.T) {
	api := &fakeExecAPI{refuseWS: true}
	ts := httptest.NewServer(api)
	defer ts.Close()
	p := newPodExec(t, ts.URL)

	_, err := p.Run(context.Background(), []string{"dns", "--name", "x"})
	if err == nil {
		t.Fatal("no error when both protocols are refused")
	}
	if len(api.requests) != 2 || !strings.HasPrefix(api.requests[0], "GET websocket") || !strings.HasPrefix(api.requests[1], "POST SPDY/3.1") {
		t.Errorf("requests %q: want a WebSocket GET, then a SPDY POST", api.requests)
	}
}

type stubExecutor struct{ err error }

func (s stubExecutor) Stream(remotecommand.StreamOptions) error { return s.err }
func (s stubExecutor) StreamWithContext(_ context.Context, o remotecommand.StreamOptions) error {
	o.Stdout.Write([]byte("out"))
	o.Stderr.Write([]byte("err"))
	return s.err
}

func TestRunWrapsExecutorErrors(t *testing.T) {
	p := newPodExec(t, "https://127.0.0.1:6443")
	p.Command = []string{"/bin/netprobe-dev"}
	var gotURL *url.URL
	p.newExecutor = func(_ *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		gotURL = u
		return stubExecutor{err: errors.New("stream broke")}, nil
	}
	out, err := p.Run(context.Background(), []string{"http"})
	if string(out) != "out" || err == nil || !strings.Contains(err.Error(), "stream broke; stderr: err") {
		t.Errorf("out %q err %v", out, err)
	}
	if c := gotURL.Query()["command"]; !reflect.DeepEqual(c, []string{"/bin/netprobe-dev", "http"}) {
		t.Errorf("command %q", c)
	}
}
