package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// The chaos soak's bogus track requests: an unknown remote, a malformed
// UPID, a node outside the cluster, a task its node does not know, and one
// task past MaxTracked. Each gets an error at once, or its tracking ends
// within one tick (recorded on the task, not on the remote), and the
// remote's state is not touched: an up remote stays up.
func init() {
	kinds := []string{"unknown remote", "malformed upid", "unknown node", "unknown task", "over the cap"}
	registerInjector(injector{
		name:   "bogus track",
		weight: 3,
		inject: func(c *chaos) string {
			if c.diskFaulty() || c.supervisor.armed.Load() > 0 {
				return "" // the track requests need a working writer and ticks
			}
			// A remote that is up and has no fault in place: a remote
			// fault lasts up to 20 minutes, while the check waits.
			var pve []sim.Remote
			for _, r := range c.h.fleet.Remotes() {
				if r.Kind == task.PVE && c.h.sys.HasRemote(r.ID) && !c.remoteFaulted(r.ID) && c.h.healthOf(r.ID).State == StateUp {
					pve = append(pve, r)
				}
			}
			if len(pve) == 0 {
				return ""
			}
			r := pve[c.rng.IntN(len(pve))]
			kind := kinds[c.rng.IntN(len(kinds))]
			c.bogusTrack(r, kind)
			return "bogus track (" + kind + ")"
		},
	})
}

// bogusTrack sends one bogus track request of the given kind for remote r
// and checks its outcome.
func (c *chaos) bogusTrack(r sim.Remote, kind string) {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	now := time.Now()
	u := task.UPID{Kind: task.PVE, Node: r.Nodes[c.rng.IntN(len(r.Nodes))], PID: 0x4000_0000 + c.rng.Uint32N(1<<20), PStart: 1,
		StartTime: now.Add(-time.Minute).Unix(), Type: "qmstart", ID: "100", User: "root@pam"}
	switch kind {
	case "unknown remote":
		if err := c.h.sys.Track(ctx, "chaos-no-such-remote", u); !errors.Is(err, ErrUnknownRemote) {
			t.Errorf("bogus track (%s): %v, want ErrUnknownRemote", kind, err)
		}
		return
	case "malformed upid":
		u.Type = "qm:start" // a colon in a field: the UPID does not parse back
		if err := c.h.sys.Track(ctx, r.ID, u); !errors.Is(err, ErrInvalidTrack) {
			t.Errorf("bogus track (%s): %v, want ErrInvalidTrack", kind, err)
		}
		return
	case "over the cap":
		c.trackPastCap(ctx, r)
		return
	case "unknown node":
		u.Node = "pve1" // the README's example
	}
	before := c.h.healthOf(r.ID)
	faulted := c.remoteFaulted(r.ID)
	writerPanics := c.writer.fired.Load()
	if err := c.h.sys.Track(ctx, r.ID, u); err != nil {
		if kind == "unknown node" && errors.Is(err, ErrInvalidTrack) {
			return // refused at once: the node list is known
		}
		t.Errorf("bogus track (%s) %s: %v", kind, u, err)
		return
	}
	// Tracking ends within one tick, unless another fault was in the way
	// (its poller restarting, the remote down and backing off, a writer
	// panic losing the batch): then within the backoff or apply limit.
	tracked := func() bool { return slices.Contains(c.h.sys.Snapshot().Tracked(r.ID), u) }
	time.Sleep(c.cfg.Polling.Tick)
	synctest.Wait()
	if tracked() {
		h := c.h.healthOf(r.ID)
		if before.State == StateUp && !faulted && h.Restarts == before.Restarts && c.writer.fired.Load() == writerPanics {
			t.Errorf("bogus track (%s) %s: still tracked a tick later; remote %s %s", kind, u, r.ID, h.State)
		}
		c.count("bogus track ended later (another fault)")
		for range 60 {
			if !tracked() {
				break
			}
			time.Sleep(c.cfg.Polling.Tick)
			synctest.Wait()
		}
		if tracked() {
			t.Errorf("bogus track (%s) %s: still tracked ten minutes later", kind, u)
			return
		}
	}
	h := c.h.healthOf(r.ID)
	found := false
	for _, e := range h.TrackingEnded {
		found = found || e.UPID == u.String() && (e.Reason == EndNoTask || e.Reason == EndNoNode)
	}
	if !found {
		t.Errorf("bogus track (%s) %s: its end is not in the remote's health: %+v", kind, u, h.TrackingEnded)
	}
	if before.State == StateUp && !faulted && !c.remoteFaulted(r.ID) && (h.State == StateDown || h.State == StateDegraded) {
		t.Errorf("bogus track (%s) %s: remote %s went from up to %s (%s)", kind, u, r.ID, h.State, h.LastError)
	}
}

// trackPastCap tracks real tasks of r up to MaxTracked, and one more,
// which is refused.
func (c *chaos) trackPastCap(ctx context.Context, r sim.Remote) {
	room := MaxTracked - len(c.h.sys.Snapshot().Tracked(r.ID))
	for i := range room + 1 {
		u := c.h.fleet.StartTask(r.ID, r.Nodes[c.rng.IntN(len(r.Nodes))], "qmstart", fmt.Sprint(100+i), time.Duration(1+c.rng.IntN(5))*time.Minute)
		err := c.h.sys.Track(ctx, r.ID, u)
		switch {
		case i < room && err != nil:
			c.t.Errorf("track %d of %d on %s: %v", i+1, room, r.ID, err)
		case i == room && !errors.Is(err, ErrInvalidTrack):
			c.t.Errorf("track one past MaxTracked on %s: %v, want ErrInvalidTrack", r.ID, err)
		}
	}
}

// remoteFaulted reports whether the soak has a remote fault in place on
// remote id (or one of its nodes).
func (c *chaos) remoteFaulted(id string) bool {
	for key := range c.faults {
		if strings.HasPrefix(key, id+"/") {
			return true
		}
	}
	return false
}
