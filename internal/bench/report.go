package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/sim"
)

// Goal is one performance goal of the cache issue, against what was
// measured.
type Goal struct {
	Name     string  `json:"name"`
	Target   float64 `json:"target"`
	Measured float64 `json:"measured"`
	Unit     string  `json:"unit"`
	Max      bool    `json:"max"` // the target is a maximum (else a minimum)
	Met      bool    `json:"met"`
	Where    string  `json:"where,omitempty"` // which measurement
}

// goals evaluates the cache's performance goals on the sections that ran.
func (r *Report) goals() []Goal {
	var out []Goal
	add := func(g Goal) {
		if g.Max {
			g.Met = g.Measured <= g.Target
		} else {
			g.Met = g.Measured >= g.Target
		}
		out = append(out, g)
	}
	// The cache's goals are stated for 1M tasks; smaller runs (--quick)
	// are not held to them.
	const goalTasks = 1_000_000
	if q := r.Queries; q != nil && len(q.Lists) > 0 && q.CacheTasks >= goalTasks {
		worst := q.Lists[0]
		for _, l := range q.Lists {
			if l.Cache.P99 > worst.Cache.P99 {
				worst = l
			}
		}
		add(Goal{Name: "list p99 (worst filter kind)", Target: 1, Measured: ms(worst.Cache.P99), Unit: "ms", Max: true, Where: worst.Kind})
		add(Goal{Name: "statistics p99", Target: 5, Measured: ms(q.Statistics.Cache.P99), Unit: "ms", Max: true, Where: q.Statistics.Kind})
	}
	if in := r.Ingest; in != nil && in.BaseTasks >= goalTasks {
		for _, row := range in.Rows {
			if row.Engine == "cache" && row.BatchSize == 10_000 {
				add(Goal{Name: "ingest, batches of 10k", Target: 500_000, Measured: row.TasksPerSec, Unit: "tasks/s",
					Where: fmt.Sprintf("%d batches into %d tasks", row.Batches, in.BaseTasks)})
			}
		}
	}
	if m := r.Memory; m != nil && m.HeapTasks >= goalTasks {
		add(Goal{Name: "Go heap per cached task", Target: 100, Measured: m.HeapPerTask, Unit: "B/task", Max: true,
			Where: fmt.Sprintf("%d tasks", m.HeapTasks)})
	}
	for _, s := range append(append([]SweepResult(nil), r.Sweep...), scaleSlice(r.Scale)...) {
		if len(s.SteadyAll) == 0 {
			continue
		}
		add(Goal{Name: "new connections in a steady sweep <= C", Target: float64(s.GlobalCap), Measured: float64(s.Steady.NewConns),
			Unit: "conns", Max: true, Where: fmt.Sprintf("%d remotes, C=%d, %s", s.Remotes, s.GlobalCap, s.Network)})
	}
	for _, run := range r.Pollers.runs() {
		if run.Remotes >= 10_000 {
			add(Goal{Name: "Go heap per idle poller", Target: 48, Measured: run.Idle.PerRemote / 1024, Unit: "KiB", Max: true,
				Where: fmt.Sprintf("%d remotes, fleet excluded", run.Remotes)})
		}
	}
	if sc := r.Schedule; sc != nil {
		c := sc.Config
		for i := 0; i+1 < len(sc.Runs); i += 2 {
			before, after := sc.Runs[i], sc.Runs[i+1]
			if before.Detection || !after.Detection || before.Remotes != after.Remotes {
				continue
			}
			where := fmt.Sprintf("%d remotes, production schedule", after.Remotes)
			if before.Requests > 0 {
				add(Goal{Name: "requests per remote-hour, after / before", Target: 50, Measured: 100 * after.Requests / before.Requests,
					Unit: "%", Max: true, Where: where})
			}
			add(Goal{Name: "tracked freshness p99 <= 1 tick + 2 RTT", Target: (c.Tick + 2*c.RTT).Seconds(), Measured: after.Tracked.P99.Seconds(),
				Unit: "s", Max: true, Where: where})
			add(Goal{Name: "foreign freshness p99 <= 1 refresh interval", Target: c.RefreshInterval.Seconds(), Measured: after.Foreign.P99.Seconds(),
				Unit: "s", Max: true, Where: where})
		}
	}
	return out
}

