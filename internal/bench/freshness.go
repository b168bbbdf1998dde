package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/task"
)

// FreshnessConfig is the freshness section.
type FreshnessConfig struct {
	Remotes         int           `json:"remotes"`
	Tracked         int           `json:"tracked"` // tasks started and tracked (Service.Track)
	Foreign         int           `json:"foreign"` // tasks started on the remote behind taskfleet's back
	Tick            time.Duration `json:"tick_ns"`
	RefreshInterval time.Duration `json:"refresh_ns"`
	RTT             time.Duration `json:"rtt_ns"`
	// Tasks start over Spread and run MinRun to MaxRun (whole seconds of
	// the fleet's clock).
	Spread time.Duration `json:"spread_ns"`
	MinRun time.Duration `json:"min_run_ns"`
	MaxRun time.Duration `json:"max_run_ns"`
	// ClockRate is the speed of the fleet's clock against the wall clock.
	// The simulator starts and ends tasks on whole seconds of its clock,
	// and taskfleet ticks on whole wall-clock multiples of the tick; at
	// rate 1 every task would end exactly on a tick, which real tasks
	// don't. At 0.9 the fleet's seconds drift across the tick, so the
	// tasks end at every phase of it.
	ClockRate float64     `json:"clock_rate"`
	Fleet     FleetConfig `json:"fleet"`
}

// Freshness is the delay from a task ending on its remote to the list
// showing it finished.
type Freshness struct {
	Latency
	Ticks99 float64 `json:"p99_ticks"` // P99 in ticks
	Ticks50 float64 `json:"p50_ticks"`
	Missing int     `json:"missing"` // tasks not seen finished before the deadline
}

// FreshnessResult is the freshness section.
type FreshnessResult struct {
	Config  FreshnessConfig `json:"config"`
	Tracked Freshness       `json:"tracked"`
	Foreign Freshness       `json:"foreign"`
	// ForeignP99Refresh is the foreign tasks' P99 in refresh intervals.
	ForeignP99Refresh float64 `json:"foreign_p99_refresh_intervals"`
}

// pollEvery is how often the list is polled: the resolution of the
// measured delays.
const pollEvery = 2 * time.Millisecond

// started is a task the benchmark started and waits to see finished.
type started struct {
	remote  string
	tracked bool
	upid    task.UPID
	ends    time.Time // wall-clock instant the fleet's clock reaches its end
	seen    time.Time
}

