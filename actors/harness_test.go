package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/internal/fleettest"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// harness is a simulated fleet and a taskfleet System polling it, both in
// the calling synctest bubble.
type harness struct {
	t      *testing.T
	fleet  *sim.Fleet
	frozen atomic.Int64 // the fleet's clock stands at this Unix time when not 0
	cfg    *config.Config
	sys    *Service
	opts   Options
}

// harnessIndexSize is the index size of a harness's nodes unless the test
// sets one: the tests need some history, not PVE's 1500 tasks a node,
// whose backfill dominated their cost under the race detector.
const harnessIndexSize = 100

func newHarness(t *testing.T, sc sim.Config, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, opts: opts}
	sc.InMemory = true
	if sc.IndexSize == 0 {
		sc.IndexSize = harnessIndexSize
	}
	sc.Now = func() time.Time {
		if at := h.frozen.Load(); at != 0 {
			return time.Unix(at, 0)
		}
		return time.Now()
	}
	f, err := sim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h.fleet, h.cfg = f, fleettest.Config(f, t.TempDir())
	h.opts.DialContext = f.DialContext
	return h
}

// slowTickUnderRace sets a one-minute tick under the race detector, which
// makes every poll several times dearer: a sixth of the polls of a
// simulated hour, each refresh still on time. Call it before start.
func (h *harness) slowTickUnderRace() {
	if raceEnabled {
		h.cfg.Polling.Tick = time.Minute
	}
}

func (h *harness) start() {
	h.t.Helper()
	sys, err := Start(h.cfg, h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.sys = sys
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sys.Stop(ctx)
		// Answers to requests that Stop cut short (a keeper's log fetch)
		// are dead letters, whose log throttle runs a goroutine for its
		// interval: let it end inside the test's bubble.
		time.Sleep(sys.sys.Config.DeadLetterThrottleInterval)
	})
	if err := sys.WaitLoaded(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) stop() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.sys.Stop(ctx); err != nil {
		h.t.Fatalf("Stop: %v", err)
	}
}

// freeze stops the fleet's clock: no task starts or finishes until thaw,
// so a complete fetch must match held() exactly.
func (h *harness) freeze() { h.frozen.Store(time.Now().Unix()) }

// thaw lets the fleet's clock run again (it jumps to the bubble's time).
func (h *harness) thaw() { h.frozen.Store(0) }

// let lets a frozen fleet's clock run for d (in the bubble) and freezes it
// again.
func (h *harness) let(d time.Duration) {
	h.thaw()
	time.Sleep(d)
	h.freeze()
}

// refresh refreshes every remote and waits for it, retrying a remote
// whose refresh failed (tests inject failures) up to five times.
func (h *harness) refresh() {
	h.t.Helper()
	var ids []string
	for _, r := range h.cfg.Remotes {
		ids = append(ids, r.ID)
	}
	for try := 0; len(ids) > 0; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := h.sys.Refresh(ctx, true, ids...)
		cancel()
		if err != nil {
			h.t.Fatal(err)
		}
		ids = ids[:0]
		for _, r := range res {
			if r.Err != nil {
				if try == 4 {
					h.t.Errorf("refresh %s: %v", r.Remote, r.Err)
				}
				ids = append(ids, r.Remote)
			}
		}
		if try == 4 {
			return
		}
	}
}

// check compares the cache with the fleet (see fleettest.Check).
func (h *harness) check() string {
	return fleettest.Check(h.cached(), h.held(), h.fleet.GroundTruth())
}

// cached returns every task in the latest snapshot.
func (h *harness) cached() []task.Task {
	return h.sys.Snapshot().Query(task.Filter{}).Tasks
}

// held returns every task the fleet still holds that falls within the
// cache's retention: the archive periods (days) up to today's.
func (h *harness) held() []task.Task {
	var all []task.Task
	for _, r := range h.fleet.Remotes() {
		all = append(all, h.fleet.Held(r.ID)...)
	}
	now := time.Now()
	if at := h.frozen.Load(); at != 0 {
		now = time.Unix(at, 0)
	}
	day := 24 * time.Hour
	from := now.Truncate(day).Add(-time.Duration(h.cfg.Polling.RetentionDays-1) * day)
	return fleettest.Since(all, from)
}
