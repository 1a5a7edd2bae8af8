package stats

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// Alternative is an uneven spread a spreading test must catch, given as the
// absolute share of connections each endpoint actually gets. Shares, not a
// ratio to the fair share, so that what a spec claims to detect can be read
// off directly: a 2:1 split of two endpoints is (2/3, 1/3).
type Alternative struct {
	Name   string    // the bug that spreads connections this way
	Shares []float64 // one per endpoint, each in [0, 1], summing to 1
}

// Validate reports why a cannot be an alternative to the uniform spread:
// fewer than two endpoints, a share outside [0, 1], shares that do not sum to
// 1 (within 1e-6), or shares that are uniform themselves.
func (a Alternative) Validate() error {
	if len(a.Shares) < 2 {
		return fmt.Errorf("alternative %q: %d shares; a spread needs at least 2 endpoints", a.Name, len(a.Shares))
	}
	var sum float64
	for i, p := range a.Shares {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("alternative %q: share %g of endpoint %d is not in [0, 1]", a.Name, p, i)
		}
		sum += p
	}
	if math.Abs(sum-1) > probabilityTolerance {
		return fmt.Errorf("alternative %q: shares %v sum to %g, not 1", a.Name, a.Shares, sum)
	}
	if a.EffectSize() < 1e-12 {
		return fmt.Errorf("alternative %q: shares %v are uniform; no test can tell them from a correct proxy", a.Name, a.Shares)
	}
	return nil
}

// EffectSize is Cohen's w² = Σ_i (p_i − 1/n)² / (1/n), how far the shares
// are from uniform. To first order the chi-square statistic after K
// observations is noncentral with λ = K·w²; Power uses more than that.
func (a Alternative) EffectSize() float64 {
	fair := 1 / float64(len(a.Shares))
	var sum float64
	for _, p := range a.Shares {
		sum += (p - fair) * (p - fair)
	}
	return sum / fair
}

// String names the alternative with its shares, e.g.
// "one endpoint doubled (0.667, 0.333)".
func (a Alternative) String() string {
	s := make([]string, len(a.Shares))
	for i, p := range a.Shares {
		s[i] = fmt.Sprintf("%.3g", p)
	}
	return fmt.Sprintf("%s (%s)", a.Name, strings.Join(s, ", "))
}

// Skews returns the uneven spreads over n endpoints that real proxy bugs
// produce, which the suite's spreading tests are sized to catch:
//
//   - one endpoint doubled: one endpoint gets twice the share of each other
//     one, 2/(n+1) against 1/(n+1). An endpoint programmed twice does this,
//     and so does a random choice over n+1 slots whose extra slot maps to an
//     existing endpoint: a 2:1 split of two endpoints, (½, ¼, ¼) of three.
//   - one endpoint starved to half its share: 1/(2n), the others splitting
//     the rest evenly: (¼, ¾) of two, (⅙, 5⁄12, 5⁄12) of three.
//   - halving chain (n ≥ 4 only): every endpoint but the last is chosen with
//     probability ½ of what is left, as iptables statistic rules all written
//     with probability 0.5 do: (½, ¼, …, 2^−(n−1), 2^−(n−1)). For three
//     endpoints that is the doubled spread, for two the uniform one.
//
// Which endpoint is favoured does not matter to the test, so it is the first.
func Skews(n int) ([]Alternative, error) {
	if n < 2 {
		return nil, fmt.Errorf("skews of %d endpoints: need at least 2", n)
	}
	oneApart := func(first float64) []float64 {
		s := make([]float64, n)
		s[0] = first
		for i := 1; i < n; i++ {
			s[i] = (1 - first) / float64(n-1)
		}
		return s
	}
	alts := []Alternative{
		{Name: "one endpoint doubled", Shares: oneApart(2 / float64(n+1))},
		{Name: "one endpoint starved to half its share", Shares: oneApart(1 / float64(2*n))},
	}
	if n >= 4 {
		s := make([]float64, n)
		left := 1.0
		for i := range n - 1 {
			s[i] = left / 2
			left -= s[i]
		}
		s[n-1] = left
		alts = append(alts, Alternative{Name: "halving chain", Shares: s})
	}
	return alts, nil
}