// runFreshness starts tasks on the fleet, tracks half of them, and polls
// the list until each shows up finished.
func runFreshness(ctx context.Context, cfg FreshnessConfig, parent string, progress func(string)) (*FreshnessResult, error) {
	t0 := time.Now()
	fc := cfg.Fleet
	fc.Remotes = cfg.Remotes
	base := fc.Start // what the fleet's clock shows at t0
	if base.IsZero() {
		base = t0
	}
	fc.Now = func() time.Time {
		return base.Add(time.Duration(float64(time.Since(t0)) * cfg.ClockRate))
	}
	wallOf := func(fleetTime time.Time) time.Time {
		return t0.Add(time.Duration(float64(fleetTime.Sub(base)) / cfg.ClockRate))
	}
	fl, err := startFleet(fc)
	if err != nil {
		return nil, err
	}
	defer fl.close()
	setFleetRTT(fl, cfg.RTT)
	svc, dir, err := startService(ctx, fl, cfg.Remotes, serviceConfig{
		GlobalCap: 20, RemoteCap: 5, Tick: cfg.Tick, RefreshInterval: cfg.RefreshInterval,
	}, parent)
	if err != nil {
		return nil, err
	}
	defer stopService(svc, dir)
	progress("freshness: backfill")
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	withSide(labelTaskfleet, func(context.Context) { _, err = svc.Refresh(rctx, true) })
	cancel()
	if err != nil {
		return nil, err
	}

	rng := rand.New(rand.NewPCG(uint64(fc.Seed), 7))
	n := cfg.Tracked + cfg.Foreign
	tasks := make([]*started, 0, n)
	// Tracked and foreign tasks alternate while both remain.
	kinds := make([]bool, 0, n)
	for tr, fo := cfg.Tracked, cfg.Foreign; tr+fo > 0; {
		if tr > 0 && (fo == 0 || len(kinds)%2 == 0) {
			kinds, tr = append(kinds, true), tr-1
		} else {
			kinds, fo = append(kinds, false), fo-1
		}
	}
	progress(fmt.Sprintf("freshness: %d tasks over %v", n, cfg.Spread))
	// The list is polled while tasks are still being started, so that
	// the early ones are seen as soon as they show up.
	next := time.Now()
	for i := range n {
		for time.Now().Before(next) {
			pollFinished(svc, tasks, time.Now())
			time.Sleep(pollEvery)
		}
		next = next.Add(cfg.Spread / time.Duration(max(n, 1)))
		r := fl.remotes[i%len(fl.remotes)]
		node := r.Nodes[(i/len(fl.remotes))%len(r.Nodes)]
		run := cfg.MinRun + time.Duration(rng.Int64N(int64(cfg.MaxRun-cfg.MinRun)+1))
		secs := int64(math.Ceil(run.Seconds()))
		u := fl.f.StartTask(r.ID, node, "qmstart", fmt.Sprint(100+i), run)
		if u.IsZero() {
			return nil, fmt.Errorf("freshness: start task on %s/%s failed", r.ID, node)
		}
		st := &started{remote: r.ID, upid: u, ends: wallOf(time.Unix(u.StartTime+secs, 0)), tracked: kinds[i]}
		if st.tracked {
			withSide(labelTaskfleet, func(context.Context) { err = svc.Track(ctx, r.ID, u) })
			if err != nil {
				return nil, fmt.Errorf("freshness: track: %w", err)
			}
		}
		tasks = append(tasks, st)
	}
	// Poll the list until every task is seen finished.
	deadline := time.Now().Add(cfg.MaxRun*2 + 3*cfg.RefreshInterval + 10*time.Second)
	progress("freshness: waiting for the tasks to show up finished")
	for pending := n; pending > 0 && time.Now().Before(deadline); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pending = pollFinished(svc, tasks, time.Now())
		time.Sleep(pollEvery)
	}
	res := &FreshnessResult{Config: cfg}
	var tracked, foreign []time.Duration
	for _, t := range tasks {
		isForeign := !t.tracked
		switch {
		case t.seen.IsZero() && isForeign:
			res.Foreign.Missing++
		case t.seen.IsZero():
			res.Tracked.Missing++
		case isForeign:
			foreign = append(foreign, t.seen.Sub(t.ends))
		default:
			tracked = append(tracked, t.seen.Sub(t.ends))
		}
	}
	res.Tracked.Latency = Summarise(tracked)
	res.Foreign.Latency = Summarise(foreign)
	for _, f := range []*Freshness{&res.Tracked, &res.Foreign} {
		f.Ticks50 = float64(f.P50) / float64(cfg.Tick)
		f.Ticks99 = float64(f.P99) / float64(cfg.Tick)
	}
	res.ForeignP99Refresh = float64(res.Foreign.P99) / float64(cfg.RefreshInterval)
	return res, nil
}

// pollFinished looks each unseen task up in the list (one query per
// remote) and stamps the ones shown finished with now. It returns the
// number still unseen.
func pollFinished(svc *taskfleet.Service, tasks []*started, now time.Time) int {
	byRemote := map[string][]*started{}
	for _, t := range tasks {
		if t.seen.IsZero() {
			byRemote[t.remote] = append(byRemote[t.remote], t)
		}
	}
	pending := 0
	for r, ts := range byRemote {
		since := ts[0].upid.StartTime
		for _, t := range ts {
			since = min(since, t.upid.StartTime)
		}
		page, err := svc.Tasks(task.Filter{Remote: r, Since: since})
		if err != nil {
			pending += len(ts)
			continue
		}
		done := map[task.UPID]bool{}
		for _, t := range page.Tasks {
			if !t.Running() {
				done[t.UPID] = true
			}
		}
		for _, t := range ts {
			if done[t.upid] {
				t.seen = now
			} else {
				pending++
			}
		}
	}
	return pending
}
