// Package bench measures taskfleet where its promises are: how close a
// sweep of many remotes comes to its physical bound, how fresh the task
// list is, how fast lists and statistics are against what a user would
// pick instead (SQLite, or scanning the archive files the way Proxmox
// Datacenter Manager does), how fast the cache ingests, and how much
// memory it takes. Run runs the sections; Report prints them as tables or
// JSON. The taskfleet command's "bench" sub-command is a thin wrapper.
//
// Every figure is measured in this process, with wall-clock time: the
// simulated fleet (package sim) runs in the same process, its round-trip
// time injected as a latency per request and per new connection.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Section names, in the order of the report.
const (
	SectionSweep     = "sweep"
	SectionFreshness = "freshness"
	SectionQueries   = "queries"
	SectionIngest    = "ingest"
	SectionMemory    = "memory"
	SectionPollers   = "pollers"
	SectionScale     = "scale"
	SectionSchedule  = "schedule"
)

// Sections lists every section in report order.
var Sections = []string{SectionSweep, SectionFreshness, SectionQueries, SectionIngest, SectionMemory, SectionScale, SectionSchedule, SectionPollers}

// DefaultSections are the sections a run without Config.Sections runs:
// all but the schedule, which takes half an hour or more (--only
// schedule), and the heap per poller at 10,000 remotes (--only pollers).
var DefaultSections = []string{SectionSweep, SectionFreshness, SectionQueries, SectionIngest, SectionMemory, SectionScale}

// Config sizes a run. Defaults and Quick return complete ones.
type Config struct {
	Sections  []string         `json:"sections"` // to run; nil: all
	Sweep     SweepConfig      `json:"sweep"`
	Freshness FreshnessConfig  `json:"freshness"`
	Queries   QueriesConfig    `json:"queries"`
	Ingest    IngestConfig     `json:"ingest"`
	Memory    MemoryConfig     `json:"memory"`
	Scale     ScaleConfig      `json:"scale"`
	Schedule  ScheduleConfig   `json:"schedule"`
	Pollers   PollerHeapConfig `json:"pollers"`

	// Dir is where the caches and databases go (temporary directories,
	// removed afterwards); "" is os.TempDir.
	Dir string `json:"-"`
	// Progress receives one line per step; nil discards them.
	Progress io.Writer `json:"-"`
}

// DefaultRTT is the round-trip time injected into the simulated remotes.
const DefaultRTT = 50 * time.Millisecond

// lowActivity is the fleet of the sweeps: PVE clusters of 3 nodes with
// few tasks (each node keeps its 2 latest finished ones, one day of
// history, half a task per hour), so that answers stay small and a sweep
// measures request scheduling, not JSON volume.
// The fleet's clock is pinned to DefaultTimeOfDay. Idle connections stay
// open (unlike pveproxy's, closed after 5 s): these sections measure
// sweeps back to back; the schedule section measures the production
// rules.
func lowActivity() FleetConfig {
	return FleetConfig{NodesPerCluster: 3, TaskRate: 0.5, IndexSize: 2, History: 24 * time.Hour, Network: NetworkMemory, Seed: 1,
		Start: PinnedStart(time.Now(), DefaultTimeOfDay), IdleTimeout: -1}
}

// freshnessFleet is lowActivity, except that each node keeps the default
// 1500 finished tasks: with only 2, a task that finishes and is followed
// by two more on its node falls off the node's list before a refresh can
// see it finished, as on a real node after a long outage.
func freshnessFleet() FleetConfig {
	f := lowActivity()
	f.IndexSize = 1500
	return f
}

// DefaultTimeOfDay is the UTC time of day the simulated fleets' clocks
// start at: daytime, outside the nightly backups (see FleetConfig.Start).
const DefaultTimeOfDay = 14 * time.Hour

// SetFleetStart sets the start of every simulated fleet's clock (zero:
// the wall clock).
func (c *Config) SetFleetStart(t time.Time) {
	c.Sweep.Fleet.Start, c.Freshness.Fleet.Start, c.Memory.Fleet.Start, c.Pollers.Fleet.Start = t, t, t, t
}

// LargeSweeps are the sweep cases left out of Defaults to keep the run
// within about five minutes on a 2-core machine (the simulator shares the
// process and its cores): 5000 remotes take 1.5 minutes at C=100 and
// 3 minutes at C=20 there. Add them with Config.Sweep.Cases (the command's
// --sweep 5000x20,5000x100).
var LargeSweeps = []SweepCase{
	{Remotes: 5000, GlobalCap: 20, Network: NetworkMemory},
	{Remotes: 5000, GlobalCap: 100, Network: NetworkMemory},
}

