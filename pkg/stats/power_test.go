package stats

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestSkews(t *testing.T) {
	for _, tc := range []struct {
		n      int
		shares [][]float64
		w2     []float64
	}{
		{2, [][]float64{{2.0 / 3, 1.0 / 3}, {1.0 / 4, 3.0 / 4}}, []float64{1.0 / 9, 1.0 / 4}},
		{3, [][]float64{{1.0 / 2, 1.0 / 4, 1.0 / 4}, {1.0 / 6, 5.0 / 12, 5.0 / 12}}, []float64{1.0 / 8, 1.0 / 8}},
		{4, [][]float64{{2.0 / 5, 1.0 / 5, 1.0 / 5, 1.0 / 5}, {1.0 / 8, 7.0 / 24, 7.0 / 24, 7.0 / 24}, {1.0 / 2, 1.0 / 4, 1.0 / 8, 1.0 / 8}}, []float64{3.0 / 25, 1.0 / 12, 3.0 / 8}},
	} {
		alts, err := Skews(tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(alts) != len(tc.shares) {
			t.Fatalf("n=%d: %d alternatives %v, want %d", tc.n, len(alts), alts, len(tc.shares))
		}
		for i, a := range alts {
			if err := a.Validate(); err != nil {
				t.Errorf("n=%d: %v", tc.n, err)
			}
			for j, p := range a.Shares {
				if !near(p, tc.shares[i][j], 1e-12) {
					t.Errorf("n=%d %s: shares %v, want %v", tc.n, a.Name, a.Shares, tc.shares[i])
					break
				}
			}
			if w2 := a.EffectSize(); !near(w2, tc.w2[i], 1e-12) {
				t.Errorf("n=%d %s: w² %g, want %g", tc.n, a.Name, w2, tc.w2[i])
			}
		}
	}
	if _, err := Skews(1); err == nil {
		t.Error("Skews(1): no error")
	}
	if got, want := (Alternative{Name: "one endpoint doubled", Shares: []float64{2.0 / 3, 1.0 / 3}}).String(), "one endpoint doubled (0.667, 0.333)"; got != want {
		t.Errorf("String %q, want %q", got, want)
	}
}

func TestAlternativeValidate(t *testing.T) {
	for _, shares := range [][]float64{
		nil,
		{1},
		{0.5, 0.4},
		{1.5, -0.5},
		{math.NaN(), 0.5},
		{0.5, 0.5},                  // uniform
		{1.0 / 3, 1.0 / 3, 1.0 / 3}, // uniform
	} {
		if err := (Alternative{Name: "x", Shares: shares}).Validate(); err == nil {
			t.Errorf("%v: no error", shares)
		}
	}
	if err := (Alternative{Name: "all to one", Shares: []float64{1, 0}}).Validate(); err != nil {
		t.Errorf("all traffic to one endpoint is an alternative: %v", err)
	}
}

// binomialPower is the power of the test over two endpoints computed apart
// from Power: the statistic is (2c − K)²/K for c answers from the first
// endpoint, c binomial.
func binomialPower(k int, alpha, p float64) float64 {
	crit := distuv.ChiSquared{K: 1}.Quantile(1 - alpha)
	b := distuv.Binomial{N: float64(k), P: p}
	var sum float64
	for c := 0; c <= k; c++ {
		d := float64(2*c - k)
		if d*d/float64(k) > crit {
			sum += b.Prob(float64(c))
		}
	}
	return sum
}

func TestPowerTwoEndpointsExact(t *testing.T) {
	alts, _ := Skews(2)
	for _, alt := range alts {
		for _, k := range []int{1, 11, 32, 71, 127, 274, 275, 500} {
			got, exact, err := power(k, 0.001, alt)
			if err != nil {
				t.Fatal(err)
			}
			if want := binomialPower(k, 0.001, alt.Shares[0]); !exact || !near(got, want, 1e-9) {
				t.Errorf("%s K=%d: power %.9f (exact %v), binomial %.9f", alt, k, got, exact, want)
			}
		}
	}
}

// approxPower is used only where the counts are too many to sum; where they
// are not, it must agree with the sum once the power is high.
func TestApproxPowerNearExact(t *testing.T) {
	const alpha, tol = 0.001, 0.008
	three, _ := Skews(3)
	four, _ := Skews(4)
	for _, tc := range []struct {
		alt Alternative
		ks  []int
	}{
		{three[0], []int{200, 250, 296, 350}},
		{three[1], []int{192, 244, 296}},
		{four[2], []int{80, 106, 150}},
	} {
		crit := distuv.ChiSquared{K: float64(len(tc.alt.Shares) - 1)}.Quantile(1 - alpha)
		for _, k := range tc.ks {
			exact := exactPower(k, crit, tc.alt.Shares)
			approx := approxPower(k, crit, tc.alt.Shares)
			if exact < 0.9 || math.Abs(approx-exact) > tol {
				t.Errorf("%s K=%d: approximate %.4f, exact %.4f", tc.alt, k, approx, exact)
			}
		}
	}
	// All traffic to one of four endpoints: the statistic is always 3K.
	if p := approxPower(4, 13, []float64{1, 0, 0, 0}); p != 0 {
		t.Errorf("3·4 = 12 does not exceed 13, yet power %g", p)
	}
	if p := approxPower(5, 13, []float64{1, 0, 0, 0}); p != 1 {
		t.Errorf("3·5 = 15 exceeds 13, yet power %g", p)
	}
}

func TestSpreadPlan(t *testing.T) {
	for _, tc := range []struct {
		n, k  int
		exact bool
	}{
		// Two endpoints: K is set by the 2:1 split (exact power 0.9913;
		// 274 gives 0.9893).
		{2, 275, true},
		// Three: by (½, ¼, ¼), 0.99000 at 296 (0.98958 at 295); the
		// starved spread needs only 244.
		{3, 296, true},
		// Four: by the starved spread (⅛, 7⁄24, 7⁄24, 7⁄24), whose
		// approximate power must reach 0.995.
		{4, 404, false},
	} {
		plan, err := SpreadPlan(tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if plan.K != tc.k || plan.Alpha != 0.001 || plan.Power != 0.99 {
			t.Errorf("n=%d: plan %+v, want K=%d", tc.n, plan, tc.k)
		}
		want := plan.Power
		if !tc.exact {
			want += approxMargin
		}
		achieved, err := plan.Achieved(plan.K)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range achieved {
			if a.Power < want || a.Exact != tc.exact {
				t.Errorf("n=%d K=%d: %s (exact %v), want at least %g", tc.n, plan.K, a, a.Exact, want)
			}
		}
		// The hardest alternative falls short with one observation fewer.
		fewer, _ := plan.Achieved(plan.K - 1)
		short := false
		for _, a := range fewer {
			short = short || a.Power < want
		}
		if !short {
			t.Errorf("n=%d: K−1=%d already reaches %g against every alternative: %v", tc.n, plan.K-1, want, fewer)
		}
	}
}

func TestPlanDescribe(t *testing.T) {
	plan, err := SpreadPlan(2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := plan.Describe(270)
	if err != nil {
		t.Fatal(err)
	}
	want := "Pearson χ² goodness of fit to uniform at α=0.001 over 270 observations (planned K=275): power 0.987 against one endpoint doubled (0.667, 0.333), >0.999 against one endpoint starved to half its share (0.25, 0.75)"
	if got != want {
		t.Errorf("Describe:\n got %s\nwant %s", got, want)
	}
	four, _ := SpreadPlan(4)
	if d, _ := four.Describe(four.K); !strings.Contains(d, "(approximate)") {
		t.Errorf("an approximate power is not marked: %s", d)
	}
	if _, err := plan.Describe(-1); err == nil {
		t.Error("Describe(-1): no error")
	}
}

func TestSampleSizeErrors(t *testing.T) {
	two, _ := Skews(2)
	three, _ := Skews(3)
	for _, tc := range []struct {
		name         string
		alpha, power float64
		alts         []Alternative
	}{
		{"no alternatives", 0.001, 0.99, nil},
		{"alpha", 0, 0.99, two},
		{"power", 0.001, 1, two},
		{"mixed sizes", 0.001, 0.99, append(two, three...)},
		{"uniform", 0.001, 0.99, []Alternative{{Name: "even", Shares: []float64{0.5, 0.5}}}},
	} {
		if _, err := SampleSize(tc.alpha, tc.power, tc.alts); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := Power(-1, 0.001, two[0]); err == nil {
		t.Error("Power(-1): no error")
	}
	if p, err := Power(0, 0.001, two[0]); p != 0 || err != nil {
		t.Errorf("Power(0) = %g, %v; no observations, no test", p, err)
	}
}

// The suite used to size K against "one endpoint gets ratio·(1/n)" with
// ratio 2, which for two endpoints is all traffic to one of them: K = 32.
// That K catches a 2:1 split about one time in twenty, and the three-endpoint
// K = 71 catches (½, ¼, ¼) about one time in four — the iptables
// skewed-probability mutant went undetected at K = 71. Sizing by the
// first-order noncentral approximation (λ = K·w²) would also overstate: it
// gives (½, ¼, ¼) power 0.990 at K = 282, where the exact power is 0.985.
func TestOldSizingWasBlind(t *testing.T) {
	two, _ := Skews(2)
	three, _ := Skews(3)
	split, halves := two[0], three[0]
	if p, _ := Power(32, 0.001, split); p >= 0.2 {
		t.Errorf("K=32 against %s: power %.4f", split, p)
	}
	if p, _ := Power(32, 0.001, Alternative{Name: "all to one", Shares: []float64{1, 0}}); p < 0.99 {
		t.Errorf("K=32 against all traffic to one endpoint: power %.4f; that was the old claim", p)
	}
	if p, _ := Power(71, 0.001, halves); p >= 0.3 {
		t.Errorf("K=71 against %s: power %.4f", halves, p)
	}
	crit := distuv.ChiSquared{K: 2}.Quantile(1 - 0.001)
	firstOrder := NoncentralChiSquared{K: 2, Lambda: 282 * halves.EffectSize()}.Survival(crit)
	exact, _ := Power(282, 0.001, halves)
	if firstOrder < 0.99 || exact > 0.987 {
		t.Errorf("K=282 against %s: first-order %.4f, exact %.4f", halves, firstOrder, exact)
	}
	// And by simulation: the 2:1 split at K = 32.
	rng := rand.New(rand.NewPCG(7, 8))
	const trials = 20000
	rate := rejectionRate(t, rng, split.Shares, 32, trials)
	if rate >= 0.2 {
		t.Errorf("K=32 against %s: simulated rejection rate %.4f", split, rate)
	}
}

// rejectionRate draws trials samples of k observations from shares and
// returns the fraction ChiSquareUniform rejects at SpreadAlpha.
func rejectionRate(t *testing.T, rng *rand.Rand, shares []float64, k, trials int) float64 {
	t.Helper()
	cum := make([]float64, len(shares))
	var s float64
	for i, p := range shares {
		s += p
		cum[i] = s
	}
	counts := make([]int, len(shares))
	rejected := 0
	for range trials {
		clear(counts)
		for range k {
			u := rng.Float64()
			i := 0
			for i < len(cum)-1 && u >= cum[i] {
				i++
			}
			counts[i]++
		}
		g, err := ChiSquareUniform(counts, SpreadAlpha)
		if err != nil {
			t.Fatal(err)
		}
		if !g.Uniform() {
			rejected++
		}
	}
	return float64(rejected) / float64(trials)
}

// TestSpreadPlanMonteCarlo runs the suite's test as the specs do, on counts
// drawn from each alternative and from the uniform spread, at the planned K.
//
// With N = 20000 trials the rejection rate's standard error is
// √(p(1−p)/N): 0.0007 at p = 0.99, so a true power of at least 0.99 puts the
// rate below 0.99 − 4·0.0007 with probability about 3e-5. Under the uniform
// spread the expected 20 false rejections (α = 0.001) have a standard
// deviation of 4.5; more than 60 (0.003) is out of the question, and the
// count must also agree with the exact size of the test within 4 SD (with α
// itself for four endpoints, too many count vectors to sum).
func TestSpreadPlanMonteCarlo(t *testing.T) {
	const trials = 20000
	rng := rand.New(rand.NewPCG(20240, 9))
	for _, n := range []int{2, 3, 4} {
		plan, err := SpreadPlan(n)
		if err != nil {
			t.Fatal(err)
		}
		achieved, err := plan.Achieved(plan.K)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range achieved {
			rate := rejectionRate(t, rng, a.Shares, plan.K, trials)
			se := math.Sqrt(plan.Power * (1 - plan.Power) / trials)
			t.Logf("n=%d K=%d %s: rejected %.4f of %d, computed power %.4f", n, plan.K, a.Alternative, rate, trials, a.Power)
			if rate < plan.Power-4*se {
				t.Errorf("n=%d K=%d %s: rejected %.4f, promised %g", n, plan.K, a.Alternative, rate, plan.Power)
			}
			// The computed figure itself, within the simulation's error
			// (and the approximation's, where it is one).
			tol := 4 * math.Sqrt(a.Power*(1-a.Power)/trials)
			if !a.Exact {
				tol += 0.008
			}
			if math.Abs(rate-a.Power) > tol {
				t.Errorf("n=%d K=%d %s: rejected %.4f, computed power %.4f", n, plan.K, a.Alternative, rate, a.Power)
			}
		}
		uniform := make([]float64, n)
		for i := range uniform {
			uniform[i] = 1 / float64(n)
		}
		size := plan.Alpha
		if countVectors(plan.K, n) <= exactLimit {
			size = exactPower(plan.K, distuv.ChiSquared{K: float64(n - 1)}.Quantile(1-plan.Alpha), uniform)
		}
		rate := rejectionRate(t, rng, uniform, plan.K, trials)
		t.Logf("n=%d K=%d uniform: rejected %.5f of %d, size of the test %.5f", n, plan.K, rate, trials, size)
		if rate > 0.003 || math.Abs(rate-size)*trials > 4*math.Sqrt(size*trials) {
			t.Errorf("n=%d K=%d uniform: rejected %.5f, α=%g (exact size %.5f)", n, plan.K, rate, plan.Alpha, size)
		}
	}
}