// globalCapText describes the schedule section's global cap.
func globalCapText(c int) string {
	if c == 0 {
		return "20 per 1000 remotes (at least 20)"
	}
	return fmt.Sprint(c)
}

// clockStart describes where a fleet's clock starts.
func clockStart(c FleetConfig) string {
	if c.Start.IsZero() {
		return "the wall clock"
	}
	return c.Start.UTC().Format("15:04 UTC")
}

func scaleSlice(s *SweepResult) []SweepResult {
	if s == nil {
		return nil
	}
	return []SweepResult{*s}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as aligned tables, one per section.
func (r *Report) WriteText(w io.Writer) error {
	p := &printer{w: w}
	m := r.Machine
	p.f("taskfleet bench  %s  %s\n", m.Start, r.Command)
	p.f("machine: %s, %d CPUs (GOMAXPROCS %d), %s, %s, %.1f GiB; load average %.2f before, %.2f after; %.0fs\n",
		m.CPU, m.CPUs, m.GOMAXPROCS, m.GoVersion, m.OS, float64(m.MemTotal)/(1<<30), m.LoadBefore, m.LoadAfter, m.Duration)
	if len(r.Sweep) > 0 {
		c := r.Config.Sweep
		p.title("1. Sweep",
			fmt.Sprintf("PVE clusters of %d nodes, RTT %v per request and per new connection, per-remote cap c=%d; sim: %g tasks/node/h, %d finished tasks kept per node, %v history, clock from %s.",
				c.Fleet.NodesPerCluster, c.RTT, c.RemoteCap, c.Fleet.TaskRate, c.Fleet.IndexSize, c.Fleet.History, clockStart(c.Fleet)),
			"bound = max(ceil(K/C), max_r ceil(M_r/c)) x RTT over the requests K the remotes received; +conn counts each new connection as one more RTT.",
			"CPU = process CPU (getrusage) incl. the in-process sim; taskfleet/sim/other = CPU profile samples by goroutine label.")
		p.sweepTable(r.Sweep)
	}
	if f := r.Freshness; f != nil {
		c := f.Config
		p.title("2. Freshness",
			fmt.Sprintf("delay from a task ending on the sim to the list showing it finished; %d remotes, tick %v, refresh interval %v, RTT %v, fleet clock from %s at rate %g.",
				c.Remotes, c.Tick, c.RefreshInterval, c.RTT, clockStart(c.Fleet), c.ClockRate))
		t := p.table("tasks", "n", "p50", "p99", "max", "p50 ticks", "p99 ticks", "missing")
		for _, row := range []struct {
			name string
			v    Freshness
		}{{"tracked", f.Tracked}, {"foreign", f.Foreign}} {
			t.row(row.name, row.v.N, dur(row.v.P50), dur(row.v.P99), dur(row.v.Max),
				fmt.Sprintf("%.2f", row.v.Ticks50), fmt.Sprintf("%.2f", row.v.Ticks99), row.v.Missing)
		}
		t.end()
		p.f("foreign p99 = %.2f refresh intervals\n", f.ForeignP99Refresh)
	}
	if q := r.Queries; q != nil {
		p.title("3. Queries",
			fmt.Sprintf("%d tasks (%d in the snapshot), %d remotes, %d days (cache/synth); lists with limit %d; archive on disk %.1f MiB; load: cache %.1fs, sqlite %.1fs; %d answers compared across engines.",
				q.Data.Tasks, q.CacheTasks, q.Data.Remotes, q.Data.Days, q.Limit, float64(q.ArchiveSize)/(1<<20), q.CacheLoad, q.SQLiteLoad, q.Checked),
			"cache = taskfleet's snapshot; sqlite = modernc.org/sqlite, WAL, indexed, prepared, page + COUNT(*); pdm = scan of the archive files newest first, stops after the page (no total).",
			"ratio = engine p99 / cache p99.")
		if !q.WithSQLite {
			p.f("sqlite: left out, %v\n", ErrNoSQLite)
		}
		t := p.table("filter", "cache p50", "cache p99", "n", "sqlite p50", "sqlite p99", "n", "pdm p50", "pdm p99", "n", "sqlite/cache", "pdm/cache")
		for _, row := range append(append([]QueryRow(nil), q.Lists...), q.Statistics) {
			t.row(row.Kind, dur(row.Cache.P50), dur(row.Cache.P99), row.Cache.N,
				dur(row.SQLite.P50), dur(row.SQLite.P99), row.SQLite.N,
				dur(row.PDM.P50), dur(row.PDM.P99), row.PDM.N,
				times(row.SQLiteRatio), times(row.PDMRatio))
		}
		t.end()
	}
	if in := r.Ingest; in != nil {
		p.title("4. Ingest",
			fmt.Sprintf("new tasks into a store already holding %d; cache = Apply (journal append + fsync + new snapshot), sqlite = one transaction per batch, synchronous=FULL in WAL mode (fsync per commit).", in.BaseTasks),
			"disk floor = appending the batch's journal bytes to a file and fsyncing it, nothing else: the most any durable ingest can do on this disk.")
		t := p.table("engine", "batch", "batches", "tasks/s", "batch p50", "batch max", "journal/batch", "disk floor tasks/s")
		for _, row := range in.Rows {
			floor, jb := "-", "-"
			if row.DiskFloor > 0 {
				floor = fmt.Sprintf("%.0f (%s per batch)", row.DiskFloor, dur(row.DiskFloorBatch))
				jb = fmt.Sprintf("%.2f MiB", mib(row.JournalBytes))
			}
			t.row(row.Engine, row.BatchSize, row.Batches, fmt.Sprintf("%.0f", row.TasksPerSec), dur(row.Batch.P50), dur(row.Batch.Max), jb, floor)
		}
		t.end()
		p.f("cache journal merge of the %d ingested tasks: %s; cache rate with the merge included: %.0f tasks/s\n",
			in.MergedTasks, dur(in.Merge), in.SustainedCache)
	}
	if m := r.Memory; m != nil {
		p.title("5. Memory")
		t := p.table("measure", "value")
		if m.HeapTasks > 0 {
			t.row("Go heap of the cache", fmt.Sprintf("%.1f MiB for %d tasks = %.1f B/task", float64(m.HeapBytes)/(1<<20), m.HeapTasks, m.HeapPerTask))
		}
		if m.Config.Remotes > 0 {
			t.row("daemon RSS, polling "+fmt.Sprint(m.Config.Remotes)+" remotes (sim clock from "+clockStart(m.Config.Fleet)+")", fmt.Sprintf("%.1f MiB (%.1f MiB if the sim's growth is not counted)", mib(m.DaemonRSS), mib(m.DaemonRSSLow)))
			t.row("daemon Go heap", fmt.Sprintf("%.1f MiB", mib(m.DaemonHeap)))
			t.row("RSS: base / sim only / sim+daemon / sim after stop", fmt.Sprintf("%.1f / %.1f / %.1f / %.1f MiB", mib(m.Base), mib(m.SimOnly), mib(m.Both), mib(m.SimAfter)))
			t.row("cached tasks, goroutines", fmt.Sprintf("%d, %d", m.CachedTasks, m.Goroutines))
		}
		t.end()
	}
	if s := r.Scale; s != nil {
		p.title("6. Scale", fmt.Sprintf("one fleet of %d remotes (%d nodes), C=%d, c=%d, RTT %v, %s network.", s.Remotes, s.Nodes, s.GlobalCap, s.RemoteCap, s.RTT, s.Network))
		p.sweepTable([]SweepResult{*s})
	}
	if sc := r.Schedule; sc != nil {
		c := sc.Config
		p.title("7. Production schedule",
			fmt.Sprintf("PVE clusters of 3 nodes; tick %v, refresh every %v (spread), running tasks re-checked every %v, RTT %v, C=%s, c=%d; the remotes close idle connections after %v and serve %d requests per connection, as pveproxy.",
				c.Tick, c.RefreshInterval, actors.RunningCheckInterval, c.RTT, globalCapText(c.GlobalCap), c.RemoteCap, sim.PVEIdleTimeout, sim.PVERequestsPerConn),
			fmt.Sprintf("%v of simulated time from %s (nightly backups running), %dx compressed (every interval, the RTT and the idle timeout divided by %d); %d tracked and %d foreign tasks of %v-%v started over the first half.",
				c.Duration, clockStart(c.Fleet), c.Speed, c.Speed, c.Tracked, c.Foreign, c.MinRun, c.MaxRun),
			"per remote and simulated hour; before = change detection off (every refresh: node list + every node; running tasks by status) and tracked polls queued with the others, after = both on (detect.go, urgent.go).",
			"freshness: from a task's end on the remote to the cache showing it finished, simulated time.")
		t := p.table("remotes", "C", "detection", "requests", "node lists", "task lists", "status", "cluster/tasks", "new conns", "full TLS", "resumed TLS", "KiB", "taskfleet CPU", "CPU/request", "tracked p50", "tracked p99", "foreign p50", "foreign p99", "missing", "track failed", "errors")
		for _, run := range sc.Runs {
			det := "off (before)"
			if run.Detection {
				det = "on (after)"
			}
			t.row(run.Remotes, run.GlobalCap, det, fmt.Sprintf("%.1f", run.Requests), fmt.Sprintf("%.1f", run.NodeLists), fmt.Sprintf("%.1f", run.TaskLists),
				fmt.Sprintf("%.1f", run.Statuses), fmt.Sprintf("%.1f", run.ClusterList), fmt.Sprintf("%.1f", run.NewConns),
				fmt.Sprintf("%.1f", run.Full), fmt.Sprintf("%.1f", run.Resumed), fmt.Sprintf("%.1f", run.KiB),
				fmt.Sprintf("%.1f ms", run.CPUms), dur(run.CPUPerRequest),
				dur(run.Tracked.P50), dur(run.Tracked.P99), dur(run.Foreign.P50), dur(run.Foreign.P99),
				run.Tracked.Missing+run.Foreign.Missing, run.TrackFailed, run.Errors)
		}
		t.end()
		for _, run := range sc.Runs {
			if run.TrackError != "" {
				p.f("%d remotes, change detection %v: first failed track: %s\n", run.Remotes, run.Detection, run.TrackError)
			}
		}
	}
	if ph := r.Pollers; ph != nil {
		c := ph.Config
		p.title("8. Heap per poller",
			fmt.Sprintf("PVE clusters of 3 nodes (sim clock from %s), C=%d per 1000 remotes, c=5, tick %v, refresh 10m; %d full refreshes, then the heap after GC: busy = right after them (keep-alive connections open), idle = %v later (the remotes closed them after 5 s, as pveproxy).",
				clockStart(c.Fleet), c.GlobalCapPer1000, c.Tick, c.Sweeps, c.Idle),
			fmt.Sprintf("split by allocating code from the heap profile (MemProfileRate %d): fleet = sim and its HTTP servers, network = internal/memnet pipes, taskfleet = the rest allocated after the fleet started.", c.ProfileRate))
		t := p.table("remotes", "C", "stage", "heap growth", "taskfleet", "fleet", "network", "taskfleet per remote", "goroutines", "fleet heap before")
		for _, run := range ph.Runs {
			for _, st := range []struct {
				name string
				s    HeapSplit
			}{{"busy", run.Busy}, {"idle", run.Idle}} {
				t.row(run.Remotes, run.GlobalCap, st.name, fmt.Sprintf("%.1f MiB", mib(st.s.Total)), fmt.Sprintf("%.1f MiB", mib(st.s.Taskfleet)),
					fmt.Sprintf("%.1f MiB", mib(st.s.Fleet)), fmt.Sprintf("%.1f MiB", mib(st.s.Network)), fmt.Sprintf("%.1f KiB", st.s.PerRemote/1024),
					st.s.Goroutines, fmt.Sprintf("%.1f MiB", mib(run.FleetHeap)))
			}
		}
		t.end()
	}
	if len(r.Goals) > 0 {
		p.title("Goals")
		t := p.table("goal", "target", "measured", "met", "where")
		for _, g := range r.Goals {
			op := ">="
			if g.Max {
				op = "<="
			}
			met := "yes"
			if !g.Met {
				met = "NO (" + offBy(g) + ")"
			}
			t.row(g.Name, fmt.Sprintf("%s %s %s", op, num(g.Target), g.Unit), fmt.Sprintf("%s %s", num(g.Measured), g.Unit), met, g.Where)
		}
		t.end()
	}
	for s, e := range r.Errors {
		p.f("ERROR %s: %s\n", s, e)
	}
	return p.err
}

// offBy says how far a missed goal is off.
func offBy(g Goal) string {
	if g.Target == 0 || g.Measured == 0 {
		return "no value"
	}
	if g.Max {
		return fmt.Sprintf("%.2fx the target", g.Measured/g.Target)
	}
	return fmt.Sprintf("%.0f%% of the target", 100*g.Measured/g.Target)
}

func (p *printer) sweepTable(rs []SweepResult) {
	t := p.table("remotes", "C", "net", "sweep", "wall", "K", "bound", "ratio", "new conns", "bound+conn", "ratio", "CPU", "taskfleet", "sim", "other", "failed")
	for _, s := range rs {
		type namedRun struct {
			name string
			v    SweepRun
		}
		runs := []namedRun{{"first", s.Backfill}}
		switch {
		case len(s.SteadyAll) > 1:
			// Each steady sweep, then their median: whether a GC cycle of
			// the process (fleet included) falls into a sweep moves its
			// wall time by a third.
			for i, v := range s.SteadyAll {
				runs = append(runs, namedRun{fmt.Sprintf("steady %d", i+1), v})
			}
			runs = append(runs, namedRun{"median", s.Steady})
		case len(s.SteadyAll) == 1:
			runs = append(runs, namedRun{"steady", s.Steady})
		}
		for _, run := range runs {
			v := run.v
			split := []any{"-", "-", "-"}
			if v.Split.OK {
				split = []any{secs(v.Split.Taskfleet), secs(v.Split.Sim), secs(v.Split.Other)}
			}
			t.row(append(append([]any{s.Remotes, s.GlobalCap, s.Network, run.name, secs(v.Wall), v.Requests, secs(v.Bound),
				fmt.Sprintf("%.2f", v.Ratio), v.NewConns, secs(v.BoundConn), fmt.Sprintf("%.2f", v.RatioConn), secs(v.CPU)},
				split...), v.Failed)...)
		}
	}
	t.end()
}

// printer writes text and remembers the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) title(name string, notes ...string) {
	p.f("\n## %s\n", name)
	for _, n := range notes {
		p.f("%s\n", n)
	}
	p.f("\n")
}

type table struct {
	p  *printer
	tw *tabwriter.Writer
}

func (p *printer) table(cols ...string) *table {
	t := &table{p: p, tw: tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)}
	t.row(anySlice(cols)...)
	return t
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (t *table) row(cells ...any) {
	if t.p.err != nil {
		return
	}
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	_, t.p.err = fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) end() {
	if t.p.err == nil {
		t.p.err = t.tw.Flush()
	}
}

// dur prints a latency with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig(float64(d)/1e6) + "ms"
	}
	return sig(d.Seconds()) + "s"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func sig(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func times(v float64) string {
	if v == 0 {
		return "-"
	}
	return sig(v) + "x"
}

func num(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.0f", v)
	}
	return sig(v)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