// Defaults returns the full run: about five minutes on a quiet 2-core
// machine. See LargeSweeps.
func Defaults() Config {
	return Config{
		Sweep: SweepConfig{
			Cases: []SweepCase{
				{Remotes: 100, GlobalCap: 20, Network: NetworkMemory}, {Remotes: 100, GlobalCap: 100, Network: NetworkMemory},
				{Remotes: 1000, GlobalCap: 20, Network: NetworkMemory}, {Remotes: 1000, GlobalCap: 100, Network: NetworkMemory},
				{Remotes: 100, GlobalCap: 20, Network: NetworkLoopback},
			},
			RemoteCap: 5, RTT: DefaultRTT, SteadySweeps: 1, Fleet: lowActivity(),
		},
		Freshness: FreshnessConfig{
			Remotes: 10, Tracked: 50, Foreign: 50, Tick: time.Second, RefreshInterval: 5 * time.Second,
			RTT: DefaultRTT, Spread: 10 * time.Second, MinRun: time.Second, MaxRun: 4 * time.Second,
			ClockRate: 0.9, Fleet: freshnessFleet(),
		},
		Queries: QueriesConfig{
			Data:   DataConfig{Tasks: 1_000_000, Remotes: 1000, Days: 7, Seed: 1},
			Limit:  50,
			Cache:  SampleConfig{Min: 1000, Max: 5000, Budget: 200 * time.Millisecond},
			SQLite: SampleConfig{Min: 100, Max: 1000, Budget: 500 * time.Millisecond},
			PDM:    SampleConfig{Min: 3, Max: 100, Budget: 500 * time.Millisecond},
		},
		Ingest: IngestConfig{BatchSizes: []int{1000, 10_000}, Tasks: 50_000},
		Memory: MemoryConfig{Remotes: 1000, GlobalCap: 20, Sweeps: 2, Fleet: lowActivity()},
		Scale:  ScaleConfig{Remotes: 10_000, GlobalCap: 200, RemoteCap: 5, RTT: DefaultRTT, SteadySweeps: 1},
		Schedule: ScheduleConfig{
			Remotes: []int{1000, 10_000}, Duration: time.Hour, Speed: 4,
			Tick: 10 * time.Second, RefreshInterval: 10 * time.Minute, RTT: DefaultRTT,
			RemoteCap: 5, Tracked: 50, Foreign: 50, MinRun: 20 * time.Second, MaxRun: 5 * time.Minute,
			Fleet: scheduleFleet(ScheduleTimeOfDay),
		},
		Pollers: DefaultPollerHeap(),
	}
}

// Quick returns tiny sizes that exercise every section in seconds (fewer
// still under the race detector).
func Quick() Config {
	c := Defaults()
	rtt := 5 * time.Millisecond
	c.Sweep.Cases = []SweepCase{{Remotes: 10, GlobalCap: 5, Network: NetworkMemory}, {Remotes: 5, GlobalCap: 5, Network: NetworkLoopback}}
	c.Sweep.RTT = rtt
	c.Freshness = FreshnessConfig{
		Remotes: 2, Tracked: 3, Foreign: 3, Tick: 200 * time.Millisecond, RefreshInterval: time.Second,
		RTT: rtt, Spread: 500 * time.Millisecond, MinRun: time.Second, MaxRun: time.Second,
		ClockRate: 0.9, Fleet: freshnessFleet(),
	}
	c.Queries.Data = DataConfig{Tasks: 20_000, Remotes: 50, Days: 7, Seed: 1}
	c.Queries.Cache = SampleConfig{Min: 20, Max: 100, Budget: 50 * time.Millisecond}
	c.Queries.SQLite = SampleConfig{Min: 5, Max: 50, Budget: 50 * time.Millisecond}
	c.Queries.PDM = SampleConfig{Min: 2, Max: 10, Budget: 50 * time.Millisecond}
	c.Ingest = IngestConfig{BatchSizes: []int{100, 1000}, Tasks: 2000}
	c.Memory = MemoryConfig{Remotes: 20, GlobalCap: 10, Sweeps: 2, Fleet: lowActivity()}
	c.Scale = ScaleConfig{Remotes: 40, GlobalCap: 10, RemoteCap: 5, RTT: rtt, SteadySweeps: 1}
	c.Sections = Sections // the schedule too
	c.Schedule.Remotes, c.Schedule.Duration, c.Schedule.Speed = []int{10}, 20*time.Minute, 60
	c.Schedule.Tracked, c.Schedule.Foreign = 4, 4
	c.Pollers.Remotes, c.Pollers.Idle = []int{10}, 100*time.Millisecond
	if raceEnabled {
		c.Sweep.Cases = []SweepCase{{Remotes: 4, GlobalCap: 4, Network: NetworkMemory}, {Remotes: 2, GlobalCap: 4, Network: NetworkLoopback}}
		c.Freshness.Remotes, c.Freshness.Tracked, c.Freshness.Foreign = 1, 2, 2
		c.Queries.Data = DataConfig{Tasks: 3000, Remotes: 10, Days: 7, Seed: 1}
		c.Queries.Cache.Min, c.Queries.SQLite.Min = 5, 3
		c.Ingest = IngestConfig{BatchSizes: []int{100}, Tasks: 300}
		c.Memory.Remotes = 5
		c.Scale.Remotes = 8
		c.Schedule.Remotes, c.Schedule.Tracked, c.Schedule.Foreign = []int{3}, 2, 2
		c.Pollers.Remotes = []int{3}
	}
	return c
}

