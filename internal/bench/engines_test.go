//go:build sqlite

package bench

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestEnginesAgree checks, on a small history, that SQLite and the PDM
// scan return what the cache returns for many parameters of every filter
// kind, whole lists (no limit) included, and the same statistics.
func TestEnginesAgree(t *testing.T) {
	ds, err := loadDataset(DataConfig{Tasks: 5000, Remotes: 20, Days: 7, Seed: 3}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ds.close()
	if err := ds.loadSQLite("NORMAL"); err != nil {
		t.Fatal(err)
	}
	pdm, err := NewPDMScan(ds.cacheDir())
	if err != nil {
		t.Fatal(err)
	}
	defer pdm.Close()
	snap := ds.w.Latest().Load()
	ctx := context.Background()
	for _, limit := range []int{50, 0} {
		for _, k := range listKinds(ds.remotes, limit, ds.cfg.Tasks) {
			for i := range 12 {
				f := k.filter(i)
				want := snap.Query(f)
				got, err := ds.sql.Query(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffPages(want, got, true); d != "" {
					t.Errorf("sqlite %s %+v: %s", k.name, f, d)
				}
				got, err = pdm.Query(f)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffPages(want, got, false); d != "" {
					t.Errorf("pdm scan %s %+v: %s", k.name, f, d)
				}
			}
		}
	}
	sf := statsFilter(7)
	for i := range 3 {
		f := sf(i)
		f.Since += int64(i) * 86400 // partial windows too
		if err := checkStatistics(ctx, snap.Statistics(f), ds, pdm, f); err != nil {
			t.Error(err)
		}
	}
	// Ingest keeps them equal, running tasks turned finished included.
	b := ingestBatches(300, 2, 77)
	for _, x := range b {
		if err := ds.w.Apply(x); err != nil {
			t.Fatal(err)
		}
		if err := ds.sql.Insert(x.Tasks); err != nil {
			t.Fatal(err)
		}
	}
	run := snap.Query(task.Filter{Running: true})
	if len(run.Tasks) == 0 {
		t.Fatal("no running task to finish")
	}
	fin := run.Tasks[0]
	fin.EndTime, fin.Status = fin.UPID.StartTime+5, "OK"
	if err := ds.w.Apply(batchesByRemote([]task.Task{fin})[0]); err != nil {
		t.Fatal(err)
	}
	if err := ds.sql.Insert([]task.Task{fin}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []task.Filter{{}, {Running: true}, {Errors: true, Limit: 10}} {
		want := ds.w.Latest().Load().Query(f)
		got, err := ds.sql.Query(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffPages(want, got, true); d != "" {
			t.Errorf("after ingest, sqlite %+v: %s", f, d)
		}
	}
}

func TestDecodeTaskLine(t *testing.T) {
	want := task.Task{Remote: "east", EndTime: 1700000042, Status: `say "hi"`}
	u, err := task.ParsePVE("UPID:n1:0001E240:0098A3B1:6553F100:vzdump:101:root@pam:")
	if err != nil {
		t.Fatal(err)
	}
	want.UPID = u
	for _, line := range []string{
		`{"upid":"pve:east!UPID:n1:0001E240:0098A3B1:6553F100:vzdump:101:root@pam:","starttime":1700000000,"status":"say \"hi\"","endtime":1700000042}`,
		` { "endtime" : 1700000042 , "status":"say \u0022hi\u0022", "upid":"pve:east!UPID:n1:0001E240:0098A3B1:6553F100:vzdump:101:root@pam:","starttime":1700000000, "extra": true }` + "\n",
	} {
		got, err := decodeTaskLine([]byte(line))
		if err != nil {
			t.Fatalf("decodeTaskLine(%s): %v", line, err)
		}
		if got.Remote != want.Remote || got.UPID.String() != want.UPID.String() || got.EndTime != want.EndTime || got.Status != want.Status {
			t.Errorf("decodeTaskLine(%s) = %+v, want %+v", line, got, want)
		}
	}
	running := `{"upid":"pve:east!UPID:n1:0001E240:0098A3B1:6553F100:vzdump:101:root@pam:","starttime":1700000000,"status":null}`
	var it taskLine
	if !fastTaskLine([]byte(running), &it) || it.EndTime != nil || it.Status != nil {
		t.Errorf("fastTaskLine(%s) = %+v", running, it)
	}
	if _, err := decodeTaskLine([]byte(`{"upid":"nope"}`)); err == nil {
		t.Error("bad upid accepted")
	}
	var v any
	if err := json.Unmarshal([]byte(running), &v); err != nil {
		t.Fatal(err) // the test line itself must be JSON
	}
}
