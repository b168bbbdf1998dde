package actors

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestRefreshWaitersBounded sends a hanging remote's poller more refresh
// requests than it keeps: the ones over MaxWaiters are answered at once
// with ErrTooManyWaiters, requests without a sender are coalesced, the
// high-water mark stays at the bound, and every waiter is answered once
// the remote answers again.
func TestRefreshWaitersBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 29, PVEClusters: 1, TaskRate: 6}, Options{})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		id := h.fleet.Remotes()[0].ID
		h.fleet.SetFault(id, "", sim.Fault{Hang: true})
		pid := h.sys.childPID(PollerName(id))
		var futures []*actor.Future
		for range MaxWaiters + 11 { // one starts the fetch, MaxWaiters wait, ten are refused
			futures = append(futures, h.sys.sys.Root.RequestFuture(pid, &messages.RefreshRemote{}, time.Hour))
		}
		for range 100 {
			h.sys.sys.Root.Send(pid, &messages.RefreshRemote{})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		refused := 0
		for _, f := range futures[MaxWaiters+1:] {
			res, err := f.Result()
			if d, ok := res.(*messages.RefreshDone); err == nil && ok && errors.Is(d.Err, ErrTooManyWaiters) {
				refused++
			}
		}
		if refused != 10 {
			t.Errorf("%d requests refused at once, want 10", refused)
		}
		if m := h.healthOf(id).Marks.Waiters; m != MaxWaiters {
			t.Errorf("waiters high-water mark %d, want %d", m, MaxWaiters)
		}
		h.fleet.SetFault(id, "", sim.Fault{})
		time.Sleep(2 * h.cfg.Polling.RequestTimeout)
		synctest.Wait()
		for i, f := range futures[:MaxWaiters+1] {
			if _, err := f.Result(); err != nil {
				t.Fatalf("waiter %d: %v", i, err)
			}
		}
		h.stop()
	})
}

// TestStatusChecksRotate gives a remote more running tasks than one poll
// may ask about: every poll asks about every tracked task and at most
// MaxStatusChecks tasks in all, and every running task is asked about
// within ceil(running / (MaxStatusChecks - tracked)) polls.
func TestStatusChecksRotate(t *testing.T) {
	const remote, running, tracked = "pve-r", 130, 5
	latest := &cache.Latest{}
	w, err := cache.Open(cache.Options{Dir: t.TempDir(), Latest: latest})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	now := time.Now().Unix()
	var tasks []task.Task
	for i := range running {
		u := task.UPID{Kind: task.PVE, Node: fmt.Sprintf("n%d", i%3), PID: uint32(1000 + i), PStart: 1, StartTime: now - int64(i), Type: "qmstart", ID: "100", User: "root@pam"}
		tasks = append(tasks, task.Task{Remote: remote, UPID: u})
	}
	if err := w.Apply(cache.Batch{Remote: remote, Tasks: tasks}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks[:tracked] {
		if err := w.Track(remote, tk.UPID); err != nil {
			t.Fatal(err)
		}
	}
	p := newPoller(&pollerDeps{remote: config.Remote{ID: remote}, latest: latest})().(*poller)
	seen := map[task.UPID]int{}
	rounds := (running - tracked + MaxStatusChecks - tracked - 1) / (MaxStatusChecks - tracked)
	for range rounds {
		check := p.toCheck(true)
		if len(check) > MaxStatusChecks {
			t.Fatalf("%d status checks in one poll", len(check))
		}
		for _, tk := range tasks[:tracked] {
			if !slices.Contains(check, tk.UPID) {
				t.Fatalf("tracked %s not checked", tk.UPID)
			}
		}
		for _, u := range check {
			seen[u]++
		}
	}
	if len(seen) != running {
		t.Errorf("%d of %d running tasks checked in %d polls", len(seen), running, rounds)
	}
	if got := p.toCheck(false); len(got) != tracked {
		t.Errorf("a poll without the running check asks about %d tasks, want the %d tracked", len(got), tracked)
	}
	if p.health.Marks.Checks != MaxStatusChecks || p.health.Marks.Tracked != tracked {
		t.Errorf("marks %+v", p.health.Marks)
	}
}
