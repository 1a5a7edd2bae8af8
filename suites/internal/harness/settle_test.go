package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func init() { settleInterval = time.Millisecond }

// counter is a probe returning 1, 2, 3, ... (an error on the calls listed).
func counter(failOn ...int) (Probe[int], *int) {
	n := 0
	return func(context.Context) (int, error) {
		n++
		for _, f := range failOn {
			if f == n {
				return n, errors.New("exec failed")
			}
		}
		return n, nil
	}, &n
}

func atLeast(k int) func(int) error {
	return func(v int) error {
		if v < k {
			return fmt.Errorf("saw %d, want at least %d", v, k)
		}
		return nil
	}
}

func TestSettleConvergesThenConfirms(t *testing.T) {
	try, n := counter(2)
	s, err := settle(context.Background(), "client → target", time.Minute, try, atLeast(4), Confirm[int]{Probes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Attempts) != 4 || s.Accepted() != 4 || len(s.Sample) != 3 || s.Confirmed() != 7 || *n != 7 {
		t.Fatalf("attempts %+v sample %+v", s.Attempts, s.Sample)
	}
	sum := s.Summary()
	for _, want := range []string{"converged at probe 4 of 4", "rejected 2×: saw 1, want at least 4", "rejected 1×: probe did not run: exec failed", "confirmed by 3 probe(s)"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

// A sample probe that fails fails the verdict, however the convergence
// went: one lucky pass is not enough.
func TestSettleFailsOnTheSample(t *testing.T) {
	try, _ := counter()
	odd := func(v int) error {
		if v%2 == 0 {
			return fmt.Errorf("even %d", v)
		}
		return nil
	}
	s, err := settle(context.Background(), "pod x → 10.0.0.1:80 must answer", time.Minute, try, odd, Confirm[int]{Probes: 5})
	if err == nil {
		t.Fatal("a failing sample probe passed")
	}
	for _, want := range []string{"pod x → 10.0.0.1:80 must answer", "converged after 1 probe(s)", "confirmation probe 1 of 5 failed: even 2", "its result: 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if !strings.Contains(s.Summary(), "confirmation: probe 1 failed: even 2") {
		t.Errorf("summary: %s", s.Summary())
	}
}

func TestSettleSampleProbeAndAcceptOwnTheirDefaults(t *testing.T) {
	try, _ := counter()
	sample := func(context.Context) (int, error) { return 100, nil }
	var judged []int
	judge := func(v int) error { judged = append(judged, v); return nil }
	s, err := settle(context.Background(), "x", time.Minute, try, atLeast(1), Confirm[int]{Probes: 2, Probe: sample, Accept: judge})
	if err != nil || len(judged) != 2 || judged[0] != 100 || s.Confirmed() != 100 {
		t.Fatalf("err %v judged %v", err, judged)
	}
	// A sample probe that cannot run fails: a sample with a hole is no sample.
	broken := func(context.Context) (int, error) { return 0, errors.New("exec failed") }
	if _, err := settle(context.Background(), "x", time.Minute, try, atLeast(1), Confirm[int]{Probes: 2, Probe: broken}); err == nil || !strings.Contains(err.Error(), "probe did not run") {
		t.Errorf("broken sample probe: %v", err)
	}
	if _, err := settle(context.Background(), "x", time.Minute, try, atLeast(1), Confirm[int]{}); err == nil {
		t.Error("an empty sample must be refused")
	}
}

func TestSettleTimesOutWithTheLastProbe(t *testing.T) {
	try, _ := counter()
	s, err := settle(context.Background(), "external → node:30080", 20*time.Millisecond, try, atLeast(1<<30), Again[int]())
	if err == nil || !strings.Contains(err.Error(), "external → node:30080: not within 20ms") || !strings.Contains(err.Error(), "want at least") {
		t.Fatalf("err %v", err)
	}
	if len(s.Sample) != 0 || !strings.Contains(s.Summary(), "did not converge") {
		t.Errorf("summary %s", s.Summary())
	}
	// Reasons differing only in numbers are one group: the summary stays small.
	if lines := strings.Count(s.Summary(), "\n"); lines != 1 {
		t.Errorf("summary has %d reason lines:\n%s", lines, s.Summary())
	}
}

func TestSummaryIsBounded(t *testing.T) {
	s := Settled[int]{}
	for i := range 50 {
		s.Attempts = append(s.Attempts, Attempt[int]{Reject: strings.Repeat(string(rune('a'+i%26)), 1000) + strings.Repeat("x", i)})
	}
	sum := s.Summary()
	if len(sum) > (maxReasons+2)*(maxReasonLength+60) || !strings.Contains(sum, "other reason(s)") {
		t.Errorf("summary of %d bytes:\n%s", len(sum), sum)
	}
}

func TestPacedSpacesProbes(t *testing.T) {
	p := &Pacer{Gap: 30 * time.Millisecond}
	var starts []time.Time
	probe := Paced(p, func(context.Context) (int, error) { starts = append(starts, time.Now()); return 0, nil })
	for range 3 {
		if _, err := probe(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d < p.Gap {
			t.Errorf("probes %d and %d %s apart, gap %s", i, i+1, d, p.Gap)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := probe(ctx); err == nil {
		t.Error("a cancelled wait must return the context's error")
	}
}

func TestCoverSample(t *testing.T) {
	for n, want := range map[int]int{1: 10, 2: 15, 3: 26, 4: 37} {
		if got := CoverSample(n); got != want {
			t.Errorf("CoverSample(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestHoldNeedsEveryProbeForTheWholeWindow(t *testing.T) {
	try, n := counter()
	s, err := hold(context.Background(), "terminating pods answer", 20*time.Millisecond, try, func(int) error { return nil })
	if err != nil || len(s.Sample) < 2 || *n != len(s.Sample) {
		t.Fatalf("a probe that always passes: %v, %d probes", err, len(s.Sample))
	}
	try, _ = counter()
	s, err = hold(context.Background(), "terminating pods answer", time.Minute, try, func(v int) error {
		if v == 3 {
			return errors.New("refused")
		}
		return nil
	})
	if err == nil || len(s.Sample) != 3 || !strings.Contains(err.Error(), "probe 3") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("the third probe fails: %v after %d probes", err, len(s.Sample))
	}
}
