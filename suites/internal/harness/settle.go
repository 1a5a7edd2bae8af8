package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
)

// Probe makes one probe of the data plane: a batch of requests, a few
// connection attempts, a DNS query, a read of every node's rules.
type Probe[R any] func(context.Context) (R, error)

// Attempt is one probe Settle made.
type Attempt[R any] struct {
	At     time.Time // when the probe started
	End    time.Time // when it returned
	Result R
	Reject string // why it was not accepted; "" for an accepted one
}

// Confirm is the fixed sample Settle takes once the data plane has
// converged: Probes probes, one after the other, every one of which must
// pass. A convergence probe that passes may have passed by luck (a batch
// that happened to miss the one endpoint a node cannot reach, a REJECT
// that works only now and then); a sample of fixed size that must be
// entirely right is what the verdict rests on, so its size is chosen for
// the fault it must catch.
type Confirm[R any] struct {
	// Probes is the number of probes in the sample (at least 1).
	Probes int
	// Probe makes each of them; nil repeats the convergence probe.
	Probe Probe[R]
	// Accept judges each of them; nil judges them as convergence did.
	Accept func(R) error
}

// Again confirms with one more probe like the convergence probe, judged
// the same way: the usual case, where a probe is a batch of requests
// sized for the verdict.
func Again[R any]() Confirm[R] { return Confirm[R]{Probes: 1} }

// Settled is what Settle saw: the convergence probes, the accepted one
// last, and the confirmation sample, every probe of which passed.
type Settled[R any] struct {
	What     string
	Attempts []Attempt[R]
	Sample   []Attempt[R]
}

// Accepted is the result of the convergence probe that passed.
func (s Settled[R]) Accepted() R { return s.Attempts[len(s.Attempts)-1].Result }

// Confirmed is the result of the sample's last probe.
func (s Settled[R]) Confirmed() R { return s.Sample[len(s.Sample)-1].Result }

// settleInterval separates convergence probes.
var settleInterval = 250 * time.Millisecond

// Settle is how a spec reaches a verdict on the data plane after an API
// change, without sleeping and without letting a retry decide it: it
// repeats try until accept takes its result, within budget (the data
// plane catching up, harness.Converge), then takes confirm's fixed sample,
// every probe of which must pass. Every probe goes into the spec's report
// (how many, each rejection reason, grouped and bounded in size), and the
// spec fails with what the failing probe saw: on timeout the last
// convergence probe, else the first sample probe that did not pass. what
// names the client, the target and what is expected of it; the accept
// functions say what was seen (answers per pod, errors, outcomes).
//
// A probe that cannot run (exec failed) is retried while converging; in
// the sample it fails the spec, since a sample with a hole is no sample.
func Settle[R any](ctx context.Context, what string, budget time.Duration, try Probe[R], accept func(R) error, confirm Confirm[R]) Settled[R] {
	s, err := settle(ctx, what, budget, try, accept, confirm)
	AddReportEntry("settle: "+what, s.Summary())
	if err != nil {
		Fail(err.Error())
	}
	return s
}

func settle[R any](ctx context.Context, what string, budget time.Duration, try Probe[R], accept func(R) error, confirm Confirm[R]) (Settled[R], error) {
	s := Settled[R]{What: what}
	if confirm.Probes < 1 {
		return s, fmt.Errorf("%s: a confirmation sample needs at least one probe, got %d", what, confirm.Probes)
	}
	deadline := time.Now().Add(budget)
	for {
		a := probeOnce(ctx, try, accept)
		s.Attempts = append(s.Attempts, a)
		if a.Reject == "" {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return s, fmt.Errorf("%s: not within %s (%d probes); the last one: %s\nits result: %s", what, budget, len(s.Attempts), a.Reject, resultJSON(a.Result))
		}
		select {
		case <-ctx.Done():
		case <-time.After(settleInterval):
		}
	}
	probe, judge := confirm.Probe, confirm.Accept
	if probe == nil {
		probe = try
	}
	if judge == nil {
		judge = accept
	}
	for i := range confirm.Probes {
		a := probeOnce(ctx, probe, judge)
		s.Sample = append(s.Sample, a)
		if a.Reject != "" {
			return s, fmt.Errorf("%s: converged after %d probe(s), then confirmation probe %d of %d failed: %s\nits result: %s",
				what, len(s.Attempts), i+1, confirm.Probes, a.Reject, resultJSON(a.Result))
		}
	}
	return s, nil
}

