package probe

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parse reads args back the way netprobe does: the subcommand, then flags.
func parse(t *testing.T, args []string, bind func(*flag.FlagSet)) string {
	t.Helper()
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	bind(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	if fs.NArg() != 0 {
		t.Fatalf("parsing %q: left over %q", args, fs.Args())
	}
	return args[0]
}

func TestOptionsRoundTrip(t *testing.T) {
	for _, o := range []HTTPOptions{
		{URL: "http://backend-service:3000/", Count: 100, Timeout: 3 * time.Second, Host: "hello.test.com", Path: "/clientip"},
		{URL: "http://x/", Count: DefaultCount, Timeout: DefaultTimeout},
	} {
		var got HTTPOptions
		if sub := parse(t, o.Args(), got.Bind); sub != "http" || got != o {
			t.Errorf("%s %+v, want http %+v", sub, got, o)
		}
	}
	for _, o := range []ConnectOptions{
		{Addr: "10.96.0.1:443", Proto: "udp", Count: 5, Timeout: time.Second},
		{Addr: "a:1", Proto: "tcp", Count: DefaultCount, Timeout: DefaultTimeout},
	} {
		var got ConnectOptions
		if sub := parse(t, o.Args(), got.Bind); sub != "connect" || got != o {
			t.Errorf("%s %+v, want connect %+v", sub, got, o)
		}
	}
	for _, o := range []DNSOptions{
		{Name: "10.96.0.10", Type: "PTR", Count: 3, Timeout: 500 * time.Millisecond, ResolvConf: "/tmp/r"},
		{Name: "backend-service", Type: "A", Count: DefaultCount, ResolvConf: DefaultResolvConf},
	} {
		var got DNSOptions
		if sub := parse(t, o.Args(), got.Bind); sub != "dns" || got != o {
			t.Errorf("%s %+v, want dns %+v", sub, got, o)
		}
	}
	// Zero fields are left out and take netprobe's defaults.
	var got HTTPOptions
	parse(t, HTTPOptions{URL: "http://x/"}.Args(), got.Bind)
	if got.Count != DefaultCount || got.Timeout != DefaultTimeout {
		t.Errorf("defaults not applied: %+v", got)
	}
}

type fakeRunner struct {
	stdout string
	err    error
	args   []string
}

func (f *fakeRunner) Run(_ context.Context, args []string) ([]byte, error) {
	f.args = args
	return []byte(f.stdout), f.err
}

func (f *fakeRunner) String() string { return "pod ns/client" }

func TestHelpersDecode(t *testing.T) {
	r := &fakeRunner{stdout: `{"url":"http://b/","total":2,"ok":2,"unattributed":0,"pods":{"b-1":1,"b-2":1},"statuses":{"200":2},"errors":{},"latency":{"n":2,"minMs":1,"meanMs":1.5,"p50Ms":1,"p90Ms":2,"p99Ms":2,"maxMs":2}}`}
	res, err := HTTP(context.Background(), r, HTTPOptions{URL: "http://b/", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 2 || res.Pods["b-2"] != 1 || res.Latency.MaxMs != 2 {
		t.Errorf("decoded %+v", res)
	}
	if !reflect.DeepEqual(r.args, []string{"http", "--url", "http://b/", "--count", "2"}) {
		t.Errorf("args %q", r.args)
	}

	r = &fakeRunner{stdout: `{"addr":"a:1","proto":"tcp","total":1,"outcomes":{"refused":1},"timing":{},"attempts":[{"outcome":"refused","ms":0.2}]}`}
	cres, err := Connect(context.Background(), r, ConnectOptions{Addr: "a:1"})
	if err != nil || cres.Outcomes[Refused] != 1 || cres.Attempts[0].Outcome != Refused {
		t.Errorf("connect: %+v %v", cres, err)
	}

	r = &fakeRunner{stdout: `{"resolvConf":{"nameservers":["10.96.0.10"],"search":["ns.svc.cluster.local"],"ndots":5,"timeoutSeconds":5,"attempts":2},"name":"b","type":"A","queries":[{"name":"b.ns.svc.cluster.local.","rcode":"NOERROR","answers":[{"name":"b.ns.svc.cluster.local.","type":"A","ttl":30,"address":"10.96.1.2"}],"tried":[],"ms":1}]}`}
	dres, err := DNS(context.Background(), r, DNSOptions{Name: "b"})
	if err != nil || dres.ResolvConf.Ndots != 5 || !reflect.DeepEqual(dres.Queries[0].Addresses(), []string{"10.96.1.2"}) {
		t.Errorf("dns: %+v %v", dres, err)
	}
}

func TestHelpersErrorsShowWhatRanAndWasSeen(t *testing.T) {
	r := &fakeRunner{stdout: "half a line", err: &ExitError{Stderr: []byte("flag provided but not defined: -bogus\n"), Err: errors.New("exit status 2")}}
	_, err := HTTP(context.Background(), r, HTTPOptions{URL: "http://b/"})
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("error %T %v", err, err)
	}
	msg := err.Error()
	for _, want := range []string{"netprobe http --url http://b/", "(pod ns/client)", "exit status 2", "stderr: flag provided but not defined: -bogus", "stdout: half a line"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}

	r = &fakeRunner{stdout: `{"url":"x","surprise":1}`}
	if _, err := HTTP(context.Background(), r, HTTPOptions{URL: "x"}); err == nil || !strings.Contains(err.Error(), "decoding probe output") || !strings.Contains(err.Error(), `"surprise"`) {
		t.Errorf("decode error %v", err)
	}
}

// fakeEngine writes a script standing in for docker that prints its
// arguments one per line, or fails when the first argument says so.
func fakeEngine(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-docker")
	script := "#!/bin/sh\nif [ \"$1\" = load ]; then echo 'no such file' >&2; exit 1; fi\nfor a in \"$@\"; do echo \"$a\"; done\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContainerRunner(t *testing.T) {
	engine := fakeEngine(t)
	c := Container{Engine: engine, Network: "kind", Image: "netconform.local/netprobe:abc", RunArgs: []string{"--dns", "1.1.1.1"}}
	out, err := c.Run(context.Background(), []string{"connect", "--addr", "172.18.0.2:30080"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"run", "--rm", "--pull=never", "--network", "kind", "--dns", "1.1.1.1", "netconform.local/netprobe:abc", "connect", "--addr", "172.18.0.2:30080"}
	if got := strings.Fields(string(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("engine saw %q, want %q", got, want)
	}
	if !strings.HasPrefix(c.String(), engine+" run --rm") {
		t.Errorf("String %q", c.String())
	}
	err = c.Load(context.Background(), "/nonexistent.tar")
	var ee *ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "/nonexistent.tar") {
		t.Errorf("load error %v", err)
	}
	if got := (Container{Image: "i"}).Command([]string{"dns"}); !reflect.DeepEqual(got, []string{"docker", "run", "--rm", "--pull=never", "i", "dns"}) {
		t.Errorf("default command %q", got)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(ds)
	want := Latency{N: 100, MinMs: 1, MeanMs: 50.5, P50Ms: 50, P90Ms: 90, P99Ms: 99, MaxMs: 100}
	if got != want {
		t.Errorf("Summarize %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Latency{}) {
		t.Error("empty summary not zero")
	}
	if got := Summarize([]time.Duration{3 * time.Millisecond}); got.P50Ms != 3 || got.P99Ms != 3 {
		t.Errorf("single %+v", got)
	}
}

func TestResidentRunsOneContainerAndExecsEachProbe(t *testing.T) {
	engine := fakeEngine(t)
	c := Container{Engine: engine, Network: "kind", Image: "netconform.local/netprobe:abc", RunArgs: []string{"--ip", "172.18.3.4"}}
	r, err := c.Start(context.Background(), "netconform-client-1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Run(context.Background(), []string{"http", "--url", "http://172.18.0.2:30080/"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"exec", "netconform-client-1", BinaryPath, "http", "--url", "http://172.18.0.2:30080/"}
	if got := strings.Fields(string(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("engine saw %q, want %q", got, want)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.String(), "exec netconform-client-1") {
		t.Errorf("String %q", r.String())
	}
}
