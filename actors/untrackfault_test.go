package actors

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestUntrackNotesWriteFailure: an untrack is a cache write like any
// other: when the disk refuses it, the cache is reported failing
// (WriterFailure, /readyz), as for a track or a batch.
func TestUntrackNotesWriteFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faults := &cache.Faults{}
		opts := Options{}
		opts.CacheOptions.Faults = faults
		h := newHarness(t, sim.Config{Seed: 26, PVEClusters: 1, PBSServers: 0, TaskRate: 2}, opts)
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		r := h.fleet.Remotes()[0]
		u := task.UPID{Kind: task.PVE, Node: r.Nodes[0], PID: 4242, PStart: 1, StartTime: time.Now().Add(-time.Minute).Unix(), Type: "qmstart", ID: "100", User: "root@pam"}
		ctx := context.Background()
		if err := h.sys.Track(ctx, r.ID, u); err != nil {
			t.Fatalf("track: %v", err)
		}
		if err := h.sys.WriterFailure(); err != nil {
			t.Fatalf("WriterFailure before the fault: %v", err)
		}
		faults.Set(cache.FaultIO)
		if err := h.sys.Untrack(ctx, r.ID, u); err == nil {
			t.Fatal("untrack succeeded on a failing disk")
		}
		if err := h.sys.WriterFailure(); err == nil {
			t.Error("WriterFailure nil after an untrack the disk refused")
		}
		if err := h.sys.NotReady(); err == nil {
			t.Error("ready after an untrack the disk refused")
		}
		faults.Set(cache.FaultNone)
	})
}
