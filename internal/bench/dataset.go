package bench

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/cache/synth"
	"github.com/taskfleet/taskfleet/task"
)

// DataConfig sizes the synthetic task history shared by the query, ingest
// and memory sections (cache/synth: realistic type, user and status mix).
type DataConfig struct {
	Tasks   int   `json:"tasks"`
	Remotes int   `json:"remotes"`
	Days    int   `json:"days"`
	Seed    int64 `json:"seed"`
}

// dataset is one synthetic history loaded into taskfleet's cache and into
// SQLite. Its files live in dir until close.
type dataset struct {
	cfg     DataConfig
	dir     string
	w       *cache.Writer
	remotes []string // remote ids, sorted

	cacheLoad   time.Duration // generating excluded
	heapPerTask float64       // Go heap of the loaded cache per task
	heapBytes   int64

	sql     sqlEngine // nil without the sqlite build tag
	sqlLoad time.Duration
}

// cacheOptions keeps the cache's clock at the end of the synthetic history
// so that all of it is inside the retention.
func cacheOptions(dir string) cache.Options {
	end := synth.End.Unix()
	return cache.Options{
		Dir:             dir,
		Now:             func() time.Time { return time.Unix(end-1, 0) },
		JournalMaxBytes: 1 << 40, // loading merges explicitly
		LineArchives:    true,    // the PDM scan reads JSON lines, as PDM writes them
	}
}

// loadDataset generates the history and loads it into a new cache, the
// way the daemon fills it: per-remote batches, everything older than an
// hour merged into the archive files, the last hour's batches still in the
// journal... which is then merged too, so that the on-disk archive is
// complete for the PDM scan. It measures the Go heap the loaded cache
// holds: settled heap before generating, and after loading with the
// generated tasks unreachable.
func loadDataset(cfg DataConfig, parent string) (*dataset, error) {
	dir, err := os.MkdirTemp(parent, "taskfleet-bench-data-")
	if err != nil {
		return nil, err
	}
	ds := &dataset{cfg: cfg, dir: dir}
	before := settledHeap()
	if err := ds.fillCache(); err != nil {
		ds.close()
		return nil, err
	}
	after := settledHeap()
	n := ds.w.Latest().Load().Len()
	ds.heapBytes = int64(after) - int64(before)
	if n > 0 {
		ds.heapPerTask = float64(ds.heapBytes) / float64(n)
	}
	return ds, nil
}

func (ds *dataset) fillCache() error {
	w, err := cache.Open(cacheOptions(filepath.Join(ds.dir, "cache")))
	if err != nil {
		return fmt.Errorf("open cache: %w", err)
	}
	ds.w = w
	tasks := synth.Synthetic(ds.cfg.Tasks, ds.cfg.Remotes, ds.cfg.Days, ds.cfg.Seed)
	start := time.Now()
	hour := synth.End.Unix() - 3600
	cut, _ := slices.BinarySearchFunc(tasks, hour, func(t task.Task, h int64) int {
		return cmp.Compare(t.UPID.StartTime, h)
	})
	set := map[string]bool{}
	for _, part := range [][]task.Task{tasks[:cut], tasks[cut:]} {
		for _, b := range batchesByRemote(part) {
			set[b.Remote] = true
			if err := w.Apply(b); err != nil {
				return fmt.Errorf("load cache: %w", err)
			}
		}
		if err := w.ApplyJournal(); err != nil {
			return fmt.Errorf("load cache: %w", err)
		}
	}
	ds.cacheLoad = time.Since(start)
	for r := range set {
		ds.remotes = append(ds.remotes, r)
	}
	slices.Sort(ds.remotes)
	return nil
}

// batchesByRemote splits tasks into one batch per remote, with every node
// fetched successfully, sorted by remote.
func batchesByRemote(ts []task.Task) []cache.Batch {
	by := map[string][]task.Task{}
	for _, t := range ts {
		by[t.Remote] = append(by[t.Remote], t)
	}
	out := make([]cache.Batch, 0, len(by))
	for r, list := range by {
		nodes := map[string]bool{}
		for _, t := range list {
			if t.UPID.Kind == task.PBS {
				nodes["localhost"] = true
			} else {
				nodes[t.UPID.Node] = true
			}
		}
		b := cache.Batch{Remote: r, Tasks: list}
		for _, n := range slices.Sorted(maps.Keys(nodes)) {
			b.Nodes = append(b.Nodes, cache.NodeResult{Node: n, OK: true})
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b cache.Batch) int { return cmp.Compare(a.Remote, b.Remote) })
	return out
}

// loadSQLite loads the same history into a new SQLite database (see
// loadSQLiteDB). The load is not one of the measurements (it is reported
// for information). Without the sqlite build tag it returns
// ErrNoSQLite.
func (ds *dataset) loadSQLite(synchronous string) error {
	if loadSQLite == nil {
		return ErrNoSQLite
	}
	tasks := synth.Synthetic(ds.cfg.Tasks, ds.cfg.Remotes, ds.cfg.Days, ds.cfg.Seed)
	start := time.Now()
	db, err := loadSQLite(filepath.Join(ds.dir, "tasks.sqlite"), synchronous, tasks)
	if err != nil {
		return err
	}
	ds.sql, ds.sqlLoad = db, time.Since(start)
	return nil
}

func (ds *dataset) cacheDir() string { return filepath.Join(ds.dir, "cache") }

func (ds *dataset) close() {
	if ds.w != nil {
		ds.w.Close()
	}
	if ds.sql != nil {
		ds.sql.Close()
	}
	os.RemoveAll(ds.dir)
}
