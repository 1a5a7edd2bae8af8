// Command netprobe is the one program in the suite's test image. As a server
// it answers who it is and whom it saw; as a client it makes fresh
// connections or resolver queries and prints what happened as JSON (the
// types in pkg/probe). It exits 0 whenever it could carry out the probe,
// whatever the network did; outcomes are data, not exit codes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/probe/client"
	"github.com/netconform/netconform/pkg/probe/server"
)

const usage = `usage: netprobe <command> [flags]

commands:
  serve    answer on HTTP (/, /job, /hostname, /clientip, /healthz) and UDP (hostname, clientip)
  http     K requests, each on a fresh connection; who answered
  connect  connect-only attempts (tcp handshake, or udp request/reply); outcomes and timing
  dns      resolve through resolv.conf like the pod's resolver; answers per query
  idle     wait for SIGTERM: the main process of a resident client, whose probes are exec'd beside it

run "netprobe <command> -h" for its flags
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("netprobe "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	// parse reads the flags; anything left over is a mistake (the suite
	// never passes positional arguments), caught before probing.
	parse := func() bool {
		if fs.Parse(args[1:]) != nil {
			return false
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "netprobe %s: unexpected arguments %q\n", args[0], fs.Args())
			return false
		}
		return true
	}
	var (
		result any
		err    error
	)
	switch args[0] {
	case "serve":
		httpPorts := fs.String("http-ports", "8080", "comma-separated TCP ports to serve HTTP on")
		udpPorts := fs.String("udp-ports", "8081", "comma-separated UDP ports to answer on (empty: none)")
		grace := fs.Duration("grace", time.Second, "time in-flight requests get after SIGTERM")
		if !parse() {
			return 2
		}
		o := server.Options{Grace: *grace}
		if o.HTTPPorts, err = server.ParsePorts(*httpPorts); err == nil {
			o.UDPPorts, err = server.ParsePorts(*udpPorts)
		}
		if err != nil {
			fmt.Fprintf(stderr, "netprobe serve: %v\n", err)
			return 2
		}
		if err := (&server.Server{Pod: server.PodName()}).Run(ctx, o); err != nil {
			fmt.Fprintf(stderr, "netprobe serve: %v\n", err)
			return 1
		}
		return 0
	case "idle":
		if !parse() {
			return 2
		}
		<-ctx.Done()
		return 0
	case "http":
		var o probe.HTTPOptions
		o.Bind(fs)
		if !parse() {
			return 2
		}
		result, err = client.HTTP(ctx, o)
	case "connect":
		var o probe.ConnectOptions
		o.Bind(fs)
		if !parse() {
			return 2
		}
		result, err = client.Connect(ctx, o)
	case "dns":
		var o probe.DNSOptions
		o.Bind(fs)
		if !parse() {
			return 2
		}
		cfg, cerr := dns.ClientConfigFromFile(o.ResolvConf)
		if cerr != nil {
			fmt.Fprintf(stderr, "netprobe dns: reading resolver configuration: %v\n", cerr)
			return 1
		}
		result, err = client.DNS(ctx, cfg, o)
	default:
		fmt.Fprintf(stderr, "netprobe: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "netprobe %s: %v\n", args[0], err)
		return 2
	}
	if err := json.NewEncoder(stdout).Encode(result); err != nil {
		fmt.Fprintf(stderr, "netprobe %s: writing result: %v\n", args[0], err)
		return 1
	}
	return 0
}
