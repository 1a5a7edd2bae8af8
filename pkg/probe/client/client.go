// Package client is netprobe's client side: fresh connections and resolver
// queries, each outcome classified and attributed to the pod that answered.
//
// Every attempt is independent (no keep-alive, a new socket each time)
// because a Service's load balancing, and its failures, happen per
// connection: reusing one would measure a single choice K times.
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/probe/server"
)

// Classify names what went wrong with an attempt, in the terms a dataplane
// fault shows up as: a REJECT rule is Refused (fast), a DROP rule Timeout
// (slow), a missing route Unreachable.
func Classify(err error) probe.Outcome {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return probe.Connected
	case errors.As(err, &dnsErr):
		return probe.DNSError
	case errors.Is(err, syscall.ECONNREFUSED):
		return probe.Refused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return probe.Unreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return probe.Reset
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT):
		return probe.Timeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return probe.Timeout
	}
	return probe.Other
}

// HTTP makes o.Count requests to o.URL, each on a new connection, and counts
// who answered. It fails only on options it cannot act on; every network
// outcome is in the result.
func HTTP(ctx context.Context, o probe.HTTPOptions) (probe.HTTPResult, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return probe.HTTPResult{}, fmt.Errorf("URL %q is not absolute (scheme://host[:port]/path): %v", o.URL, err)
	}
	if o.Path != "" {
		u.Path, u.RawPath = o.Path, ""
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = probe.DefaultTimeout
	}
	c := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // never a proxy: the probe must meet the dataplane
			DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
			DisableKeepAlives: true,
			// Test endpoints present throwaway certificates; who answered
			// is established by the answer itself, not by TLS.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		Timeout: timeout,
		// A redirect would be answered by someone else; report the 3xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res := probe.HTTPResult{
		URL:      u.String(),
		Host:     o.Host,
		Pods:     map[string]int{},
		Statuses: map[string]int{},
		Errors:   map[probe.Outcome]int{},
	}
	ips := map[string]map[string]bool{}
	var lat []time.Duration
	for range max(o.Count, 1) {
		if ctx.Err() != nil {
			break
		}
		res.Total++
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return res, fmt.Errorf("building request for %s: %w", u, err)
		}
		if o.Host != "" {
			req.Host = o.Host
		}
		start := time.Now()
		resp, err := c.Do(req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err != nil {
			cls := Classify(err)
			res.Errors[cls]++
			if res.ErrorSamples == nil {
				res.ErrorSamples = map[probe.Outcome]string{}
			}
			if _, ok := res.ErrorSamples[cls]; !ok {
				res.ErrorSamples[cls] = err.Error()
			}
			continue
		}
		lat = append(lat, time.Since(start))
		res.Statuses[strconv.Itoa(resp.StatusCode)]++
		pod, ip := identify(resp.Header, body)
		if pod == "" {
			res.Unattributed++
			continue
		}
		res.Pods[pod]++
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			res.OK++
		}
		if ip != "" {
			if ips[pod] == nil {
				ips[pod] = map[string]bool{}
			}
			ips[pod][ip] = true
		}
	}
	for pod, set := range ips {
		if res.ClientIPs == nil {
			res.ClientIPs = map[string][]string{}
		}
		for ip := range set {
			res.ClientIPs[pod] = append(res.ClientIPs[pod], ip)
		}
		slices.Sort(res.ClientIPs[pod])
	}
	res.Latency = probe.Summarize(lat)
	return res, nil
}

// identify finds the answering pod: the JSON body's "pod" (and "ip" on
// /clientip), or else the probe's response header. Plain text bodies are
// never taken as a name: any server can print a word.
func identify(h http.Header, body []byte) (pod, ip string) {
	var a struct {
		Pod string `json:"pod"`
		IP  string `json:"ip"`
	}
	if json.Unmarshal(body, &a) == nil && a.Pod != "" {
		return a.Pod, a.IP
	}
	return h.Get(server.PodHeader), ""
}

// Connect makes o.Count connect-only attempts. For TCP an attempt is the
// handshake. UDP has none, so an attempt sends "clientip" and waits for the
// probe server's reply, which must name its pod (an echo server's reply does
// not, and counts as Other); an ICMP port unreachable surfaces as Refused and
// silence as Timeout.
func Connect(ctx context.Context, o probe.ConnectOptions) (probe.ConnectResult, error) {
	proto := o.Proto
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return probe.ConnectResult{}, fmt.Errorf("protocol %q: want tcp or udp", o.Proto)
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return probe.ConnectResult{}, fmt.Errorf("address %q is not host:port: %w", o.Addr, err)
	}
	if o.SourcePort < 0 || o.SourcePort > 65535 {
		return probe.ConnectResult{}, fmt.Errorf("source port %d out of range", o.SourcePort)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = probe.DefaultTimeout
	}
	res := probe.ConnectResult{Addr: o.Addr, Proto: proto, SourcePort: o.SourcePort, Outcomes: map[probe.Outcome]int{}, Timing: map[probe.Outcome]probe.Latency{}}
	times := map[probe.Outcome][]time.Duration{}
	for range max(o.Count, 1) {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		pod, err := attempt(ctx, proto, o.Addr, o.SourcePort, timeout)
		d := time.Since(start)
		cls := Classify(err)
		a := probe.ConnectAttempt{Outcome: cls, Ms: float64(d) / float64(time.Millisecond), Pod: pod}
		if err != nil {
			a.Error = err.Error()
		}
		if pod != "" {
			if res.Pods == nil {
				res.Pods = map[string]int{}
			}
			res.Pods[pod]++
		}
		res.Total++
		res.Outcomes[cls]++
		times[cls] = append(times[cls], d)
		res.Attempts = append(res.Attempts, a)
	}
	for cls, ds := range times {
		res.Timing[cls] = probe.Summarize(ds)
	}
	return res, nil
}

func attempt(ctx context.Context, proto, addr string, sourcePort int, timeout time.Duration) (pod string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := &net.Dialer{}
	if sourcePort != 0 {
		if proto == "udp" {
			d.LocalAddr = &net.UDPAddr{Port: sourcePort}
		} else {
			d.LocalAddr = &net.TCPAddr{Port: sourcePort}
		}
	}
	conn, err := d.DialContext(ctx, proto, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if proto == "tcp" {
		return "", nil
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := conn.Write([]byte("clientip")); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	var a probe.ClientIPAnswer
	if json.Unmarshal(buf[:n], &a) != nil || a.Pod == "" {
		return "", fmt.Errorf("%w: %q", errNoPod, buf[:n])
	}
	return a.Pod, nil
}

// errNoPod is a reply that did not come from a probe server.
var errNoPod = errors.New("reply names no pod")
