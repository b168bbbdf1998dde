package actors

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestWriterDiskFaults runs the fleet while the cache's disk fails, one row
// per fault kind (cache.Faults under the real file system): while the
// fault lasts, queries keep being answered from memory, no cutoff
// advances, and WriterFailure, Readiness (/readyz) and the metrics say the
// cache is failing and why, logged once; a slow fsync is only logged with
// its duration. Once the disk is back the cache catches up with the fleet,
// nothing lost, and says so once.
func TestWriterDiskFaults(t *testing.T) {
	rows := []struct {
		fault cache.DiskFault
		kind  string // metrics and DiskErrorKind; "" for a fault that fails nothing
	}{
		{fault: cache.FaultNoSpace, kind: cache.DiskNoSpace},
		{fault: cache.FaultIO, kind: cache.DiskIO},
		{fault: cache.FaultReadOnly, kind: cache.DiskReadOnly},
		{fault: cache.FaultSlowSync},
	}
	for _, row := range rows {
		t.Run(row.fault.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testWriterDiskFault(t, row.fault, row.kind) })
		})
	}
}

func testWriterDiskFault(t *testing.T, fault cache.DiskFault, kind string) {
	faults := &cache.Faults{}
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	opts := Options{
		Metrics:     metrics.New(reg),
		Logger:      zerolog.New(logs),
		restartBase: 100 * time.Millisecond,
		restartMax:  20 * time.Second,
	}
	opts.CacheOptions.Faults = faults
	h := newHarness(t, sim.Config{Seed: 21, PVEClusters: 1, PBSServers: 1, TaskRate: 12, IndexSize: 100}, opts)
	h.start()
	time.Sleep(2 * time.Minute) // backfill
	synctest.Wait()
	h.refresh()
	before := h.sys.Snapshot()
	cutoffs := allCutoffs(before)
	if len(cutoffs) == 0 {
		t.Fatal("no cutoffs after the backfill")
	}

	faults.Set(fault)
	time.Sleep(4 * time.Minute) // ticks and polls meet the fault; tasks start on the fleet
	synctest.Wait()
	if kind == "" {
		if err := h.sys.NotReady(); err != nil {
			t.Fatalf("Readiness during %s: %v, want ready", fault, err)
		}
		if n := gathered(t, reg, "taskfleet_cache_slow_fsyncs_total", ""); n == 0 {
			t.Error("taskfleet_cache_slow_fsyncs_total is 0 during slow fsyncs")
		}
		if !strings.Contains(logs.String(), `"message":"slow fdatasync"`) || !strings.Contains(logs.String(), `"duration_ms":2000`) {
			t.Errorf("no slow fdatasync logged with duration_ms 2000; log:\n%s", tail(logs.String(), 3000))
		}
	} else {
		// Answered from memory, cutoffs held.
		page, err := h.sys.Tasks(task.Filter{})
		if err != nil || page.Total < before.Len() {
			t.Fatalf("query during %s: %d tasks, %v; want at least %d", fault, page.Total, err, before.Len())
		}
		for k, c := range allCutoffs(h.sys.Snapshot()) {
			if old, ok := cutoffs[k]; !ok || c != old {
				t.Errorf("cutoff of %s is %d during %s, was %d (known %v)", k, c, fault, old, ok)
			}
		}
		// Failing, and why.
		err = h.sys.NotReady()
		if err == nil || !strings.Contains(err.Error(), faultErrno(fault)) {
			t.Errorf("Readiness during %s: %v, want an error naming %q", fault, err, faultErrno(fault))
		}
		if err := h.sys.WriterFailure(); err == nil {
			t.Errorf("WriterFailure nil during %s", fault)
		}
		if v := gathered(t, reg, "taskfleet_cache_write_failing", kind); v != 1 {
			t.Errorf("taskfleet_cache_write_failing{kind=%q} = %v during %s, want 1", kind, v, fault)
		}
		if v := gathered(t, reg, "taskfleet_cache_write_errors_total", kind); v == 0 {
			t.Errorf("taskfleet_cache_write_errors_total{kind=%q} = 0 during %s", kind, fault)
		}
		if n := strings.Count(logs.String(), "cache writes failing"); n != 1 {
			t.Errorf("%d log lines say the cache writes fail, want 1 (the transition)", n)
		}
		if faults.Count(fault) == 0 {
			t.Fatalf("no %s injected", fault)
		}
	}

	t.Logf("%s: %d file operations met it; %d failed cache writes", fault, faults.Count(fault), int(gathered(t, reg, "taskfleet_cache_write_errors_total", kind)))

	// The disk is back: the fleet is caught up, nothing lost.
	faults.Set(cache.FaultNone)
	time.Sleep(6 * time.Minute) // the writer's and the pollers' backoffs expire
	synctest.Wait()
	h.freeze()
	time.Sleep(time.Minute)
	h.refresh()
	if d := h.check(); d != "" {
		t.Errorf("after %s: %s", fault, d)
	}
	if err := h.sys.NotReady(); err != nil {
		t.Errorf("Readiness after %s: %v", fault, err)
	}
	for _, k := range metrics.DiskErrorKinds {
		if v := gathered(t, reg, "taskfleet_cache_write_failing", k); v != 0 {
			t.Errorf("taskfleet_cache_write_failing{kind=%q} = %v after %s, want 0", k, v, fault)
		}
	}
	if kind != "" {
		if n := strings.Count(logs.String(), "cache writes recovered"); n != 1 {
			t.Errorf("%d log lines say the cache writes recovered, want 1", n)
		}
		advanced := false
		for k, c := range allCutoffs(h.sys.Snapshot()) {
			advanced = advanced || c > cutoffs[k]
		}
		if !advanced {
			t.Error("no cutoff advanced once the disk was back")
		}
	}
	h.stop()
}

// faultErrno is the text of the errno a fault injects.
func faultErrno(f cache.DiskFault) string {
	switch f {
	case cache.FaultNoSpace:
		return "no space left on device"
	case cache.FaultIO:
		return "input/output error"
	case cache.FaultReadOnly:
		return "read-only file system"
	}
	return ""
}

// allCutoffs returns every cutoff of a snapshot by "remote/node".
func allCutoffs(s *cache.Snapshot) map[string]int64 {
	out := map[string]int64{}
	for _, r := range s.Remotes() {
		for _, n := range s.Nodes(r) {
			c, _ := s.Cutoff(r, n)
			out[r+"/"+n] = c
		}
	}
	return out
}

// gathered returns the value of a counter or gauge of reg, the series with
// the given "kind" label ("" for one without labels); 0 when absent.
func gathered(t *testing.T, reg *prometheus.Registry, name, kind string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			k := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					k = l.GetValue()
				}
			}
			if k != kind {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