// approxMargin is how much more than the wanted power SampleSize asks of an
// approximate figure; see Power.
const approxMargin = 0.005

// exactLimit is the most count vectors Power sums exactly: every K for two
// endpoints, K ≤ 1412 for three, K ≤ 179 for four.
const exactLimit = 1e6

// Power is the probability that the chi-square test of uniformity
// (ChiSquareUniform) at significance level alpha rejects after k
// observations drawn from alt.
//
// When there are at most exactLimit ways to spread k observations over the
// endpoints, it is exact: the multinomial probabilities of every count vector
// whose statistic exceeds the critical value, summed. The statistic is
// discrete, so exact power is not monotone in k: one more observation can
// lower it by a thousandth or two.
//
// Beyond that it is approximate, by the noncentral chi-square distribution
// matched to the statistic's first four cumulants under alt (approxPower).
// Near 0.99 that approximation has been seen up to 0.003 above the truth
// (exact sums for three endpoints; simulation for four), so SampleSize asks
// an approximate figure for approxMargin more. The first-order
// approximation, noncentral chi-square with λ = k·w², is worse: it credits
// K = 282 with power 0.990 against (½, ¼, ¼) where the exact power is 0.985.
func Power(k int, alpha float64, alt Alternative) (float64, error) {
	p, _, err := power(k, alpha, alt)
	return p, err
}

// power is Power, also saying whether the figure is exact.
func power(k int, alpha float64, alt Alternative) (p float64, exact bool, err error) {
	if err := alt.Validate(); err != nil {
		return 0, false, err
	}
	if !(alpha > 0 && alpha < 1) {
		return 0, false, fmt.Errorf("power: significance level %g is not in (0, 1)", alpha)
	}
	if k < 0 {
		return 0, false, fmt.Errorf("power: %d observations", k)
	}
	if k == 0 {
		return 0, true, nil // no test is made
	}
	n := len(alt.Shares)
	crit := distuv.ChiSquared{K: float64(n - 1)}.Quantile(1 - alpha)
	if countVectors(k, n) <= exactLimit {
		return exactPower(k, crit, alt.Shares), true, nil
	}
	return approxPower(k, crit, alt.Shares), false, nil
}

// countVectors is the number of ways to spread k observations over n
// endpoints, C(k+n−1, n−1).
func countVectors(k, n int) float64 {
	a, _ := math.Lgamma(float64(k + n))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n))
	return math.Exp(a - b - c)
}

// exactPower sums the multinomial probability of every count vector the test
// rejects. Pearson's statistic over n endpoints is (n/k)·Σc_i² − k, so the
// test rejects exactly when Σc_i² exceeds (crit + k)·k/n.
func exactPower(k int, crit float64, shares []float64) float64 {
	n := len(shares)
	logFact := make([]float64, k+1)
	for c := 2; c <= k; c++ {
		logFact[c] = logFact[c-1] + math.Log(float64(c))
	}
	logShare := make([]float64, n)
	for i, p := range shares {
		logShare[i] = math.Log(p)
	}
	// term is ln(p_i^c / c!); an endpoint with no share contributes only
	// through c = 0.
	term := func(i, c int) float64 {
		if c == 0 {
			return 0
		}
		return float64(c)*logShare[i] - logFact[c]
	}
	limit := (crit + float64(k)) * float64(k) / float64(n)
	var sum float64
	var walk func(i, left int, squares, logWeight float64)
	walk = func(i, left int, squares, logWeight float64) {
		if i == n-1 {
			if left > 0 && shares[i] == 0 {
				return
			}
			if squares+float64(left)*float64(left) > limit {
				sum += math.Exp(logFact[k] + logWeight + term(i, left))
			}
			return
		}
		for c := 0; c <= left; c++ {
			if c > 0 && shares[i] == 0 {
				break
			}
			walk(i+1, left-c, squares+float64(c)*float64(c), logWeight+term(i, c))
		}
	}
	walk(0, k, 0, 0)
	return math.Min(1, sum)
}

