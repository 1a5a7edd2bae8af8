package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netconform/netconform/pkg/dataplane"
	"github.com/netconform/netconform/pkg/dataplane/iptables"
	"github.com/netconform/netconform/pkg/dataplane/nftables"
)

func init() { addCommand(newTraceCmd) }

// traceFlags are the trace subcommand's flags, as typed.
type traceFlags struct {
	rules   string
	format  string
	nodeIPs []string
	src     string
	dst     string
	proto   string
	dport   int
	from    string
}

func newTraceCmd() *cobra.Command {
	var f traceFlags
	cmd := &cobra.Command{
		Use:   "trace --rules FILE --node-ip IP --src IP --dst IP --dport N",
		Short: "Predict what a node's saved rules do to a connection's first packet",
		Long: `trace reads a node's saved kube-proxy rules (iptables-save output, or
nft -j list ruleset) and prints, as JSON, what they do to the first packet
of a connection: the verdict and, for accepted packets a Service rule
rewrote, each destination with its probability, whether it is masqueraded,
and the chains it passed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrace(f, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.rules, "rules", "", `saved rules file ("-" for stdin)`)
	fl.StringVar(&f.format, "format", "", "rules format: iptables or nft-json (default: detected, JSON starts with '{')")
	fl.StringSliceVar(&f.nodeIPs, "node-ip", nil, "the node's IP addresses, comma-separated (addresses the rules treat as local)")
	fl.StringVar(&f.src, "src", "", "packet source IP")
	fl.StringVar(&f.dst, "dst", "", "packet destination IP")
	fl.StringVar(&f.proto, "proto", "tcp", "packet protocol: tcp, udp or sctp")
	fl.IntVar(&f.dport, "dport", 0, "packet destination port")
	fl.StringVar(&f.from, "from", string(dataplane.FromPod), "where the packet enters the node: pod, external or local")
	for _, name := range []string{"rules", "node-ip", "src", "dst", "dport"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// runTrace does the work of the trace subcommand, apart from cobra so tests
// can call it.
func runTrace(f traceFlags, stdin io.Reader, stdout io.Writer) error {
	p, nodeIPs, err := f.packet()
	if err != nil {
		return err
	}
	data, err := readRules(f.rules, stdin)
	if err != nil {
		return err
	}
	tracer, err := newTracer(data, f.format, f.rules, nodeIPs)
	if err != nil {
		return err
	}
	res, err := tracer.Trace(p)
	if err != nil {
		return err
	}
	// The JSON contract has arrays, never null, for destinations and paths.
	if res.Destinations == nil {
		res.Destinations = []dataplane.Destination{}
	}
	for i := range res.Destinations {
		if res.Destinations[i].Path == nil {
			res.Destinations[i].Path = []string{}
		}
	}
	out, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// packet validates the packet flags.
func (f traceFlags) packet() (dataplane.Packet, []netip.Addr, error) {
	var p dataplane.Packet
	var err error
	if p.Src, err = parseIP("--src", f.src); err != nil {
		return p, nil, err
	}
	if p.Dst, err = parseIP("--dst", f.dst); err != nil {
		return p, nil, err
	}
	if p.Src.Unmap().Is4() != p.Dst.Unmap().Is4() {
		return p, nil, fmt.Errorf("--src %s and --dst %s are of different IP families", p.Src, p.Dst)
	}
	p.Proto = strings.ToLower(f.proto)
	if p.Proto != "tcp" && p.Proto != "udp" && p.Proto != "sctp" {
		return p, nil, fmt.Errorf("--proto %q: want tcp, udp or sctp", f.proto)
	}
	if f.dport < 1 || f.dport > 65535 {
		return p, nil, fmt.Errorf("--dport %d: want 1-65535", f.dport)
	}
	p.DPort = uint16(f.dport)
	switch o := dataplane.Origin(f.from); o {
	case dataplane.FromPod, dataplane.FromExternal, dataplane.FromLocal:
		p.From = o
	default:
		return p, nil, fmt.Errorf("--from %q: want pod, external or local", f.from)
	}
	if len(f.nodeIPs) == 0 {
		return p, nil, errors.New("--node-ip: at least one address is needed")
	}
	var nodeIPs []netip.Addr
	for _, s := range f.nodeIPs {
		a, err := parseIP("--node-ip", strings.TrimSpace(s))
		if err != nil {
			return p, nil, err
		}
		nodeIPs = append(nodeIPs, a)
	}
	return p, nodeIPs, nil
}

func parseIP(flag, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s %q is not an IP address", flag, s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s %q: zones are not supported", flag, s)
	}
	return a, nil
}

func readRules(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading rules from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading rules: %w", err)
	}
	return b, nil
}

// newTracer parses the rules in the given or detected format.
func newTracer(data []byte, format, name string, nodeIPs []netip.Addr) (dataplane.Tracer, error) {
	if format == "" {
		format = "iptables"
		if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
			format = "nft-json"
		}
	}
	switch format {
	case "iptables":
		rs, err := iptables.ParseBytes(data)
		if err != nil {
			return nil, fmt.Errorf("parsing %s as iptables-save output: %w", name, err)
		}
		return iptables.NewTracer(rs, nodeIPs), nil
	case "nft-json":
		rs, err := nftables.ParseJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parsing %s as nft JSON: %w", name, err)
		}
		return nftables.NewTracer(rs, nodeIPs), nil
	}
	return nil, fmt.Errorf("--format %q: want iptables or nft-json", format)
}
