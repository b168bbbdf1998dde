package proxmox_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestTaskGone asks a simulated cluster for the status of a task its node
// has no log of (PVE: 400 "upid: no such task") and of a task of a node
// that left the cluster (500 "hostname lookup ... failed"): both are a
// *TaskGoneError with the reason; a running task is running; and a list's
// Clock follows the remote's clock, also after it was stepped.
func TestTaskGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, err := sim.New(sim.Config{Seed: 8, PVEClusters: 1, InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := f.Remotes()[0]
		c := newFleetClient(t, f, r, 500)
		ctx := context.Background()

		bogus := task.UPID{Kind: task.PVE, Node: r.Nodes[0], PID: 4242, PStart: 1, StartTime: time.Now().Unix() - 60, Type: "qmstart", ID: "100", User: "root@pam"}
		_, err = c.TaskStatus(ctx, bogus)
		var gone *proxmox.TaskGoneError
		if !errors.As(err, &gone) || gone.Reason != proxmox.GoneNoTask {
			t.Errorf("status of a task without a log: %v, want %s", err, proxmox.GoneNoTask)
		}

		leaving, err := f.NodeLeaves(r.ID, r.Nodes[2], time.Hour)
		if err != nil || len(leaving) == 0 {
			t.Fatalf("node leaves: %v, %v", leaving, err)
		}
		_, err = c.TaskStatus(ctx, leaving[0])
		if !errors.As(err, &gone) || gone.Reason != proxmox.GoneNoNode {
			t.Errorf("status of a task of a node that left: %v, want %s", err, proxmox.GoneNoNode)
		}

		running := f.StartTask(r.ID, r.Nodes[0], "qmstart", "101", time.Hour)
		if st, err := c.TaskStatus(ctx, running); err != nil || !st.Running {
			t.Errorf("status of a running task: %+v, %v", st, err)
		}

		res, err := c.FetchTasks(ctx, r.Nodes[0], time.Now().Unix()-3600)
		if err != nil {
			t.Fatal(err)
		}
		if d := res.Clock.Skew(); d < -time.Second || d > time.Second {
			t.Errorf("skew %v of a remote on our time", d)
		}
		if err := f.SetClockOffset(r.ID, -2*time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		res, err = c.FetchTasks(ctx, r.Nodes[0], time.Now().Unix()-3600)
		if err != nil {
			t.Fatal(err)
		}
		if d := res.Clock.Skew(); d < -2*time.Hour-time.Second || d > -2*time.Hour+time.Second {
			t.Errorf("skew %v of a remote two hours behind", d)
		}
		if now, ok := res.Clock.Now(time.Now()); !ok || now.Sub(f.RemoteNow(r.ID)).Abs() > time.Second {
			t.Errorf("remote now %v, the fleet says %v", now, f.RemoteNow(r.ID))
		}
	})
}