// approxPower approximates the power for counts too many to enumerate.
// Pearson's statistic is YᵀY for the standardised counts
// Y_i = (O_i − k/n)/√(k/n), whose mean under shares p is
// m = √(kn)·(p − 1/n) and whose covariance is S = n·(diag(p) − ppᵀ), exactly.
// Taking Y as normal, YᵀY has the cumulants 2^{r−1}(r−1)!·c_r with
// c_r = tr(S^r) + r·mᵀS^{r−1}m, and Liu, Tang and Zhang's (2009) noncentral
// chi-square with the same skewness and kurtosis gives its tail. Using S
// rather than the null covariance is what the first-order approximation
// misses. Against exact sums it is within 0.007 wherever the power exceeds
// 0.9 for three endpoints, and 0.003 for the halving chain of four; two
// endpoints, whose lattice of counts puts it up to 0.012 off, are always
// summed exactly.
func approxPower(k int, crit float64, p []float64) float64 {
	n := len(p)
	fn := float64(n)
	s := make([][]float64, n)
	for i := range s {
		s[i] = make([]float64, n)
		for j := range s[i] {
			s[i][j] = -fn * p[i] * p[j]
		}
		s[i][i] += fn * p[i]
	}
	// d = p − 1/n, so that mᵀS^{r−1}m = k·n·dᵀS^{r−1}d.
	d := make([]float64, n)
	for i := range d {
		d[i] = p[i] - 1/fn
	}
	var c [5]float64
	power, v := s, d // S^r and S^{r−1}d
	for r := 1; r <= 4; r++ {
		var trace, quad float64
		for i := range n {
			trace += power[i][i]
			quad += d[i] * v[i]
		}
		c[r] = trace + float64(r)*float64(k)*fn*quad
		power, v = matMul(power, s), matVec(s, v)
	}
	if c[2] < 1e-12 {
		// All traffic to one endpoint: the statistic is always c_1.
		if c[1] > crit {
			return 1
		}
		return 0
	}
	s1 := c[3] / math.Pow(c[2], 1.5)
	s2 := c[4] / (c[2] * c[2])
	var a, delta, l float64
	if s1*s1 > s2 {
		a = 1 / (s1 - math.Sqrt(s1*s1-s2))
		delta = s1*a*a*a - a*a
		l = a*a - 2*delta
	} else {
		a = 1 / s1
		l = a * a
	}
	t := (crit-c[1])/math.Sqrt(2*c[2])*math.Sqrt2*a + l + delta
	return NoncentralChiSquared{K: l, Lambda: delta}.Survival(t)
}

func matMul(a, b [][]float64) [][]float64 {
	out := make([][]float64, len(a))
	for i := range a {
		out[i] = make([]float64, len(b[0]))
		for j := range b[0] {
			for l := range b {
				out[i][j] += a[i][l] * b[l][j]
			}
		}
	}
	return out
}

func matVec(a [][]float64, v []float64) []float64 {
	out := make([]float64, len(a))
	for i, row := range a {
		for j, x := range row {
			out[i] += x * v[j]
		}
	}
	return out
}

// SampleSize returns a number of observations K at which the chi-square test
// of uniformity at significance level alpha rejects with probability at
// least power against every one of alts, all over the same number of
// endpoints: by Power, and by power + approxMargin where Power can only
// approximate. K is the largest of the alternatives' own sizes, each found
// by doubling and then bisection; exact power is not quite monotone in K, so
// a size is the least K the search found to reach the power, which may be a
// few above the least there is.
func SampleSize(alpha, power float64, alts []Alternative) (int, error) {
	if len(alts) == 0 {
		return 0, errors.New("sample size: no alternatives to size against")
	}
	if !(alpha > 0 && alpha < 1) || !(power > 0 && power < 1) {
		return 0, fmt.Errorf("sample size: alpha %g and power %g must be in (0, 1)", alpha, power)
	}
	k := 0
	for _, alt := range alts {
		if len(alt.Shares) != len(alts[0].Shares) {
			return 0, fmt.Errorf("sample size: alternative %s is over %d endpoints, %s over %d", alt, len(alt.Shares), alts[0], len(alts[0].Shares))
		}
		ka, err := sampleSizeFor(alpha, power, alt)
		if err != nil {
			return 0, err
		}
		k = max(k, ka)
	}
	return k, nil
}

