package actors

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
)

// fullRefreshesOnly turns change detection off for the test: every
// refresh is a full one, as before change detection existed.
func fullRefreshesOnly(t *testing.T) {
	old := fullRefreshEvery
	fullRefreshEvery = 1
	t.Cleanup(func() { fullRefreshEvery = old })
}

// refreshCost refreshes every remote of h once and returns what remote
// received meanwhile.
func refreshCost(h *harness, remote string) sim.Stats {
	before := h.fleet.Stats(remote)
	h.refresh()
	after := h.fleet.Stats(remote)
	return sim.Stats{
		Requests:         after.Requests - before.Requests,
		NodeList:         after.NodeList - before.NodeList,
		ClusterTasks:     after.ClusterTasks - before.ClusterTasks,
		TaskList:         after.TaskList - before.TaskList,
		ClusterResources: after.ClusterResources - before.ClusterResources,
	}
}

// untilFull refreshes until a refresh is a full one (a node list), so
// that the next FullRefreshEvery-1 refreshes use change detection.
func untilFull(t *testing.T, h *harness, remote string) {
	t.Helper()
	for range FullRefreshEvery {
		if refreshCost(h, remote).NodeList == 1 {
			return
		}
	}
	t.Fatalf("no full refresh in %d refreshes", FullRefreshEvery)
}

// TestDetectQuietCluster: with nothing happening, a refresh of a 3-node
// cluster costs one request (/cluster/tasks), and one refresh in
// FullRefreshEvery is a full one (node list and 3 task lists; the guest
// list of the backup overview only when it may have changed,
// guestlist.go).
func TestDetectQuietCluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 70, PVEClusters: 2, TaskRate: 1, IndexSize: 100}, Options{})
		h.freeze()
		h.start()
		time.Sleep(time.Minute) // backfill
		synctest.Wait()
		drainBackupLogs(t, h) // the backup keeper's log requests come after
		const remote = "pve-c001"
		full := 0
		for i := range 2 * FullRefreshEvery {
			c := refreshCost(h, remote)
			switch {
			case c.Requests == 1 && c.ClusterTasks == 1:
			case c.Requests == 4 && c.NodeList == 1 && c.TaskList == 3:
				full++ // no guest list: the backfill's is fresh (guestlist.go)
			default:
				t.Errorf("refresh %d of a quiet cluster: %+v; want 1 request (/cluster/tasks) or a full refresh of 4", i, c)
			}
		}
		if full != 2 {
			t.Errorf("%d full refreshes in %d, want 2", full, 2*FullRefreshEvery)
		}
		if d := h.check(); d != "" {
			t.Errorf("cache: %s", d)
		}
		h.stop()
	})
}

// TestDetectChangesAgainstGroundTruth changes one node between two
// refreshes in the ways the cluster list must reveal, and checks after
// each detection refresh that the cache matches the fleet and that only
// the changed node was listed.
func TestDetectChangesAgainstGroundTruth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 71, PVEClusters: 2, TaskRate: 0.2, IndexSize: 100}, Options{})
		h.freeze()
		h.start()
		time.Sleep(time.Minute) // backfill
		synctest.Wait()
		const remote, node = "pve-c002", "pve-c002-n2"
		// lists is how many node task lists the refresh after the change
		// needs: none where the cluster list proves it holds every change
		// (they are taken from it), one where it cannot.
		cases := []struct {
			name   string
			lists  int64
			change func()
		}{
			{"a task starts", 0, func() {
				h.fleet.StartTask(remote, node, "qmstart", "101", time.Hour)
			}},
			{"a task starts and ends", 0, func() {
				h.fleet.StartTask(remote, node, "qmstart", "102", 2*time.Second)
				h.let(3 * time.Second)
			}},
			{"the long task ends", 0, func() {
				h.let(time.Hour)
			}},
			{"a busy node overflows the list", 1, func() {
				// 40 tasks end between two looks: more than the 25 the
				// list shows, so the oldest new ones are not in it and no
				// known task anchors it.
				for i := range 40 {
					h.fleet.StartTask(remote, node, "qmigrate", fmt.Sprint(200+i), time.Second)
				}
				h.let(2 * time.Second)
			}},
			{"running tasks fill the list and a short task passes unseen", 1, func() {
				for i := range 30 {
					h.fleet.StartTask(remote, node, "vzdump", fmt.Sprint(300+i), 2*time.Hour)
				}
				if c := refreshCost(h, remote); c.TaskList != 1 {
					t.Errorf("30 new running tasks (no anchor): %+v, want one task list", c)
				}
				h.fleet.StartTask(remote, node, "qmstart", "399", time.Second)
				h.let(2 * time.Second)
			}},
		}
		for _, tc := range cases {
			untilFull(t, h, remote)
			tc.change()
			c := refreshCost(h, remote)
			if c.NodeList != 0 || c.ClusterTasks != 1 || c.TaskList != tc.lists {
				t.Errorf("%s: the refresh cost %+v, want /cluster/tasks and %d task lists", tc.name, c, tc.lists)
			}
			if d := h.check(); d != "" {
				t.Fatalf("%s: the cache after a detection refresh: %s", tc.name, d)
			}
		}
		h.stop()
	})
}

// TestFullRefreshSpread: the first refresh is full, then exactly one in
// every FullRefreshEvery consecutive ones, at a phase that differs between
// remotes.
func TestFullRefreshSpread(t *testing.T) {
	phases := map[uint64]int{}
	for i := range 600 {
		remote := fmt.Sprintf("pve-c%04d", i)
		if !fullRefreshDue(remote, 1) {
			t.Fatalf("%s: first refresh not full", remote)
		}
		for start := uint64(2); start < 40; start++ {
			full := 0
			for n := start; n < start+FullRefreshEvery; n++ {
				if fullRefreshDue(remote, n) {
					full++
					if start == 2 {
						phases[n]++
					}
				}
			}
			if full != 1 {
				t.Fatalf("%s: %d full refreshes among refreshes %d to %d, want 1", remote, full, start, start+FullRefreshEvery-1)
			}
		}
	}
	for n, c := range phases {
		if c < 600/FullRefreshEvery/2 {
			t.Errorf("only %d of 600 remotes have their full refresh at phase %d: not spread", c, n)
		}
	}
}

// TestDetectClockStepBack steps a cluster's clock back an hour: a task
// that then starts and ends has a start time below its node's cutoff, and
// the cluster list must not take it for a known one (an anchor). The
// nodes behind their cutoffs are listed, from a pulled-back cutoff, and
// the cache matches the fleet.
func TestDetectClockStepBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 72, PVEClusters: 1, TaskRate: 1, IndexSize: 100}, Options{})
		h.freeze()
		h.start()
		time.Sleep(time.Minute) // backfill
		synctest.Wait()
		const remote = "pve-c001"
		node := h.fleet.Remotes()[0].Nodes[1]
		untilFull(t, h, remote)
		if err := h.fleet.SetClockOffset(remote, -time.Hour); err != nil {
			t.Fatal(err)
		}
		h.thaw()
		time.Sleep(2 * time.Second) // the step is in force
		h.fleet.StartTask(remote, node, "qmstart", "101", 2*time.Second)
		time.Sleep(3 * time.Second)
		h.freeze()
		c := refreshCost(h, remote)
		if c.NodeList != 0 || c.ClusterTasks != 1 || c.TaskList == 0 {
			t.Errorf("the refresh after the step cost %+v, want /cluster/tasks and the nodes' task lists", c)
		}
		if d := h.check(); d != "" {
			t.Fatalf("the cache after the step: %s", d)
		}
		h.stop()
	})
}
