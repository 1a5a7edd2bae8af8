// Package stats decides whether a Service spreads connections evenly over its
// endpoints, and how many connections a spec must make before that decision
// means anything.
//
// A load-balancing spec counts which endpoint answered each of K fresh
// connections and asks: could these counts come from a uniform choice? The
// test is Pearson's chi-square goodness-of-fit test. Its significance level α
// is the chance of failing a correct proxy by bad luck, so the suite keeps it
// small (0.001). A passing test says something only if the test could have
// failed: SampleSize picks K so that the spreads real proxy bugs produce
// (Skews: an endpoint doubled, an endpoint starved, given as absolute shares)
// are each caught with probability at least 0.99, and Power tells what a
// given K achieves against each of them.
package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// GoodnessOfFit is the outcome of a chi-square test of observed counts against
// an equal share for every endpoint.
type GoodnessOfFit struct {
	Counts    []int   // observations per endpoint, in the caller's order
	Total     int     // sum of Counts
	Expected  float64 // Total / len(Counts): the count each endpoint should get
	Statistic float64 // Pearson's χ² = Σ (O_i − E)² / E
	DF        int     // degrees of freedom, len(Counts) − 1
	P         float64 // P(χ²_DF ≥ Statistic): how surprising the counts are under uniformity
	Alpha     float64 // significance level the caller chose
}

// Uniform reports whether the counts are consistent with a uniform choice at
// the chosen significance level (the null hypothesis is not rejected).
func (g GoodnessOfFit) Uniform() bool { return g.P >= g.Alpha }

// String is the one-line summary a failing spec prints, e.g.
// "counts [40 22] expected 31.0; chi2=5.23 df=1; p=0.0222; α=0.001".
func (g GoodnessOfFit) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "counts %v expected %.1f; chi2=%.3g df=%d; p=%.3g; α=%g", g.Counts, g.Expected, g.Statistic, g.DF, g.P, g.Alpha)
	if g.Expected < 5 {
		// Pearson's approximation is poor below about five expected
		// observations per cell; say so rather than mislead.
		b.WriteString(" (expected count < 5: approximation unreliable)")
	}
	return b.String()
}

// ChiSquareUniform tests counts (one per endpoint, zeros included: an endpoint
// that got nothing is the strongest evidence of imbalance) against a uniform
// distribution. The p-value is the upper tail of the central chi-square
// distribution with len(counts)−1 degrees of freedom.
func ChiSquareUniform(counts []int, alpha float64) (GoodnessOfFit, error) {
	if len(counts) < 2 {
		return GoodnessOfFit{}, fmt.Errorf("chi-square test of uniformity needs at least 2 endpoints, got %d", len(counts))
	}
	if !(alpha > 0 && alpha < 1) {
		return GoodnessOfFit{}, fmt.Errorf("significance level %g is not in (0, 1)", alpha)
	}
	total := 0
	for i, c := range counts {
		if c < 0 {
			return GoodnessOfFit{}, fmt.Errorf("count %d for endpoint %d is negative", c, i)
		}
		total += c
	}
	if total == 0 {
		return GoodnessOfFit{}, errors.New("chi-square test of uniformity: no observations")
	}
	e := float64(total) / float64(len(counts))
	var chi2 float64
	for _, c := range counts {
		d := float64(c) - e
		chi2 += d * d / e
	}
	df := len(counts) - 1
	return GoodnessOfFit{
		Counts:    append([]int(nil), counts...),
		Total:     total,
		Expected:  e,
		Statistic: chi2,
		DF:        df,
		P:         distuv.ChiSquared{K: float64(df)}.Survival(chi2),
		Alpha:     alpha,
	}, nil
}

// CountsFor lines up per-endpoint hit counts (as a probe reports them, keyed
// by pod name) with the endpoints the spec expects, so endpoints that were
// never hit appear as zeros. Hits from names not in endpoints are returned
// separately: an answer from an unknown pod is a finding of its own (traffic
// escaped to something that is not a backend), never something to fold into
// the test.
func CountsFor(endpoints []string, hits map[string]int) (counts []int, foreign map[string]int) {
	counts = make([]int, len(endpoints))
	known := make(map[string]int, len(endpoints))
	for i, e := range endpoints {
		known[e] = i
	}
	for name, n := range hits {
		if i, ok := known[name]; ok {
			counts[i] += n
			continue
		}
		if foreign == nil {
			foreign = map[string]int{}
		}
		foreign[name] += n
	}
	return counts, foreign
}

// SortedKeys returns a map's keys in order, for stable endpoint lists.
func SortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// NoncentralChiSquared is the distribution of Σ_{i=1..K} (Z_i + μ_i)² with Z_i
// standard normal and λ = Σ μ_i². gonum has only the central case, so the CDF
// is computed as the Poisson mixture of central chi-square distributions:
//
//	F(x; K, λ) = Σ_{j≥0} e^{−λ/2} (λ/2)^j / j! · F_{χ²_{K+2j}}(x)
//
// The Poisson weights are summed over j in μ ± (12√μ + 20), μ = λ/2, where
// the omitted mass is far below float64 resolution; each weight is formed in
// log space so that large λ does not underflow e^{−λ/2}.
type NoncentralChiSquared struct {
	K      float64 // degrees of freedom, > 0
	Lambda float64 // noncentrality, ≥ 0
}

// CDF returns P(X ≤ x).
func (d NoncentralChiSquared) CDF(x float64) float64 {
	if x <= 0 {
		return 0
	}
	return d.mix(func(c distuv.ChiSquared) float64 { return c.CDF(x) })
}

// Survival returns P(X > x), summed directly rather than as 1 − CDF so that
// small tail probabilities keep their precision.
func (d NoncentralChiSquared) Survival(x float64) float64 {
	if x <= 0 {
		return 1
	}
	return d.mix(func(c distuv.ChiSquared) float64 { return c.Survival(x) })
}

func (d NoncentralChiSquared) mix(f func(distuv.ChiSquared) float64) float64 {
	if d.Lambda == 0 {
		return f(distuv.ChiSquared{K: d.K})
	}
	mu := d.Lambda / 2
	spread := 12*math.Sqrt(mu) + 20
	lo := int(math.Max(0, math.Floor(mu-spread)))
	hi := int(math.Ceil(mu + spread))
	logMu := math.Log(mu)
	var sum float64
	for j := lo; j <= hi; j++ {
		lg, _ := math.Lgamma(float64(j) + 1)
		w := math.Exp(-mu + float64(j)*logMu - lg)
		if w == 0 {
			continue
		}
		sum += w * f(distuv.ChiSquared{K: d.K + 2*float64(j)})
	}
	return math.Min(1, math.Max(0, sum))
}
