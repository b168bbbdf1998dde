package cache

import (
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TestQueryDuringMerge pauses the Writer in the middle of a journal merge
// (a hook blocks before it writes an archive file) and checks that readers
// in other goroutines query the latest snapshot meanwhile: reads never
// wait for writes.
func TestQueryDuringMerge(t *testing.T) {
	entered := make(chan string)
	release := make(chan struct{})
	var once sync.Once
	h := &hooks{beforeArchiveWrite: func(name string) {
		once.Do(func() {
			entered <- name
			<-release
		})
	}}
	clock := newClock(t0 + 1800)
	w := openTest(t, t.TempDir(), clock)
	defer w.Close()
	w.hooks = h // after Open, which writes the first files
	tasks := []task.Task{
		pveTask("east", "n1", 1, t0+10, "vzdump", "101", "root@pam", t0+20, "OK"),
		pveTask("east", "n1", 2, t0+30, "qmstart", "102", "root@pam", 0, ""),
	}
	if err := w.Apply(Batch{Remote: "east", Tasks: tasks}); err != nil {
		t.Fatal(err)
	}

	merged := make(chan error)
	go func() { merged <- w.ApplyJournal() }()
	file := <-entered // the writer is now blocked inside the merge

	latest := w.Latest()
	var wg sync.WaitGroup
	results := make([]task.Page, 4)
	for i := range results {
		wg.Go(func() {
			s := latest.Load()
			results[i] = s.Query(task.Filter{Limit: 50})
			s.Statistics(task.Filter{})
		})
	}
	wg.Wait() // returns while the merge is still blocked
	for i, p := range results {
		if p.Total != 2 {
			t.Fatalf("reader %d during the merge of %s: total %d, want 2", i, file, p.Total)
		}
	}
	close(release)
	if err := <-merged; err != nil {
		t.Fatal(err)
	}
	if got := latest.Load().Len(); got != 2 {
		t.Fatalf("after the merge: %d tasks", got)
	}
}

// TestLatestAcrossRestart passes the same Latest to a reopened Writer:
// readers keep their handle and see the new Writer's snapshots.
func TestLatestAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 1800)
	latest := &Latest{}
	if latest.Load().Len() != 0 || latest.Load().Query(task.Filter{}).Total != 0 {
		t.Fatal("an empty Latest must hold an empty snapshot")
	}
	w := openTest(t, dir, clock, func(o *Options) { o.Latest = latest })
	tk := pveTask("east", "n1", 1, t0+10, "vzdump", "101", "root@pam", t0+20, "OK")
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{tk}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if latest.Load().Len() != 1 {
		t.Fatal("a closed Writer's last snapshot must stay readable")
	}
	w = openTest(t, dir, clock, func(o *Options) { o.Latest = latest })
	defer w.Close()
	if w.Latest() != latest || latest.Load().Len() != 1 {
		t.Fatal("the reopened Writer must publish to the same Latest")
	}
}

// TestConcurrentReaders queries from other goroutines while the Writer
// applies batches, tracks tasks, merges and rotates; under -race it checks
// that snapshots share nothing the Writer changes.
func TestConcurrentReaders(t *testing.T) {
	clock := newClock(t0 + 3*3600)
	w := openTest(t, t.TempDir(), clock)
	defer w.Close()
	latest := w.Latest()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := latest.Load()
				s.Query(task.Filter{Limit: 20, Start: 3})
				s.Query(task.Filter{Remote: "east", Errors: true})
				s.Statistics(task.Filter{TypeFilter: "vz"})
				s.Cutoff("east", "n1")
				s.Nodes("east")
				s.Tracked("east")
				s.AllTracked()
				s.Running("east")
				s.Remotes()
			}
		})
	}
	g := &gen{rng: rand.New(rand.NewSource(3)), base: t0}
	m := &model{tasks: map[string]task.Task{}}
	for i := range 40 {
		b := g.batch(m)
		if err := w.Apply(b); err != nil {
			t.Fatal(err)
		}
		m.apply(b, w.periods[0])
		if len(b.Tasks) > 0 {
			u := b.Tasks[0].UPID
			if err := w.Track(b.Remote, u); err != nil {
				t.Fatal(err)
			}
			if err := w.Untrack(b.Remote, u); err != nil {
				t.Fatal(err)
			}
		}
		switch i % 10 {
		case 4:
			if err := w.ApplyJournal(); err != nil {
				t.Fatal(err)
			}
		case 9:
			clock.Advance(time.Hour)
			if _, err := w.MaybeRotate(); err != nil {
				t.Fatal(err)
			}
			m.retain(w.periods[0])
		}
	}
	close(stop)
	wg.Wait()
}
