package ipvs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Source says which listing a Table was read from.
type Source string

const (
	// SourceIpvsadm is `ipvsadm -Ln` (or -Ln --stats): decimal ports,
	// dotted or bracketed addresses, timeouts in seconds.
	SourceIpvsadm Source = "ipvsadm"
	// SourceProc is /proc/net/ip_vs: hexadecimal IPv4 addresses and
	// ports, uncompressed IPv6 addresses, timeouts in jiffies.
	SourceProc Source = "proc"
)

// Table is a node's IPVS table.
type Table struct {
	Source Source
	// Version is the IPVS version of the banner ("1.2.1"), Size the
	// connection table size it states.
	Version string
	Size    int
	// Stats is true for a --stats listing: real servers then carry
	// counters instead of forwarding method, weight and connections.
	Stats    bool
	Services []*VirtualService
}

// VirtualService is one virtual service and its real servers.
type VirtualService struct {
	// Protocol is "tcp", "udp" or "sctp"; empty for a firewall-mark
	// service, which has FWMark and IPv6 set instead of Addr.
	Protocol string
	Addr     netip.AddrPort
	FWMark   uint32
	IPv6     bool

	Scheduler string
	// Persistent is set for a persistent service (kube-proxy: ClientIP
	// session affinity). Timeout is in seconds from ipvsadm and in
	// jiffies from /proc (see Table.Source).
	Persistent bool
	Timeout    uint64
	// Netmask is the persistence granularity when not a host mask, as
	// printed ("255.255.255.0" or a prefix length, or hexadecimal from
	// /proc); empty otherwise.
	Netmask string
	// Flags are the other words after the scheduler (ops, pe NAME,
	// scheduler flags), as printed.
	Flags []string

	Counters    *Counters // --stats only
	RealServers []*RealServer
	Line        int
}

// Key is how the service is named in findings: "TCP 10.96.0.1:443" or
// "FWM 1".
func (v *VirtualService) Key() string {
	if v.Protocol == "" {
		return fmt.Sprintf("FWM %d", v.FWMark)
	}
	return strings.ToUpper(v.Protocol) + " " + v.Addr.String()
}

// RealServer is one destination of a virtual service.
type RealServer struct {
	Addr netip.AddrPort
	// Forward is the forwarding method as printed: Masq, Local, Tunnel,
	// Route (empty in a --stats listing).
	Forward    string
	Weight     int
	ActiveConn uint64
	InActConn  uint64
	Counters   *Counters // --stats only
	Line       int
}

// Counters are a --stats line's totals. ipvsadm abbreviates large values
// (K, M, G, T suffixes, in thousands) unless given --exact; those are
// multiplied out and Approximate is set.
type Counters struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
	Approximate                               bool
}

// Service returns the virtual service for a protocol ("tcp", "udp",
// "sctp") and address, or nil.
func (t *Table) Service(protocol string, addr netip.AddrPort) *VirtualService {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	for _, v := range t.Services {
		if v.Protocol == protocol && v.Addr == addr {
			return v
		}
	}
	return nil
}

