package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// MemoryConfig is the memory section's daemon part.
type MemoryConfig struct {
	Remotes   int         `json:"remotes"`
	GlobalCap int         `json:"global_cap"`
	Sweeps    int         `json:"sweeps"` // full refreshes before measuring (the first is the backfill)
	Fleet     FleetConfig `json:"fleet"`
}

// MemoryResult is the memory section.
type MemoryResult struct {
	// HeapPerTask is the Go heap the cache holds per task, measured while
	// loading the query section's data: live heap after GC before
	// generating it, and after loading it with the generated input
	// unreachable (runtime.ReadMemStats after two runtime.GC).
	HeapTasks   int     `json:"heap_tasks"`
	HeapBytes   int64   `json:"heap_bytes"`
	HeapPerTask float64 `json:"heap_bytes_per_task"`

	// Daemon is the resident memory (VmRSS) of taskfleet polling Remotes
	// simulated remotes, with the simulator in the same process. RSS is
	// read after a GC and debug.FreeOSMemory: before anything (Base), with
	// the fleet started and idle (SimOnly), after Sweeps refreshes with
	// taskfleet running (Both), and after taskfleet stopped (SimAfter).
	// DaemonRSS = Both - SimOnly counts the simulator's growth while it
	// served (its connections, generated activity) as taskfleet's: an upper
	// bound; DaemonRSSLow = Both - SimAfter a lower one (memory the Go
	// runtime keeps after taskfleet stopped counts as the simulator's).
	Config       MemoryConfig `json:"config"`
	Base         int64        `json:"rss_base"`
	SimOnly      int64        `json:"rss_sim_only"`
	Both         int64        `json:"rss_sim_and_daemon"`
	SimAfter     int64        `json:"rss_sim_after_stop"`
	DaemonRSS    int64        `json:"daemon_rss"`
	DaemonRSSLow int64        `json:"daemon_rss_low"`
	DaemonHeap   int64        `json:"daemon_heap"` // Go heap: HeapAlloc with both minus with the sim only
	CachedTasks  int          `json:"cached_tasks"`
	Goroutines   int          `json:"goroutines"` // of the whole process, with both running
}

// runDaemonMemory measures the daemon's resident memory.
func runDaemonMemory(ctx context.Context, cfg MemoryConfig, res *MemoryResult, parent string, progress func(string)) error {
	res.Config = cfg
	res.Base = settledRSS()
	fc := cfg.Fleet
	fc.Remotes = cfg.Remotes
	fl, err := startFleet(fc)
	if err != nil {
		return err
	}
	defer fl.close()
	res.SimOnly = settledRSS()
	heapSim := settledHeap()
	svc, dir, err := startService(ctx, fl, cfg.Remotes, serviceConfig{
		GlobalCap: cfg.GlobalCap, RemoteCap: 5, Tick: 10 * time.Second, RefreshInterval: 10 * time.Minute,
	}, parent)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			stopService(svc, dir)
		}
	}()
	for i := range max(cfg.Sweeps, 1) {
		progress(fmt.Sprintf("memory: refresh %d of %d remotes", i+1, cfg.Remotes))
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		withSide(labelTaskfleet, func(context.Context) { _, err = svc.Refresh(rctx, true) })
		cancel()
		if err != nil {
			return err
		}
	}
	res.Both = settledRSS()
	res.DaemonHeap = int64(settledHeap()) - int64(heapSim)
	res.Goroutines = runtime.NumGoroutine()
	if snap := svc.Snapshot(); snap != nil {
		res.CachedTasks = snap.Len()
	}
	stopped = true
	if err := stopService(svc, dir); err != nil {
		return err
	}
	res.SimAfter = settledRSS()
	res.DaemonRSS = res.Both - res.SimOnly
	res.DaemonRSSLow = res.Both - res.SimAfter
	return nil
}
