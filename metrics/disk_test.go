package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCacheDiskMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	failing := func() map[string]float64 {
		out := map[string]float64{}
		for _, k := range DiskErrorKinds {
			out[k] = testutil.ToFloat64(m.disk.writeFailing.WithLabelValues(k))
		}
		return out
	}
	for k, v := range failing() {
		if v != 0 {
			t.Errorf("cache_write_failing{kind=%q} = %v at start, want 0", k, v)
		}
	}
	m.CacheWriteFailed("no_space")
	m.CacheWriteFailed("no_space")
	m.CacheWriteFailed("io")
	m.CacheWriteFailed("bogus")
	if got := failing(); got["other"] != 1 || got["io"] != 0 || got["no_space"] != 0 {
		t.Errorf("cache_write_failing after an unknown kind = %v, want only other", got)
	}
	if got := testutil.ToFloat64(m.disk.writeErrors.WithLabelValues("no_space")); got != 2 {
		t.Errorf("cache_write_errors_total{kind=no_space} = %v, want 2", got)
	}
	m.CacheWriteRecovered()
	for k, v := range failing() {
		if v != 0 {
			t.Errorf("cache_write_failing{kind=%q} = %v after recovery, want 0", k, v)
		}
	}
	m.ObserveCache(CacheStats{SlowSyncs: 3})
	m.ObserveCache(CacheStats{SlowSyncs: 1}) // the writer restarted
	if got := testutil.ToFloat64(m.disk.slowSyncs); got != 4 {
		t.Errorf("cache_slow_fsyncs_total = %v, want 4", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	var nilM *Metrics
	nilM.CacheWriteFailed("io")
	nilM.CacheWriteRecovered()
}
