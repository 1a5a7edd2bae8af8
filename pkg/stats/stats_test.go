package stats

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestChiSquareUniform(t *testing.T) {
	for _, tc := range []struct {
		counts  []int
		chi2, p float64
		uniform bool
	}{
		{counts: []int{50, 50}, chi2: 0, p: 1, uniform: true},
		// (10²/50)·2 = 4 on 1 df: p = 2(1 − Φ(2)).
		{counts: []int{60, 40}, chi2: 4, p: math.Erfc(2 / math.Sqrt2), uniform: true},
		// E = 10: (400 + 100 + 100)/10 = 60 on 2 df, whose survival is e^{−x/2}.
		{counts: []int{30, 0, 0}, chi2: 60, p: math.Exp(-30), uniform: false},
		{counts: []int{34, 33, 33}, chi2: 0.02, p: math.Exp(-0.01), uniform: true},
	} {
		g, err := ChiSquareUniform(tc.counts, 0.001)
		if err != nil {
			t.Fatalf("%v: %v", tc.counts, err)
		}
		if !near(g.Statistic, tc.chi2, 1e-9) || !near(g.P, tc.p, 1e-9*math.Max(1, tc.p)) || g.Uniform() != tc.uniform {
			t.Errorf("%v: got chi2=%g p=%g uniform=%v, want chi2=%g p=%g uniform=%v", tc.counts, g.Statistic, g.P, g.Uniform(), tc.chi2, tc.p, tc.uniform)
		}
		if g.DF != len(tc.counts)-1 {
			t.Errorf("%v: df %d", tc.counts, g.DF)
		}
	}
}

func TestChiSquareUniformSummary(t *testing.T) {
	g, err := ChiSquareUniform([]int{60, 40}, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	want := "counts [60 40] expected 50.0; chi2=4 df=1; p=0.0455; α=0.001"
	if g.String() != want {
		t.Errorf("summary %q, want %q", g.String(), want)
	}
	g, _ = ChiSquareUniform([]int{3, 1}, 0.001)
	if !strings.Contains(g.String(), "unreliable") {
		t.Errorf("small expected count not flagged: %q", g.String())
	}
}

func TestChiSquareUniformErrors(t *testing.T) {
	for _, tc := range []struct {
		counts []int
		alpha  float64
	}{
		{[]int{5}, 0.001},
		{[]int{0, 0}, 0.001},
		{[]int{1, -1, 3}, 0.001},
		{[]int{1, 2}, 0},
		{[]int{1, 2}, 1},
	} {
		if _, err := ChiSquareUniform(tc.counts, tc.alpha); err == nil {
			t.Errorf("%v α=%g: no error", tc.counts, tc.alpha)
		}
	}
}

func TestCountsFor(t *testing.T) {
	counts, foreign := CountsFor([]string{"a", "b", "c"}, map[string]int{"a": 4, "c": 2, "stray": 1})
	if !reflect.DeepEqual(counts, []int{4, 0, 2}) {
		t.Errorf("counts %v", counts)
	}
	if !reflect.DeepEqual(foreign, map[string]int{"stray": 1}) {
		t.Errorf("foreign %v", foreign)
	}
	if _, foreign := CountsFor([]string{"a"}, map[string]int{"a": 1}); foreign != nil {
		t.Errorf("foreign %v, want nil", foreign)
	}
	if got := SortedKeys(map[string]int{"b": 1, "a": 2}); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("SortedKeys %v", got)
	}
}

// With one degree of freedom X = (Z + √λ)², so
// F(x) = Φ(√x − √λ) − Φ(−√x − √λ): an exact reference.
func TestNoncentralOneDFClosedForm(t *testing.T) {
	phi := func(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }
	for _, lambda := range []float64{0.5, 4, 31.55, 200, 3000} {
		d := NoncentralChiSquared{K: 1, Lambda: lambda}
		for _, x := range []float64{0.1, 1, 10.83, 40, 250, 3100} {
			want := phi(math.Sqrt(x)-math.Sqrt(lambda)) - phi(-math.Sqrt(x)-math.Sqrt(lambda))
			if got := d.CDF(x); !near(got, want, 1e-10) {
				t.Errorf("λ=%g x=%g: CDF %.12g, want %.12g", lambda, x, got, want)
			}
			if got := d.Survival(x); !near(got, 1-want, 1e-10) {
				t.Errorf("λ=%g x=%g: Survival %.12g, want %.12g", lambda, x, got, 1-want)
			}
		}
	}
}

func TestNoncentralZeroIsCentral(t *testing.T) {
	for _, x := range []float64{0.5, 3, 9} {
		want := distuv.ChiSquared{K: 4}.CDF(x)
		if got := (NoncentralChiSquared{K: 4, Lambda: 0}).CDF(x); got != want {
			t.Errorf("x=%g: %g, want %g", x, got, want)
		}
	}
}

// The definition itself, sampled: Σ (Z_i + μ_i)² with Σ μ_i² = λ.
func TestNoncentralMonteCarlo(t *testing.T) {
	const k, lambda, samples = 3, 5.0, 200000
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, samples)
	for i := range xs {
		z := rng.NormFloat64() + math.Sqrt(lambda)
		x := z * z
		for j := 1; j < k; j++ {
			z := rng.NormFloat64()
			x += z * z
		}
		xs[i] = x
	}
	d := NoncentralChiSquared{K: k, Lambda: lambda}
	for _, x := range []float64{1, 4, 8, 12, 20, 30} {
		n := 0
		for _, v := range xs {
			if v <= x {
				n++
			}
		}
		emp := float64(n) / samples
		// The empirical CDF's standard error is at most 0.0011 here.
		if got := d.CDF(x); !near(got, emp, 0.005) {
			t.Errorf("x=%g: CDF %.4f, Monte Carlo %.4f", x, got, emp)
		}
	}
}

// riceSurvival is an independent reference for two degrees of freedom:
// √X is Rice(ν=√λ, σ=1), so P(X > c) = 1 − ∫₀^√c r e^{−(r²+ν²)/2} I₀(νr) dr,
// integrated with Simpson's rule and I₀ from its power series.
func riceSurvival(lambda, c float64) float64 {
	nu := math.Sqrt(lambda)
	scaledI0 := func(z float64) float64 { // e^{−z} I₀(z)
		term, sum := 1.0, 1.0
		for k := 1; k < 500; k++ {
			term *= (z * z / 4) / float64(k*k)
			sum += term
			if term < sum*1e-17 {
				break
			}
		}
		return sum * math.Exp(-z)
	}
	f := func(r float64) float64 { return r * math.Exp(-(r-nu)*(r-nu)/2) * scaledI0(nu*r) }
	b := math.Sqrt(c)
	const steps = 4000
	h := b / steps
	s := f(0) + f(b)
	for i := 1; i < steps; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		s += w * f(float64(i)*h)
	}
	return 1 - s*h/3
}

// NoncentralChiSquared with two degrees of freedom against the Rice
// integral, which shares none of its code.
func TestNoncentralTwoDFRice(t *testing.T) {
	for _, lambda := range []float64{2, 35.25, 120} {
		for _, x := range []float64{1, 13.816, 40} {
			want := riceSurvival(lambda, x)
			if got := (NoncentralChiSquared{K: 2, Lambda: lambda}).Survival(x); !near(got, want, 1e-6) {
				t.Errorf("λ=%g x=%g: Survival %.9f, Rice %.9f", lambda, x, got, want)
			}
		}
	}
}
