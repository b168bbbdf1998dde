package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestQuick runs every section at the quick sizes, so that the benchmark
// code cannot rot, and checks that the report holds what it must.
func TestQuick(t *testing.T) {
	cfg := Quick()
	cfg.Dir = t.TempDir()
	var progress bytes.Buffer
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	if len(r.Sweep) != len(cfg.Sweep.Cases) {
		t.Errorf("%d sweep results, want %d", len(r.Sweep), len(cfg.Sweep.Cases))
	}
	for _, s := range append(r.Sweep, *r.Scale) {
		for _, run := range []SweepRun{s.Backfill, s.Steady} {
			if run.Failed > 0 || run.Requests == 0 || run.Bound <= 0 || run.Wall < run.Bound/2 {
				t.Errorf("sweep %+v: %+v", s.SweepCase, run)
			}
		}
		if s.Backfill.NewConns == 0 {
			t.Errorf("sweep %+v: backfill opened no connections", s.SweepCase)
		}
	}
	if f := r.Freshness; f.Tracked.N+f.Tracked.Missing != cfg.Freshness.Tracked || f.Foreign.N+f.Foreign.Missing != cfg.Freshness.Foreign {
		t.Errorf("freshness counts: %+v", f)
	}
	if q := r.Queries; len(q.Lists) != 9 || q.Statistics.Cache.N == 0 || q.Checked == 0 {
		t.Errorf("queries: %+v", q)
	}
	engines := 1 // the cache; SQLite too when built in (-tags sqlite)
	if SQLiteBuiltIn() {
		engines = 2
	}
	if q := r.Queries; q.WithSQLite != SQLiteBuiltIn() || q.WithSQLite != (q.Lists[0].SQLite.N > 0) {
		t.Errorf("queries: with SQLite %v, built in %v, %d SQLite samples", q.WithSQLite, SQLiteBuiltIn(), q.Lists[0].SQLite.N)
	}
	if in := r.Ingest; len(in.Rows) != engines*len(cfg.Ingest.BatchSizes) {
		t.Errorf("ingest rows: %+v", in.Rows)
	} else {
		for _, row := range in.Rows {
			if row.TasksPerSec <= 0 || row.Engine == "cache" && (row.JournalBytes <= 0 || row.DiskFloor <= 0) {
				t.Errorf("ingest row %+v", row)
			}
		}
	}
	if m := r.Memory; m.HeapPerTask <= 0 || m.Both <= 0 || m.CachedTasks == 0 {
		t.Errorf("memory: %+v", m)
	}
	if sc := r.Schedule; sc == nil || len(sc.Runs) != 2*len(cfg.Schedule.Remotes) {
		t.Errorf("schedule: %+v", sc)
	} else {
		for _, run := range sc.Runs {
			if run.Requests <= 0 || run.NewConns <= 0 || run.KiB <= 0 || run.Tracked.N+run.Tracked.Missing == 0 {
				t.Errorf("schedule run %+v", run)
			}
			if run.Detection != (run.ClusterList > 0) {
				t.Errorf("schedule run with detection %v asked /cluster/tasks %.1f times per remote-hour", run.Detection, run.ClusterList)
			}
		}
	}
	if ph := r.Pollers; ph == nil || len(ph.Runs) != len(cfg.Pollers.Remotes) {
		t.Errorf("pollers: %+v", ph)
	} else {
		for _, run := range ph.Runs {
			if run.Busy.Taskfleet <= 0 || run.Idle.Taskfleet <= 0 || run.Busy.Fleet <= 0 || run.FleetHeap <= 0 || run.CachedTasks == 0 {
				t.Errorf("pollers run %+v", run)
			}
		}
	}
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## 1. Sweep", "## 2. Freshness", "## 3. Queries", "## 4. Ingest", "## 5. Memory", "## 6. Scale", "## 7. Production schedule", "## 8. Heap per poller", "## Goals"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text report lacks %q", s)
		}
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if testing.Verbose() {
		t.Logf("\n%s", text.String())
	}
}
