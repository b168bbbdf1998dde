package notify

import (
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testutilCount returns the dropped counter of the target "hook".
func testutilCount(m *Metrics) float64 { return testutilDropped(m, "hook") }

// testutilDropped returns the dropped counter of target.
func testutilDropped(m *Metrics, target string) float64 {
	return testutil.ToFloat64(m.dropped.WithLabelValues(target))
}
