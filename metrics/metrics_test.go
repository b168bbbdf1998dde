package metrics

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPollsAndErrors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.PollSucceeded("east")
	m.PollSucceeded("east")
	m.PollFailed("east", "timeout")
	m.PollFailed("west", "no-such-kind")

	want := `
# HELP taskfleet_polls_total Fetches of a remote's task lists, by result (ok or error).
# TYPE taskfleet_polls_total counter
taskfleet_polls_total{remote="east",result="error"} 1
taskfleet_polls_total{remote="east",result="ok"} 2
taskfleet_polls_total{remote="west",result="error"} 1
# HELP taskfleet_poll_errors_total Failed fetches of a remote, by error kind.
# TYPE taskfleet_poll_errors_total counter
taskfleet_poll_errors_total{kind="other",remote="west"} 1
taskfleet_poll_errors_total{kind="timeout",remote="east"} 1
# HELP taskfleet_remote_up 1 if the remote's last fetch succeeded, 0 if it failed.
# TYPE taskfleet_remote_up gauge
taskfleet_remote_up{remote="east"} 0
taskfleet_remote_up{remote="west"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"taskfleet_polls_total", "taskfleet_poll_errors_total", "taskfleet_remote_up"); err != nil {
		t.Fatal(err)
	}
	m.PollSucceeded("west")
	if got := testutil.ToFloat64(m.remoteUp.WithLabelValues("west")); got != 1 {
		t.Errorf("remote_up{west} after success = %v, want 1", got)
	}
}

func TestEveryErrorKindIsKept(t *testing.T) {
	m := New(nil)
	for _, k := range ErrorKinds {
		m.PollFailed("r", k)
	}
	for _, k := range ErrorKinds {
		if got := testutil.ToFloat64(m.pollErrors.WithLabelValues("r", k)); got != 1 {
			t.Errorf("poll_errors_total{kind=%q} = %v, want 1", k, got)
		}
	}
}

func TestGaugesAndCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.ObserveRequest("east", 300*time.Millisecond)
	m.ObserveRequest("east", 2*time.Second)
	m.TickSkipped("east")
	m.SetConnectionsOpen("east", 3)
	m.ConnectionOpened("east")
	m.PollerRestarted("east")
	m.ObserveCache(CacheStats{Tasks: 1234, JournalBytes: 4096, Files: 3, Rotations: 1})
	m.SetBackfill(12, 25)

	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{name: "ticks_skipped", c: m.ticksSkipped.WithLabelValues("east"), want: 1},
		{name: "connections_open", c: m.connectionsOpen.WithLabelValues("east"), want: 3},
		{name: "connections_new", c: m.connectionsNew.WithLabelValues("east"), want: 1},
		{name: "poller_restarts", c: m.pollerRestarts.WithLabelValues("east"), want: 1},
		{name: "tasks_cached", c: m.tasksCached, want: 1234},
		{name: "journal_size_bytes", c: m.journalBytes, want: 4096},
		{name: "cache_files", c: m.cacheFiles, want: 3},
		{name: "rotations", c: m.rotations, want: 1},
		{name: "remotes_backfilled", c: m.remotesBackfilled, want: 12},
		{name: "remotes_configured", c: m.remotesConfigured, want: 25},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requestDuration, "taskfleet_request_duration_seconds"); n != 1 {
		t.Errorf("request_duration series = %d, want 1", n)
	}
	want := `
# HELP taskfleet_request_duration_seconds Duration of HTTP requests to a remote.
# TYPE taskfleet_request_duration_seconds histogram
taskfleet_request_duration_seconds_bucket{remote="east",le="0.01"} 0
taskfleet_request_duration_seconds_bucket{remote="east",le="0.025"} 0
taskfleet_request_duration_seconds_bucket{remote="east",le="0.05"} 0
taskfleet_request_duration_seconds_bucket{remote="east",le="0.1"} 0
taskfleet_request_duration_seconds_bucket{remote="east",le="0.25"} 0
taskfleet_request_duration_seconds_bucket{remote="east",le="0.5"} 1
taskfleet_request_duration_seconds_bucket{remote="east",le="1"} 1
taskfleet_request_duration_seconds_bucket{remote="east",le="2.5"} 2
taskfleet_request_duration_seconds_bucket{remote="east",le="5"} 2
taskfleet_request_duration_seconds_bucket{remote="east",le="10"} 2
taskfleet_request_duration_seconds_bucket{remote="east",le="30"} 2
taskfleet_request_duration_seconds_bucket{remote="east",le="60"} 2
taskfleet_request_duration_seconds_bucket{remote="east",le="+Inf"} 2
taskfleet_request_duration_seconds_sum{remote="east"} 2.3
taskfleet_request_duration_seconds_count{remote="east"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "taskfleet_request_duration_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotAge(t *testing.T) {
	m := New(nil)
	if got := testutil.ToFloat64(m.snapshotAge); !math.IsNaN(got) {
		t.Errorf("snapshot_age_seconds before SetSnapshotAgeFunc = %v, want NaN", got)
	}
	m.SetSnapshotAgeFunc(func() (time.Duration, bool) { return 90 * time.Second, true })
	if got := testutil.ToFloat64(m.snapshotAge); got != 90 {
		t.Errorf("snapshot_age_seconds = %v, want 90", got)
	}
	m.SetSnapshotAgeFunc(func() (time.Duration, bool) { return 0, false })
	if got := testutil.ToFloat64(m.snapshotAge); !math.IsNaN(got) {
		t.Errorf("snapshot_age_seconds without a snapshot = %v, want NaN", got)
	}
	m.SetSnapshotAgeFunc(nil)
	if got := testutil.ToFloat64(m.snapshotAge); !math.IsNaN(got) {
		t.Errorf("snapshot_age_seconds after reset = %v, want NaN", got)
	}
}

