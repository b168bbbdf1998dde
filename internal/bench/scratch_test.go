package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

func TestScratchQueries(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	n := 1_000_000
	fmt.Sscan(os.Getenv("SCRATCH"), &n)
	t0 := time.Now()
	ds, err := loadDataset(DataConfig{Tasks: n, Remotes: 1000, Days: 7, Seed: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ds.close()
	t.Logf("cache load %v (total %v) heap/task %.1f", ds.cacheLoad, time.Since(t0), ds.heapPerTask)
	t1 := time.Now()
	if err := ds.loadSQLite("FULL"); err != nil {
		t.Fatal(err)
	}
	t.Logf("sqlite load %v (total %v)", ds.sqlLoad, time.Since(t1))
	cfg := QueriesConfig{Limit: 50,
		Cache:  SampleConfig{Min: 100, Max: 1000, Budget: time.Second},
		SQLite: SampleConfig{Min: 5, Max: 300, Budget: 2 * time.Second},
		PDM:    SampleConfig{Min: 3, Max: 100, Budget: 2 * time.Second},
	}
	t2 := time.Now()
	res, err := runQueries(context.Background(), ds, cfg, func(s string) { t.Log(s, time.Since(t2)) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(res.Lists, res.Statistics) {
		t.Logf("%-14s cache %v/%v n=%d  sqlite %v/%v n=%d  pdm %v/%v n=%d", r.Kind, r.Cache.P50, r.Cache.P99, r.Cache.N, r.SQLite.P50, r.SQLite.P99, r.SQLite.N, r.PDM.P50, r.PDM.P99, r.PDM.N)
	}
	t.Logf("total %v", time.Since(t0))
}
