package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// PollerHeapConfig is the pollers section: the Go heap taskfleet holds per
// polled remote, the simulated fleet's heap excluded.
type PollerHeapConfig struct {
	Remotes []int `json:"remotes"` // fleet sizes, one fleet and one daemon each
	// GlobalCapPer1000 is polling.max_connections per 1000 remotes (at
	// least 5), as in the schedule section: C=200 at 10,000 remotes.
	GlobalCapPer1000 int `json:"global_cap_per_1000"`
	Sweeps           int `json:"sweeps"` // full refreshes before measuring (the first is the backfill)
	// Tick is polling.tick (the refresh interval stays 10 minutes).
	// Between ticks the pollers are idle; a long tick (24h, as in the
	// sweep sections) leaves only the benchmark's refreshes, which a
	// loaded machine needs at 10,000 remotes.
	Tick time.Duration `json:"tick_ns"`
	// Idle is how long the daemon stays idle after the sweeps before the
	// second measurement: longer than the remotes' idle timeout, so that
	// they have closed every connection, as pveproxy does between ticks.
	Idle time.Duration `json:"idle_ns"`
	// ProfileRate is runtime.MemProfileRate while the section runs (bytes
	// between samples): the split by side comes from the heap profile.
	ProfileRate int         `json:"profile_rate"`
	Fleet       FleetConfig `json:"fleet"`
	// ProfileDir, when set, receives the heap profiles
	// (pollers-N-busy.pprof, pollers-N-idle.pprof) for go tool pprof.
	ProfileDir string `json:"-"`
}

// HeapSplit is live heap (after GC) by whose code allocated it, from the
// heap profile: Fleet holds the simulator's objects and its servers'
// connections (allocated under sim's code or net/http's server), Network
// the in-memory network's pipes (internal/memnet: kernel socket buffers in
// production, not Go heap), Taskfleet everything else that was allocated
// after the fleet had started (the daemon: supervisor, pollers, HTTP
// clients and their connections, the cache).
type HeapSplit struct {
	Total     int64 `json:"total"` // HeapAlloc growth since the fleet was started and idle
	Taskfleet int64 `json:"taskfleet"`
	Fleet     int64 `json:"fleet"`
	Network   int64 `json:"network"`
	// PerRemote is Taskfleet divided by the number of remotes.
	PerRemote float64 `json:"taskfleet_per_remote"`
	// Goroutines of the whole process at the measurement: every open
	// connection has two on the client's side and one on the server's.
	Goroutines int `json:"goroutines"`
}

// PollerHeapRun is one fleet size.
type PollerHeapRun struct {
	Remotes     int       `json:"remotes"`
	GlobalCap   int       `json:"global_cap"`
	FleetHeap   int64     `json:"fleet_heap"` // HeapAlloc with the fleet started and idle, before taskfleet
	Busy        HeapSplit `json:"busy"`       // right after the sweeps: keep-alive connections open
	Idle        HeapSplit `json:"idle"`       // after Idle: the remotes closed their connections
	CachedTasks int       `json:"cached_tasks"`
}

// PollerHeapResult is the pollers section.
type PollerHeapResult struct {
	Config PollerHeapConfig `json:"config"`
	Runs   []PollerHeapRun  `json:"runs"`
}

// DefaultPollerHeap is the pollers section's default configuration.
func DefaultPollerHeap() PollerHeapConfig {
	f := lowActivity()
	f.IdleTimeout = 0 // the products' rules: pveproxy closes a connection idle for 5 s
	return PollerHeapConfig{Remotes: []int{1000, 10_000}, GlobalCapPer1000: 20, Sweeps: 2, Tick: 10 * time.Second, Idle: 7 * time.Second,
		ProfileRate: 4096, Fleet: f}
}

