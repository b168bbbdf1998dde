package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestTrackSelfHealing checks track requests: one that cannot be right
// (a node outside the cluster, as the README's example UPID; a UPID of the
// other product; a task in the remote's future; one task more than
// MaxTracked) is refused at once; one for a task the node does not know
// ends tracking within one tick, recorded on the task, with the remote up;
// Untrack stops tracking; and after a restart exactly the tasks still
// tracked are tracked.
func TestTrackSelfHealing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logLines
		h := newHarness(t, sim.Config{Seed: 25, PVEClusters: 2, PBSServers: 1, TaskRate: 6}, Options{Logger: logs.logger()})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		ctx := context.Background()
		var r, pbsRemote sim.Remote
		for _, x := range h.fleet.Remotes() {
			if x.Kind == task.PBS {
				pbsRemote = x
			} else if r.ID == "" {
				r = x
			}
		}
		tracked := func() []task.UPID { return h.sys.Snapshot().Tracked(r.ID) }

		readme, err := task.ParseUPID("UPID:pve1:00001000:00A00000:66000500:vzdump:100:root@pam:")
		if err != nil {
			t.Fatal(err)
		}
		pbs := h.fleet.Truth(pbsRemote.ID)[0].UPID
		future := task.UPID{Kind: task.PVE, Node: r.Nodes[0], PID: 4242, PStart: 1, StartTime: time.Now().Add(time.Hour).Unix(), Type: "qmstart", ID: "100", User: "root@pam"}
		for name, u := range map[string]task.UPID{"node outside the cluster": readme, "pbs upid": pbs, "future": future} {
			if err := h.sys.Track(ctx, r.ID, u); !errors.Is(err, ErrInvalidTrack) {
				t.Errorf("track %s: %v, want ErrInvalidTrack", name, err)
			} else {
				t.Logf("track %s: %v", name, err)
			}
		}

		bogus := task.UPID{Kind: task.PVE, Node: r.Nodes[0], PID: 4242, PStart: 1, StartTime: time.Now().Add(-time.Minute).Unix(), Type: "qmstart", ID: "100", User: "root@pam"}
		if err := h.sys.Track(ctx, r.ID, bogus); err != nil {
			t.Fatalf("track a task the node does not know: %v", err)
		}
		time.Sleep(h.cfg.Polling.Tick)
		synctest.Wait()
		if slices.Contains(tracked(), bogus) {
			t.Errorf("%s still tracked a tick later", bogus)
		}
		if _, ok := h.find(r.ID, bogus); ok {
			t.Errorf("%s is in the cache", bogus)
		}
		hl := h.healthOf(r.ID)
		if hl.State != StateUp || len(hl.TrackingEnded) != 1 || hl.TrackingEnded[0].UPID != bogus.String() || hl.TrackingEnded[0].Reason != EndNoTask {
			t.Errorf("health: state %s, tracking ended %+v; want up and %s: %s", hl.State, hl.TrackingEnded, bogus, EndNoTask)
		}

		// PBS answers a UPID it never ran as "stopped": no list has it, so
		// tracking ends and no task is made up.
		pbsBogus := pbs
		pbsBogus.TaskID += 7919
		pbsBogus.StartTime = time.Now().Add(-time.Minute).Unix()
		if err := h.sys.Track(ctx, pbsRemote.ID, pbsBogus); err != nil {
			t.Fatalf("track a PBS task the server never ran: %v", err)
		}
		time.Sleep(h.cfg.Polling.Tick)
		synctest.Wait()
		if slices.Contains(h.sys.Snapshot().Tracked(pbsRemote.ID), pbsBogus) {
			t.Errorf("%s still tracked a tick later", pbsBogus)
		}
		if tk, ok := h.find(pbsRemote.ID, pbsBogus); ok {
			t.Errorf("%s is in the cache: %+v", pbsBogus, tk)
		}
		if hl := h.healthOf(pbsRemote.ID); hl.State != StateUp || len(hl.TrackingEnded) != 1 {
			t.Errorf("pbs health: state %s, tracking ended %+v", hl.State, hl.TrackingEnded)
		}

		real := h.fleet.StartTask(r.ID, r.Nodes[1], "qmstart", "101", 5*time.Hour)
		if err := h.sys.Track(ctx, r.ID, real); err != nil {
			t.Fatal(err)
		}
		if err := h.sys.Untrack(ctx, r.ID, real); err != nil || slices.Contains(tracked(), real) {
			t.Errorf("untrack: %v, tracked %v", err, tracked())
		}
		if err := h.sys.Untrack(ctx, r.ID, real); !errors.Is(err, ErrNotTracked) {
			t.Errorf("untrack again: %v, want ErrNotTracked", err)
		}
		if err := h.sys.Untrack(ctx, "nope", real); !errors.Is(err, ErrUnknownRemote) {
			t.Errorf("untrack on an unknown remote: %v, want ErrUnknownRemote", err)
		}

		var keep []task.UPID
		for i := range MaxTracked {
			u := h.fleet.StartTask(r.ID, r.Nodes[i%len(r.Nodes)], "qmstart", fmt.Sprint(200+i), 5*time.Hour)
			if err := h.sys.Track(ctx, r.ID, u); err != nil {
				t.Fatalf("track %d: %v", i, err)
			}
			keep = append(keep, u)
		}
		extra := h.fleet.StartTask(r.ID, r.Nodes[0], "qmstart", "300", 5*time.Hour)
		if err := h.sys.Track(ctx, r.ID, extra); !errors.Is(err, ErrInvalidTrack) {
			t.Errorf("track %d: %v, want ErrInvalidTrack", MaxTracked+1, err)
		}
		if err := h.sys.Track(ctx, r.ID, keep[0]); err != nil {
			t.Errorf("tracking a tracked task again: %v", err)
		}
		time.Sleep(3 * h.cfg.Polling.Tick)
		synctest.Wait()

		h.stop()
		h.start()
		time.Sleep(h.cfg.Polling.Tick)
		synctest.Wait()
		slices.SortFunc(keep, compareUPID)
		got := tracked()
		slices.SortFunc(got, compareUPID)
		if !slices.Equal(got, keep) {
			t.Errorf("after a restart tracked %d tasks, want the %d still tracked", len(got), len(keep))
		}
		if hl := h.healthOf(r.ID); hl.State != StateUp || hl.Marks.Tracked > MaxTracked || hl.Marks.Checks > MaxStatusChecks {
			t.Errorf("after a restart: state %s, marks %+v", hl.State, hl.Marks)
		}
		if n := logs.count("remote down") + logs.count("remote partly unreachable"); n != 0 {
			t.Errorf("%d lines say a remote is down or partly unreachable", n)
		}
		h.stop()
	})
}

