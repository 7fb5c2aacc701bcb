package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds,
// which it sorts; NaN for none.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	if !slices.IsSorted(ds) {
		slices.Sort(ds)
	}
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ms(ds[min(max(i, 0), len(ds)-1)])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

const mib = 1 << 20

// pairedDiff is the median of per-round differences between two targets,
// with a 95% bootstrap interval for it: where the interval holds zero,
// the two are not told apart by this run.
type pairedDiff struct {
	MedianMS float64 `json:"median_ms"`
	LowMS    float64 `json:"ci95_low_ms"`
	HighMS   float64 `json:"ci95_high_ms"`
	Pairs    int     `json:"pairs"`
}

func (d *pairedDiff) String() string {
	return fmt.Sprintf("median %+.3f ms, 95%% CI %+.3f..%+.3f ms, %d pairs", d.MedianMS, d.LowMS, d.HighMS, d.Pairs)
}

// minPairs is the fewest pairs a bootstrap interval is given for.
const minPairs = 10

// diffRounds pairs a[i] with b[i], skipping rounds either lacks (NaN),
// and summarises a[i]-b[i]; nil for fewer than minPairs pairs. The
// resampling is seeded: the same rounds give the same interval.
func diffRounds(a, b []float64) *pairedDiff {
	var d []float64
	for i := range min(len(a), len(b)) {
		if x := a[i] - b[i]; !math.IsNaN(x) {
			d = append(d, x)
		}
	}
	if len(d) < minPairs {
		return nil
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const resamples = 2000
	meds := make([]float64, resamples)
	buf := make([]float64, len(d))
	for i := range meds {
		for j := range buf {
			buf[j] = d[rng.IntN(len(d))]
		}
		meds[i] = median(buf)
	}
	slices.Sort(meds)
	return &pairedDiff{MedianMS: median(d), LowMS: meds[resamples*25/1000], HighMS: meds[resamples*975/1000-1], Pairs: len(d)}
}

// median of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
