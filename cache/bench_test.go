package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/cache/synth"
	"github.com/taskfleet/taskfleet/task"
)

// The benchmarks run on a cache of 1M synthetic tasks over 7 days from 1000
// remotes (synth.Synthetic), loaded the way the daemon fills it: per-remote
// batches, merged into the archive, with the last hour's batches still in
// the journal. Results and commands are in docs/benchmarks.md.

const (
	benchTasks   = 1_000_000
	benchRemotes = 1000
	benchDays    = 7
)

var bench struct {
	once       sync.Once
	dirs       []string
	w          *Writer
	remotes    []string
	heap       float64 // bytes per task after loading through Apply
	reopenHeap float64 // bytes per task after reopening from the files
	load       time.Duration
	reopen     time.Duration
}

func cleanupBench() {
	if bench.w != nil {
		bench.w.Close()
	}
	for _, d := range bench.dirs {
		os.RemoveAll(d)
	}
}

func benchDir(b *testing.B) string {
	dir, err := os.MkdirTemp("", "taskfleet-cache-bench-")
	if err != nil {
		b.Fatal(err)
	}
	bench.dirs = append(bench.dirs, dir)
	return dir
}

func benchOptions(dir string) Options {
	end := synth.End.Unix()
	return Options{
		Dir:             dir,
		Now:             func() time.Time { return time.Unix(end-1, 0) },
		JournalMaxBytes: 1 << 40, // the benchmarks merge explicitly
	}
}

