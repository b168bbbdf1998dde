package notify

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDocsListEveryMetric: docs/api.md has a row for every notify metric.
func TestDocsListEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.sent.WithLabelValues("x")
	m.tasks.WithLabelValues("x")
	m.failures.WithLabelValues("x")
	m.dropped.WithLabelValues("x")
	m.queued.WithLabelValues("x")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 5 {
		t.Fatalf("%d metrics gathered", len(mfs))
	}
	m.Forget("x")
	if after, _ := reg.Gather(); len(after) != 0 {
		t.Errorf("%d metrics left after Forget", len(after))
	}
	for _, mf := range mfs {
		if !strings.Contains(string(doc), "`"+mf.GetName()+"`") {
			t.Errorf("docs/api.md has no row for %s", mf.GetName())
		}
	}
}