func probeOnce[R any](ctx context.Context, probe Probe[R], accept func(R) error) Attempt[R] {
	a := Attempt[R]{At: time.Now()}
	res, err := probe(ctx)
	a.Result, a.End = res, time.Now()
	switch {
	case err != nil:
		a.Reject = "probe did not run: " + err.Error()
	default:
		if rej := accept(res); rej != nil {
			a.Reject = rej.Error()
		}
	}
	return a
}

// maxResultJSON bounds a result quoted in a failure message.
const maxResultJSON = 4000

func resultJSON(v any) string {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return clip(string(data), maxResultJSON)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d more bytes)", len(s)-n)
}

// Bounds of a Settle summary: distinct rejection reasons listed, and the
// length of each.
const (
	maxReasons      = 6
	maxReasonLength = 300
)

var digits = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

// Summary says, in a bounded size, how the data plane settled: how many
// convergence probes were made over how long, why the rejected ones were
// rejected (reasons that differ only in their numbers are counted
// together, under the first one seen), and how the sample went.
func (s Settled[R]) Summary() string {
	var b strings.Builder
	n := len(s.Attempts)
	if n == 0 {
		return "no probe made"
	}
	accepted := s.Attempts[n-1].Reject == ""
	span := s.Attempts[n-1].End.Sub(s.Attempts[0].At).Round(time.Millisecond)
	if accepted {
		fmt.Fprintf(&b, "converged at probe %d of %d over %s", n, n, span)
	} else {
		fmt.Fprintf(&b, "did not converge: %d probe(s) over %s, none accepted", n, span)
	}
	type group struct {
		first string
		count int
	}
	var groups []*group
	index := map[string]*group{}
	for _, a := range s.Attempts {
		if a.Reject == "" {
			continue
		}
		key := digits.ReplaceAllString(a.Reject, "#")
		g, ok := index[key]
		if !ok {
			g = &group{first: a.Reject}
			index[key] = g
			groups = append(groups, g)
		}
		g.count++
	}
	for i, g := range groups {
		if i == maxReasons {
			fmt.Fprintf(&b, "\n  … and %d other reason(s)", len(groups)-maxReasons)
			break
		}
		fmt.Fprintf(&b, "\n  rejected %d×: %s", g.count, clip(g.first, maxReasonLength))
	}
	switch last := len(s.Sample); {
	case last == 0 && accepted:
		b.WriteString("\nconfirmation: not taken")
	case last > 0 && s.Sample[last-1].Reject != "":
		fmt.Fprintf(&b, "\nconfirmation: probe %d failed: %s", last, clip(s.Sample[last-1].Reject, maxReasonLength))
	case last > 0:
		fmt.Fprintf(&b, "\nconfirmed by %d probe(s) over %s", last, s.Sample[last-1].End.Sub(s.Sample[0].At).Round(time.Millisecond))
	}
	return b.String()
}

// Converged records how long the data plane took to reach the accepted
// state, counted from since (the API change), into the spec's report under
// name, and returns it. The figure is an upper bound: the end of the
// accepted probe. The state was reached no earlier than the start of the
// probe before it, which the report gives as the lower bound.
func Converged[R any](name string, since time.Time, s Settled[R]) time.Duration {
	attempts := s.Attempts
	last := attempts[len(attempts)-1]
	hi := last.End.Sub(since)
	lo := time.Duration(0)
	if len(attempts) > 1 {
		lo = max(0, attempts[len(attempts)-2].At.Sub(since))
	}
	AddReportEntry("convergence: "+name, fmt.Sprintf("≤ %s (≥ %s) after %d probe(s)", hi.Round(time.Millisecond), lo.Round(time.Millisecond), len(attempts)))
	return hi
}

