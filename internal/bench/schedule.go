package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/sim"
)

// ScheduleConfig sizes the schedule section: taskfleet's production
// schedule against fleets that treat connections as pveproxy does, over a
// simulated stretch of time, "before" (change detection off, tracked
// polls queued with the others) and "after" (both on: the defaults).
//
// The run is compressed in time by Speed: the fleet's clock runs Speed
// times faster than the wall clock, and taskfleet's tick, refresh
// interval and running-task check interval, the round-trip time and the
// remotes' idle timeout are divided by Speed. Request counts, connections,
// bytes and CPU are what they would be over the simulated time (work does
// not shrink with the clock); freshness is reported in simulated time.
type ScheduleConfig struct {
	Remotes         []int         `json:"remotes"`     // fleet sizes (PVE clusters of 3 nodes)
	Duration        time.Duration `json:"duration_ns"` // simulated time measured, after the backfill
	Speed           int           `json:"speed"`       // simulated seconds per wall-clock second
	Tick            time.Duration `json:"tick_ns"`     // simulated
	RefreshInterval time.Duration `json:"refresh_ns"`  // simulated
	RTT             time.Duration `json:"rtt_ns"`      // simulated
	GlobalCap       int           `json:"global_cap"`  // 0: 20 per 1000 remotes, at least 20
	RemoteCap       int           `json:"remote_cap"`
	// Tracked and Foreign tasks are started on random nodes over the
	// first half of the measured time, each running MinRun to MaxRun
	// (simulated); every other one is tracked.
	Tracked int           `json:"tracked"`
	Foreign int           `json:"foreign"`
	MinRun  time.Duration `json:"min_run_ns"`
	MaxRun  time.Duration `json:"max_run_ns"`
	Fleet   FleetConfig   `json:"fleet"`
	// AfterOnly runs only the case with change detection on (the
	// command's --schedule-after-only), e.g. to compare two builds.
	AfterOnly bool `json:"after_only,omitempty"`
	// ProfileDir, when set, receives the CPU profile of every run
	// (schedule-N-before.pprof, schedule-N-after.pprof).
	ProfileDir string `json:"-"`
}

// ScheduleRun is one fleet size with change detection on or off; counts are
// per remote and simulated hour.
type ScheduleRun struct {
	Remotes   int  `json:"remotes"`
	GlobalCap int  `json:"global_cap"`
	Detection bool `json:"change_detection"`

	Requests    float64 `json:"requests_per_remote_hour"`
	NodeLists   float64 `json:"node_lists_per_remote_hour"`
	TaskLists   float64 `json:"task_lists_per_remote_hour"`
	Statuses    float64 `json:"status_requests_per_remote_hour"`
	ClusterList float64 `json:"cluster_tasks_per_remote_hour"`
	NewConns    float64 `json:"new_connections_per_remote_hour"`
	Resumed     float64 `json:"resumed_handshakes_per_remote_hour"`
	Full        float64 `json:"full_handshakes_per_remote_hour"`
	KiB         float64 `json:"kib_per_remote_hour"` // both directions, TLS records included
	// CPUms is taskfleet's CPU (profile samples carrying its label) per
	// remote and simulated hour, in milliseconds; CPUPerRequest per request.
	CPUms         float64       `json:"taskfleet_cpu_ms_per_remote_hour"`
	CPUPerRequest time.Duration `json:"taskfleet_cpu_per_request_ns"`
	CPU           CPUSplit      `json:"cpu_split"`

	// Tracked and Foreign are the delays, in simulated time, from a
	// task's end on its remote to the cache showing it finished.
	Tracked Freshness `json:"tracked"`
	Foreign Freshness `json:"foreign"`

	Wall     time.Duration `json:"wall_ns"`     // the measured stretch, wall clock
	Backfill time.Duration `json:"backfill_ns"` // the first refresh, wall clock
	Errors   int           `json:"remote_errors"`
	// TrackFailed counts Track calls that failed three times (a saturated
	// daemon); those tasks count as foreign.
	TrackFailed int    `json:"track_failed"`
	TrackError  string `json:"track_error,omitempty"` // the first such failure
}

// ScheduleResult is the schedule section.
type ScheduleResult struct {
	Config ScheduleConfig `json:"config"`
	Runs   []ScheduleRun  `json:"runs"` // per size: before, after
}

