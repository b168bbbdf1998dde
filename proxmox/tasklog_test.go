package proxmox_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestTaskLogFromFleet reads task logs from simulated PVE and PBS remotes:
// paging, a running task's log, and a forgotten task (ErrNoTaskLog, from
// PVE's "unable to open file" line and from PBS's error).
func TestTaskLogFromFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		f, err := sim.New(sim.Config{Seed: 4, PVEClusters: 1, PBSServers: 1, NodesPerCluster: 1, IndexSize: 20, TaskRate: 2, History: 24 * time.Hour, Now: clock, InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ctx := context.Background()
		for _, r := range f.Remotes() {
			c := newFleetClient(t, f, r, 0)
			typ, id := "vzdump", "101"
			if r.Kind == task.PBS {
				typ, id = "verificationjob", "store1:v-9"
			}
			u := f.StartTask(r.ID, r.Endpoints[0].Node, typ, id, 5*time.Minute)
			running, err := c.TaskLog(ctx, u, 0, 0)
			if err != nil || len(running.Lines) == 0 || running.Lines[0].N != 1 || strings.Contains(running.Lines[len(running.Lines)-1].T, "TASK OK") {
				t.Fatalf("%s running: %+v %v", r.ID, running, err)
			}
			advance(6 * time.Minute)
			all, err := c.TaskLog(ctx, u, 0, 0)
			if err != nil || all.Total != len(all.Lines) || !strings.HasSuffix(all.Lines[len(all.Lines)-1].T, "TASK OK") {
				t.Fatalf("%s finished: %+v %v", r.ID, all, err)
			}
			page, err := c.TaskLog(ctx, u, 1, 2)
			if err != nil || len(page.Lines) != 2 || page.Lines[0] != all.Lines[1] || page.Total != all.Total {
				t.Errorf("%s page: %+v %v", r.ID, page, err)
			}
			advance(72 * time.Hour)
			if _, err := c.TaskLog(ctx, u, 0, 0); !errors.Is(err, proxmox.ErrNoTaskLog) {
				t.Errorf("%s forgotten: %v, want ErrNoTaskLog", r.ID, err)
			}
			other := task.PVE
			if r.Kind == task.PVE {
				other = task.PBS
			}
			if _, err := c.TaskLog(ctx, task.UPID{Kind: other}, 0, 0); err == nil {
				t.Errorf("%s: a UPID of the other kind was asked", r.ID)
			}
		}
	})
}
