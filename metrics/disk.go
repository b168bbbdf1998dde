package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// DiskErrorKinds are the values of the "kind" label of
// taskfleet_cache_write_errors_total and taskfleet_cache_write_failing:
// the cache's disk error kinds (cache.DiskErrorKinds).
var DiskErrorKinds = []string{
	"no_space",  // ENOSPC, EDQUOT: the disk or the quota is full
	"io",        // EIO: the device failed
	"read_only", // EROFS: the file system is read-only
	"other",     // any other failed file operation
}

// diskMetrics are the cache writer's disk collectors.
type diskMetrics struct {
	writeErrors  *prometheus.CounterVec // kind
	writeFailing *prometheus.GaugeVec   // kind
	slowSyncs    prometheus.Counter
}

func newDiskMetrics() diskMetrics {
	d := diskMetrics{
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_write_errors_total",
			Help: "Cache writes (batches, tracking, merges, rotations) that failed on the disk, by kind.",
		}, []string{"kind"}),
		writeFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "cache_write_failing",
			Help: "1 for the kind of disk error the cache's last write failed with, while no write has succeeded since; queries are answered from memory meanwhile.",
		}, []string{"kind"}),
		slowSyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_slow_fsyncs_total",
			Help: "Cache fsyncs that took a second or longer.",
		}),
	}
	for _, k := range DiskErrorKinds {
		d.writeFailing.WithLabelValues(k).Set(0)
	}
	return d
}

func (d diskMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{d.writeErrors, d.writeFailing, d.slowSyncs}
}

// CacheWriteFailed counts a cache write that failed with a disk error of
// kind (one of DiskErrorKinds; others count as "other") and marks the
// cache as failing with it.
func (m *Metrics) CacheWriteFailed(kind string) {
	if m == nil {
		return
	}
	if !slices.Contains(DiskErrorKinds, kind) {
		kind = "other"
	}
	m.disk.writeErrors.WithLabelValues(kind).Inc()
	for _, k := range DiskErrorKinds {
		v := 0.0
		if k == kind {
			v = 1
		}
		m.disk.writeFailing.WithLabelValues(k).Set(v)
	}
}

// CacheWriteRecovered marks the cache as writing again.
func (m *Metrics) CacheWriteRecovered() {
	if m == nil {
		return
	}
	for _, k := range DiskErrorKinds {
		m.disk.writeFailing.WithLabelValues(k).Set(0)
	}
}
