package actors

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/sim"
)

// TestRestartContinuesFromCutoffs stops and restarts taskfleet on the same
// cache: the second start fetches only what is new since the cutoffs, not
// seven days again.
func TestRestartContinuesFromCutoffs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 11, PVEClusters: 2, PBSServers: 1, TaskRate: 3}, Options{})
		h.freeze()
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		var first int64
		for _, r := range h.fleet.Remotes() {
			first += served(h.fleet.Stats(r.ID))
		}
		h.stop()

		h.thaw()
		time.Sleep(time.Hour) // an hour of new activity while taskfleet is down
		h.freeze()
		var newTasks int
		for _, tk := range h.held() {
			if tk.Running() || tk.UPID.StartTime >= time.Now().Add(-time.Hour-time.Minute).Unix() {
				newTasks++
			}
		}
		before := map[string]int64{}
		for _, r := range h.fleet.Remotes() {
			before[r.ID] = served(h.fleet.Stats(r.ID))
		}
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		var second int64
		for _, r := range h.fleet.Remotes() {
			second += served(h.fleet.Stats(r.ID)) - before[r.ID]
		}
		t.Logf("tasks served: %d by the first start, %d after the restart (%d new or running)", first, second, newTasks)
		if second > int64(newTasks)*2+50 || second >= first/4 {
			t.Errorf("restart fetched %d tasks for %d new ones (first start: %d)", second, newTasks, first)
		}
		if d := h.check(); d != "" {
			t.Errorf("after restart: %s", d)
		}
		h.stop()
	})
}

// served counts the task items of the task lists (those of /cluster/tasks,
// change detection's probe, left out).
func served(st sim.Stats) int64 { return st.TasksServed - st.ClusterTasksServed }

// TestReconfigure removes a remote (its requests stop within a tick, its
// tracked tasks are dropped) and adds one (its requests start within a tick).
func TestReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 13, PVEClusters: 4, TaskRate: 2}, Options{})
		all := h.cfg.Remotes
		h.cfg.Remotes = all[:3]
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()

		gone, added := all[0].ID, all[3]
		upid := h.fleet.StartTask(gone, h.fleet.Remotes()[0].Nodes[0], "qmstart", "100", time.Hour)
		if err := h.sys.Track(context.Background(), gone, upid); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if h.fleet.Stats(added.ID).Requests != 0 {
			t.Fatal("unconfigured remote polled")
		}

		next := *h.cfg
		next.Remotes = append([]config.Remote{}, all[1:]...)
		_, removed, _, err := h.sys.Reload(context.Background(), &next)
		if err != nil {
			t.Fatal(err)
		}
		if len(removed) != 1 || removed[0] != gone {
			t.Fatalf("removed = %v, want [%s]", removed, gone)
		}
		time.Sleep(h.cfg.Polling.Tick)
		synctest.Wait()
		stopped := h.fleet.Stats(gone).Requests
		if h.fleet.Stats(added.ID).Requests == 0 {
			t.Error("added remote not polled within a tick")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := h.fleet.Stats(gone).Requests; n != stopped {
			t.Errorf("removed remote got %d requests after it was removed", n-stopped)
		}
		if tr := h.sys.Snapshot().Tracked(gone); len(tr) != 0 {
			t.Errorf("removed remote still has tracked tasks %v", tr)
		}
		for _, hl := range h.sys.Remotes() {
			if hl.Remote == gone {
				t.Error("removed remote still in health")
			}
		}
		h.stop()
	})
}
