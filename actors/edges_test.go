package actors

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// logLines collects log lines for tests that count them.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count returns how many lines contain every one of parts.
func (l *logLines) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.buf.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func (l *logLines) logger() zerolog.Logger { return zerolog.New(l).Level(zerolog.InfoLevel) }

// find returns the cached task with the given UPID.
func (h *harness) find(remote string, u task.UPID) (task.Task, bool) {
	for _, t := range h.cached() {
		if t.Remote == remote && t.UPID == u {
			return t, true
		}
	}
	return task.Task{}, false
}

// healthOf returns the health of one remote.
func (h *harness) healthOf(remote string) Health {
	hl, _ := h.sys.health(remote)
	return hl
}

// TestNodeLeavesWithTaskRunning takes a node out of its cluster while
// tasks run on it: every one taskfleet had cached as running is settled
// with status "unknown" within two running-task check periods, the remote
// stays up, and nothing is logged about the remote being unreachable.
func TestNodeLeavesWithTaskRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logLines
		h := newHarness(t, sim.Config{Seed: 21, PVEClusters: 2, TaskRate: 6}, Options{Logger: logs.logger()})
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		r := h.fleet.Remotes()[0]
		node := r.Nodes[2]
		mine := h.fleet.StartTask(r.ID, node, "vzdump", "100", 10*time.Hour)
		h.refresh()
		if tk, ok := h.find(r.ID, mine); !ok || !tk.Running() {
			t.Fatalf("task %s not cached as running: %+v", mine, tk)
		}
		running, err := h.fleet.NodeLeaves(r.ID, node, 10*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var cached []task.UPID
		for _, u := range running {
			if tk, ok := h.find(r.ID, u); ok && tk.Running() {
				cached = append(cached, u)
			}
		}
		time.Sleep(2*RunningCheckInterval + h.cfg.Polling.Tick)
		synctest.Wait()
		for _, u := range cached {
			tk, ok := h.find(r.ID, u)
			if !ok || tk.Running() || tk.Status != settleStatus {
				t.Errorf("task %s of the node that left: %+v, want settled %q", u, tk, settleStatus)
			}
		}
		hl := h.healthOf(r.ID)
		if hl.State != StateUp || hl.Settled < int64(len(cached)) {
			t.Errorf("health: state %s, settled %d; want up and %d settled", hl.State, hl.Settled, len(cached))
		}
		if n := logs.count("remote partly unreachable"); n != 0 {
			t.Errorf("%d 'partly unreachable' lines", n)
		}
		t.Logf("%d tasks ran on the node, %d of them cached and settled", len(running), len(cached))
		h.stop()
	})
}

// TestClockStepBack runs a remote whose clock is two hours ahead, then
// corrects it (NTP steps it back): its cutoffs are in its future, and yet
// every task started after the step arrives by the next refresh. The step
// is logged once per node and shown in the remote's health.
func TestClockStepBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logLines
		h := newHarness(t, sim.Config{Seed: 23, PVEClusters: 1, TaskRate: 150}, Options{Logger: logs.logger()})
		r := h.fleet.Remotes()[0]
		if err := h.fleet.SetClockOffset(r.ID, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		h.start()
		time.Sleep(time.Hour)
		synctest.Wait()
		if err := h.fleet.SetClockOffset(r.ID, 0); err != nil {
			t.Fatal(err)
		}
		step := time.Now().Unix()
		time.Sleep(h.cfg.Polling.RefreshInterval + h.cfg.Polling.Tick)
		synctest.Wait()

		// Every task started after the step up to the scheduled refresh
		// that just ran has arrived.
		var after, missing int
		last := h.healthOf(r.ID).LastSuccess.Unix() - 1
		for _, tk := range h.fleet.Held(r.ID) {
			if tk.UPID.StartTime <= step || tk.UPID.StartTime > last {
				continue
			}
			after++
			if _, ok := h.find(r.ID, tk.UPID); !ok {
				missing++
			}
		}
		if after < 20 || missing > 0 {
			t.Errorf("%d tasks started after the step before the refresh, %d of them missing", after, missing)
		}
		h.freeze()
		h.refresh()
		if d := h.check(); d != "" {
			t.Errorf("after a refresh: %s", d)
		}
		hl := h.healthOf(r.ID)
		if len(hl.ClockBehind) != len(r.Nodes) || hl.ClockStep < time.Hour || hl.ClockStepAt.IsZero() {
			t.Errorf("health: clock behind on %v, step %v at %v; want every node, about 2h", hl.ClockBehind, hl.ClockStep, hl.ClockStepAt)
		}
		if n := logs.count("node clock behind its cutoff"); n != len(r.Nodes) {
			t.Errorf("the step was logged %d times, want once per node (%d)", n, len(r.Nodes))
		}
		t.Logf("%d tasks started after the step; health %v ahead on %v", after, hl.ClockStep, hl.ClockBehind)
		h.stop()
	})
}

// TestRepeatedConditionsLoggedOnce gives a remote malformed list items on
// every poll for an hour: they are logged when they begin and when they
// end, with a count, not on every poll; the remote stays up.
func TestRepeatedConditionsLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logLines
		h := newHarness(t, sim.Config{Seed: 33, PVEClusters: 1, TaskRate: 6}, Options{Logger: logs.logger()})
		id := h.fleet.Remotes()[0].ID
		h.fleet.SetFault(id, "", sim.Fault{BadItems: true})
		h.start()
		time.Sleep(time.Hour)
		synctest.Wait()
		hl := h.healthOf(id)
		if n := logs.count("malformed task items skipped", id); n != 1 || hl.MalformedItems < 12 {
			t.Errorf("%d lines for %d malformed items in an hour, want 1", n, hl.MalformedItems)
		}
		if hl.State != StateUp {
			t.Errorf("state %s with malformed items", hl.State)
		}
		h.fleet.SetFault(id, "", sim.Fault{})
		// Only a full refresh lists every node (detect.go).
		time.Sleep(FullRefreshEvery * h.cfg.Polling.RefreshInterval)
		synctest.Wait()
		if n := logs.count("malformed task items skipped: no longer", id, `"count":`); n != 1 {
			t.Errorf("%d lines saying the malformed items ended, want 1", n)
		}
		h.stop()
	})
}
