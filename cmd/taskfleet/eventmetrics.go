package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/events"
)

// registerEventMetrics exports the events hub's counters: what it sent,
// who listens, and what overflowed (slow subscribers dropped, publishes
// lost).
func registerEventMetrics(reg prometheus.Registerer, h *events.Hub) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "taskfleet_events_total", Help: "Task change events numbered by the events hub."},
			func() float64 { return float64(h.Stats().Events) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "taskfleet_event_subscribers", Help: "Subscribers of the events hub (event streams, the task-log keeper)."},
			func() float64 { return float64(h.Stats().Subscribers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "taskfleet_event_subscribers_dropped_total", Help: "Event subscribers dropped because their buffer was full (too slow)."},
			func() float64 { return float64(h.Stats().Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "taskfleet_events_lost_total", Help: "Cache publishes the events hub dropped because its inbox was full (subscribers were told to reload)."},
			func() float64 { return float64(h.Stats().Lost) }),
	)
}
