package notify

import (
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testutilDropped returns the dropped counter of target.
func testutilDropped(m *Metrics, target string) float64 {
	return testutil.ToFloat64(m.dropped.WithLabelValues(target))
}
