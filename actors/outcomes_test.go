package actors

import (
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// outcomeKey is a series of the outcome metrics: remote, type, status.
type outcomeKey struct{ remote, typ, status string }

// gatherOutcomes returns the values of the series of name in reg, by
// remote, type and status ("" for a metric without status).
func gatherOutcomes(t testing.TB, reg *prometheus.Registry, name string) map[outcomeKey]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[outcomeKey]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var k outcomeKey
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "remote":
					k.remote = l.GetValue()
				case "type":
					k.typ = l.GetValue()
				case "status":
					k.status = l.GetValue()
				}
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if v != 0 {
				out[k] = v
			}
		}
	}
	return out
}

// cachedOutcomes counts the finished tasks of the snapshot by remote,
// type and status class, and its running tasks by remote and type, from
// the tasks themselves (not the cache's statistics).
func cachedOutcomes(s *cache.Snapshot) (finished, running map[outcomeKey]float64) {
	finished, running = map[outcomeKey]float64{}, map[outcomeKey]float64{}
	for _, tk := range s.Query(task.Filter{}).Tasks {
		if tk.Running() {
			running[outcomeKey{tk.Remote, tk.UPID.Type, ""}]++
		} else {
			finished[outcomeKey{tk.Remote, tk.UPID.Type, tk.Class().String()}]++
		}
	}
	return finished, running
}

func addOutcomes(a, b map[outcomeKey]float64) map[outcomeKey]float64 {
	out := maps.Clone(a)
	for k, v := range b {
		out[k] += v
	}
	return out
}

// diffOutcomes describes how got differs from want, or "".
func diffOutcomes(got, want map[outcomeKey]float64) string {
	s := ""
	for k, w := range want {
		if got[k] != w {
			s += "\n  " + k.remote + " " + k.typ + " " + k.status + ": got " + ftoa(got[k]) + ", want " + ftoa(w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			s += "\n  " + k.remote + " " + k.typ + " " + k.status + ": got " + ftoa(g) + ", want 0"
		}
	}
	return s
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestOutcomeMetricsOverASimRun runs a small fleet for hours, restarts
// taskfleet on the same cache (a new process: new metrics), and runs it
// again: each process's taskfleet_tasks_finished_total counts exactly the
// finished tasks it added to the cache, by remote, type and status class,
// so the two together equal the cache's content (no task counted twice,
// although every refresh fetches an overlap again and the second process
// fetches from the first's cutoffs); taskfleet_tasks_finished_cached is
// the cache's content and taskfleet_tasks_running its running set. Under
// the race detector: one cluster, fewer tasks, less history.
func TestOutcomeMetricsOverASimRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg1 := prometheus.NewRegistry()
		sc := sim.Config{Seed: 11, PVEClusters: 2, PBSServers: 1, TaskRate: 30, History: 36 * time.Hour}
		if raceEnabled {
			sc.PVEClusters, sc.TaskRate, sc.History = 1, 10, 12*time.Hour
		}
		h := newHarness(t, sc, Options{Metrics: metrics.New(reg1)})
		h.slowTickUnderRace()
		h.start()
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		h.freeze()
		h.refresh()
		first, running := cachedOutcomes(h.sys.Snapshot())
		if len(first) == 0 || len(running) == 0 {
			t.Fatalf("the run left %d finished and %d running series in the cache: nothing to compare", len(first), len(running))
		}
		classes := map[string]bool{}
		for k := range first {
			classes[k.status] = true
		}
		if !classes["ok"] || !classes["error"] {
			t.Fatalf("the run has no ok or no error tasks (%v): nothing to compare", classes)
		}
		if d := diffOutcomes(gatherOutcomes(t, reg1, "taskfleet_tasks_finished_total"), first); d != "" {
			t.Errorf("tasks_finished_total of the first process differs from the cache:%s", d)
		}
		if d := diffOutcomes(gatherOutcomes(t, reg1, "taskfleet_tasks_finished_cached"), byRemote(first)); d != "" {
			t.Errorf("tasks_finished_cached differs from the cache:%s", d)
		}
		if d := diffOutcomes(gatherOutcomes(t, reg1, "taskfleet_tasks_running"), running); d != "" {
			t.Errorf("tasks_running differs from the running set:%s", d)
		}
		h.stop()

		// The second process: reopens the archive, then polls from its
		// cutoffs while the fleet goes on.
		reg2 := prometheus.NewRegistry()
		h.opts.Metrics = metrics.New(reg2)
		h.start()
		total := gatherOutcomes(t, reg2, "taskfleet_tasks_finished_total")
		if len(total) != 0 {
			t.Errorf("the reopened process counted tasks before fetching any: %v", total)
		}
		zeros := 0
		fams, err := reg2.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "taskfleet_tasks_finished_total" {
				zeros = len(f.GetMetric())
			}
		}
		if want := 4 * len(distinctRemoteTypes(first)); zeros < want {
			t.Errorf("%d tasks_finished_total series declared at open, want at least %d (4 per remote and type of the archive)", zeros, want)
		}
		h.thaw()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		h.freeze()
		h.refresh()
		all, _ := cachedOutcomes(h.sys.Snapshot())
		second := gatherOutcomes(t, reg2, "taskfleet_tasks_finished_total")
		if len(second) == 0 {
			t.Fatal("the second process counted nothing in two hours")
		}
		if d := diffOutcomes(addOutcomes(gatherOutcomes(t, reg1, "taskfleet_tasks_finished_total"), second), all); d != "" {
			t.Errorf("the two processes' tasks_finished_total together differ from the cache:%s", d)
		}
		if d := diffOutcomes(gatherOutcomes(t, reg2, "taskfleet_tasks_finished_cached"), byRemote(all)); d != "" {
			t.Errorf("tasks_finished_cached after the restart differs from the cache:%s", d)
		}
		h.stop()
	})
}

