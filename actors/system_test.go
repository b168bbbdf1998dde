package actors

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestFleet200 is the acceptance test of the actor system: 200 remotes
// backfilled to the fleet's ground truth, a tracked task visible within one
// tick of finishing, a foreign one after its remote's next refresh. Under
// the race detector it runs 10 remotes: the detector's cost grows with the
// remotes (100 s for 200), what it can find (the same poller code on
// more goroutines) does not; the 200 are checked without it.
func TestFleet200(t *testing.T) {
	if testing.Short() {
		t.Skip("200 remotes")
	}
	pveClusters, pbsServers := 170, 30
	if raceEnabled {
		pveClusters, pbsServers = 8, 2
	}
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 200, PVEClusters: pveClusters, PBSServers: pbsServers, TaskRate: 1, IndexSize: 400}, Options{})
		h.freeze()
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		if d := h.check(); d != "" {
			t.Fatalf("cache after backfill: %s", d)
		}
		h.thaw()
		for _, hl := range h.sys.Remotes() {
			if hl.State != StateUp {
				t.Errorf("remote %s: state %s, error %q", hl.Remote, hl.State, hl.LastError)
			}
		}

		// A tracked task: visible as finished within one tick of finishing.
		var pve []sim.Remote
		for _, r := range h.fleet.Remotes() {
			if r.Kind == task.PVE {
				pve = append(pve, r)
			}
		}
		r := pve[7]
		upid := h.fleet.StartTask(r.ID, r.Nodes[1], "qmstart", "4242", 25*time.Second)
		if err := h.sys.Track(context.Background(), r.ID, upid); err != nil {
			t.Fatal(err)
		}
		finish := time.Unix(upid.StartTime+25, 0)
		time.Sleep(time.Until(finish) + h.cfg.Polling.Tick)
		synctest.Wait()
		if got := find(h.sys, r.ID, upid); got == nil || got.Running() {
			t.Fatalf("tracked task %s one tick after it finished: %+v", upid, got)
		}
		if tr := h.sys.Snapshot().Tracked(r.ID); len(tr) != 0 {
			t.Errorf("still tracked after finishing: %v", tr)
		}

		// A foreign task: visible after the remote's next refresh.
		r = pve[min(42, len(pve)-1)]
		upid = h.fleet.StartTask(r.ID, r.Nodes[0], "vzdump", "777", 5*time.Second)
		time.Sleep(h.cfg.Polling.RefreshInterval + h.cfg.Polling.Tick)
		synctest.Wait()
		if got := find(h.sys, r.ID, upid); got == nil || got.Running() {
			t.Fatalf("foreign task %s after a refresh interval: %+v", upid, got)
		}
		h.freeze()
		h.refresh()
		if d := h.check(); d != "" {
			t.Errorf("cache after a refresh interval and a refresh: %s", d)
		}
		h.stop()
	})
}

func find(s *Service, remote string, upid task.UPID) *task.Task {
	for _, t := range s.Snapshot().Query(task.Filter{Remote: remote}).Tasks {
		if t.UPID == upid {
			return &t
		}
	}
	return nil
}

// TestScheduleOverADay checks that no remote is polled more often than
// planned: one full refresh (one node list) per refresh interval. It runs
// two virtual hours (12 refresh intervals, 240 running-task checks) of
// two remotes, a day with -soak: its cost is one request per remote and
// running-task check, and the counts it checks are per remote.
func TestScheduleOverADay(t *testing.T) {
	period := 2 * time.Hour
	if *soak {
		period = 24 * time.Hour
	}
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 3, PVEClusters: 2, TaskRate: 2, IndexSize: 50}, Options{})
		h.start()
		time.Sleep(time.Minute) // backfill
		synctest.Wait()
		before := map[string]sim.Stats{}
		for _, r := range h.fleet.Remotes() {
			before[r.ID] = h.fleet.Stats(r.ID)
		}
		time.Sleep(period)
		synctest.Wait()
		want := int64(period / h.cfg.Polling.RefreshInterval)
		for _, r := range h.fleet.Remotes() {
			after := h.fleet.Stats(r.ID)
			if r.Kind != task.PVE {
				continue
			}
			// Every FullRefreshEvery-th refresh asks the node list; the
			// others, and the running-task checks, ask /cluster/tasks
			// (detect.go), at most once per job.
			full := after.NodeList - before[r.ID].NodeList
			if full < want/FullRefreshEvery || full > want/FullRefreshEvery+1 {
				t.Errorf("remote %s: %d full refreshes in %v, want %d", r.ID, full, period, want/FullRefreshEvery)
			}
			checks := int64(period / RunningCheckInterval)
			if n := after.ClusterTasks - before[r.ID].ClusterTasks; n < want-full || n > want-full+checks {
				t.Errorf("remote %s: %d /cluster/tasks in %v, want %d to %d", r.ID, n, period, want-full, want-full+checks)
			}
			// Lists: one per node and refresh, plus one per node where a
			// running task was seen finishing by the 30 s check.
			lists := after.TaskList - before[r.ID].TaskList
			if max := want*int64(len(r.Nodes)) + (after.TaskStatus - before[r.ID].TaskStatus); lists > max {
				t.Errorf("remote %s: %d task lists in %v, more than %d", r.ID, lists, period, max)
			}
		}
		h.freeze()
		h.refresh()
		if d := h.check(); d != "" {
			t.Errorf("cache after %v: %s", period, d)
		}
		h.stop()
	})
}