// Report is the result of a run.
type Report struct {
	Machine   Machine           `json:"machine"`
	Command   string            `json:"command,omitempty"` // set by the caller
	Config    Config            `json:"config"`
	Sweep     []SweepResult     `json:"sweep,omitempty"`
	Freshness *FreshnessResult  `json:"freshness,omitempty"`
	Queries   *QueriesResult    `json:"queries,omitempty"`
	Ingest    *IngestResult     `json:"ingest,omitempty"`
	Memory    *MemoryResult     `json:"memory,omitempty"`
	Scale     *SweepResult      `json:"scale,omitempty"`
	Schedule  *ScheduleResult   `json:"schedule,omitempty"`
	Pollers   *PollerHeapResult `json:"pollers,omitempty"`
	Goals     []Goal            `json:"goals,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"` // by section
}

// Run runs the selected sections (in an order that keeps them from
// disturbing each other: the daemon's memory first, on a fresh heap; the
// 1M-task data last) and returns the report. A failing section is
// recorded in Report.Errors and in the returned error; the others still
// run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	want := map[string]bool{}
	for _, s := range cfg.Sections {
		if !slices.Contains(Sections, s) {
			return nil, fmt.Errorf("unknown section %q (sections: %v)", s, Sections)
		}
		want[s] = true
	}
	if len(want) == 0 {
		for _, s := range DefaultSections {
			want[s] = true
		}
	}
	r := &Report{Machine: machineInfo(), Config: cfg, Errors: map[string]string{}}
	start := time.Now()
	progress := func(msg string) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "%6.1fs  %s\n", time.Since(start).Seconds(), msg)
		}
	}
	var errs []error
	fail := func(section string, err error) {
		r.Errors[section] = err.Error()
		errs = append(errs, fmt.Errorf("%s: %w", section, err))
		progress(section + " failed: " + err.Error())
	}
	parent := cfg.Dir
	if parent == "" {
		parent = os.TempDir()
	}

	if want[SectionPollers] {
		res, err := runPollerHeap(ctx, cfg.Pollers, parent, progress)
		if err != nil {
			fail(SectionPollers, err)
		}
		r.Pollers = res
	}
	if want[SectionMemory] {
		r.Memory = &MemoryResult{}
		if err := runDaemonMemory(ctx, cfg.Memory, r.Memory, parent, progress); err != nil {
			fail(SectionMemory, err)
		}
	}
	if want[SectionSweep] || want[SectionScale] {
		if err := runSweeps(ctx, cfg, want, r, parent, progress, fail); err != nil {
			return r, err
		}
	}
	if want[SectionFreshness] {
		res, err := runFreshness(ctx, cfg.Freshness, parent, progress)
		if err != nil {
			fail(SectionFreshness, err)
		}
		r.Freshness = res
	}
	if want[SectionSchedule] {
		res, err := runSchedule(ctx, cfg.Schedule, parent, progress)
		if err != nil {
			fail(SectionSchedule, err)
		}
		r.Schedule = res
	}
	if want[SectionQueries] || want[SectionIngest] || want[SectionMemory] {
		runData(ctx, cfg, want, r, parent, progress, fail)
	}
	r.Goals = r.goals()
	r.Machine.LoadAfter = LoadAverage()
	r.Machine.Duration = time.Since(start).Seconds()
	if len(r.Errors) == 0 {
		r.Errors = nil
	}
	return r, errors.Join(errs...)
}

