package probe

import (
	"flag"
	"strconv"
	"time"
)

// The options below are both sides of the probe's command line: the suite
// turns them into arguments with Args, and netprobe parses those arguments
// back into the same struct with Bind. Keeping one definition means a flag
// cannot be renamed on one side only.

// Defaults applied by Bind (and so by netprobe) when a field is left zero.
const (
	DefaultCount   = 1
	DefaultTimeout = 2 * time.Second
)

// HTTPOptions drive `netprobe http`.
type HTTPOptions struct {
	URL     string        // e.g. http://backend-service:3000/
	Count   int           // requests, each on a fresh connection
	Timeout time.Duration // per request, connect included
	Host    string        // Host header override (Ingress virtual hosts)
	Path    string        // replaces the URL's path, e.g. /clientip
}

// Args is the netprobe command line for o, subcommand first.
func (o HTTPOptions) Args() []string {
	a := []string{"http", "--url", o.URL}
	a = appendCommon(a, o.Count, o.Timeout)
	if o.Host != "" {
		a = append(a, "--host", o.Host)
	}
	if o.Path != "" {
		a = append(a, "--path", o.Path)
	}
	return a
}

// Bind registers o's flags on fs, with defaults.
func (o *HTTPOptions) Bind(fs *flag.FlagSet) {
	fs.StringVar(&o.URL, "url", "", "URL to request")
	bindCommon(fs, &o.Count, &o.Timeout)
	fs.StringVar(&o.Host, "host", "", "Host header to send instead of the URL's host")
	fs.StringVar(&o.Path, "path", "", "path to request instead of the URL's path")
}

// ConnectOptions drive `netprobe connect`.
type ConnectOptions struct {
	Addr    string // host:port
	Proto   string // "tcp" (default) or "udp"
	Count   int
	Timeout time.Duration // per attempt
	// SourcePort, when not zero, is the local port of every attempt: one
	// flow as the data plane's connection tracking sees it (a UDP client
	// that keeps its socket), where zero gives each attempt a fresh one.
	SourcePort int
}

// Args is the netprobe command line for o, subcommand first.
func (o ConnectOptions) Args() []string {
	a := []string{"connect", "--addr", o.Addr}
	if o.Proto != "" {
		a = append(a, "--proto", o.Proto)
	}
	if o.SourcePort != 0 {
		a = append(a, "--source-port", strconv.Itoa(o.SourcePort))
	}
	return appendCommon(a, o.Count, o.Timeout)
}

// Bind registers o's flags on fs, with defaults.
func (o *ConnectOptions) Bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "addr", "", "host:port to connect to")
	fs.StringVar(&o.Proto, "proto", "tcp", "tcp or udp")
	fs.IntVar(&o.SourcePort, "source-port", 0, "local port of every attempt (0: a fresh one each)")
	bindCommon(fs, &o.Count, &o.Timeout)
}

// DNSOptions drive `netprobe dns`.
type DNSOptions struct {
	Name  string // as a pod would write it; for PTR an IP address
	Type  string // A (default), AAAA, SRV or PTR
	Count int
	// Timeout per exchange with one server; zero keeps resolv.conf's.
	Timeout time.Duration
	// ResolvConf is the file to read; empty means /etc/resolv.conf.
	ResolvConf string
}

// DefaultResolvConf is the file a pod's resolver reads.
const DefaultResolvConf = "/etc/resolv.conf"

// Args is the netprobe command line for o, subcommand first.
func (o DNSOptions) Args() []string {
	a := []string{"dns", "--name", o.Name}
	if o.Type != "" {
		a = append(a, "--type", o.Type)
	}
	if o.Count != 0 {
		a = append(a, "--count", strconv.Itoa(o.Count))
	}
	if o.Timeout != 0 {
		a = append(a, "--timeout", o.Timeout.String())
	}
	if o.ResolvConf != "" {
		a = append(a, "--resolv-conf", o.ResolvConf)
	}
	return a
}

// Bind registers o's flags on fs, with defaults.
func (o *DNSOptions) Bind(fs *flag.FlagSet) {
	fs.StringVar(&o.Name, "name", "", "name to resolve (an IP address for PTR)")
	fs.StringVar(&o.Type, "type", "A", "A, AAAA, SRV or PTR")
	fs.IntVar(&o.Count, "count", DefaultCount, "number of resolutions")
	fs.DurationVar(&o.Timeout, "timeout", 0, "per-server timeout (0: resolv.conf's)")
	fs.StringVar(&o.ResolvConf, "resolv-conf", DefaultResolvConf, "resolver configuration to read")
}

func appendCommon(a []string, count int, timeout time.Duration) []string {
	if count != 0 {
		a = append(a, "--count", strconv.Itoa(count))
	}
	if timeout != 0 {
		a = append(a, "--timeout", timeout.String())
	}
	return a
}

func bindCommon(fs *flag.FlagSet, count *int, timeout *time.Duration) {
	fs.IntVar(count, "count", DefaultCount, "number of attempts")
	fs.DurationVar(timeout, "timeout", DefaultTimeout, "timeout per attempt")
}

// BinaryPath is where netprobe lives in the probe image (its entrypoint), and
// so the command a pod exec runs.
const BinaryPath = "/usr/local/bin/netprobe"