// byRemote adds up the counts of each remote and status over the types.
func byRemote(m map[outcomeKey]float64) map[outcomeKey]float64 {
	out := map[outcomeKey]float64{}
	for k, v := range m {
		out[outcomeKey{k.remote, "", k.status}] += v
	}
	return out
}

func distinctRemoteTypes(m map[outcomeKey]float64) map[[2]string]bool {
	out := map[[2]string]bool{}
	for k := range m {
		out[[2]string{k.remote, k.typ}] = true
	}
	return out
}

// TestCountFinished applies batches to a cache and checks what
// countFinished counts for each: each path (nothing new, all new, some
// known, some older than the retention, a running task that finished, a
// task twice in a batch) counts exactly the finished tasks the batch
// added.
func TestCountFinished(t *testing.T) {
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	w, err := cache.Open(cache.Options{Dir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	reg := prometheus.NewRegistry()
	rec := metrics.New(reg).NewFinishedRecorder()
	const r = "east"
	pid := uint32(100)
	mk := func(start time.Time, typ, status string, running bool) task.Task {
		pid++
		tk := task.Task{Remote: r, UPID: task.UPID{Kind: task.PVE, Node: "n1", PID: pid, PStart: 1,
			StartTime: start.Unix(), Type: typ, ID: "100", User: "root@pam"}}
		if !running {
			tk.EndTime, tk.Status = start.Unix()+60, status
		}
		return tk
	}
	want := map[outcomeKey]float64{}
	apply := func(name string, batch []task.Task, added ...task.Task) {
		t.Helper()
		prev := w.Latest().Load()
		if err := w.Apply(cache.Batch{Remote: r, Tasks: batch}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		countFinished(rec, prev, w.Latest().Load(), r, batch)
		for _, tk := range added {
			want[outcomeKey{r, tk.UPID.Type, tk.Class().String()}]++
		}
		if d := diffOutcomes(gatherOutcomes(t, reg, "taskfleet_tasks_finished_total"), want); d != "" {
			t.Errorf("after %s:%s", name, d)
		}
	}
	h := func(n int) time.Time { return now.Add(-time.Duration(n) * time.Hour) }
	a, b, c := mk(h(5), "vzdump", "OK", false), mk(h(4), "vzdump", "job errors", false), mk(h(3), "qmstart", "WARNINGS: 1", false)
	apply("all new", []task.Task{a, b, c}, a, b, c)
	apply("nothing new", []task.Task{a, b, c})
	d, e := mk(h(2), "vzdump", "OK", false), mk(h(2), "vzdump", "unknown", false)
	apply("some known", []task.Task{b, c, d, e}, d, e)
	run := mk(h(1), "vzdump", "", true)
	apply("a running task", []task.Task{run})
	done := run
	done.EndTime, done.Status = run.UPID.StartTime+600, "interrupted by signal"
	apply("the running task finished", []task.Task{done, e}, done)
	old := mk(now.AddDate(0, 0, -30), "vzdump", "OK", false)
	f := mk(h(1), "qmstart", "OK", false)
	apply("one older than the retention", []task.Task{old, f}, f)
	g := mk(h(1), "qmstart", "OK", false)
	apply("a task twice", []task.Task{g, g}, g)
	if got, _ := cachedOutcomes(w.Latest().Load()); diffOutcomes(got, want) != "" {
		t.Errorf("the cache holds other tasks than were counted:%s", diffOutcomes(got, want))
	}
}

// TestOutcomeMetricsThroughWriterPanics crashes the cache writer before
// some batches and after others were applied (their pollers never hear
// back and send them again): the restarted writer reopens the cache, and
// taskfleet_tasks_finished_total still counts each finished task once.
func TestOutcomeMetricsThroughWriterPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu              sync.Mutex
			batches, panics int
			quiet           bool // no more panics: the final refresh and the stop
		)
		reg := prometheus.NewRegistry()
		opts := Options{
			Metrics: metrics.New(reg),
			writerHook: func(msg any, applied bool) {
				if _, ok := msg.(*messages.ApplyBatch); !ok {
					return
				}
				mu.Lock()
				if !applied {
					batches++
				}
				n := batches
				crash := !quiet && (n%11 == 0 && !applied || n%7 == 0 && applied)
				if crash {
					panics++
				}
				mu.Unlock()
				if crash {
					panic("injected writer panic")
				}
			},
		}
		h := newHarness(t, sim.Config{Seed: 23, PVEClusters: 3, PBSServers: 1, TaskRate: 20, History: 24 * time.Hour}, opts)
		h.start()
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		h.freeze()
		mu.Lock()
		quiet = true
		mu.Unlock()
		time.Sleep(10 * time.Minute) // backoffs expire
		h.refresh()
		mu.Lock()
		if panics < 5 {
			t.Errorf("only %d writer panics in %d batches: the injection did not run", panics, batches)
		}
		mu.Unlock()
		finished, _ := cachedOutcomes(h.sys.Snapshot())
		if d := diffOutcomes(gatherOutcomes(t, reg, "taskfleet_tasks_finished_total"), finished); d != "" {
			t.Errorf("tasks_finished_total after writer panics differs from the cache:%s", d)
		}
		h.stop()
		// Replies to crashed incarnations are dead letters, whose log
		// throttle runs a goroutine for a second: let it end in the bubble.
		time.Sleep(2 * time.Second)
		synctest.Wait()
	})
}

