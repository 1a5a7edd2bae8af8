package probe

import (
	"fmt"
	"sort"
	"time"
)

// JobAnswer is what a probe server answers on / and /job: the seed backend's
// shape, so specs written against the seed fixtures read the probe unchanged.
type JobAnswer struct {
	Job string `json:"job"`
	Pod string `json:"pod"`
}

// ClientIPAnswer is what a probe server answers on /clientip (HTTP) and to a
// "clientip" datagram (UDP): the peer address it saw, which is how a spec
// tells whether the client's source address survived (or was masqueraded).
type ClientIPAnswer struct {
	Pod  string `json:"pod"`
	IP   string `json:"ip"`
	Port int    `json:"port"`
}

// Outcome classifies one attempt. A REJECT rule shows as Refused, quickly; a
// DROP rule as Timeout, after the full timeout; a missing route as
// Unreachable.
type Outcome string

const (
	Connected   Outcome = "connected"
	Refused     Outcome = "refused"
	Timeout     Outcome = "timeout"
	DNSError    Outcome = "dns-error"
	Unreachable Outcome = "unreachable"
	// Reset is a connection torn down by a RST after it was established
	// (mid-request); at connect time a RST is Refused.
	Reset Outcome = "reset"
	Other Outcome = "other"
)

// Latency summarises durations in milliseconds.
type Latency struct {
	N      int     `json:"n"`
	MinMs  float64 `json:"minMs"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

// Summarize computes a Latency over ds (nearest-rank percentiles).
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	ms := make([]float64, len(ds))
	var sum float64
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	sort.Float64s(ms)
	rank := func(q float64) float64 {
		i := int(q*float64(len(ms))+0.999999) - 1
		return ms[max(0, min(i, len(ms)-1))]
	}
	return Latency{
		N:      len(ms),
		MinMs:  ms[0],
		MeanMs: sum / float64(len(ms)),
		P50Ms:  rank(0.50),
		P90Ms:  rank(0.90),
		P99Ms:  rank(0.99),
		MaxMs:  ms[len(ms)-1],
	}
}

// HTTPResult is what `netprobe http` prints: K requests, each on a fresh
// connection, and who answered them.
type HTTPResult struct {
	URL  string `json:"url"`
	Host string `json:"host,omitempty"` // Host header sent, when overridden
	// Total is the number of requests attempted.
	Total int `json:"total"`
	// OK counts 2xx answers that named the pod that gave them.
	OK int `json:"ok"`
	// Unattributed counts answers (any status) that named no pod: something
	// other than a probe server answered, e.g. a packet that escaped to a
	// foreign server on the host network. Never a success.
	Unattributed int `json:"unattributed"`
	// Pods counts answers per answering pod name (any status).
	Pods map[string]int `json:"pods"`
	// Statuses counts answers per HTTP status code ("200").
	Statuses map[string]int `json:"statuses"`
	// ClientIPs lists, per pod, the distinct peer IPs it reported (only when
	// the path answers with ClientIPAnswer, i.e. /clientip), sorted.
	ClientIPs map[string][]string `json:"clientIPs,omitempty"`
	// Errors counts requests that got no answer, by class.
	Errors map[Outcome]int `json:"errors"`
	// ErrorSamples holds the first error message seen per class, so a
	// failure says more than a count.
	ErrorSamples map[Outcome]string `json:"errorSamples,omitempty"`
	// Latency is measured over requests that got an answer.
	Latency Latency `json:"latency"`
}

// ConnectAttempt is one connect-only attempt.
type ConnectAttempt struct {
	Outcome Outcome `json:"outcome"`
	Ms      float64 `json:"ms"` // time to outcome
	Pod     string  `json:"pod,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// ConnectResult is what `netprobe connect` prints. For TCP, Connected means
// the handshake completed, which proves nothing about who completed it; for
// UDP the probe sends "clientip" and Connected means a probe server replied,
// naming itself in Pods (a reply naming no pod is Other).
type ConnectResult struct {
	Addr       string              `json:"addr"`
	Proto      string              `json:"proto"`
	SourcePort int                 `json:"sourcePort,omitempty"` // every attempt's, when fixed
	Total      int                 `json:"total"`
	Outcomes   map[Outcome]int     `json:"outcomes"`
	Timing     map[Outcome]Latency `json:"timing"` // time to outcome, per class
	Pods       map[string]int      `json:"pods,omitempty"`
	Attempts   []ConnectAttempt    `json:"attempts"`
}

// ResolvConf is the part of /etc/resolv.conf the resolver acts on, as the
// probe read it inside the pod.
type ResolvConf struct {
	Nameservers []string `json:"nameservers"`
	Search      []string `json:"search"`
	Ndots       int      `json:"ndots"`
	Timeout     int      `json:"timeoutSeconds"`
	Attempts    int      `json:"attempts"`
}

// DNSAnswer is one resource record of the answer section.
type DNSAnswer struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	TTL      uint32 `json:"ttl"`
	Address  string `json:"address,omitempty"` // A, AAAA
	Priority uint16 `json:"priority,omitempty"`
	Weight   uint16 `json:"weight,omitempty"`
	Port     uint16 `json:"port,omitempty"`
	Target   string `json:"target,omitempty"` // SRV target, PTR or CNAME name
}