// TestTrackedTaskNodeLeaves takes a node out of its cluster while tracked
// tasks run on it, one already seen in the node's list and one only
// tracked: within two re-check periods of tracked tasks (two ticks) both
// are settled with status "unknown" and no longer tracked, tracking ends
// with reason EndNoNode, and the remote stays up without a line saying it
// is unreachable. A tracked UPID of a node the remote never had is only
// dropped: nothing puts it in the cache.
func TestTrackedTaskNodeLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logLines
		h := newHarness(t, sim.Config{Seed: 31, PVEClusters: 1, TaskRate: 6}, Options{Logger: logs.logger()})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		ctx := context.Background()
		r := h.fleet.Remotes()[0]
		node := r.Nodes[1]
		listed := h.fleet.StartTask(r.ID, node, "vzdump", "100", 10*time.Hour)
		h.refresh()
		if tk, ok := h.find(r.ID, listed); !ok || !tk.Running() {
			t.Fatalf("task %s not cached as running: %+v", listed, tk)
		}
		trackedOnly := h.fleet.StartTask(r.ID, node, "qmstart", "101", 10*time.Hour)
		for _, u := range []task.UPID{listed, trackedOnly} {
			if err := h.sys.Track(ctx, r.ID, u); err != nil {
				t.Fatalf("track %s: %v", u, err)
			}
		}
		if _, err := h.fleet.NodeLeaves(r.ID, node, 10*time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * h.cfg.Polling.Tick)
		synctest.Wait()
		if got := h.sys.Snapshot().Tracked(r.ID); len(got) != 0 {
			t.Errorf("still tracked two ticks after the node left: %v", got)
		}
		for _, u := range []task.UPID{listed, trackedOnly} {
			tk, ok := h.find(r.ID, u)
			if !ok || tk.Running() || tk.Status != settleStatus || tk.EndTime < u.StartTime {
				t.Errorf("task %s of the node that left: %+v (cached %v), want settled %q", u, tk, ok, settleStatus)
			}
		}
		hl := h.healthOf(r.ID)
		ended := map[string]string{}
		for _, e := range hl.TrackingEnded {
			ended[e.UPID] = e.Reason
		}
		for _, u := range []task.UPID{listed, trackedOnly} {
			if ended[u.String()] != EndNoNode {
				t.Errorf("tracking of %s ended %q, want %q (tracking ended: %+v)", u, ended[u.String()], EndNoNode, hl.TrackingEnded)
			}
		}
		if hl.State != StateUp || hl.Settled < 2 {
			t.Errorf("health: state %s, settled %d; want up and at least 2 settled", hl.State, hl.Settled)
		}
		if n := logs.count("remote partly unreachable") + logs.count("remote down"); n != 0 {
			t.Errorf("%d lines say the remote is unreachable", n)
		}
		h.stop()
	})
}
