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
		// Each step changes the fleet, runs full refreshes and counts the
		// guest lists they ask for. A task, listed again or not, is news
		// once; a list asked for a second after a change may not show it
		// (guestListLag), so the next full refresh asks again.
		steps := []struct {
			name   string
			change func()
			fulls  int
			want   int64
		}{
			{"a quiet cluster", func() {}, 2, 0},
			{"after a qmcreate task", func() {
				h.fleet.StartTask(remote, node, "qmcreate", "150", time.Second)
				h.let(2 * time.Minute)
			}, 1, 1},
			{"after that", func() {}, 1, 0},
			{"a second after a qmconfig task", func() {
				h.fleet.StartTask(remote, node, "qmconfig", "150", time.Second)
				h.let(2 * time.Second)
			}, 1, 1},
			{"two minutes later", func() { h.let(2 * time.Minute) }, 2, 1},
		}
		for _, st := range steps {
			st.change()
			if n := fullRefreshes(st.fulls); n != st.want {
				t.Errorf("%s: %d full refreshes asked for %d guest lists, want %d", st.name, st.fulls, n, st.want)
			}
		}
		h.stop()
	})
}
