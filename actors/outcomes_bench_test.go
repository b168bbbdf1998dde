package actors

import (
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/cache/synth"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/task"
)

// The outcome benchmarks run on a cache of 1M synthetic tasks of 1000
// remotes over 7 days (the scale of the cache's own benchmarks), built
// once per run.
const (
	outcomeBenchTasks   = 1_000_000
	outcomeBenchRemotes = 1000
	outcomeBenchDays    = 7
)

// outcomeCache builds the benchmarks' cache in memory (/dev/shm) when
// there is one; it is closed and removed when b ends.
func outcomeCache(b *testing.B) (*cache.Writer, map[string][]task.Task) {
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "taskfleet-outcome-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	end := synth.End.Unix()
	w, err := cache.Open(cache.Options{Dir: dir, Now: func() time.Time { return time.Unix(end-1, 0) }, JournalMaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	byRemote := map[string][]task.Task{}
	for _, t := range synth.Synthetic(outcomeBenchTasks, outcomeBenchRemotes, outcomeBenchDays, 1) {
		byRemote[t.Remote] = append(byRemote[t.Remote], t)
	}
	for _, r := range slices.Sorted(maps.Keys(byRemote)) {
		if err := w.Apply(cache.Batch{Remote: r, Tasks: byRemote[r]}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.ApplyJournal(); err != nil {
		b.Fatal(err)
	}
	return w, byRemote
}

// BenchmarkOutcomes measures the outcome metrics on a cache of 1M
// tasks. The cache writer's cost per batch for
// taskfleet_tasks_finished_total (countFinished: two statistics of the
// batch's remote over the batch's start times):
//
//   - poll: a refresh of one remote, 4 new finished tasks and the 10
//     before them fetched again (the overlap): the statistics before and
//     after;
//   - new: a refresh of 6 new finished tasks: counted from the batch;
//   - backfill: a remote seen the first time, its 1000 tasks of 7 days;
//   - retention: a remote seen the first time, 1000 tasks of which 500
//     are older than the retention: the statistics before and after.
//
// The scrape-time cost of taskfleet_tasks_running and
// taskfleet_tasks_finished_cached (scrape: cacheCounts over every remote)
// and the cost of declaring the archive's series at open (declare).
//
// go test ./actors/ -run '^$' -bench Outcomes -benchtime=2000x
func BenchmarkOutcomes(b *testing.B) {
	w, known := outcomeCache(b)
	m := metrics.New(nil)
	end := synth.End.Unix()
	pid := uint32(1 << 30)
	mk := func(remote string, start int64, typ, status string) task.Task {
		pid++
		return task.Task{Remote: remote, EndTime: start + 30, Status: status, UPID: task.UPID{
			Kind: task.PVE, Node: "pve1", PID: pid, PStart: 1, StartTime: start, Type: typ, ID: "100", User: "root@pam"}}
	}
	b.Run("poll", func(b *testing.B) {
		const r, want = "pve-0000", 4
		batch := slices.Clone(known[r][len(known[r])-10:])
		for k := range 4 {
			batch = append(batch, mk(r, end-100+int64(k), "vzdump", "OK"))
		}
		prev := w.Latest().Load()
		if err := w.Apply(cache.Batch{Remote: r, Tasks: batch}); err != nil {
			b.Fatal(err)
		}
		next := w.Latest().Load()
		checkCounted(b, prev, next, r, batch, want)
		rec := m.NewFinishedRecorder()
		b.ReportAllocs()
		for b.Loop() {
			countFinished(rec, prev, next, r, batch)
		}
	})
	b.Run("new", func(b *testing.B) {
		const r, want = "pve-0001", 6
		var batch []task.Task
		for k := range 6 {
			batch = append(batch, mk(r, end-50+int64(k), "qmstart", "OK"))
		}
		prev := w.Latest().Load()
		if err := w.Apply(cache.Batch{Remote: r, Tasks: batch}); err != nil {
			b.Fatal(err)
		}
		next := w.Latest().Load()
		checkCounted(b, prev, next, r, batch, want)
		rec := m.NewFinishedRecorder()
		b.ReportAllocs()
		for b.Loop() {
			countFinished(rec, prev, next, r, batch)
		}
	})
	b.Run("backfill", func(b *testing.B) {
		const r, want = "new-remote", 1000
		var batch []task.Task
		for i := range 1000 {
			batch = append(batch, mk(r, end-int64(outcomeBenchDays*86400)+int64(i)*600, "qmstart", "OK"))
		}
		prev := w.Latest().Load()
		if err := w.Apply(cache.Batch{Remote: r, Tasks: batch}); err != nil {
			b.Fatal(err)
		}
		next := w.Latest().Load()
		checkCounted(b, prev, next, r, batch, want)
		rec := m.NewFinishedRecorder()
		b.ReportAllocs()
		for b.Loop() {
			countFinished(rec, prev, next, r, batch)
		}
	})
	b.Run("retention", func(b *testing.B) {
		const r = "old-remote"
		var batch []task.Task
		for i := range 1000 {
			batch = append(batch, mk(r, end-int64(2*outcomeBenchDays*86400)+int64(i)*1200, "qmstart", "OK"))
		}
		prev := w.Latest().Load()
		if err := w.Apply(cache.Batch{Remote: r, Tasks: batch}); err != nil {
			b.Fatal(err)
		}
		next := w.Latest().Load()
		want := (next.Len() - next.RunningLen()) - (prev.Len() - prev.RunningLen())
		if want < 400 || want >= 1000 {
			b.Fatalf("the cache kept %d of the 1000 tasks, want about 500 (the rest older than the retention)", want)
		}
		checkCounted(b, prev, next, r, batch, float64(want))
		rec := m.NewFinishedRecorder()
		b.ReportAllocs()
		for b.Loop() {
			countFinished(rec, prev, next, r, batch)
		}
	})
	s := w.Latest().Load()
	b.Run("scrape", func(b *testing.B) {
		for b.Loop() {
			c := cacheCounts(s)
			if len(c.Finished) == 0 {
				b.Fatal("no counts")
			}
		}
	})
	b.Run("declare", func(b *testing.B) {
		m := metrics.New(nil)
		for b.Loop() {
			declareFinished(m.NewFinishedRecorder(), s)
		}
	})
}

// checkCounted checks that countFinished counts want tasks for the batch.
func checkCounted(b *testing.B, prev, next *cache.Snapshot, remote string, batch []task.Task, want float64) {
	b.Helper()
	reg := prometheus.NewRegistry()
	countFinished(metrics.New(reg).NewFinishedRecorder(), prev, next, remote, batch)
	got := 0.0
	for _, v := range gatherOutcomes(b, reg, "taskfleet_tasks_finished_total") {
		got += v
	}
	if got != want {
		b.Fatalf("countFinished counted %v tasks of the batch, want %v", got, want)
	}
}
