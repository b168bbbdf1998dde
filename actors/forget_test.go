package actors

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/sim"
)

// TestRemovedRemoteMetricsForgotten removes a remote by a reload: once its
// poller is gone, no metric series names it any more.
func TestRemovedRemoteMetricsForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		h := newHarness(t, sim.Config{Seed: 17, PVEClusters: 2, TaskRate: 2}, Options{Metrics: metrics.New(reg)})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		gone := h.cfg.Remotes[0].ID
		if n := seriesOf(t, reg, gone); n == 0 {
			t.Fatalf("no metric series of %s after a minute of polling", gone)
		}
		next := *h.cfg
		next.Remotes = h.cfg.Remotes[1:]
		if _, _, _, err := h.sys.Reload(context.Background(), &next); err != nil {
			t.Fatal(err)
		}
		time.Sleep(h.cfg.Polling.Tick)
		synctest.Wait()
		if n := seriesOf(t, reg, gone); n != 0 {
			t.Errorf("%d metric series still name the removed remote %s", n, gone)
		}
		if n := seriesOf(t, reg, h.cfg.Remotes[1].ID); n == 0 {
			t.Errorf("the kept remote's series were forgotten too")
		}
		h.stop()
	})
}

// seriesOf counts the series of reg labelled remote=id.
func seriesOf(t *testing.T, reg *prometheus.Registry, id string) int {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "remote" && l.GetValue() == id {
					n++
				}
			}
		}
	}
	return n
}
