package notify

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the notifiers' counters, one series per target (bounded by
// the configuration).
type Metrics struct {
	sent     *prometheus.CounterVec // messages delivered
	tasks    *prometheus.CounterVec // tasks delivered
	failures *prometheus.CounterVec // delivery attempts that failed
	dropped  *prometheus.CounterVec // tasks dropped: queue full
	queued   *prometheus.GaugeVec   // tasks waiting
}

// NewMetrics registers the notifiers' metrics with reg (nil: not
// registered; the counters still count, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taskfleet_notify_messages_sent_total", Help: "Notification messages delivered, per target."}, []string{"target"}),
		tasks:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taskfleet_notify_tasks_sent_total", Help: "Finished tasks delivered in notifications, per target."}, []string{"target"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taskfleet_notify_failures_total", Help: "Notification deliveries that failed (each is retried), per target."}, []string{"target"}),
		dropped:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taskfleet_notify_dropped_total", Help: "Tasks not queued for a notification because the target's queue was full."}, []string{"target"}),
		queued:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "taskfleet_notify_queued", Help: "Tasks waiting for a notification, per target."}, []string{"target"}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.tasks, m.failures, m.dropped, m.queued)
	}
	return m
}

// Forget deletes the series of a target that is no longer configured, so
// that the number of series follows the configuration.
func (m *Metrics) Forget(target string) {
	m.sent.DeleteLabelValues(target)
	m.tasks.DeleteLabelValues(target)
	m.failures.DeleteLabelValues(target)
	m.dropped.DeleteLabelValues(target)
	m.queued.DeleteLabelValues(target)
}
