package actors

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
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
		{"list just under the maximum age", guestListState{at: now.Add(-guestListMaxAge + time.Second)}, true, false},
		{"list at the maximum age", guestListState{at: now.Add(-guestListMaxAge)}, true, true},
	}
	for _, tc := range cases {
		if got := tc.st.due(tc.full, now); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}

	ended := func(typ string, end int64) task.Task {
		return task.Task{UPID: task.UPID{Kind: task.PVE, Node: "n1", Type: typ, ID: "100", StartTime: 1}, EndTime: end, Status: "OK"}
	}
	running := task.Task{UPID: task.UPID{Kind: task.PVE, Node: "n1", Type: "qmigrate", ID: "101", StartTime: 1}}
	steps := []struct {
		name    string
		tasks   []task.Task
		fetched bool
		stale   bool
	}{
		{"tasks that change no guest", []task.Task{ended("qmstart", 10), ended("vzdump", 11)}, false, false},
		{"a migration still running", []task.Task{running}, false, false},
		{"a qmcreate ended", []task.Task{ended("qmstart", 12), ended("qmcreate", 20)}, false, true},
		{"a list fetched", []task.Task{ended("qmcreate", 20)}, true, false},
		{"the qmcreate listed again", []task.Task{ended("qmcreate", 20)}, false, false},
		{"the migration ended", []task.Task{ended("qmigrate", 30)}, false, true},
	}
	var g guestListState
	for _, s := range steps {
		g.applied(s.tasks, s.fetched, now)
		if g.stale != s.stale {
			t.Errorf("%s: stale = %v, want %v", s.name, g.stale, s.stale)
		}
		if s.fetched && !g.at.Equal(now) {
			t.Errorf("%s: list at %v, want %v", s.name, g.at, now)
		}
	}
}

// TestGuestListFetchedWhenChanged checks against the simulator that a
// quiet cluster's full refreshes skip the guest list, and that a task that
// creates a guest makes the next full refresh fetch it, once.
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
			for full := 0; full < n; {
				c := refreshCost(h, remote)
				if c.NodeList == 1 {
					full++
				}
				lists += c.ClusterResources
			}
			return lists
		}
		if n := fullRefreshes(2); n != 0 {
			t.Errorf("two full refreshes of a quiet cluster asked for %d guest lists, want 0", n)
		}
		h.fleet.StartTask(remote, node, "qmcreate", "150", time.Second)
		h.thaw()
		time.Sleep(2 * time.Second)
		h.freeze()
		if n := fullRefreshes(1); n != 1 {
			t.Errorf("the full refresh after a qmcreate task asked for %d guest lists, want 1", n)
		}
		if n := fullRefreshes(1); n != 0 {
			t.Errorf("the full refresh after that asked for %d guest lists, want 0", n)
		}
		h.stop()
	})
}
