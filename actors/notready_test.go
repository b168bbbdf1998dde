package actors

import (
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestNotReadyUntilLoaded holds the cache writer before it opens the cache:
// until then Snapshot is nil, queries return ErrNotReady, Readiness says
// so and the snapshot-age gauge is NaN (not 292 years); once the cache is
// loaded, all of them answer.
func TestNotReadyUntilLoaded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		reg := prometheus.NewRegistry()
		opts := Options{
			Metrics: metrics.New(reg),
			writerHook: func(msg any, _ bool) {
				if _, ok := msg.(*actor.Started); ok {
					<-release
				}
			},
		}
		h := newHarness(t, sim.Config{Seed: 4, PVEClusters: 1, TaskRate: 2}, opts)
		sys, err := Start(h.cfg, h.opts)
		if err != nil {
			t.Fatal(err)
		}
		h.sys = sys
		synctest.Wait()
		if sys.Ready() {
			t.Fatal("ready before the cache was opened")
		}
		if s := sys.Snapshot(); s != nil {
			t.Errorf("Snapshot before the cache was loaded = %v, want nil", s)
		}
		if _, err := sys.Tasks(task.Filter{}); !errors.Is(err, ErrNotReady) {
			t.Errorf("Tasks before the cache was loaded: %v, want ErrNotReady", err)
		}
		if _, err := sys.Statistics(task.Filter{}); !errors.Is(err, ErrNotReady) {
			t.Errorf("Statistics before the cache was loaded: %v, want ErrNotReady", err)
		}
		if err := sys.NotReady(); !errors.Is(err, ErrNotReady) {
			t.Errorf("Readiness before the cache was loaded: %v, want ErrNotReady", err)
		}
		if age := snapshotAge(t, reg); !math.IsNaN(age) {
			t.Errorf("taskfleet_snapshot_age_seconds before the first snapshot = %v, want NaN", age)
		}

		close(release)
		for !sys.Ready() {
			time.Sleep(time.Millisecond)
		}
		if sys.Snapshot() == nil {
			t.Fatal("Snapshot nil once ready")
		}
		if _, err := sys.Tasks(task.Filter{}); err != nil {
			t.Errorf("Tasks once ready: %v", err)
		}
		if err := sys.NotReady(); err != nil {
			t.Errorf("Readiness once ready: %v", err)
		}
		time.Sleep(3 * time.Second)
		if age := snapshotAge(t, reg); math.IsNaN(age) || age < 0 || age > 60 {
			t.Errorf("taskfleet_snapshot_age_seconds once loaded = %v, want a few seconds", age)
		}
		h.stop()
	})
}

// snapshotAge returns taskfleet_snapshot_age_seconds from reg.
func snapshotAge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "taskfleet_snapshot_age_seconds" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no taskfleet_snapshot_age_seconds")
	return 0
}