// scheduleFleet is the schedule section's fleet: PVE clusters of 3 nodes
// with the sim's default activity (6 tasks per node and hour by day, the
// nightly backups from about 01:00), 2 hours of history, the nodes keeping
// 300 finished tasks, connections treated as pveproxy does.
func scheduleFleet(timeOfDay time.Duration) FleetConfig {
	return FleetConfig{NodesPerCluster: 3, IndexSize: 300, History: 2 * time.Hour, Network: NetworkMemory, Seed: 3,
		Start: PinnedStart(time.Now(), timeOfDay)}
}

// ScheduleTimeOfDay is when the schedule section's hour starts: during
// the nightly backups, when every node has tasks running and finishing.
const ScheduleTimeOfDay = 90 * time.Minute

// runSchedule runs every size, before and after.
func runSchedule(ctx context.Context, cfg ScheduleConfig, parent string, progress func(string)) (*ScheduleResult, error) {
	res := &ScheduleResult{Config: cfg}
	defer actors.SetChangeDetection(true)
	defer actors.SetUrgentFirst(true)
	defer actors.SetTimeScale(1)
	for _, n := range cfg.Remotes {
		for _, on := range []bool{false, true} {
			if cfg.AfterOnly && !on {
				continue
			}
			progress(fmt.Sprintf("schedule: %d remotes, change detection %v", n, on))
			run, err := runScheduleCase(ctx, cfg, n, on, parent, progress)
			if err != nil {
				return res, fmt.Errorf("%d remotes, change detection %v: %w", n, on, err)
			}
			res.Runs = append(res.Runs, run)
		}
	}
	return res, nil
}

