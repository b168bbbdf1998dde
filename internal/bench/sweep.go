package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/sim"
)

// SweepCase is one sweep measurement: a fleet size, a global cap and the
// network the remotes are served on.
type SweepCase struct {
	Remotes   int    `json:"remotes"`
	GlobalCap int    `json:"global_cap"`
	Network   string `json:"network"`
}

// SweepConfig is the sweep section.
type SweepConfig struct {
	Cases        []SweepCase   `json:"cases"`
	RemoteCap    int           `json:"remote_cap"`    // per-remote cap c
	RTT          time.Duration `json:"rtt_ns"`        // injected per request and per new connection
	SteadySweeps int           `json:"steady_sweeps"` // after the first; 0: the first only
	Fleet        FleetConfig   `json:"fleet"`         // Remotes and Network are set per case
	// ProfileDir, when set, receives the CPU profile of every sweep
	// (sweep-REMOTES-CAP-NETWORK-first.pprof, ...-steady1.pprof).
	ProfileDir string `json:"-"`
}

// SweepResult is one case: the first sweep (the backfill, on new
// connections) and the steady-state incremental sweep after it.
type SweepResult struct {
	SweepCase
	Nodes     int           `json:"nodes"`
	RemoteCap int           `json:"remote_cap"`
	RTT       time.Duration `json:"rtt_ns"`
	Backfill  SweepRun      `json:"backfill"`
	Steady    SweepRun      `json:"steady"`      // the median (by wall time) of the steady sweeps; zero without any
	SteadyAll []SweepRun    `json:"steady_runs"` // every steady sweep, in order
}

// SweepRun is one full refresh of every remote (Service.Refresh with wait).
type SweepRun struct {
	Wall time.Duration `json:"wall_ns"`
	// Requests is K, the requests the remotes received during the sweep
	// (sim counters); MaxRemote the most any one remote received.
	Requests  int64 `json:"requests"`
	MaxRemote int64 `json:"max_remote_requests"`
	// NewConns are the connections the remotes accepted during the sweep;
	// Resumed those whose TLS handshake resumed a session.
	NewConns int64 `json:"new_connections"`
	Resumed  int64 `json:"resumed"`
	Tasks    int64 `json:"tasks_served"`
	// Bound is max(ceil(K/C), max over remotes of ceil(M_r/c)) × RTT
	// (docs: "The physical bound for a sweep"); Ratio is Wall / Bound.
	Bound time.Duration `json:"bound_ns"`
	Ratio float64       `json:"ratio"`
	// BoundConn counts each new connection as one more round trip that
	// holds a permit (the connect latency is injected before the TLS
	// handshake, inside the request's permit).
	BoundConn time.Duration `json:"bound_with_connects_ns"`
	RatioConn float64       `json:"ratio_with_connects"`
	// CPU is the process's CPU time during the sweep (getrusage), the
	// in-process simulator included; Split attributes it by side.
	CPU   time.Duration `json:"cpu_ns"`
	Split CPUSplit      `json:"cpu_split"`
	// Failed counts remotes whose refresh returned an error.
	Failed   int    `json:"failed"`
	FirstErr string `json:"first_error,omitempty"`
}

// refreshTimeout bounds one sweep.
const refreshTimeout = 30 * time.Minute

// bound computes the lower bound of a sweep from the per-remote request
// counts.
func bound(per []int64, globalCap, remoteCap int, rtt time.Duration) time.Duration {
	var k, worst int64
	for _, m := range per {
		k += m
		worst = max(worst, (m+int64(remoteCap)-1)/int64(remoteCap))
	}
	rounds := max((k+int64(globalCap)-1)/int64(globalCap), worst)
	return time.Duration(rounds) * rtt
}

