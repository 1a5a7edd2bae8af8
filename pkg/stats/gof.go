package stats

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// Fit is the outcome of a chi-square goodness-of-fit test of observed counts
// against probabilities the caller predicted (e.g. a rule tracer's per-
// endpoint shares), which need not be equal.
type Fit struct {
	Counts        []int     // observations per cell, in the caller's order
	Probabilities []float64 // predicted share of each cell
	Expected      []float64 // Total · Probabilities[i]
	Total         int
	Statistic     float64 // Pearson's χ² over the cells with a non-zero prediction
	DF            int     // cells with a non-zero prediction, less one
	P             float64 // P(χ²_DF ≥ Statistic); 0 when a cell predicted never to happen did
	Alpha         float64
	// Impossible lists the cells predicted at probability 0 that were
	// observed anyway: no amount of luck explains them, so P is 0.
	Impossible []int
}

// Consistent reports whether the counts are consistent with the predicted
// probabilities at the chosen significance level.
func (f Fit) Consistent() bool { return f.P >= f.Alpha }

// String is the one-line summary a failing spec prints, e.g.
// "counts [70 30] expected [50.0 50.0]; chi2=8 df=1; p=0.00468; α=0.001".
func (f Fit) String() string {
	var b strings.Builder
	exp := make([]string, len(f.Expected))
	small := false
	for i, e := range f.Expected {
		exp[i] = fmt.Sprintf("%.1f", e)
		if e > 0 && e < 5 {
			small = true
		}
	}
	fmt.Fprintf(&b, "counts %v expected [%s]; chi2=%.3g df=%d; p=%.3g; α=%g", f.Counts, strings.Join(exp, " "), f.Statistic, f.DF, f.P, f.Alpha)
	if len(f.Impossible) > 0 {
		fmt.Fprintf(&b, "; cells %v were predicted never to be hit", f.Impossible)
	}
	if small {
		b.WriteString(" (expected count < 5: approximation unreliable)")
	}
	return b.String()
}

// probabilityTolerance is how far predicted probabilities may sum from 1:
// a tracer's shares are products of decimal fractions kube-proxy printed
// with ten digits (0.3333333333), so they sum to 1 only approximately.
const probabilityTolerance = 1e-6

// ChiSquare tests counts against predicted probabilities with Pearson's
// goodness-of-fit test. Cells predicted at probability 0 take no part in the
// statistic; if any of them was observed the counts are inconsistent
// outright (P = 0). The probabilities must be non-negative and sum to 1
// within 1e-6 (they are renormalised), with at least two of them positive.
func ChiSquare(counts []int, probs []float64, alpha float64) (Fit, error) {
	if len(counts) != len(probs) {
		return Fit{}, fmt.Errorf("chi-square test: %d counts but %d probabilities", len(counts), len(probs))
	}
	if !(alpha > 0 && alpha < 1) {
		return Fit{}, fmt.Errorf("significance level %g is not in (0, 1)", alpha)
	}
	var sum float64
	positive := 0
	for i, p := range probs {
		if !(p >= 0 && p <= 1) {
			return Fit{}, fmt.Errorf("probability %g for cell %d is not in [0, 1]", p, i)
		}
		sum += p
		if p > 0 {
			positive++
		}
	}
	if math.Abs(sum-1) > probabilityTolerance {
		return Fit{}, fmt.Errorf("probabilities %v sum to %g, not 1", probs, sum)
	}
	if positive < 2 {
		return Fit{}, fmt.Errorf("chi-square test needs at least 2 cells with a non-zero probability, got %d (%v)", positive, probs)
	}
	total := 0
	for i, c := range counts {
		if c < 0 {
			return Fit{}, fmt.Errorf("count %d for cell %d is negative", c, i)
		}
		total += c
	}
	if total == 0 {
		return Fit{}, errors.New("chi-square test: no observations")
	}
	f := Fit{
		Counts:        append([]int(nil), counts...),
		Probabilities: make([]float64, len(probs)),
		Expected:      make([]float64, len(probs)),
		Total:         total,
		DF:            positive - 1,
		Alpha:         alpha,
	}
	for i, p := range probs {
		f.Probabilities[i] = p / sum
		f.Expected[i] = float64(total) * f.Probabilities[i]
		if p == 0 {
			if counts[i] > 0 {
				f.Impossible = append(f.Impossible, i)
			}
			continue
		}
		d := float64(counts[i]) - f.Expected[i]
		f.Statistic += d * d / f.Expected[i]
	}
	if len(f.Impossible) > 0 {
		f.P = 0
		return f, nil
	}
	f.P = distuv.ChiSquared{K: float64(f.DF)}.Survival(f.Statistic)
	return f, nil
}