func sampleSizeFor(alpha, target float64, alt Alternative) (int, error) {
	reaches := func(k int) (bool, error) {
		p, exact, err := power(k, alpha, alt)
		if !exact {
			p -= approxMargin
		}
		return p >= target, err
	}
	const limit = 1 << 24
	hi := 1
	for {
		ok, err := reaches(hi)
		if err != nil {
			return 0, err
		}
		if ok {
			break
		}
		if hi >= limit {
			return 0, fmt.Errorf("sample size for alpha=%g power=%g against %s exceeds %d", alpha, target, alt, limit)
		}
		hi *= 2
	}
	lo := hi / 2 // does not reach the target, or is 0
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if ok, _ := reaches(mid); ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// The suite's spreading tests: a correct proxy fails one by bad luck with
// probability SpreadAlpha, and each of Skews(n) is caught with probability at
// least SpreadPower.
const (
	SpreadAlpha = 0.001
	SpreadPower = 0.99
)

// Plan is a spreading test laid out before any request is made: the
// significance level, the power wanted against each alternative, and the
// sample size K that gives it.
type Plan struct {
	Alpha        float64
	Power        float64
	Alternatives []Alternative
	K            int
}

// SpreadPlan is the suite's plan for n endpoints: α = SpreadAlpha and power
// at least SpreadPower against every one of Skews(n).
func SpreadPlan(n int) (Plan, error) {
	alts, err := Skews(n)
	if err != nil {
		return Plan{}, err
	}
	k, err := SampleSize(SpreadAlpha, SpreadPower, alts)
	if err != nil {
		return Plan{}, err
	}
	return Plan{Alpha: SpreadAlpha, Power: SpreadPower, Alternatives: alts, K: k}, nil
}

// Achieved is the power a plan's test has against one alternative.
type Achieved struct {
	Alternative
	Power float64
	Exact bool // summed over every count vector rather than approximated
}

// String is e.g. "0.991 against one endpoint doubled (0.667, 0.333)"; a power
// below 1 is never rounded up to 1.
func (a Achieved) String() string {
	s := fmt.Sprintf("%.3f", a.Power)
	if s == "1.000" && a.Power < 1 {
		s = ">0.999"
	}
	if !a.Exact {
		s += " (approximate)"
	}
	return s + " against " + a.Alternative.String()
}

// Achieved is the power against each of p.Alternatives with k observations.
// A spec passes the number of answers it actually tested, which is less than
// p.K when requests failed.
func (p Plan) Achieved(k int) ([]Achieved, error) {
	out := make([]Achieved, len(p.Alternatives))
	for i, alt := range p.Alternatives {
		pw, exact, err := power(k, p.Alpha, alt)
		if err != nil {
			return nil, err
		}
		out[i] = Achieved{Alternative: alt, Power: pw, Exact: exact}
	}
	return out, nil
}

// Describe states the test and what it could see with k observations, e.g.
// "Pearson χ² goodness of fit to uniform at α=0.001 over 275 observations
// (planned K=275): power 0.991 against one endpoint doubled (0.667, 0.333),
// >0.999 against one endpoint starved to half its share (0.25, 0.75)".
func (p Plan) Describe(k int) (string, error) {
	achieved, err := p.Achieved(k)
	if err != nil {
		return "", err
	}
	parts := make([]string, len(achieved))
	for i, a := range achieved {
		parts[i] = a.String()
	}
	return fmt.Sprintf("Pearson χ² goodness of fit to uniform at α=%g over %d observations (planned K=%d): power %s",
		p.Alpha, k, p.K, strings.Join(parts, ", ")), nil
}