// DNSTry is one name of the search list as it was asked.
type DNSTry struct {
	Name   string `json:"name"`
	Server string `json:"server,omitempty"`
	Rcode  string `json:"rcode,omitempty"`
	// Answers is the number of records of the asked type.
	Answers int    `json:"answers"`
	Error   string `json:"error,omitempty"`
}

// DNSQuery is one resolution: the search list walked until a name answered.
type DNSQuery struct {
	// Name is the fully-qualified name that answered, or the last one tried
	// when none did.
	Name    string      `json:"name"`
	Rcode   string      `json:"rcode,omitempty"` // "NOERROR", "NXDOMAIN", ...; empty if no server replied
	Answers []DNSAnswer `json:"answers"`
	Tried   []DNSTry    `json:"tried"`
	Error   string      `json:"error,omitempty"`
	Ms      float64     `json:"ms"`
}

// Addresses lists the A/AAAA addresses of the answer, in order.
func (q DNSQuery) Addresses() []string {
	var out []string
	for _, a := range q.Answers {
		if a.Address != "" {
			out = append(out, a.Address)
		}
	}
	return out
}

// DNSResult is what `netprobe dns` prints.
type DNSResult struct {
	ResolvConf ResolvConf `json:"resolvConf"`
	Name       string     `json:"name"` // as asked, before search expansion (an IP for PTR)
	Type       string     `json:"type"`
	Queries    []DNSQuery `json:"queries"`
}

// Tally is what a batch left, counted the same way whatever the protocol:
// a spec's verdicts on who answered (everyone, only these pods, evenly)
// read a Tally, so one helper serves HTTP requests and UDP attempts alike.
type Tally struct {
	Target string // what was probed: a URL, or proto/host:port
	Total  int    // requests or attempts made
	// Answered counts those a pod answered successfully: a 2xx naming the
	// pod, or a UDP reply naming it.
	Answered int
	// Unattributed counts answers that named no pod: something other than
	// a probe server answered. Never a success.
	Unattributed int
	Pods         map[string]int // answers per pod (any status)
	// Detail is the rest, for a failure message: statuses and errors.
	Detail string
}

// Tally counts r's requests.
func (r HTTPResult) Tally() Tally {
	return Tally{Target: r.URL, Total: r.Total, Answered: r.OK, Unattributed: r.Unattributed, Pods: r.Pods,
		Detail: fmt.Sprintf("statuses %v, errors %v %v", r.Statuses, r.Errors, r.ErrorSamples)}
}

// Tally counts r's attempts; a TCP attempt names no pod, so a TCP result's
// Tally has nothing answered (connect is for outcomes; use http for who).
func (r ConnectResult) Tally() Tally {
	t := Tally{Target: r.Proto + "/" + r.Addr, Total: r.Total, Unattributed: r.Outcomes[Other], Pods: r.Pods,
		Detail: fmt.Sprintf("outcomes %v", r.Outcomes)}
	if r.SourcePort != 0 {
		t.Target += fmt.Sprintf(" from source port %d", r.SourcePort)
	}
	for _, a := range r.Attempts {
		if a.Outcome == Connected && a.Pod != "" {
			t.Answered++
		}
	}
	return t
}
