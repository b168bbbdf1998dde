package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// edges holds the collectors of the pollers' bounded lists, of tasks that
// end without a list entry and of remote clocks.
type edges struct {
	queueDropped   *prometheus.CounterVec // remote, queue
	queueCoalesced *prometheus.CounterVec // remote, queue
	queueHighWater *prometheus.GaugeVec   // remote, queue
	tasksSettled   *prometheus.CounterVec // remote, reason
	trackingEnded  *prometheus.CounterVec // remote, reason
	malformedItems *prometheus.CounterVec // remote
	checkErrors    *prometheus.CounterVec // remote
	clockSkew      *prometheus.GaugeVec   // remote
	cutoffsPulled  *prometheus.CounterVec // remote
	backupLogs     *prometheus.CounterVec // remote
}

func newEdges() edges {
	remote := []string{"remote"}
	return edges{
		queueDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "queue_dropped_total",
			Help: "Entries refused by a full bounded list (refresh_waiters: answered with an error at once).",
		}, []string{"remote", "queue"}),
		queueCoalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "queue_coalesced_total",
			Help: "Entries merged into one already queued (refresh) or left for a later turn (status_checks).",
		}, []string{"remote", "queue"}),
		queueHighWater: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "queue_high_water",
			Help: "Largest length a bounded list of a poller reached since start.",
		}, []string{"remote", "queue"}),
		tasksSettled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tasks_settled_total",
			Help: "Running tasks settled with status unknown because their node or log is gone.",
		}, []string{"remote", "reason"}),
		trackingEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tracking_ended_total",
			Help: "Tracked tasks no longer tracked, by reason.",
		}, []string{"remote", "reason"}),
		malformedItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "malformed_items_total",
			Help: "Malformed task list items skipped.",
		}, remote),
		checkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "status_check_errors_total",
			Help: "Task status requests that failed (they do not change the remote's health).",
		}, remote),
		clockSkew: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "clock_skew_seconds",
			Help: "The remote's clock minus ours, from its Date header.",
		}, remote),
		cutoffsPulled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cutoffs_pulled_back_total",
			Help: "Times a node's cutoff was found ahead of its clock (a clock stepped back) and pulled back.",
		}, remote),
		backupLogs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "backup_job_logs_dropped_total",
			Help: "Parsed vzdump job logs the backup keeper dropped, oldest first, beyond the bound it keeps per remote.",
		}, remote),
	}
}

func (e *edges) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.queueDropped, e.queueCoalesced, e.queueHighWater, e.tasksSettled,
		e.trackingEnded, e.malformedItems, e.checkErrors, e.clockSkew, e.cutoffsPulled, e.backupLogs}
}

func (e *edges) forget(l prometheus.Labels) {
	e.queueDropped.DeletePartialMatch(l)
	e.queueCoalesced.DeletePartialMatch(l)
	e.queueHighWater.DeletePartialMatch(l)
	e.tasksSettled.DeletePartialMatch(l)
	e.trackingEnded.DeletePartialMatch(l)
	e.malformedItems.DeletePartialMatch(l)
	e.checkErrors.DeletePartialMatch(l)
	e.clockSkew.DeletePartialMatch(l)
	e.cutoffsPulled.DeletePartialMatch(l)
	e.backupLogs.DeletePartialMatch(l)
}

// QueueDropped counts an entry refused by a full bounded list of remote.
func (m *Metrics) QueueDropped(remote, queue string) {
	if m == nil {
		return
	}
	m.edges.queueDropped.WithLabelValues(remote, queue).Inc()
}

// QueueCoalesced counts an entry merged into one already queued.
func (m *Metrics) QueueCoalesced(remote, queue string) { m.QueueCoalescedN(remote, queue, 1) }

// QueueCoalescedN counts n entries merged or left for a later turn.
func (m *Metrics) QueueCoalescedN(remote, queue string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.edges.queueCoalesced.WithLabelValues(remote, queue).Add(float64(n))
}

// QueueHighWater sets the high-water mark of a bounded list of remote.
func (m *Metrics) QueueHighWater(remote, queue string, n int) {
	if m == nil {
		return
	}
	m.edges.queueHighWater.WithLabelValues(remote, queue).Set(float64(n))
}

// TasksSettled counts n running tasks settled as unknown, by reason
// ("no such task", "no such node").
func (m *Metrics) TasksSettled(remote, reason string, n int) {
	if m == nil {
		return
	}
	m.edges.tasksSettled.WithLabelValues(remote, reason).Add(float64(n))
}

// TrackingEnded counts a tracked task no longer tracked, by reason.
func (m *Metrics) TrackingEnded(remote, reason string) {
	if m == nil {
		return
	}
	m.edges.trackingEnded.WithLabelValues(remote, reason).Inc()
}

// MalformedItems counts n malformed list items skipped.
func (m *Metrics) MalformedItems(remote string, n int) {
	if m == nil {
		return
	}
	m.edges.malformedItems.WithLabelValues(remote).Add(float64(n))
}

// StatusCheckFailed counts n failed task status requests.
func (m *Metrics) StatusCheckFailed(remote string, n int) {
	if m == nil {
		return
	}
	m.edges.checkErrors.WithLabelValues(remote).Add(float64(n))
}

// SetClockSkew sets how far the remote's clock is ahead of ours.
func (m *Metrics) SetClockSkew(remote string, d time.Duration) {
	if m == nil {
		return
	}
	m.edges.clockSkew.WithLabelValues(remote).Set(d.Seconds())
}

// CutoffPulledBack counts a cutoff found ahead of its node's clock.
func (m *Metrics) CutoffPulledBack(remote string) {
	if m == nil {
		return
	}
	m.edges.cutoffsPulled.WithLabelValues(remote).Inc()
}

// BackupJobLogsDropped counts n parsed job logs of remote that the backup
// keeper dropped beyond its bound.
func (m *Metrics) BackupJobLogsDropped(remote string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.edges.backupLogs.WithLabelValues(remote).Add(float64(n))
}
