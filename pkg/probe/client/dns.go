package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/netconform/netconform/pkg/probe"
)

// DNS resolves o.Name o.Count times the way a pod's stub resolver does with
// cfg (its resolv.conf): the search list and ndots decide which
// fully-qualified names are asked, in order (dns.ClientConfig.NameList);
// each name goes to the nameservers in order, up to cfg.Attempts rounds.
//
// Walking the list follows glibc's res_nsearch: NXDOMAIN, an empty answer
// (NODATA) and SERVFAIL move on to the next name; a name with records of the
// asked type ends the walk; no reply at all, or any other rcode, ends it too.
// When no name answers, the result reports the first NODATA name if there was
// one (glibc reports NO_DATA over HOST_NOT_FOUND), else the last name tried.
//
// For PTR, o.Name may be an IP address; it is turned into its in-addr.arpa or
// ip6.arpa name, which is fully qualified and so never expanded.
func DNS(ctx context.Context, cfg *dns.ClientConfig, o probe.DNSOptions) (probe.DNSResult, error) {
	typ := strings.ToUpper(o.Type)
	if typ == "" {
		typ = "A"
	}
	qtype, ok := dns.StringToType[typ]
	if !ok {
		return probe.DNSResult{}, fmt.Errorf("DNS record type %q is unknown", o.Type)
	}
	if o.Name == "" {
		return probe.DNSResult{}, errors.New("no name to resolve")
	}
	if len(cfg.Servers) == 0 {
		return probe.DNSResult{}, errors.New("resolver configuration lists no nameserver")
	}
	name := o.Name
	if qtype == dns.TypePTR {
		if ip, err := netip.ParseAddr(name); err == nil {
			rev, err := dns.ReverseAddr(ip.String())
			if err != nil {
				return probe.DNSResult{}, fmt.Errorf("reverse name of %s: %w", ip, err)
			}
			name = rev
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = time.Duration(max(cfg.Timeout, 1)) * time.Second
	}
	r := resolver{cfg: cfg, qtype: qtype, timeout: timeout}
	res := probe.DNSResult{
		ResolvConf: probe.ResolvConf{
			Nameservers: cfg.Servers,
			Search:      cfg.Search,
			Ndots:       cfg.Ndots,
			Timeout:     cfg.Timeout,
			Attempts:    cfg.Attempts,
		},
		Name: o.Name,
		Type: typ,
	}
	names := cfg.NameList(name)
	for range max(o.Count, 1) {
		if ctx.Err() != nil {
			break
		}
		res.Queries = append(res.Queries, r.search(ctx, names))
	}
	return res, nil
}

type resolver struct {
	cfg     *dns.ClientConfig
	qtype   uint16
	timeout time.Duration
}

func (r resolver) search(ctx context.Context, names []string) probe.DNSQuery {
	start := time.Now()
	q := probe.DNSQuery{Answers: []probe.DNSAnswer{}, Tried: []probe.DNSTry{}}
	var nodata *dns.Msg
	var last *dns.Msg
	for _, n := range names {
		msg, server, err := r.exchange(ctx, n)
		try := probe.DNSTry{Name: n, Server: server}
		if err != nil {
			try.Error = err.Error()
			q.Tried = append(q.Tried, try)
			q.Name, q.Error, last = n, err.Error(), nil
			break
		}
		try.Rcode = dns.RcodeToString[msg.Rcode]
		try.Answers = countType(msg, r.qtype)
		q.Tried = append(q.Tried, try)
		last = msg
		if msg.Rcode == dns.RcodeSuccess && try.Answers > 0 {
			break
		}
		if msg.Rcode == dns.RcodeSuccess && nodata == nil {
			nodata = msg
		}
		if msg.Rcode != dns.RcodeSuccess && msg.Rcode != dns.RcodeNameError && msg.Rcode != dns.RcodeServerFailure {
			break
		}
	}
	final := last
	if final != nil && (final.Rcode != dns.RcodeSuccess || countType(final, r.qtype) == 0) && nodata != nil {
		final = nodata
	}
	if final != nil {
		q.Name = final.Question[0].Name
		q.Rcode = dns.RcodeToString[final.Rcode]
		q.Answers = answers(final)
	}
	q.Ms = float64(time.Since(start)) / float64(time.Millisecond)
	return q
}

// exchange asks each nameserver in turn, for up to cfg.Attempts rounds, and
// returns the first reply (whatever its rcode), retrying over TCP when the
// UDP reply is truncated.
func (r resolver) exchange(ctx context.Context, name string) (*dns.Msg, string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, r.qtype)
	udp := &dns.Client{Net: "udp", Timeout: r.timeout}
	tcp := &dns.Client{Net: "tcp", Timeout: r.timeout}
	var (
		lastErr    error
		lastServer string
	)
	for range max(r.cfg.Attempts, 1) {
		for _, s := range r.cfg.Servers {
			if err := ctx.Err(); err != nil {
				return nil, lastServer, err
			}
			addr := net.JoinHostPort(s, r.cfg.Port)
			lastServer = addr
			resp, _, err := udp.ExchangeContext(ctx, m, addr)
			if err == nil && resp.Truncated {
				resp, _, err = tcp.ExchangeContext(ctx, m, addr)
			}
			if err == nil {
				return resp, addr, nil
			}
			lastErr = fmt.Errorf("asking %s for %s %s: %w", addr, name, dns.TypeToString[r.qtype], err)
		}
	}
	return nil, lastServer, lastErr
}

func countType(m *dns.Msg, qtype uint16) int {
	n := 0
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == qtype {
			n++
		}
	}
	return n
}

func answers(m *dns.Msg) []probe.DNSAnswer {
	out := []probe.DNSAnswer{}
	for _, rr := range m.Answer {
		h := rr.Header()
		a := probe.DNSAnswer{Name: h.Name, Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl}
		switch rr := rr.(type) {
		case *dns.A:
			a.Address = rr.A.String()
		case *dns.AAAA:
			a.Address = rr.AAAA.String()
		case *dns.SRV:
			a.Priority, a.Weight, a.Port, a.Target = rr.Priority, rr.Weight, rr.Port, rr.Target
		case *dns.PTR:
			a.Target = rr.Ptr
		case *dns.CNAME:
			a.Target = rr.Target
		default:
			a.Target = strings.TrimPrefix(rr.String(), h.String())
		}
		out = append(out, a)
	}
	return out
}