// runPollerHeap measures each fleet size in turn.
func runPollerHeap(ctx context.Context, cfg PollerHeapConfig, parent string, progress func(string)) (*PollerHeapResult, error) {
	res := &PollerHeapResult{Config: cfg}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = max(cfg.ProfileRate, 1)
	defer func() { runtime.MemProfileRate = old }()
	for _, n := range cfg.Remotes {
		run, err := runPollerHeapCase(ctx, cfg, n, parent, progress)
		if err != nil {
			return res, fmt.Errorf("%d remotes: %w", n, err)
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

func runPollerHeapCase(ctx context.Context, cfg PollerHeapConfig, n int, parent string, progress func(string)) (PollerHeapRun, error) {
	run := PollerHeapRun{Remotes: n, GlobalCap: max(5, n*cfg.GlobalCapPer1000/1000)}
	progress(fmt.Sprintf("pollers: starting a fleet of %d remotes", n))
	fc := cfg.Fleet
	fc.Remotes = n
	fl, err := startFleet(fc)
	if err != nil {
		return run, err
	}
	defer fl.close()
	heapFleet := settledHeap()
	run.FleetHeap = int64(heapFleet)
	base := heapBySide()
	svc, dir, err := startService(ctx, fl, n, serviceConfig{
		GlobalCap: run.GlobalCap, RemoteCap: 5, Tick: cfg.Tick, RefreshInterval: 10 * time.Minute,
	}, parent)
	if err != nil {
		return run, err
	}
	defer stopService(svc, dir)
	for i := range max(cfg.Sweeps, 1) {
		progress(fmt.Sprintf("pollers: refresh %d of %d remotes", i+1, n))
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		withSide(labelTaskfleet, func(context.Context) { _, err = svc.Refresh(rctx, true) })
		cancel()
		if err != nil {
			return run, err
		}
	}
	measure := func(stage string) (HeapSplit, error) {
		total := int64(settledHeap()) - int64(heapFleet)
		sides := heapBySide()
		s := HeapSplit{Total: total, Taskfleet: sides.Taskfleet - base.Taskfleet, Fleet: sides.Fleet - base.Fleet, Network: sides.Network - base.Network}
		s.PerRemote = float64(s.Taskfleet) / float64(n)
		s.Goroutines = runtime.NumGoroutine()
		if cfg.ProfileDir != "" {
			if err := writeHeapProfile(filepath.Join(cfg.ProfileDir, fmt.Sprintf("pollers-%d-%s.pprof", n, stage))); err != nil {
				return s, err
			}
		}
		return s, nil
	}
	if run.Busy, err = measure("busy"); err != nil {
		return run, err
	}
	progress(fmt.Sprintf("pollers: %d remotes, %.1f KiB per remote with connections open; idle for %v", n, run.Busy.PerRemote/1024, cfg.Idle))
	select {
	case <-time.After(cfg.Idle):
	case <-ctx.Done():
		return run, ctx.Err()
	}
	if run.Idle, err = measure("idle"); err != nil {
		return run, err
	}
	if snap := svc.Snapshot(); snap != nil {
		run.CachedTasks = snap.Len()
	}
	progress(fmt.Sprintf("pollers: %d remotes, %.1f KiB per remote idle", n, run.Idle.PerRemote/1024))
	return run, nil
}

// writeHeapProfile writes the heap profile (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write heap profile %s: %w", path, err)
	}
	return f.Close()
}

// heapSides is in-use heap by side (see HeapSplit), estimated from the
// heap profile the way pprof scales its samples.
type heapSides struct{ Taskfleet, Fleet, Network int64 }

// heapBySide reads the heap profile of the last completed GC cycle and
// splits the in-use bytes by the code that allocated them.
func heapBySide() heapSides {
	// The profile lags up to two cycles behind; three GCs publish the
	// current state.
	runtime.GC()
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+100)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	var out heapSides
	for i := range recs {
		r := &recs[i]
		count, bytes := r.InUseObjects(), r.InUseBytes()
		if count == 0 || bytes == 0 {
			continue
		}
		scaled := float64(bytes)
		if rate > 1 {
			avg := float64(bytes) / float64(count)
			scaled /= 1 - math.Exp(-avg/rate)
		}
		switch stackSide(r.Stack()) {
		case labelSim:
			out.Fleet += int64(scaled)
		case "network":
			out.Network += int64(scaled)
		default:
			out.Taskfleet += int64(scaled)
		}
	}
	return out
}

// stackSide says whose code an allocation stack is: the simulator's (its
// package or the HTTP server its nodes run), the in-memory network's, or
// taskfleet's.
func stackSide(pcs []uintptr) string {
	frames := runtime.CallersFrames(pcs)
	network := false
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case strings.HasPrefix(fn, "github.com/taskfleet/taskfleet/sim."),
			strings.HasPrefix(fn, "net/http.(*conn)."), strings.HasPrefix(fn, "net/http.(*Server)."):
			return labelSim
		case strings.HasPrefix(fn, "github.com/taskfleet/taskfleet/internal/memnet."):
			network = true
		}
		if !more {
			break
		}
	}
	if network {
		return "network"
	}
	return labelTaskfleet
}

// runs returns the runs of a result that may be nil.
func (r *PollerHeapResult) runs() []PollerHeapRun {
	if r == nil {
		return nil
	}
	return r.Runs
}
