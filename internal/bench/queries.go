package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/taskfleet/taskfleet/cache/synth"
	"github.com/taskfleet/taskfleet/task"
)

// QueriesConfig sizes the query section.
type QueriesConfig struct {
	Data  DataConfig `json:"data"`
	Limit int        `json:"limit"` // page size of every list

	// Samples per list kind and engine: at least Min, at most Max, and no
	// new sample after Budget once Min are taken. PDM is the PDM scan's
	// own setting (a scan can take a second; it gets fewer samples).
	Cache  SampleConfig `json:"cache_samples"`
	SQLite SampleConfig `json:"sqlite_samples"`
	PDM    SampleConfig `json:"pdm_samples"`
}

// SampleConfig bounds the repetitions of one measurement.
type SampleConfig struct {
	Min    int           `json:"min"`
	Max    int           `json:"max"`
	Budget time.Duration `json:"budget_ns"`
}

func (s SampleConfig) sampler() sampler { return sampler{min: s.Min, max: s.Max, budget: s.Budget} }

// QueryRow is one filter kind (or statistics) measured on the three engines.
type QueryRow struct {
	Kind   string  `json:"kind"`
	Cache  Latency `json:"cache"`
	PDM    Latency `json:"pdm_scan"`
	SQLite Latency `json:"sqlite"`
	// SQLiteRatio is SQLite's p99 over the cache's p99 (how many times
	// faster the cache is); PDMRatio the same for the PDM scan.
	SQLiteRatio float64 `json:"sqlite_p99_ratio"`
	PDMRatio    float64 `json:"pdm_p99_ratio"`
}

// QueriesResult is the query section.
type QueriesResult struct {
	Data       DataConfig `json:"data"`
	Limit      int        `json:"limit"`
	CacheTasks int        `json:"cache_tasks"`  // tasks in the snapshot
	CacheLoad  float64    `json:"cache_load_s"` // loading the cache (for information)
	SQLiteLoad float64    `json:"sqlite_load_s"`
	// WithSQLite is false in a binary built without the sqlite tag: the
	// SQLite columns are then empty.
	WithSQLite  bool       `json:"with_sqlite"`
	Lists       []QueryRow `json:"lists"`
	Statistics  QueryRow   `json:"statistics"`
	Checked     int        `json:"checked"` // queries whose answers were compared across engines
	ArchiveSize int64      `json:"archive_bytes"`
}

// listKind is a filter kind with its parameters for the i-th sample.
type listKind struct {
	name   string
	filter func(i int) task.Filter
}

func statusSet(cs ...task.StatusClass) task.StatusSet {
	var s task.StatusSet
	for _, c := range cs {
		s = s.Add(c)
	}
	return s
}

// listKinds are the filter kinds of PDM's task list, each with parameters
// that vary from sample to sample.
func listKinds(remotes []string, limit, tasks int) []listKind {
	end := synth.End.Unix()
	day := int64(86400)
	deep := tasks / 2
	return []listKind{
		{"none", func(i int) task.Filter { return task.Filter{Limit: limit} }},
		{"remote", func(i int) task.Filter { return task.Filter{Limit: limit, Remote: remotes[(i*37)%len(remotes)]} }},
		{"running", func(i int) task.Filter { return task.Filter{Limit: limit, Running: true} }},
		{"errors", func(i int) task.Filter { return task.Filter{Limit: limit, Errors: true} }},
		{"typefilter", func(i int) task.Filter {
			return task.Filter{Limit: limit, TypeFilter: []string{"vzdump", "qm", "garbage_collection", "syncjob", "qmigrate", "backup"}[i%6]}
		}},
		{"userfilter", func(i int) task.Filter {
			return task.Filter{Limit: limit, UserFilter: []string{"root", "user042", "svc-backup", "PDM", "admin"}[i%5]}
		}},
		{"statusfilter", func(i int) task.Filter {
			return task.Filter{Limit: limit, StatusFilter: []task.StatusSet{
				statusSet(task.StatusOK), statusSet(task.StatusWarning), statusSet(task.StatusError),
				statusSet(task.StatusUnknown), statusSet(task.StatusWarning, task.StatusError)}[i%5]}
		}},
		{"since_until", func(i int) task.Filter {
			since := end - int64(i%160+1)*3600 - int64(i%7)*97
			return task.Filter{Limit: limit, Since: since, Until: since + 3600 + int64(i%3)*day}
		}},
		{"deep_start", func(i int) task.Filter { return task.Filter{Limit: limit, Start: deep + i%1000} }},
	}
}

// statsFilter is the statistics query: the whole 7 days (shifted a little
// per sample so no engine can answer from a cache of its own).
func statsFilter(days int) func(i int) task.Filter {
	end := synth.End.Unix()
	return func(i int) task.Filter { return task.Filter{Since: end - int64(days)*86400 + int64(i%3)} }
}

