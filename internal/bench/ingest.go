package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/cache/synth"
	"github.com/taskfleet/taskfleet/task"
)

// IngestConfig is the ingest section.
type IngestConfig struct {
	BatchSizes []int `json:"batch_sizes"`
	Tasks      int   `json:"tasks"` // tasks ingested per batch size
}

// IngestRow is one engine and batch size.
type IngestRow struct {
	Engine      string  `json:"engine"`
	BatchSize   int     `json:"batch_size"`
	Batches     int     `json:"batches"`
	TasksPerSec float64 `json:"tasks_per_s"`
	Batch       Latency `json:"batch"` // time per batch
	// JournalBytes is what the cache appended to its journal per batch
	// (cache rows only).
	JournalBytes int64 `json:"journal_bytes_per_batch,omitempty"`
	// DiskFloor is the rate at which this disk takes the same bytes
	// through the same append-and-fsync, without any cache work: a limit
	// for any durable ingest (cache rows only).
	DiskFloor      float64       `json:"disk_floor_tasks_per_s,omitempty"`
	DiskFloorBatch time.Duration `json:"disk_floor_batch_ns,omitempty"`
}

// IngestResult is the ingest section.
type IngestResult struct {
	Config IngestConfig `json:"config"`
	Rows   []IngestRow  `json:"rows"`
	// Merge is the journal merge (checkpoint) of everything the cache
	// ingested, which the cache does hourly or when the journal passes
	// 5 MiB; MergedTasks is how many tasks it merged.
	Merge       time.Duration `json:"merge_ns"`
	MergedTasks int           `json:"merged_tasks"`
	// SustainedCache is the cache's rate over all batches of all sizes
	// with that merge included.
	SustainedCache float64 `json:"sustained_cache_tasks_per_s"`
	BaseTasks      int     `json:"base_tasks"` // tasks in the cache before
}

// ingestBatches returns count batches of size new tasks, each of its own
// new remote, started within the last day of the synthetic history.
func ingestBatches(size, count int, seed int64) []cache.Batch {
	out := make([]cache.Batch, 0, count)
	for i := range count {
		s := seed + int64(i)
		ts := synth.Synthetic(size, 1, 1, s)
		for j := range ts {
			ts[j].Remote = fmt.Sprintf("ingest-%d-%d", size, s)
		}
		out = append(out, batchesByRemote(ts)...)
	}
	return out
}

// runIngest adds the same new batches to the dataset's cache (Apply: a
// journal record, fsync, a new snapshot; no merge, as the dataset's
// writer merges only when told) and to its SQLite database (one
// transaction per batch, synchronous=FULL in WAL mode: each commit fsyncs
// the WAL, the same durability as the cache's journal), then merges the
// cache's journal.
func runIngest(ctx context.Context, ds *dataset, cfg IngestConfig, progress func(string)) (*IngestResult, error) {
	res := &IngestResult{Config: cfg, BaseTasks: ds.w.Latest().Load().Len()}
	var cacheTime time.Duration
	cacheTasks := 0
	for k, size := range cfg.BatchSizes {
		count := max(cfg.Tasks/size, 1)
		progress(fmt.Sprintf("ingest: %d batches of %d", count, size))
		batches := ingestBatches(size, count, int64(1000+k*100000))
		engines := []string{"cache", "sqlite"}
		if ds.sql == nil {
			engines = engines[:1]
		}
		for _, engine := range engines {
			row := IngestRow{Engine: engine, BatchSize: size, Batches: len(batches)}
			samples := make([]time.Duration, 0, len(batches))
			var total time.Duration
			tasks := 0
			journal0 := ds.w.Stats().JournalBytes
			for _, b := range batches {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				start := time.Now()
				var err error
				if engine == "cache" {
					err = ds.w.Apply(b)
				} else {
					err = ds.sql.Insert(b.Tasks)
				}
				d := time.Since(start)
				if err != nil {
					return nil, fmt.Errorf("ingest %s: %w", engine, err)
				}
				samples = append(samples, d)
				total += d
				tasks += len(b.Tasks)
			}
			row.Batch = Summarise(samples)
			row.TasksPerSec = float64(tasks) / total.Seconds()
			if engine == "cache" {
				cacheTime += total
				cacheTasks += tasks
				row.JournalBytes = (ds.w.Stats().JournalBytes - journal0) / int64(len(batches))
				per, err := diskFloor(filepath.Dir(ds.cacheDir()), row.JournalBytes, len(batches))
				if err != nil {
					return nil, err
				}
				row.DiskFloorBatch = per
				row.DiskFloor = float64(tasks) / float64(len(batches)) / per.Seconds()
			}
			res.Rows = append(res.Rows, row)
		}
	}
	start := time.Now()
	if err := ds.w.ApplyJournal(); err != nil {
		return nil, fmt.Errorf("ingest: merge: %w", err)
	}
	res.Merge = time.Since(start)
	res.MergedTasks = cacheTasks
	res.SustainedCache = float64(cacheTasks) / (cacheTime + res.Merge).Seconds()
	// Both engines must hold the same tasks now.
	if ds.sql == nil {
		return res, nil
	}
	want := ds.w.Latest().Load().Query(task.Filter{Limit: 1})
	got, err := ds.sql.Query(ctx, task.Filter{Limit: 1})
	if err != nil {
		return nil, err
	}
	if d := diffPages(want, got, true); d != "" {
		return nil, fmt.Errorf("ingest: cache and sqlite disagree after ingest: %s", d)
	}
	return res, nil
}

// diskFloor appends size bytes and fsyncs, count times, to a new file in
// dir (as the cache's journal does per batch) and returns the mean time
// per batch.
func diskFloor(dir string, size int64, count int) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "diskfloor-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	start := time.Now()
	for range count {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(count), nil
}
