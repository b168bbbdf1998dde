package bench

import (
	"slices"
	"time"
)

// Latency summarises repeated measurements of one operation.
type Latency struct {
	N   int           `json:"n"`      // samples
	P50 time.Duration `json:"p50_ns"` // median
	P99 time.Duration `json:"p99_ns"` // 99th percentile (nearest rank); with fewer than 100 samples, the maximum
	Max time.Duration `json:"max_ns"`
}

// Summarise computes the percentiles of samples (which it sorts).
func Summarise(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	return Latency{
		N:   len(samples),
		P50: Percentile(samples, 50),
		P99: Percentile(samples, 99),
		Max: samples[len(samples)-1],
	}
}

// Percentile returns the p-th percentile of sorted samples by the
// nearest-rank method: the smallest sample that at least p percent of the
// samples do not exceed.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// sampler repeats an operation until it has enough samples or its time
// budget is spent, whichever comes last for the minimum and first for the
// maximum: at least min samples, at most max, and no new sample once
// budget has passed and min are taken.
type sampler struct {
	min, max int
	budget   time.Duration
}

// run calls op(i) for i = 0, 1, ... and times each call.
func (s sampler) run(op func(i int) error) ([]time.Duration, error) {
	out := make([]time.Duration, 0, s.max)
	start := time.Now()
	for i := 0; i < s.max; i++ {
		if i >= s.min && time.Since(start) > s.budget {
			break
		}
		t := time.Now()
		err := op(i)
		d := time.Since(t)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}
