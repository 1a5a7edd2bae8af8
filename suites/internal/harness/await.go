package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
)

// Attempt is one probe made while waiting for the data plane to converge.
type Attempt[R any] struct {
	At     time.Time // when the probe started
	End    time.Time // when it returned
	Result R
	Reject string // why accept refused it; "" for the accepted one
}

// Await repeats a probe (try) until accept takes its result, or budget
// passes: it is how a spec waits for the data plane to catch up with an API
// change without sleeping. It returns every attempt, the accepted one last;
// a caller can check that nothing unwanted happened on the way (a request
// failing while an endpoint was added, say), and measure convergence from
// the accepted attempt's At. On timeout it fails the spec with what the last
// attempt saw and why it was not accepted. A probe that cannot run (exec
// failed) is retried, its error kept as the rejection.
func Await[R any](ctx context.Context, what string, budget time.Duration, try func(context.Context) (R, error), accept func(R) error) []Attempt[R] {
	deadline := time.Now().Add(budget)
	var attempts []Attempt[R]
	for {
		a := Attempt[R]{At: time.Now()}
		res, err := try(ctx)
		a.Result, a.End = res, time.Now()
		switch {
		case err != nil:
			a.Reject = "probe did not run: " + err.Error()
		default:
			if rej := accept(res); rej != nil {
				a.Reject = rej.Error()
			}
		}
		attempts = append(attempts, a)
		if err == nil && a.Reject == "" {
			return attempts
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			data, _ := json.MarshalIndent(a.Result, "", "  ")
			Fail(fmt.Sprintf("%s: not within %s (%d probes); the last one: %s\nits result: %s", what, budget, len(attempts), a.Reject, data))
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Converged records how long the data plane took to reach the accepted
// state, counted from since (the API change), into the spec's report under
// name, and returns it. The figure is an upper bound: the end of the
// accepted probe. The state was reached no earlier than the start of the
// probe before it, which the report gives as the lower bound.
func Converged[R any](name string, since time.Time, attempts []Attempt[R]) time.Duration {
	last := attempts[len(attempts)-1]
	hi := last.End.Sub(since)
	lo := time.Duration(0)
	if len(attempts) > 1 {
		lo = max(0, attempts[len(attempts)-2].At.Sub(since))
	}
	AddReportEntry("convergence: "+name, fmt.Sprintf("≤ %s (≥ %s) after %d probe(s)", hi.Round(time.Millisecond), lo.Round(time.Millisecond), len(attempts)))
	return hi
}
