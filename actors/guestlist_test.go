package actors

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
)

// TestGuestListDue is the rule of guestlist.go, case by case.
func TestGuestListDue(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	fresh := guestListState{at: now.Add(-time.Hour)}
	cases := []struct {
		name string
		st   guestListState
		full bool
		want bool
	}{
		{"no list yet, full refresh", guestListState{}, true, true},
		{"no list yet, refresh", guestListState{}, false, false},
		{"fresh list", fresh, true, false},
		{"fresh list, a guest changed", guestListState{at: fresh.at, stale: true}, true, true},
		{"a guest changed, refresh", guestListState{at: fresh.at, stale: true}, false, false},
		{"list under the maximum age less the slack", guestListState{at: now.Add(-guestListMaxAge + guestListSlack + time.Second)}, true, false},
		{"list at the maximum age less the slack", guestListState{at: now.Add(-guestListMaxAge + guestListSlack)}, true, true},
	}
	for _, tc := range cases {
		if got := tc.st.due(tc.full, now); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}

	start := now.Add(-time.Minute)
	steps := []struct {
		name             string
		changed, fetched bool
		stale            bool
	}{
		{"nothing changed", false, false, false},
		{"a guest changed", true, false, true},
		{"nothing changed since", false, false, true},
		{"a list fetched", false, true, false},
		{"a list fetched just after a change", true, true, true},
		{"a list fetched again", false, true, false},
	}
	var g guestListState
	for _, st := range steps {
		g.finished(0, st.changed, st.fetched, start)
		if g.stale != st.stale {
			t.Errorf("%s: stale = %v, want %v", st.name, g.stale, st.stale)
		}
		if st.fetched && !g.at.Equal(start) {
			t.Errorf("%s: list at %v, want the poll's start %v", st.name, g.at, start)
		}
	}
}

// TestGuestListFetchedWhenChanged checks against the simulator that a
// quiet cluster's full refreshes skip the guest list, that a task that
// creates a guest makes the next full refresh fetch it, once, and that a
// list asked for less than guestListLag after such a task is asked for
// again.
func TestGuestListFetchedWhenChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 72, PVEClusters: 1, TaskRate: 1, IndexSize: 100}, Options{})
		h.freeze()
		h.start()
		time.Sleep(time.Minute) // backfill: the first refresh fetches the list
		synctest.Wait()
		drainBackupLogs(t, h)
		const remote, node = "pve-c001", "pve-c001-n1"
		if n := h.fleet.Stats(remote).ClusterResources; n != 1 {
			t.Fatalf("%d guest lists after the backfill, want 1", n)
		}
		// fullRefreshes refreshes until n full refreshes (node lists) have
		// run and returns the guest lists they asked for.
		fullRefreshes := func(n int) (lists int64) {
			t.Helper()
			for i, full := 0, 0; full < n; i++ {
				if i == (n+1)*FullRefreshEvery {
					t.Fatalf("%d full refreshes in %d refreshes, want %d", full, i, n)
				}
				c := refreshCost(h, remote)
				if c.NodeList == 1 {
					full++
				}
				lists += c.ClusterResources
			}
			return lists
		}
		let := func(d time.Duration) { // the fleet's clock runs for d
			h.thaw()
			time.Sleep(d)
			h.freeze()
		}
		if n := fullRefreshes(2); n != 0 {
			t.Errorf("two full refreshes of a quiet cluster asked for %d guest lists, want 0", n)
		}
		// A guest created: the next full refresh asks, the one after not
		// (the task, listed again or not, is no news).
		h.fleet.StartTask(remote, node, "qmcreate", "150", time.Second)
		let(2 * time.Minute)
		if n := fullRefreshes(1); n != 1 {
			t.Errorf("the full refresh after a qmcreate task asked for %d guest lists, want 1", n)
		}
		if n := fullRefreshes(1); n != 0 {
			t.Errorf("the full refresh after that asked for %d guest lists, want 0", n)
		}
		// A guest reconfigured a second before the list: the list may not
		// show it yet, so the next full refresh asks again.
		h.fleet.StartTask(remote, node, "qmconfig", "150", time.Second)
		let(2 * time.Second)
		if n := fullRefreshes(1); n != 1 {
			t.Errorf("the full refresh just after a qmconfig task asked for %d guest lists, want 1", n)
		}
		let(2 * time.Minute)
		if n := fullRefreshes(2); n != 1 {
			t.Errorf("the two full refreshes after that asked for %d guest lists, want 1", n)
		}
		h.stop()
	})
}