// runSweeps runs the sweep cases and the scale section. Each fleet size
// gets a fleet of its own, started before its first case and closed after
// its last, so that no case pays (in memory and garbage collection) for a
// larger simulator than it uses.
func runSweeps(ctx context.Context, cfg Config, want map[string]bool, r *Report, parent string, progress func(string), fail func(string, error)) error {
	type job struct {
		c     SweepCase
		scale bool
	}
	var jobs []job
	if want[SectionSweep] {
		for _, c := range cfg.Sweep.Cases {
			jobs = append(jobs, job{c: c})
		}
	}
	if want[SectionScale] {
		jobs = append(jobs, job{c: SweepCase{Remotes: cfg.Scale.Remotes, GlobalCap: cfg.Scale.GlobalCap, Network: NetworkMemory}, scale: true})
	}
	type fleetKey struct {
		n       int
		network string
	}
	last := map[fleetKey]int{}
	for i, j := range jobs {
		last[fleetKey{j.c.Remotes, j.c.Network}] = i
	}
	fleets := map[fleetKey]*simFleet{}
	defer func() {
		for _, fl := range fleets {
			fl.close()
		}
	}()
	for i, j := range jobs {
		section := SectionSweep
		if j.scale {
			section = SectionScale
		}
		key := fleetKey{j.c.Remotes, j.c.Network}
		fl := fleets[key]
		if fl == nil {
			fc := cfg.Sweep.Fleet
			fc.Remotes, fc.Network = j.c.Remotes, j.c.Network
			progress(fmt.Sprintf("%s: starting a fleet of %d remotes (%s network)", section, j.c.Remotes, j.c.Network))
			var err error
			if fl, err = startFleet(fc); err != nil {
				fail(section, err)
				continue
			}
			fleets[key] = fl
			progress(fmt.Sprintf("%s: fleet ready in %.1fs", section, fl.setup.Seconds()))
		}
		if j.scale {
			setFleetRTT(fl, cfg.Scale.RTT)
			progress(fmt.Sprintf("scale: %d remotes, C=%d", j.c.Remotes, j.c.GlobalCap))
			res, err := runScale(ctx, fl, cfg.Scale, cfg.Sweep.ProfileDir, parent)
			if err != nil {
				fail(SectionScale, err)
			} else {
				r.Scale = &res
			}
		} else {
			setFleetRTT(fl, cfg.Sweep.RTT)
			progress(fmt.Sprintf("sweep: %d remotes, C=%d, %s network", j.c.Remotes, j.c.GlobalCap, j.c.Network))
			res, err := runSweepCase(ctx, fl, j.c, cfg.Sweep, parent)
			if err != nil {
				fail(SectionSweep, fmt.Errorf("%d remotes, C=%d: %w", j.c.Remotes, j.c.GlobalCap, err))
			} else {
				r.Sweep = append(r.Sweep, res)
			}
		}
		if last[key] == i {
			fl.close()
			delete(fleets, key)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// runData loads the synthetic history once for the query, ingest and
// memory (heap per task) sections.
func runData(ctx context.Context, cfg Config, want map[string]bool, r *Report, parent string, progress func(string), fail func(string, error)) {
	failAll := func(err error) {
		for _, s := range []string{SectionQueries, SectionIngest, SectionMemory} {
			if want[s] {
				fail(s, err)
			}
		}
	}
	progress(fmt.Sprintf("data: loading %d tasks into the cache", cfg.Queries.Data.Tasks))
	ds, err := loadDataset(cfg.Queries.Data, parent)
	if err != nil {
		failAll(err)
		return
	}
	defer ds.close()
	if want[SectionMemory] {
		if r.Memory == nil {
			r.Memory = &MemoryResult{}
		}
		r.Memory.HeapTasks = ds.w.Latest().Load().Len()
		r.Memory.HeapBytes = ds.heapBytes
		r.Memory.HeapPerTask = ds.heapPerTask
	}
	if !want[SectionQueries] && !want[SectionIngest] {
		return
	}
	if SQLiteBuiltIn() {
		progress(fmt.Sprintf("data: loading %d tasks into sqlite", cfg.Queries.Data.Tasks))
		if err := ds.loadSQLite("FULL"); err != nil {
			failAll(fmt.Errorf("load sqlite: %w", err))
			return
		}
	} else {
		progress("data: " + ErrNoSQLite.Error() + "; measuring the cache and the PDM scan only")
	}
	if want[SectionQueries] {
		res, err := runQueries(ctx, ds, cfg.Queries, progress)
		if err != nil {
			fail(SectionQueries, err)
		}
		r.Queries = res
	}
	if want[SectionIngest] {
		res, err := runIngest(ctx, ds, cfg.Ingest, progress)
		if err != nil {
			fail(SectionIngest, err)
		}
		r.Ingest = res
	}
}
