package actors

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/sim"
)

// TestDegradedRemoteKeepsItsSchedule fails one node of a cluster for
// good: the remote is degraded, and its task lists are refreshed on its
// schedule, not again at once after each degraded refresh (which would
// refetch without pause and, in a synctest bubble, stop the clock). The
// cluster list shows the node's tasks meanwhile (change detection): the
// failing node is found by the next full refresh, and from then on listed
// on every refresh, so the remote stays degraded.
func TestDegradedRemoteKeepsItsSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var refreshes atomic.Int64
		const limit = 50 // far above the schedule's handful
		h := newHarness(t, sim.Config{Seed: 21, PVEClusters: 1, TaskRate: 2}, Options{
			pollerHook: func(_ string, msg any) {
				if m, ok := msg.(*messages.FetchFinished); ok && m.Refresh {
					if refreshes.Add(1) > limit {
						// Let the virtual clock run, so the test ends
						// and reports instead of hanging.
						time.Sleep(time.Second)
					}
				}
			},
		})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		r := h.fleet.Remotes()[0]
		h.fleet.SetFault(r.ID, r.Nodes[1], sim.Fault{Status: 500})
		refreshes.Store(0)
		span := (FullRefreshEvery + 1) * h.cfg.Polling.RefreshInterval
		time.Sleep(span)
		synctest.Wait()
		if hl := h.healthOf(r.ID); hl.State != StateDegraded {
			t.Errorf("state %q, want %q (last error %q)", hl.State, StateDegraded, hl.LastError)
		}
		want := int64(span/h.cfg.Polling.RefreshInterval) + 2
		if n := refreshes.Load(); n > want {
			t.Errorf("%d refreshes of the degraded remote in %v, want at most %d (refresh interval %v)", n, span, want, h.cfg.Polling.RefreshInterval)
		}
		h.fleet.SetFault(r.ID, r.Nodes[1], sim.Fault{})
		h.stop()
	})
}