func TestForgetRemote(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	for _, r := range []string{"east", "west"} {
		m.PollSucceeded(r)
		m.PollFailed(r, "auth")
		m.ObserveRequest(r, time.Second)
		m.PollDuration(r, time.Second)
		m.PollerRestarted(r)
		m.TickSkipped(r)
		m.SetConnectionsOpen(r, 1)
		m.ConnectionOpened(r)
	}
	m.ForgetRemote("east")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "remote" && l.GetValue() == "east" {
					t.Errorf("%s still has a series for the forgotten remote", mf.GetName())
				}
			}
		}
	}
	if n := testutil.CollectAndCount(m.polls); n != 2 {
		t.Errorf("polls_total series after forgetting east = %d, want 2 (west ok and error)", n)
	}
}

func TestLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.PollSucceeded("east")
	m.PollFailed("east", "auth")
	m.ObserveRequest("east", time.Second)
	m.PollDuration("east", time.Second)
	m.PollerRestarted("east")
	m.TickSkipped("east")
	m.SetConnectionsOpen("east", 1)
	m.ConnectionOpened("east")
	m.ObserveCache(CacheStats{Tasks: 1, Rotations: 1, Corruptions: 1})
	m.SetBackfill(1, 2)
	m.SetSnapshotAgeFunc(func() (time.Duration, bool) { return time.Second, true })
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestNilMetricsIsNoop(t *testing.T) {
	var m *Metrics
	m.PollSucceeded("r")
	m.PollFailed("r", "auth")
	m.ObserveRequest("r", time.Second)
	m.TickSkipped("r")
	m.SetConnectionsOpen("r", 1)
	m.ConnectionOpened("r")
	m.PollDuration("r", time.Second)
	m.PollerRestarted("r")
	m.ObserveCache(CacheStats{Tasks: 1})
	m.SetBackfill(1, 2)
	m.SetSnapshotAgeFunc(func() (time.Duration, bool) { return 0, true })
	m.ForgetRemote("r")
}

func TestDoubleRegistrationPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry did not panic")
		}
	}()
	New(reg)
}

// TestObserveCacheCounters checks that cumulative cache counters advance
// the Prometheus counters by their growth, also across a writer restart.
func TestObserveCacheCounters(t *testing.T) {
	m := New(nil)
	steps := []struct {
		rotations, corruptions int64
		wantRot, wantCorrupt   float64
	}{
		{rotations: 0, corruptions: 0, wantRot: 0, wantCorrupt: 0},
		{rotations: 2, corruptions: 1, wantRot: 2, wantCorrupt: 1},
		{rotations: 2, corruptions: 1, wantRot: 2, wantCorrupt: 1}, // no change
		{rotations: 5, corruptions: 1, wantRot: 5, wantCorrupt: 1},
		{rotations: 1, corruptions: 0, wantRot: 6, wantCorrupt: 1}, // writer restarted
		{rotations: 3, corruptions: 2, wantRot: 8, wantCorrupt: 3},
	}
	for i, s := range steps {
		m.ObserveCache(CacheStats{Tasks: i, Rotations: s.rotations, Corruptions: s.corruptions})
		if got := testutil.ToFloat64(m.rotations); got != s.wantRot {
			t.Errorf("step %d: rotations_total = %v, want %v", i, got, s.wantRot)
		}
		if got := testutil.ToFloat64(m.corruptions); got != s.wantCorrupt {
			t.Errorf("step %d: cache_corruptions_total = %v, want %v", i, got, s.wantCorrupt)
		}
		if got := testutil.ToFloat64(m.tasksCached); got != float64(i) {
			t.Errorf("step %d: tasks_cached = %v, want %d", i, got, i)
		}
	}
}

func TestPollDuration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.PollDuration("east", 2*time.Second)
	m.PollDuration("east", 4*time.Second)
	want := `
# HELP taskfleet_poll_duration_seconds Duration of a whole fetch of a remote (all its requests).
# TYPE taskfleet_poll_duration_seconds summary
taskfleet_poll_duration_seconds_sum{remote="east"} 6
taskfleet_poll_duration_seconds_count{remote="east"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "taskfleet_poll_duration_seconds"); err != nil {
		t.Fatal(err)
	}
}