// Pacer spaces probes that must not follow each other closely: Paced
// probes sharing a Pacer start at least Gap after the previous one ended.
// It is a rate, not a wait for a condition: a node answers a refused
// connection with an ICMP error, and the kernel allows a node one such
// error per destination per second beyond a small burst, so a client
// probing refusals faster than that would see the node's rate limit, not
// the proxy.
type Pacer struct {
	Gap  time.Duration
	last time.Time
}

// Paced is probe, made through p.
func Paced[R any](p *Pacer, probe Probe[R]) Probe[R] {
	return func(ctx context.Context) (R, error) {
		if !p.last.IsZero() {
			if wait := time.Until(p.last.Add(p.Gap)); wait > 0 {
				select {
				case <-ctx.Done():
					var zero R
					return zero, ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		defer func() { p.last = time.Now() }()
		return probe(ctx)
	}
}

// Bounds of CoverSample.
const (
	// coverMiss bounds the chance that a uniform spread over n endpoints
	// leaves one of them out of the sample.
	coverMiss = 1e-4
	// coverFloor is the smallest sample: even with one endpoint, every
	// request of the sample must succeed, and a handful would not show a
	// path that fails now and then.
	coverFloor = 10
)

// CoverSample is how many requests a confirmation sample makes to a
// Service with n endpoints, each request on a fresh connection, so that
// every endpoint must answer and every request must succeed. It is the
// smallest m with n·((n−1)/n)^m ≤ 1e-4 (at least 10):
//
//   - a correct proxy spreading uniformly leaves some endpoint out of the
//     sample, and so fails the spec by chance, with probability at most
//     n·((n−1)/n)^m ≤ 1e-4;
//   - a path that cannot reach one given endpoint sends it, by the same
//     spread, one request in n, each of which fails; it goes unseen only
//     if the sample never picks that endpoint, with probability
//     ((n−1)/n)^m ≤ 1e-4/n, so it is caught with probability ≥ 0.9999.
//
// For 3 endpoints m = 26: 3·(2/3)^26 ≈ 7.7e-5, (2/3)^26 ≈ 2.6e-5 (the bar
// of detecting a missing endpoint with probability 0.999 alone would need
// m = 18, (2/3)^18 ≈ 6.8e-4). For 2, m = 15; for 1, the floor.
func CoverSample(n int) int {
	if n <= 1 {
		return coverFloor
	}
	q := float64(n-1) / float64(n)
	m := int(math.Ceil(math.Log(coverMiss/float64(n)) / math.Log(q)))
	return max(m, coverFloor)
}

// Hold is the verdict on a change the data plane must not act on (pods
// going terminating while the Service keeps sending to them): no state to
// wait for exists, since right after the change the old rules give the
// same answers as correct new ones. So the probe is repeated for the whole
// window (the convergence budget: time enough for any proxy to have acted)
// and every probe must pass; the first that does not fails the spec. The
// probes go into the report like Settle's.
func Hold[R any](ctx context.Context, what string, window time.Duration, try Probe[R], accept func(R) error) Settled[R] {
	s, err := hold(ctx, what, window, try, accept)
	AddReportEntry("hold: "+what, fmt.Sprintf("%d probe(s) over %s, all passed: %v", len(s.Sample), window, err == nil))
	if err != nil {
		Fail(err.Error())
	}
	return s
}

func hold[R any](ctx context.Context, what string, window time.Duration, try Probe[R], accept func(R) error) (Settled[R], error) {
	s := Settled[R]{What: what}
	start := time.Now()
	for {
		a := probeOnce(ctx, try, accept)
		s.Sample = append(s.Sample, a)
		if a.Reject != "" {
			return s, fmt.Errorf("%s: for %s after the change every probe must pass; probe %d, %s in, failed: %s\nits result: %s",
				what, window, len(s.Sample), a.At.Sub(start).Round(time.Millisecond), a.Reject, resultJSON(a.Result))
		}
		if ctx.Err() != nil {
			return s, fmt.Errorf("%s: interrupted after %d probes: %w", what, len(s.Sample), ctx.Err())
		}
		if time.Since(start) >= window {
			return s, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(settleInterval):
		}
	}
}