// measureSweep runs one full refresh of all remotes and measures it.
func measureSweep(ctx context.Context, svc *taskfleet.Service, fl *simFleet, n, globalCap, remoteCap int, rtt time.Duration, profile string) (SweepRun, error) {
	before, perBefore := fl.stats(n)
	cpu0 := CPUTime()
	prof := startCPUProfile()
	start := time.Now()
	var (
		res []actors.RefreshResult
		err error
	)
	// Without a deadline Service.Refresh waits only about two minutes
	// per remote; a large sweep on a slow machine takes longer.
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	withSide(labelTaskfleet, func(context.Context) {
		res, err = svc.Refresh(rctx, true)
	})
	wall := time.Since(start)
	split, perr := prof.stop(profile)
	cpu := CPUTime() - cpu0
	if err != nil {
		return SweepRun{}, fmt.Errorf("refresh: %w", err)
	}
	if perr != nil {
		return SweepRun{}, perr
	}
	after, perAfter := fl.stats(n)
	run := SweepRun{
		Wall: wall, CPU: cpu, Split: split,
		Requests: after.Requests - before.Requests,
		NewConns: after.Connections - before.Connections,
		Resumed:  after.Resumed - before.Resumed,
		Tasks:    after.TasksServed - before.TasksServed,
	}
	reqs := make([]int64, n)
	withConns := make([]int64, n)
	for i := range n {
		reqs[i] = perAfter[i].Requests - perBefore[i].Requests
		withConns[i] = reqs[i] + perAfter[i].Connections - perBefore[i].Connections
		run.MaxRemote = max(run.MaxRemote, reqs[i])
	}
	run.Bound = bound(reqs, globalCap, remoteCap, rtt)
	run.BoundConn = bound(withConns, globalCap, remoteCap, rtt)
	run.Ratio = ratio(run.Wall, run.Bound)
	run.RatioConn = ratio(run.Wall, run.BoundConn)
	for _, r := range res {
		if r.Err != nil {
			if run.Failed == 0 {
				run.FirstErr = fmt.Sprintf("%s: %v", r.Remote, r.Err)
			}
			run.Failed++
		}
	}
	return run, nil
}

// runSweepCase starts taskfleet for the first c.Remotes remotes of fl with
// global cap c.GlobalCap, measures the backfill and the steady sweeps, and
// stops it again.
func runSweepCase(ctx context.Context, fl *simFleet, c SweepCase, cfg SweepConfig, parent string) (SweepResult, error) {
	res := SweepResult{SweepCase: c, Nodes: c.Remotes * fl.cfg.NodesPerCluster, RemoteCap: cfg.RemoteCap, RTT: cfg.RTT}
	if c.Remotes > len(fl.remotes) {
		return res, fmt.Errorf("sweep: %d remotes wanted, fleet has %d", c.Remotes, len(fl.remotes))
	}
	svc, dir, err := startService(ctx, fl, c.Remotes, serviceConfig{
		GlobalCap: c.GlobalCap, RemoteCap: cfg.RemoteCap,
		// No tick falls into the measurement: every refresh is the
		// benchmark's own Service.Refresh.
		Tick: 24 * time.Hour, RefreshInterval: 24 * time.Hour,
	}, parent)
	if err != nil {
		return res, err
	}
	defer stopService(svc, dir)
	profile := func(name string) string {
		if cfg.ProfileDir == "" {
			return ""
		}
		return filepath.Join(cfg.ProfileDir, fmt.Sprintf("sweep-%d-%d-%s-%s.pprof", c.Remotes, c.GlobalCap, c.Network, name))
	}
	if res.Backfill, err = measureSweep(ctx, svc, fl, c.Remotes, c.GlobalCap, cfg.RemoteCap, cfg.RTT, profile("first")); err != nil {
		return res, err
	}
	for i := range cfg.SteadySweeps {
		run, err := measureSweep(ctx, svc, fl, c.Remotes, c.GlobalCap, cfg.RemoteCap, cfg.RTT, profile(fmt.Sprintf("steady%d", i+1)))
		if err != nil {
			return res, err
		}
		res.SteadyAll = append(res.SteadyAll, run)
	}
	if len(res.SteadyAll) > 0 {
		runs := slices.Clone(res.SteadyAll)
		slices.SortFunc(runs, func(a, b SweepRun) int { return int(a.Wall - b.Wall) })
		res.Steady = runs[(len(runs)-1)/2]
	}
	return res, nil
}

// setFleetRTT injects the round-trip time into every node of the fleet.
func setFleetRTT(fl *simFleet, rtt time.Duration) {
	fl.f.SetFaultAll(sim.Fault{Latency: rtt, ConnectLatency: rtt})
}
