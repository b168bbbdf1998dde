package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PollSucceeded counts a successful fetch of remote and marks it up.
func (m *Metrics) PollSucceeded(remote string) {
	if m == nil {
		return
	}
	m.polls.WithLabelValues(remote, "ok").Inc()
	m.remoteUp.WithLabelValues(remote).Set(1)
}

// PollFailed counts a failed fetch of remote with its error kind (one of
// [ErrorKinds]; others count as "other") and marks the remote down.
func (m *Metrics) PollFailed(remote, kind string) {
	if m == nil {
		return
	}
	m.polls.WithLabelValues(remote, "error").Inc()
	m.pollErrors.WithLabelValues(remote, normalizeKind(kind)).Inc()
	m.remoteUp.WithLabelValues(remote).Set(0)
}

// PollDuration records how long a whole fetch of remote took.
func (m *Metrics) PollDuration(remote string, d time.Duration) {
	if m == nil {
		return
	}
	m.pollDuration.WithLabelValues(remote).Observe(d.Seconds())
}

// PollerRestarted counts a restart of remote's poller after a panic.
func (m *Metrics) PollerRestarted(remote string) {
	if m == nil {
		return
	}
	m.pollerRestarts.WithLabelValues(remote).Inc()
}

// ObserveRequest records the duration of one HTTP request to remote.
func (m *Metrics) ObserveRequest(remote string, d time.Duration) {
	if m == nil {
		return
	}
	m.requestDuration.WithLabelValues(remote).Observe(d.Seconds())
}

// TickSkipped counts a tick that was coalesced because remote's previous
// fetch had not finished.
func (m *Metrics) TickSkipped(remote string) {
	if m == nil {
		return
	}
	m.ticksSkipped.WithLabelValues(remote).Inc()
}

// SetConnectionsOpen sets the number of open connections to remote.
func (m *Metrics) SetConnectionsOpen(remote string, n int) {
	if m == nil {
		return
	}
	m.connectionsOpen.WithLabelValues(remote).Set(float64(n))
}

// ConnectionOpened counts a new connection to remote.
func (m *Metrics) ConnectionOpened(remote string) {
	if m == nil {
		return
	}
	m.connectionsNew.WithLabelValues(remote).Inc()
}

// SetBackfill sets the backfill progress: done of total configured remotes
// have completed their initial fetch.
func (m *Metrics) SetBackfill(done, total int) {
	if m == nil {
		return
	}
	m.remotesBackfilled.Set(float64(done))
	m.remotesConfigured.Set(float64(total))
}

// SetSnapshotAgeFunc sets the function that taskfleet_snapshot_age_seconds
// reports at each scrape, typically the time since the cache writer
// published its latest snapshot; f returns false while there is none, and
// the gauge reports NaN then, as it does until f is set. f must be safe for
// concurrent use and fast: it runs inside the scrape.
func (m *Metrics) SetSnapshotAgeFunc(f func() (age time.Duration, ok bool)) {
	if m == nil {
		return
	}
	if f == nil {
		m.snapshotAgeFunc.Store(nil)
		return
	}
	m.snapshotAgeFunc.Store(&f)
}

// ForgetRemote deletes every series of remote, for a remote removed from
// the configuration, so its last values are not exported forever; but
// taskfleet_tasks_finished_total, which its one writer deletes in order
// with its batches (FinishedRecorder.Forget).
func (m *Metrics) ForgetRemote(remote string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"remote": remote}
	m.polls.DeletePartialMatch(l)
	m.pollErrors.DeletePartialMatch(l)
	m.pollDuration.DeletePartialMatch(l)
	m.pollerRestarts.DeletePartialMatch(l)
	m.requestDuration.DeletePartialMatch(l)
	m.ticksSkipped.DeletePartialMatch(l)
	m.connectionsOpen.DeletePartialMatch(l)
	m.connectionsNew.DeletePartialMatch(l)
	m.remoteUp.DeletePartialMatch(l)
	m.edges.forget(l)
}