// ParseError is input Parse cannot read, with its line.
type ParseError struct {
	Line int
	Text string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("ipvs listing line %d %q: %v", e.Line, e.Text, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ParseString is Parse over a string.
func ParseString(s string) (*Table, error) { return Parse(strings.NewReader(s)) }

// ParseBytes is Parse over bytes.
func ParseBytes(b []byte) (*Table, error) { return Parse(bytes.NewReader(b)) }

// Parse reads an `ipvsadm -Ln`, `ipvsadm -Ln --stats` or /proc/net/ip_vs
// listing. The source is told from the real-server heading: the kernel
// prints "  -> RemoteAddress:Port Forward Weight ..." with single spaces,
// ipvsadm pads the address column.
func Parse(r io.Reader) (*Table, error) {
	t := &Table{Source: SourceIpvsadm}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var cur *VirtualService
	headed := false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		fail := func(format string, args ...any) error {
			return &ParseError{Line: n, Text: line, Err: fmt.Errorf(format, args...)}
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case strings.HasPrefix(line, "IP Virtual Server version "):
			if err := t.banner(fields); err != nil {
				return nil, fail("%v", err)
			}
		case fields[0] == "Prot":
			switch {
			case len(fields) >= 3 && fields[2] == "Scheduler":
			case len(fields) >= 3 && fields[2] == "Conns":
				t.Stats = true
			default:
				return nil, fail("unsupported listing (only the default and --stats listings are read; not --rate, --thresholds or --persistent-conn)")
			}
			headed = true
		case fields[0] == "->" && len(fields) >= 2 && fields[1] == "RemoteAddress:Port":
			if strings.HasPrefix(line, "  -> RemoteAddress:Port Forward") {
				t.Source = SourceProc
			}
		case fields[0] == "->":
			if cur == nil {
				return nil, fail("real server before any virtual service")
			}
			rs, err := t.realServer(fields, n)
			if err != nil {
				return nil, fail("%v", err)
			}
			cur.RealServers = append(cur.RealServers, rs)
		case !headed:
			return nil, fail("not an IPVS listing (no \"Prot LocalAddress:Port\" heading before it)")
		default:
			v, err := t.service(fields, n)
			if err != nil {
				return nil, fail("%v", err)
			}
			t.Services = append(t.Services, v)
			cur = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading ipvs listing: %w", err)
	}
	if !headed {
		return nil, &ParseError{Err: fmt.Errorf("no \"Prot LocalAddress:Port\" heading: not an ipvsadm -Ln or /proc/net/ip_vs listing")}
	}
	return t, nil
}

// banner reads "IP Virtual Server version 1.2.1 (size=4096)".
func (t *Table) banner(fields []string) error {
	if len(fields) < 5 {
		return fmt.Errorf("short banner")
	}
	t.Version = fields[4]
	if len(fields) >= 6 {
		s := strings.TrimSuffix(strings.TrimPrefix(fields[5], "(size="), ")")
		size, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("banner size %q: %w", fields[5], err)
		}
		t.Size = size
	}
	return nil
}

// service reads a virtual service line:
//
//	TCP  10.96.0.1:443 rr
//	UDP  [fd00:10:96::a]:53 rr persistent 10800
//	FWM  1 rr                              (ipvsadm; "FWM  00000001 rr" in /proc)
//	TCP  10.96.0.1:443     12   345 ...    (--stats)
func (t *Table) service(fields []string, line int) (*VirtualService, error) {
	if len(fields) < 2 {
		return nil, fmt.Errorf("short virtual service line")
	}
	v := &VirtualService{Line: line}
	rest := fields[2:]
	switch fields[0] {
	case "TCP", "UDP", "SCTP":
		v.Protocol = strings.ToLower(fields[0])
		a, err := t.addrPort(fields[1])
		if err != nil {
			return nil, err
		}
		v.Addr, v.IPv6 = a, a.Addr().Is6()
	case "FWM":
		base := 10
		if t.Source == SourceProc {
			base = 16
		}
		m, err := strconv.ParseUint(fields[1], base, 32)
		if err != nil {
			return nil, fmt.Errorf("firewall mark %q: %w", fields[1], err)
		}
		v.FWMark = uint32(m)
		if len(rest) > 0 && rest[0] == "IPv6" {
			v.IPv6, rest = true, rest[1:]
		}
	default:
		return nil, fmt.Errorf("protocol %q is not TCP, UDP, SCTP or FWM", fields[0])
	}
	if t.Stats {
		c, err := counters(rest)
		if err != nil {
			return nil, err
		}
		v.Counters = c
		return v, nil
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("virtual service without a scheduler")
	}
	v.Scheduler, rest = rest[0], rest[1:]
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case "persistent":
			if i+1 >= len(rest) {
				return nil, fmt.Errorf("persistent without a timeout")
			}
			to, err := strconv.ParseUint(rest[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("persistence timeout %q: %w", rest[i+1], err)
			}
			v.Persistent, v.Timeout = true, to
			i++
			if t.Source == SourceProc && i+1 < len(rest) {
				// The kernel always prints the netmask after the timeout.
				if m := rest[i+1]; m != "FFFFFFFF" && m != "00000080" {
					v.Netmask = m
				}
				i++
			}
		case "mask":
			if i+1 >= len(rest) {
				return nil, fmt.Errorf("mask without a value")
			}
			v.Netmask = rest[i+1]
			i++
		default:
			v.Flags = append(v.Flags, rest[i])
		}
	}
	return v, nil
}

