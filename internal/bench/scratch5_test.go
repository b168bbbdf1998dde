package bench

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

func TestScratchIngestProfile(t *testing.T) {
	if os.Getenv("SCRATCH5") == "" {
		t.Skip()
	}
	ds, err := loadDataset(DataConfig{Tasks: 1_000_000, Remotes: 1000, Days: 7, Seed: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ds.close()
	batches := ingestBatches(10000, 20, 5000)
	f, _ := os.Create("/tmp/ingest.pprof")
	pprof.StartCPUProfile(f)
	start := time.Now()
	n := 0
	for _, b := range batches {
		if err := ds.w.Apply(b); err != nil {
			t.Fatal(err)
		}
		n += len(b.Tasks)
	}
	d := time.Since(start)
	pprof.StopCPUProfile()
	f.Close()
	t.Logf("%d tasks in %v = %.0f/s", n, d, float64(n)/d.Seconds())
}
