package stats

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestChiSquareMatchesUniform(t *testing.T) {
	// With equal probabilities the general test is the uniform one.
	for _, counts := range [][]int{{50, 50}, {60, 40}, {30, 0, 0}, {34, 33, 33}, {7, 1, 12, 20}} {
		probs := make([]float64, len(counts))
		for i := range probs {
			probs[i] = 1 / float64(len(counts))
		}
		u, err := ChiSquareUniform(counts, 0.001)
		if err != nil {
			t.Fatal(err)
		}
		g, err := ChiSquare(counts, probs, 0.001)
		if err != nil {
			t.Fatal(err)
		}
		if !near(g.Statistic, u.Statistic, 1e-9) || !near(g.P, u.P, 1e-12) || g.DF != u.DF || g.Consistent() != u.Uniform() {
			t.Errorf("%v: general %+v, uniform %+v", counts, g, u)
		}
	}
}

func TestChiSquareUnequal(t *testing.T) {
	// Expected 25 and 75 for 100 observations: (5²/25 + 5²/75) = 4/3 on
	// 1 df, whose survival is erfc(√(x/2)).
	g, err := ChiSquare([]int{30, 70}, []float64{0.25, 0.75}, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	wantChi := 25.0/25 + 25.0/75
	if !near(g.Statistic, wantChi, 1e-12) || !near(g.P, math.Erfc(math.Sqrt(wantChi/2)), 1e-12) || !g.Consistent() {
		t.Errorf("got %+v, want chi2=%g", g, wantChi)
	}
	if g.Expected[0] != 25 || g.Expected[1] != 75 {
		t.Errorf("expected counts %v", g.Expected)
	}
	// The same counts against an even split are far less likely.
	even, _ := ChiSquare([]int{30, 70}, []float64{0.5, 0.5}, 0.001)
	if even.Consistent() {
		t.Errorf("30/70 consistent with 50/50 at α=0.001: %s", even)
	}
}

func TestChiSquareZeroProbabilityCells(t *testing.T) {
	// A cell predicted never to happen takes no degree of freedom...
	g, err := ChiSquare([]int{50, 50, 0}, []float64{0.5, 0.5, 0}, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	if g.DF != 1 || g.Statistic != 0 || g.P != 1 || !g.Consistent() {
		t.Errorf("unused cell: %+v", g)
	}
	// ...and observing it anyway is inconsistent whatever the rest.
	g, err = ChiSquare([]int{50, 49, 1}, []float64{0.5, 0.5, 0}, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	if g.Consistent() || g.P != 0 || len(g.Impossible) != 1 || g.Impossible[0] != 2 {
		t.Errorf("impossible cell: %+v", g)
	}
	if !strings.Contains(g.String(), "predicted never") {
		t.Errorf("summary does not say so: %s", g)
	}
}

func TestChiSquareToleratesRoundedShares(t *testing.T) {
	// kube-proxy writes 1/3 as 0.33333333349 and the rest as 1/2 of it.
	p1 := 0.33333333349
	g, err := ChiSquare([]int{33, 34, 33}, []float64{p1, (1 - p1) / 2, (1 - p1) / 2}, 0.001)
	if err != nil || !g.Consistent() {
		t.Errorf("got %+v, %v", g, err)
	}
}

func TestChiSquareSummary(t *testing.T) {
	g, _ := ChiSquare([]int{70, 30}, []float64{0.5, 0.5}, 0.001)
	want := "counts [70 30] expected [50.0 50.0]; chi2=16 df=1; p=6.33e-05; α=0.001"
	if g.String() != want {
		t.Errorf("summary %q, want %q", g.String(), want)
	}
	g, _ = ChiSquare([]int{3, 1}, []float64{0.5, 0.5}, 0.001)
	if !strings.Contains(g.String(), "unreliable") {
		t.Errorf("small expected count not flagged: %q", g.String())
	}
}

func TestChiSquareErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts []int
		probs  []float64
		alpha  float64
	}{
		{"length", []int{1, 2}, []float64{1}, 0.001},
		{"alpha", []int{1, 2}, []float64{0.5, 0.5}, 0},
		{"sum", []int{1, 2}, []float64{0.5, 0.4}, 0.001},
		{"negative probability", []int{1, 2}, []float64{1.5, -0.5}, 0.001},
		{"one cell", []int{1, 2}, []float64{1, 0}, 0.001},
		{"negative count", []int{-1, 2}, []float64{0.5, 0.5}, 0.001},
		{"no observations", []int{0, 0}, []float64{0.5, 0.5}, 0.001},
		{"NaN", []int{1, 2}, []float64{math.NaN(), 0.5}, 0.001},
	} {
		if _, err := ChiSquare(tc.counts, tc.probs, tc.alpha); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestChiSquareFalseRejectionRate draws counts from the predicted
// distribution and checks the test rejects about α of the time, which is
// what α promises (here at a level large enough to count).
func TestChiSquareFalseRejectionRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	probs := []float64{0.2, 0.3, 0.5}
	const trials, k, alpha = 4000, 200, 0.05
	rejected := 0
	for range trials {
		counts := make([]int, len(probs))
		for range k {
			u := rng.Float64()
			switch {
			case u < probs[0]:
				counts[0]++
			case u < probs[0]+probs[1]:
				counts[1]++
			default:
				counts[2]++
			}
		}
		g, err := ChiSquare(counts, probs, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if !g.Consistent() {
			rejected++
		}
	}
	// Binomial(4000, 0.05): sd ≈ 13.8; allow 5 sd.
	if rate := float64(rejected) / trials; math.Abs(rate-alpha) > 5*math.Sqrt(alpha*(1-alpha)/trials) {
		t.Errorf("rejected %d of %d (%.4f), want about %g", rejected, trials, rate, alpha)
	}
}