// runQueries measures list and statistics latency on the three engines
// over the same data, after checking that they give the same answers. ds
// must hold the cache and the SQLite database.
func runQueries(ctx context.Context, ds *dataset, cfg QueriesConfig, progress func(string)) (*QueriesResult, error) {
	snap := ds.w.Latest().Load()
	pdm, err := NewPDMScan(ds.cacheDir())
	if err != nil {
		return nil, err
	}
	defer pdm.Close()
	res := &QueriesResult{
		Data: ds.cfg, Limit: cfg.Limit, CacheTasks: snap.Len(),
		CacheLoad: ds.cacheLoad.Seconds(), SQLiteLoad: ds.sqlLoad.Seconds(), WithSQLite: ds.sql != nil,
		ArchiveSize: dirSize(ds.cacheDir()),
	}
	kinds := listKinds(ds.remotes, cfg.Limit, ds.cfg.Tasks)

	// The engines must agree before their speed means anything.
	for _, k := range kinds {
		for i := range 2 {
			f := k.filter(i)
			want := snap.Query(f)
			if ds.sql != nil {
				got, err := ds.sql.Query(ctx, f)
				if err != nil {
					return nil, err
				}
				if d := diffPages(want, got, true); d != "" {
					return nil, fmt.Errorf("queries: sqlite and cache disagree on %s %+v: %s", k.name, f, d)
				}
			}
			gotPDM, err := pdm.Query(f)
			if err != nil {
				return nil, err
			}
			if d := diffPages(want, gotPDM, false); d != "" {
				return nil, fmt.Errorf("queries: pdm scan and cache disagree on %s %+v: %s", k.name, f, d)
			}
			res.Checked += 2
		}
	}
	sf := statsFilter(ds.cfg.Days)
	if err := checkStatistics(ctx, snap.Statistics(sf(0)), ds, pdm, sf(0)); err != nil {
		return nil, err
	}
	res.Checked += 2

	measure := func(k listKind, stats bool) (QueryRow, error) {
		row := QueryRow{Kind: k.name}
		var err error
		progress("queries: " + k.name)
		row.Cache, err = timeOp(cfg.Cache, func(i int) error {
			if stats {
				snap.Statistics(k.filter(i))
			} else {
				snap.Query(k.filter(i))
			}
			return nil
		})
		if err != nil {
			return row, err
		}
		if ds.sql != nil {
			row.SQLite, err = timeOp(cfg.SQLite, func(i int) error {
				if stats {
					_, err := ds.sql.Statistics(ctx, k.filter(i))
					return err
				}
				_, err := ds.sql.Query(ctx, k.filter(i))
				return err
			})
			if err != nil {
				return row, err
			}
		}
		row.PDM, err = timeOp(cfg.PDM, func(i int) error {
			if stats {
				_, err := pdm.Statistics(k.filter(i))
				return err
			}
			_, err := pdm.Query(k.filter(i))
			return err
		})
		if err != nil {
			return row, err
		}
		row.SQLiteRatio = ratio(row.SQLite.P99, row.Cache.P99)
		row.PDMRatio = ratio(row.PDM.P99, row.Cache.P99)
		return row, ctx.Err()
	}
	for _, k := range kinds {
		row, err := measure(k, false)
		if err != nil {
			return nil, fmt.Errorf("queries %s: %w", k.name, err)
		}
		res.Lists = append(res.Lists, row)
	}
	row, err := measure(listKind{name: fmt.Sprintf("statistics_%dd", ds.cfg.Days), filter: sf}, true)
	if err != nil {
		return nil, fmt.Errorf("queries statistics: %w", err)
	}
	res.Statistics = row
	return res, nil
}

// timeOp samples op after one untimed warm-up call.
func timeOp(sc SampleConfig, op func(i int) error) (Latency, error) {
	if err := op(0); err != nil {
		return Latency{}, err
	}
	samples, err := sc.sampler().run(op)
	if err != nil {
		return Latency{}, err
	}
	return Summarise(samples), nil
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// diffPages describes how got differs from want ("" when equal); with
// total, the totals must agree too.
func diffPages(want, got task.Page, total bool) string {
	if total && want.Total != got.Total {
		return fmt.Sprintf("total %d, want %d", got.Total, want.Total)
	}
	if len(want.Tasks) != len(got.Tasks) {
		return fmt.Sprintf("%d tasks, want %d", len(got.Tasks), len(want.Tasks))
	}
	for i := range want.Tasks {
		w, g := want.Tasks[i], got.Tasks[i]
		if w.Remote != g.Remote || w.UPID.String() != g.UPID.String() || w.EndTime != g.EndTime || w.Status != g.Status {
			return fmt.Sprintf("task %d: %s %s end %d %q, want %s %s end %d %q", i,
				g.Remote, g.UPID, g.EndTime, g.Status, w.Remote, w.UPID, w.EndTime, w.Status)
		}
	}
	return ""
}

// checkStatistics compares the statistics of SQLite and the PDM scan with
// the cache's.
func checkStatistics(ctx context.Context, want task.Statistics, ds *dataset, pdm *PDMScan, f task.Filter) error {
	if ds.sql != nil {
		got, err := ds.sql.Statistics(ctx, f)
		if err != nil {
			return err
		}
		if d := diffStats(want, got); d != "" {
			return fmt.Errorf("queries: sqlite and cache statistics disagree: %s", d)
		}
	}
	got, err := pdm.Statistics(f)
	if err != nil {
		return err
	}
	if d := diffStats(want, got); d != "" {
		return fmt.Errorf("queries: pdm scan and cache statistics disagree: %s", d)
	}
	return nil
}

func diffStats(want, got task.Statistics) string {
	for _, m := range []struct {
		name      string
		want, got map[string]task.Counts
	}{{"by-type", want.ByType, got.ByType}, {"by-remote", want.ByRemote, got.ByRemote}} {
		keys := map[string]bool{}
		for k := range m.want {
			keys[k] = true
		}
		for k := range m.got {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			if m.want[k] != m.got[k] {
				return fmt.Sprintf("%s %s: %+v, want %+v", m.name, k, m.got[k], m.want[k])
			}
		}
	}
	return ""
}