// TestDeclareFinishedKeepsFrequentTypes opens a cache with more types than
// the type label's bound: the series declared at open are those of the
// most frequent types, whatever the order of the cache's maps, and the
// rarer types fold into "other" when they are counted.
func TestDeclareFinishedKeepsFrequentTypes(t *testing.T) {
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	w, err := cache.Open(cache.Options{Dir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const types = metrics.MaxTaskTypes + 10
	var batch []task.Task
	pid := uint32(1)
	for i := range types {
		for range types - i { // type000 is the most frequent
			pid++
			batch = append(batch, task.Task{Remote: "east", EndTime: now.Unix() - 60, Status: "OK", UPID: task.UPID{
				Kind: task.PVE, Node: "n1", PID: pid, PStart: 1, StartTime: now.Unix() - 3600 + int64(pid), Type: fmt.Sprintf("type%03d", i), User: "root@pam"}})
		}
	}
	if err := w.Apply(cache.Batch{Remote: "east", Tasks: batch, Nodes: []cache.NodeResult{{Node: "n1", OK: true}}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	declareFinished(m.NewFinishedRecorder(), w.Latest().Load())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fams {
		if f.GetName() != "taskfleet_tasks_finished_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "type" {
					got[l.GetValue()] = true
				}
			}
		}
	}
	for i := range types {
		typ := fmt.Sprintf("type%03d", i)
		if want := i < metrics.MaxTaskTypes; got[typ] != want {
			t.Errorf("type %s (the %d. most frequent) declared: %v, want %v", typ, i+1, got[typ], want)
		}
	}
	if !got[metrics.OtherType] {
		t.Errorf("the rarest types were not declared under %q", metrics.OtherType)
	}
}
