package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recordEdges records one value in every collector of bounds.go.
func recordEdges(m *Metrics, r string) {
	m.QueueDropped(r, "refresh_waiters")
	m.QueueCoalesced(r, "refresh")
	m.QueueCoalescedN(r, "status_checks", 3)
	m.QueueHighWater(r, "refresh_waiters", 64)
	m.TasksSettled(r, "no such node", 2)
	m.TrackingEnded(r, "no such task")
	m.MalformedItems(r, 2)
	m.StatusCheckFailed(r, 1)
	m.SetClockSkew(r, -2*time.Hour)
	m.CutoffPulledBack(r)
}

func TestEdges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	recordEdges(m, "east")
	recordEdges(m, "west")
	if got := testutil.ToFloat64(m.edges.queueCoalesced.WithLabelValues("east", "status_checks")); got != 3 {
		t.Errorf("status_checks coalesced = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.edges.clockSkew.WithLabelValues("east")); got != -7200 {
		t.Errorf("clock skew = %v, want -7200", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
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
	var nilM *Metrics
	recordEdges(nilM, "r")
}

// TestDocsListEveryMetric keeps docs/api.md in step: every metric has a
// row, and the error kinds of taskfleet_poll_errors_total are ErrorKinds.
func TestDocsListEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := New(reg)
	recordEdges(m, "east")
	m.PollFailed("east", "auth")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.Contains(string(doc), "`"+mf.GetName()+"`") {
			t.Errorf("docs/api.md has no row for %s", mf.GetName())
		}
	}
	row := regexp.MustCompile("(?m)^\\| `taskfleet_poll_errors_total` \\|.*$").FindString(string(doc))
	var kinds []string
	for _, k := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(row, -1)[1:] {
		kinds = append(kinds, k[1])
	}
	if !slices.Equal(kinds, ErrorKinds) {
		t.Errorf("docs/api.md lists the error kinds %v, metrics keeps %v", kinds, ErrorKinds)
	}
}