// runScheduleCase measures one fleet size with change detection on or off.
func runScheduleCase(ctx context.Context, cfg ScheduleConfig, n int, detection bool, parent string, progress func(string)) (ScheduleRun, error) {
	run := ScheduleRun{Remotes: n, Detection: detection}
	speed := time.Duration(cfg.Speed)
	actors.SetChangeDetection(detection)
	actors.SetUrgentFirst(detection)
	actors.SetTimeScale(cfg.Speed)

	t0 := time.Now()
	fc := cfg.Fleet
	fc.Remotes = n
	base := fc.Start
	if base.IsZero() {
		base = t0
	}
	fc.Now = func() time.Time { return base.Add(time.Since(t0) * speed) }
	wallOf := func(fleetTime time.Time) time.Time { return t0.Add(fleetTime.Sub(base) / speed) }
	fc.IdleTimeout = sim.PVEIdleTimeout / speed
	fl, err := startFleet(fc)
	if err != nil {
		return run, err
	}
	defer fl.close()
	setFleetRTT(fl, cfg.RTT/speed)
	globalCap := cfg.GlobalCap
	if globalCap == 0 {
		globalCap = max(20, n/50)
	}
	run.GlobalCap = globalCap
	svc, dir, err := startService(ctx, fl, n, serviceConfig{
		GlobalCap: globalCap, RemoteCap: cfg.RemoteCap,
		Tick: cfg.Tick / speed, RefreshInterval: cfg.RefreshInterval / speed,
	}, parent)
	if err != nil {
		return run, err
	}
	defer stopService(svc, dir)

	// The backfill: the first refresh of every remote (the schedule's own,
	// at start, joined by this one).
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	withSide(labelTaskfleet, func(context.Context) { _, err = svc.Refresh(rctx, true) })
	cancel()
	if err != nil {
		return run, fmt.Errorf("backfill: %w", err)
	}
	run.Backfill = time.Since(start)

	before, _ := fl.stats(n)
	beforeAll := sumStats(fl, n)
	cpu0 := CPUTime()
	prof := startCPUProfile()
	start = time.Now()
	end := start.Add(cfg.Duration / speed)

	rng := rand.New(rand.NewPCG(uint64(fc.Seed), uint64(n)))
	total := cfg.Tracked + cfg.Foreign
	var tasks []*started
	next := start
	for i := range total {
		for time.Now().Before(next) {
			pollFinished(svc, tasks, time.Now())
			time.Sleep(10 * time.Millisecond)
		}
		next = next.Add(cfg.Duration / speed / 2 / time.Duration(max(total, 1)))
		r := fl.remotes[rng.IntN(n)]
		node := r.Nodes[rng.IntN(len(r.Nodes))]
		dur := cfg.MinRun + time.Duration(rng.Int64N(int64(cfg.MaxRun-cfg.MinRun)+1))
		u := fl.f.StartTask(r.ID, node, "qmstart", fmt.Sprint(1000+i), dur)
		if u.IsZero() {
			return run, fmt.Errorf("start task on %s/%s failed", r.ID, node)
		}
		secs := int64((dur + time.Second - 1) / time.Second)
		isTracked := i%2 == 0 // alternate; the rest of the larger kind last
		if i >= 2*min(cfg.Tracked, cfg.Foreign) {
			isTracked = cfg.Tracked > cfg.Foreign
		}
		st := &started{remote: r.ID, upid: u, ends: wallOf(time.Unix(u.StartTime+secs, 0)), tracked: isTracked}
		if st.tracked {
			// A saturated daemon may not answer in time: retry, then
			// count the task as foreign (it is polled as one).
			for try := 0; try < 3; try++ {
				withSide(labelTaskfleet, func(context.Context) { err = svc.Track(ctx, r.ID, u) })
				if err == nil || ctx.Err() != nil {
					break
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return run, err
				}
				st.tracked = false
				run.TrackFailed++
				if run.TrackError == "" {
					run.TrackError = err.Error()
				}
			}
		}
		tasks = append(tasks, st)
	}
	progress(fmt.Sprintf("schedule: %d tasks started, measuring until %s", total, end.Format("15:04:05")))
	for time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return run, err
		}
		pollFinished(svc, tasks, time.Now())
		time.Sleep(10 * time.Millisecond)
	}
	run.Wall = time.Since(start)
	profile := ""
	if cfg.ProfileDir != "" {
		stage := "before"
		if detection {
			stage = "after"
		}
		profile = filepath.Join(cfg.ProfileDir, fmt.Sprintf("schedule-%d-%s.pprof", n, stage))
	}
	var perr error
	run.CPU, perr = prof.stop(profile)
	if perr != nil {
		return run, perr
	}
	cpu := CPUTime() - cpu0
	after, _ := fl.stats(n)
	afterAll := sumStats(fl, n)

	hours := float64(n) * (run.Wall * speed).Hours()
	per := func(v int64) float64 { return float64(v) / hours }
	run.Requests = per(after.Requests - before.Requests)
	run.NodeLists = per(afterAll.NodeList - beforeAll.NodeList)
	run.TaskLists = per(afterAll.TaskList - beforeAll.TaskList)
	run.Statuses = per(afterAll.TaskStatus - beforeAll.TaskStatus)
	run.ClusterList = per(afterAll.ClusterTasks - beforeAll.ClusterTasks)
	run.NewConns = per(after.Connections - before.Connections)
	run.Resumed = per(after.Resumed - before.Resumed)
	run.Full = max(0, run.NewConns-run.Resumed) // a connection accepted before the window may resume in it
	run.KiB = per(afterAll.BytesIn+afterAll.BytesOut-beforeAll.BytesIn-beforeAll.BytesOut) / 1024
	tf := run.CPU.Taskfleet
	if !run.CPU.OK {
		tf = cpu // no profile: the whole process, the sim included
	}
	run.CPUms = float64(tf.Milliseconds()) / hours
	if reqs := after.Requests - before.Requests; reqs > 0 {
		run.CPUPerRequest = tf / time.Duration(reqs)
	}
	for _, h := range svc.Remotes() {
		if h.LastError != "" {
			run.Errors++
		}
	}

	var tracked, foreign []time.Duration
	for _, t := range tasks {
		switch {
		case t.seen.IsZero() && t.tracked:
			run.Tracked.Missing++
		case t.seen.IsZero():
			run.Foreign.Missing++
		case t.tracked:
			tracked = append(tracked, t.seen.Sub(t.ends)*speed)
		default:
			foreign = append(foreign, t.seen.Sub(t.ends)*speed)
		}
	}
	run.Tracked.Latency, run.Foreign.Latency = Summarise(tracked), Summarise(foreign)
	run.Tracked.Ticks50, run.Tracked.Ticks99 = float64(run.Tracked.P50)/float64(cfg.Tick), float64(run.Tracked.P99)/float64(cfg.Tick)
	run.Foreign.Ticks50, run.Foreign.Ticks99 = float64(run.Foreign.P50)/float64(cfg.Tick), float64(run.Foreign.P99)/float64(cfg.Tick)
	return run, nil
}

// sumStats sums every counter of the sim over the first n remotes.
func sumStats(fl *simFleet, n int) sim.Stats {
	var s sim.Stats
	for i := range n {
		st := fl.f.Stats(fl.remotes[i].ID)
		s.NodeList += st.NodeList
		s.TaskList += st.TaskList
		s.TaskStatus += st.TaskStatus
		s.ClusterTasks += st.ClusterTasks
		s.BytesIn += st.BytesIn
		s.BytesOut += st.BytesOut
	}
	return s
}