// realServer reads "  -> 10.244.1.3:8080   Masq    1   0   0", or a
// --stats line "  -> 10.244.1.3:8080   12   345   300   23456   45678".
func (t *Table) realServer(fields []string, line int) (*RealServer, error) {
	if len(fields) < 2 {
		return nil, fmt.Errorf("real server line without an address")
	}
	a, err := t.addrPort(fields[1])
	if err != nil {
		return nil, err
	}
	rs := &RealServer{Addr: a, Line: line}
	if t.Stats {
		c, err := counters(fields[2:])
		if err != nil {
			return nil, err
		}
		rs.Counters = c
		return rs, nil
	}
	if len(fields) != 6 {
		return nil, fmt.Errorf("real server line has %d fields, want 6 (-> address forward weight active inactive)", len(fields))
	}
	rs.Forward = fields[2]
	if rs.Weight, err = strconv.Atoi(fields[3]); err != nil {
		return nil, fmt.Errorf("weight %q: %w", fields[3], err)
	}
	if rs.ActiveConn, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return nil, fmt.Errorf("active connections %q: %w", fields[4], err)
	}
	if rs.InActConn, err = strconv.ParseUint(fields[5], 10, 64); err != nil {
		return nil, fmt.Errorf("inactive connections %q: %w", fields[5], err)
	}
	return rs, nil
}

// addrPort reads an address and port in the table's notation.
func (t *Table) addrPort(s string) (netip.AddrPort, error) {
	if t.Source == SourceProc {
		return procAddrPort(s)
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q is not a numeric address:port (list with ipvsadm -n): %w", s, err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// procAddrPort reads the kernel's "0A600001:01BB" or
// "[fd00:0010:0096:0000:0000:0000:0000:000a]:0035".
func procAddrPort(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q has no port", s)
	}
	host, port := s[:i], s[i+1:]
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q of %q is not hexadecimal: %w", port, s, err)
	}
	var a netip.Addr
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		a, err = netip.ParseAddr(host[1 : len(host)-1])
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
		}
	} else {
		if len(host) != 8 {
			return netip.AddrPort{}, fmt.Errorf("address %q: want 8 hexadecimal digits", s)
		}
		v, err := strconv.ParseUint(host, 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q is not hexadecimal: %w", s, err)
		}
		a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}

// counters reads the five --stats columns.
func counters(fields []string) (*Counters, error) {
	if len(fields) != 5 {
		return nil, fmt.Errorf("stats line has %d counters, want 5 (conns, in/out packets, in/out bytes)", len(fields))
	}
	c := &Counters{}
	for i, dst := range []*uint64{&c.Conns, &c.InPkts, &c.OutPkts, &c.InBytes, &c.OutBytes} {
		v, approx, err := largeNum(fields[i])
		if err != nil {
			return nil, err
		}
		*dst = v
		c.Approximate = c.Approximate || approx
	}
	return c, nil
}

// largeNum reads ipvsadm's abbreviated counters: "12345", "123K", "45M".
func largeNum(s string) (uint64, bool, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1e3
	case strings.HasSuffix(s, "M"):
		mult = 1e6
	case strings.HasSuffix(s, "G"):
		mult = 1e9
	case strings.HasSuffix(s, "T"):
		mult = 1e12
	}
	digits := s
	if mult != 1 {
		digits = s[:len(s)-1]
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("counter %q: %w", s, err)
	}
	return v * mult, mult != 1, nil
}