// loadSynthetic applies the tasks in per-remote batches: everything older
// than an hour, a journal merge, then the last hour.
func loadSynthetic(b *testing.B, w *Writer, tasks []task.Task) {
	hour := synth.End.Unix() - 3600
	split := func(ts []task.Task) map[string][]task.Task {
		m := map[string][]task.Task{}
		for _, t := range ts {
			m[t.Remote] = append(m[t.Remote], t)
		}
		return m
	}
	cut, _ := slices.BinarySearchFunc(tasks, hour, func(t task.Task, h int64) int {
		return int(t.UPID.StartTime - h)
	})
	for i, part := range [][]task.Task{tasks[:cut], tasks[cut:]} {
		byRemote := split(part)
		remotes := make([]string, 0, len(byRemote))
		for r := range byRemote {
			remotes = append(remotes, r)
		}
		slices.Sort(remotes)
		for _, r := range remotes {
			ts := byRemote[r]
			nodes := map[string]bool{}
			for _, t := range ts {
				if t.UPID.Kind == task.PBS {
					nodes[pbsNodeKey] = true
				} else {
					nodes[t.UPID.Node] = true
				}
			}
			bt := Batch{Remote: r, Tasks: ts}
			for n := range nodes {
				bt.Nodes = append(bt.Nodes, NodeResult{Node: n, OK: true})
			}
			if err := w.Apply(bt); err != nil {
				b.Fatal(err)
			}
		}
		if i == 0 {
			if err := w.ApplyJournal(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// benchCache returns the shared 1M-task cache.
func benchCache(b *testing.B) *Snapshot {
	bench.once.Do(func() {
		before := heapInUse()
		start := time.Now()
		o := benchOptions(benchDir(b))
		w, err := Open(o)
		if err != nil {
			b.Fatal(err)
		}
		func() {
			tasks := synth.Synthetic(benchTasks, benchRemotes, benchDays, 1)
			loadSynthetic(b, w, tasks)
		}()
		bench.load = time.Since(start)
		n := w.Latest().Load().Len()
		bench.heap = float64(heapInUse()-before) / float64(n)
		// A restart: the same tasks from the files (the journal's last
		// hour is merged by Close).
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		w = nil
		before = heapInUse()
		start = time.Now()
		if w, err = Open(o); err != nil {
			b.Fatal(err)
		}
		bench.reopen = time.Since(start)
		bench.reopenHeap = float64(heapInUse()-before) / float64(w.Latest().Load().Len())
		bench.w = w
		// An hour of new tasks in per-remote batches, so that the snapshot
		// has recent segments, as in a running daemon.
		var hour []task.Task
		for _, t := range synth.Synthetic(150_000, benchRemotes, 1, 9) {
			if t.UPID.StartTime >= synth.End.Unix()-3600 {
				hour = append(hour, t)
			}
		}
		loadSynthetic(b, w, hour)
		set := map[string]bool{}
		for _, r := range w.Latest().Load().dict.remotes {
			set[r] = true
		}
		for r := range set {
			bench.remotes = append(bench.remotes, r)
		}
		slices.Sort(bench.remotes)
	})
	if bench.w == nil {
		b.Fatal("benchmark cache setup failed")
	}
	return bench.w.Latest().Load()
}

// latencies runs op b.N times and reports the median and the 99th
// percentile of one call.
func latencies(b *testing.B, op func(i int)) {
	lat := make([]time.Duration, 0, b.N)
	runtime.GC() // start from a settled heap, not the setup's garbage
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		op(i)
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e3, "max-µs")
}

// BenchmarkQuery lists 50 tasks with each kind of filter.
func BenchmarkQuery(b *testing.B) {
	s := benchCache(b)
	end := synth.End.Unix()
	day := int64(86400)
	remotes := bench.remotes
	set := func(cs ...task.StatusClass) task.StatusSet {
		var st task.StatusSet
		for _, c := range cs {
			st = st.Add(c)
		}
		return st
	}
	kinds := []struct {
		name    string
		filters func(i int) task.Filter
	}{
		{"none", func(i int) task.Filter { return task.Filter{Limit: 50} }},
		{"remote", func(i int) task.Filter { return task.Filter{Limit: 50, Remote: remotes[(i*37)%len(remotes)]} }},
		{"running", func(i int) task.Filter { return task.Filter{Limit: 50, Running: true} }},
		{"errors", func(i int) task.Filter { return task.Filter{Limit: 50, Errors: true} }},
		{"typefilter", func(i int) task.Filter {
			return task.Filter{Limit: 50, TypeFilter: []string{"vzdump", "qm", "garbage_collection", "syncjob", "qmigrate", "backup"}[i%6]}
		}},
		{"userfilter", func(i int) task.Filter {
			return task.Filter{Limit: 50, UserFilter: []string{"root", "user042", "svc-backup", "PDM", "admin"}[i%5]}
		}},
		{"statusfilter", func(i int) task.Filter {
			return task.Filter{Limit: 50, StatusFilter: []task.StatusSet{
				set(task.StatusOK), set(task.StatusWarning), set(task.StatusError), set(task.StatusUnknown),
				set(task.StatusWarning, task.StatusError)}[i%5]}
		}},
		{"since_until", func(i int) task.Filter {
			since := end - int64(i%160+1)*3600 - int64(i%7)*97
			return task.Filter{Limit: 50, Since: since, Until: since + 3600 + int64(i%3)*day}
		}},
		{"deep_start", func(i int) task.Filter { return task.Filter{Limit: 50, Start: 500_000 + i%1000} }},
		{"remote_errors", func(i int) task.Filter {
			return task.Filter{Limit: 50, Remote: remotes[(i*37)%len(remotes)], Errors: true}
		}},
		{"remote_deep_start", func(i int) task.Filter {
			return task.Filter{Limit: 50, Remote: remotes[(i*37)%len(remotes)], Start: 500}
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			latencies(b, func(i int) {
				if p := s.Query(k.filters(i)); len(p.Tasks) == 0 && p.Total > 0 {
					b.Fatalf("%+v: empty page of %d", k.filters(i), p.Total)
				}
			})
		})
	}
}

// BenchmarkStatistics counts 7 days of tasks, with whole and partial days.
func BenchmarkStatistics(b *testing.B) {
	s := benchCache(b)
	end := synth.End.Unix()
	for _, k := range []struct {
		name string
		f    task.Filter
	}{
		{"7days", task.Filter{Since: end - 7*86400}},
		{"7days_unaligned", task.Filter{Since: end - 7*86400 + 5*3600 + 17, Until: end - 3*3600}},
		{"7days_typefilter", task.Filter{Since: end - 7*86400, TypeFilter: "vzdump"}},
		{"7days_remote", task.Filter{Since: end - 7*86400, Remote: bench.remotes[3]}},
		{"7days_userfilter", task.Filter{Since: end - 7*86400, UserFilter: "user0"}},
	} {
		b.Run(k.name, func(b *testing.B) {
			latencies(b, func(int) { s.Statistics(k.f) })
		})
	}
}

// BenchmarkMemory reports the Go heap per cached task at 1M tasks
// (runtime.ReadMemStats after GC, the synthetic input freed), loaded
// through Apply and reopened from the files, and the time both took. Run
// with -benchtime=1x.
func BenchmarkMemory(b *testing.B) {
	s := benchCache(b)
	for b.Loop() {
	}
	b.ReportMetric(bench.heap, "heap-bytes/task")
	b.ReportMetric(bench.reopenHeap, "reopened-heap-bytes/task")
	b.ReportMetric(float64(s.Len()), "tasks")
	b.ReportMetric(bench.load.Seconds(), "load-s")
	b.ReportMetric(bench.reopen.Seconds(), "open-s")
}

// BenchmarkIngest applies batches of 10k new tasks of one remote to a
// cache already holding 1M tasks: a backfill of 7 days, or a day. "apply"
// times Apply alone (journal append, fsync, in-memory update, new
// snapshot) and merges the journal untimed whenever it passes the default
// 5 MiB, as Apply itself would; "with_merges" lets Apply do those merges
// (rewriting the archive files of the periods the batches touched) and
// times them too.
func BenchmarkIngest(b *testing.B) {
	for _, mode := range []struct {
		name        string
		days        int
		timedMerges bool
	}{
		{"apply_7days", 7, false}, {"apply_1day", 1, false},
		{"with_merges_7days", 7, true}, {"with_merges_1day", 1, true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			o := benchOptions(benchDir(b))
			w, err := Open(o)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			loadSynthetic(b, w, synth.Synthetic(benchTasks, benchRemotes, benchDays, 2))
			if err := w.ApplyJournal(); err != nil {
				b.Fatal(err)
			}
			if mode.timedMerges {
				w.opts.JournalMaxBytes = DefaultJournalMaxBytes
			}
			seed := int64(100)
			next := func() Batch {
				seed++
				ts := synth.Synthetic(10_000, 1, mode.days, seed)
				for i := range ts {
					ts[i].Remote = fmt.Sprintf("ingest-%d", seed)
				}
				return Batch{Remote: ts[0].Remote, Tasks: ts, Nodes: []NodeResult{{Node: "pve1", OK: true}}}
			}
			tasks := 0
			var elapsed, cpu time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bt := next()
				if !mode.timedMerges && w.jsize > DefaultJournalMaxBytes {
					if err := w.ApplyJournal(); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC() // not the generator's garbage
				b.StartTimer()
				t, c := time.Now(), cpuTime()
				// Labelled, so that a -cpuprofile can be cut to the timed
				// part: go tool pprof -tagfocus=phase=timed.
				var err error
				pprof.Do(context.Background(), pprof.Labels("phase", "timed"), func(context.Context) {
					err = w.Apply(bt)
				})
				if err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(t)
				cpu += cpuTime() - c
				tasks += len(bt.Tasks)
			}
			b.StopTimer()
			b.ReportMetric(float64(tasks)/elapsed.Seconds(), "tasks/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(tasks), "cpu-ns/task")
		})
	}
}

// BenchmarkMerge times ApplyJournal, the hourly merge, on a cache of 1M
// tasks (about 145k in today's file): before each merge, 5 MiB of new tasks
// of today (the journal's default limit, about 30k tasks) are applied
// untimed in batches of 1000. The merge rewrites today's file.
func BenchmarkMerge(b *testing.B) {
	o := benchOptions(benchDir(b))
	w, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	loadSynthetic(b, w, synth.Synthetic(benchTasks, benchRemotes, benchDays, 4))
	if err := w.ApplyJournal(); err != nil {
		b.Fatal(err)
	}
	seed := int64(1000)
	var elapsed time.Duration
	merged := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for w.jsize < DefaultJournalMaxBytes {
			seed++
			ts := synth.Synthetic(1000, 1, 1, seed)
			bt := Batch{Remote: retag(ts, fmt.Sprintf("merge-%d", seed))[0].Remote, Tasks: ts}
			if err := w.Apply(bt); err != nil {
				b.Fatal(err)
			}
			merged += len(ts)
		}
		b.StartTimer()
		t := time.Now()
		if err := w.ApplyJournal(); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(t)
	}
	b.StopTimer()
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/merge")
	b.ReportMetric(float64(merged)/float64(b.N), "tasks/merge")
	b.ReportMetric(float64(w.base[w.newest()].len()), "tasks-today")
}

// BenchmarkRotation rotates a cache holding 7 days of 150k tasks each (the
// default retention, rotation and plain files): it writes the new day's
// file, compresses the day that leaves the plain window (150k tasks) and
// deletes the oldest. Only MaybeRotate is timed; refilling the newest day
// between rotations is not.
func BenchmarkRotation(b *testing.B) {
	const perDay = 150_000
	now := synth.End.Unix() - 1
	o := benchOptions(benchDir(b))
	o.Now = func() time.Time { return time.Unix(now, 0) }
	w, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	loadSynthetic(b, w, synth.Synthetic(7*perDay, benchRemotes, 7, 3))
	if err := w.ApplyJournal(); err != nil {
		b.Fatal(err)
	}
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 { // refill the newest day, which the next rotation compresses
			shift := w.newest() - (synth.End.Unix() - 86400)
			day := synth.Synthetic(perDay, 1, 1, int64(10+i))
			for j := range day {
				day[j].UPID.StartTime += shift
				if day[j].EndTime != 0 {
					day[j].EndTime += shift
				}
			}
			for k, part := range chunk(day, 10_000) {
				if err := w.Apply(Batch{Remote: retag(part, fmt.Sprintf("fill-%d-%d", i, k))[0].Remote, Tasks: part}); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.ApplyJournal(); err != nil {
				b.Fatal(err)
			}
		}
		now += 86400
		b.StartTimer()
		t := time.Now()
		if rotated, err := w.MaybeRotate(); err != nil || !rotated {
			b.Fatalf("MaybeRotate = %v, %v", rotated, err)
		}
		elapsed += time.Since(t)
	}
	b.StopTimer()
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/rotation")
	// The size of the day compressed last, plain and compressed.
	day := w.periods[len(w.periods)-1-w.opts.PlainFiles]
	if st, err := os.Stat(filepath.Join(o.Dir, archiveName(day, true))); err == nil {
		b.ReportMetric(float64(st.Size())/1e6, "zst-MB/day")
		b.ReportMetric(float64(w.base[day].len()), "tasks/day")
	}
	if st, err := os.Stat(filepath.Join(o.Dir, archiveName(w.newest()-w.rot, false))); err == nil {
		b.ReportMetric(float64(st.Size())/1e6, "plain-MB/day")
	}
}

// cpuTime returns the CPU time the process has used (all threads, GC
// included): on a shared machine it shows the cost that wall time hides.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func chunk(ts []task.Task, n int) [][]task.Task {
	var out [][]task.Task
	for len(ts) > n {
		out = append(out, ts[:n])
		ts = ts[n:]
	}
	return append(out, ts)
}

func retag(ts []task.Task, remote string) []task.Task {
	for i := range ts {
		ts[i].Remote = remote
	}
	return ts
}

// BenchmarkPublish applies small batches, as a steady sweep does, with 100
// or 30,000 running tasks in the cache (nightly backups). Every batch is
// one of 100 busy remotes' refresh: one of its running tasks finishes, a
// new one starts, and four short tasks finished. The busy remotes hold one
// running task each in both variants; the rest of the running set belongs
// to 900 other remotes that send nothing, so the two variants differ only
// in the size of the running set. The directory is on tmpfs when
// /dev/shm exists (fsync is then free), so the figure is the CPU of Apply;
// merges (when the journal passes 5 MiB) are untimed. cpu-ns/batch is the
// process's CPU (GC included) per batch.
func BenchmarkPublish(b *testing.B) {
	for _, running := range []int{100, 30_000} {
		b.Run(fmt.Sprintf("running=%d", running), func(b *testing.B) {
			benchPublish(b, running)
		})
	}
}

func benchPublish(b *testing.B, running int) {
	const (
		remotes = 1000
		busy    = 100
	)
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "taskfleet-publish-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	end := synth.End.Unix()
	o := Options{Dir: dir, Now: func() time.Time { return time.Unix(end-1, 0) }}
	w, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	name := func(r int) string { return fmt.Sprintf("bench-%04d", r) }
	nodes := []NodeResult{{Node: "n1", OK: true}, {Node: "n2", OK: true}, {Node: "n3", OK: true}}
	pid := uint32(1000)
	mk := func(r int, start, endT int64, typ string) task.Task {
		pid++
		status := ""
		if endT != 0 {
			status = "OK"
		}
		return pveTask(name(r), fmt.Sprintf("n%d", 1+pid%3), pid, start, typ, fmt.Sprint(100+pid%900), "root@pam", endT, status)
	}
	// The running set: one task per busy remote, the rest spread over the
	// quiet remotes, all started in the last 6 hours.
	cur := make([]task.Task, busy)
	byRemote := map[int][]task.Task{}
	for i := 0; i < running; i++ {
		r := busy + i%(remotes-busy)
		if i < busy {
			r = i
		}
		t := mk(r, end-6*3600+int64(i%20000), 0, "vzdump")
		if r < busy {
			cur[r] = t
		}
		byRemote[r] = append(byRemote[r], t)
	}
	for r := 0; r < remotes; r++ {
		if err := w.Apply(Batch{Remote: name(r), Tasks: byRemote[r], Nodes: nodes}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.ApplyJournal(); err != nil {
		b.Fatal(err)
	}
	if got := w.Latest().Load().RunningLen(); got != running {
		b.Fatalf("%d running tasks, want %d", got, running)
	}
	now := end - 3600
	batch := func(i int) Batch {
		r := i % busy
		now++
		done := cur[r]
		done.EndTime, done.Status = now, "OK"
		next := mk(r, now, 0, "vzdump")
		cur[r] = next
		ts := []task.Task{next, done}
		for k := 0; k < 4; k++ {
			ts = append(ts, mk(r, now-int64(k), now, "qmstart"))
		}
		return Batch{Remote: name(r), Tasks: ts, Nodes: nodes}
	}
	batches := make([]Batch, b.N)
	for i := range batches {
		batches[i] = batch(i)
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	// Labelled for -cpuprofile: go tool pprof -tagfocus=phase=timed.
	pprof.Do(context.Background(), pprof.Labels("phase", "timed"), func(context.Context) {
		publishLoop(b, w, batches, &cpu)
	})
	b.StopTimer()
	cpu = cpuTime() - cpu
	if got := w.Latest().Load().RunningLen(); got != running {
		b.Fatalf("%d running tasks after the batches, want %d", got, running)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/batch")
}

// publishLoop applies the batches; the CPU of the merges it runs is added
// to *untimed.
func publishLoop(b *testing.B, w *Writer, batches []Batch, untimed *time.Duration) {
	for i := range batches {
		if w.jsize > DefaultJournalMaxBytes { // the hourly merge, not timed
			b.StopTimer()
			c := cpuTime()
			if err := w.ApplyJournal(); err != nil {
				b.Fatal(err)
			}
			*untimed += cpuTime() - c
			b.StartTimer()
		}
		if err := w.Apply(batches[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArchiveSize fills a cache with 1M synthetic tasks (as
// benchCache does), closes it and reports the size of its archive files
// per task, in the binary format and in JSON lines (the format before it,
// Options.LineArchives), and the time Open takes to read them back. Run
// with -benchtime=1x.
func BenchmarkArchiveSize(b *testing.B) {
	tasks := synth.Synthetic(benchTasks, benchRemotes, benchDays, 1)
	for _, lines := range []bool{false, true} {
		name := "binary"
		if lines {
			name = "lines"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				o := benchOptions(benchDir(b))
				o.LineArchives = lines
				w, err := Open(o)
				if err != nil {
					b.Fatal(err)
				}
				loadSynthetic(b, w, slices.Clone(tasks))
				n := w.Latest().Load().Len()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				ents, err := os.ReadDir(o.Dir)
				if err != nil {
					b.Fatal(err)
				}
				var size int64
				for _, e := range ents {
					if _, _, ok := parseArchiveName(e.Name()); ok {
						info, err := e.Info()
						if err != nil {
							b.Fatal(err)
						}
						size += info.Size()
					}
				}
				start := time.Now()
				w, err = Open(o)
				if err != nil {
					b.Fatal(err)
				}
				open := time.Since(start)
				if got := w.Latest().Load().Len(); got != n {
					b.Fatalf("reopened with %d tasks, want %d", got, n)
				}
				w.Close()
				os.RemoveAll(o.Dir)
				b.ReportMetric(float64(size)/float64(n), "disk-bytes/task")
				b.ReportMetric(float64(size)/(1<<20), "disk-MiB")
				b.ReportMetric(open.Seconds(), "open-s")
			}
		})
	}
}

// BenchmarkFinished asks whether a recent finished task is in the cache,
// as change detection does for each finished task a cluster list shows at
// or after a node's cutoff (actors/detect.go): "finished" with
// Snapshot.Finished, "query" with a query of the task's node since the
// task's start searched for it. The check it replaced queried once per
// node since the node's cutoff and built a map: this is the cost of one
// look-up, not of a node.
func BenchmarkFinished(b *testing.B) {
	s := benchCache(b)
	var recent []task.Task
	_, newest := s.Stream(task.Filter{Limit: 5000})
	for t := range newest {
		if !t.Running() {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		b.Fatal("no recent finished task")
	}
	b.Run("finished", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			t := recent[i%len(recent)]
			if !s.Finished(t.Remote, t.UPID) {
				b.Fatalf("%s not found", t.UPID)
			}
		}
	})
	b.Run("query", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			t := recent[i%len(recent)]
			page := s.Query(task.Filter{Remote: t.Remote, Node: t.UPID.Node, Since: t.UPID.StartTime, Limit: 1000})
			found := false
			for _, p := range page.Tasks {
				found = found || p.UPID == t.UPID && !p.Running()
			}
			if !found {
				b.Fatalf("%s not found", t.UPID)
			}
		}
	})
}
