package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/task"
)

// feeder applies batches to a real cache and publishes them to a Hub the
// way the cache writer actor does.
type feeder struct {
	t *testing.T
	w *cache.Writer
	h *Hub
}

func newFeeder(t *testing.T, h *Hub) *feeder {
	t.Helper()
	w, err := cache.Open(cache.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &feeder{t: t, w: w, h: h}
}

func (f *feeder) apply(remote string, tasks ...task.Task) {
	f.t.Helper()
	prev := f.w.Latest().Load()
	if err := f.w.Apply(cache.Batch{Remote: remote, Tasks: tasks}); err != nil {
		f.t.Fatal(err)
	}
	f.h.Publish(Published{Prev: prev, Next: f.w.Latest().Load(), Remote: remote, Tasks: tasks})
}

// mkTask returns a task of remote "east" started at start with pid pid;
// status "" is running.
func mkTask(pid uint32, start int64, status string) task.Task {
	t := task.Task{Remote: "east", UPID: task.UPID{Kind: task.PVE, Node: "pve1", PID: pid, PStart: 4242, StartTime: start, Type: "vzdump", ID: "100", User: "root@pam"}}
	if status != "" {
		t.EndTime, t.Status = start+60, status
	}
	return t
}

func next(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case e, ok := <-s.C:
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return e
	case <-time.After(time.Minute):
		t.Fatal("no event")
	}
	return Event{}
}

func TestHubChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Options{})
		defer h.Close()
		f := newFeeder(t, h)
		s, err := h.Subscribe(context.Background(), SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Unix()
		f.apply("east", mkTask(1, now, ""))
		f.apply("east", mkTask(1, now, ""))                                   // unchanged: no event
		f.apply("east", mkTask(1, now, "OK"), mkTask(2, now+1, "job errors")) // finished, and new finished
		f.apply("east", mkTask(1, now, "OK"), mkTask(2, now+1, "job errors")) // refetched: no event
		f.h.Publish(Published{Remote: "east", Reload: "remote east dropped"}) // a reload
		want := []struct {
			typ    Type
			pid    uint32
			status string
		}{{Started, 1, ""}, {Finished, 1, "OK"}, {Finished, 2, "job errors"}, {Reload, 0, ""}}
		var last uint64
		for i, w := range want {
			e := next(t, s)
			if e.Type != w.typ || e.Task.UPID.PID != w.pid || e.Task.Status != w.status {
				t.Fatalf("event %d: got %s pid %d status %q, want %s pid %d status %q", i, e.Type, e.Task.UPID.PID, e.Task.Status, w.typ, w.pid, w.status)
			}
			if e.ID <= last {
				t.Fatalf("event %d: id %d not above %d", i, e.ID, last)
			}
			last = e.ID
		}
		synctest.Wait()
		select {
		case e := <-s.C:
			t.Fatalf("unexpected event %+v", e)
		default:
		}
	})
}

func TestHubBigBatchIsOneReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Options{MaxBatchEvents: 10})
		defer h.Close()
		f := newFeeder(t, h)
		s, _ := h.Subscribe(context.Background(), SubscribeOptions{})
		now := time.Now().Unix()
		var batch []task.Task
		for i := range 11 {
			batch = append(batch, mkTask(uint32(i+1), now-int64(i), "OK"))
		}
		f.apply("east", batch...)
		if e := next(t, s); e.Type != Reload {
			t.Fatalf("got %s, want reload", e.Type)
		}
	})
}

// TestHubSlowSubscriber is the acceptance test: 100 subscribers, one of
// them stalled. The other 99 get each change within 1 s of the cache
// publishing it, in order and without gaps; the stalled one is dropped.
func TestHubSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const subscribers, changes = 100, 600
		h := New(Options{})
		defer h.Close()
		f := newFeeder(t, h)
		published := make([]time.Time, changes+1) // by pid
		var mu sync.Mutex
		var subs []*Subscription
		for range subscribers {
			s, err := h.Subscribe(context.Background(), SubscribeOptions{Buffer: 64})
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
		stalled := subs[0]
		var wg sync.WaitGroup
		worst := make([]time.Duration, subscribers)
		failures := make(chan string, subscribers)
		for i, s := range subs[1:] {
			wg.Go(func() {
				want := uint32(1)
				for e := range s.C {
					mu.Lock()
					lag := time.Since(published[e.Task.UPID.PID])
					mu.Unlock()
					worst[i+1] = max(worst[i+1], lag)
					if e.Type != Started || e.Task.UPID.PID != want {
						failures <- fmt.Sprintf("subscriber %d: got %s of pid %d, want started of %d", i+1, e.Type, e.Task.UPID.PID, want)
						return
					}
					want++
					time.Sleep(time.Duration(i%7) * time.Millisecond) // subscribers work at different speeds
				}
				if want != changes+1 {
					failures <- fmt.Sprintf("subscriber %d: got %d changes, want %d (ended: %v)", i+1, want-1, changes, s.Err())
				}
			})
		}
		start := time.Now().Unix()
		for i := 1; i <= changes; i++ {
			mu.Lock()
			published[i] = time.Now()
			mu.Unlock()
			f.apply("east", mkTask(uint32(i), start+int64(i), ""))
			time.Sleep(10 * time.Millisecond)
		}
		synctest.Wait()
		if _, open := <-stalled.C; open {
			// It holds its buffer; drain until closed.
			for range stalled.C {
			}
		}
		if !errors.Is(stalled.Err(), ErrTooSlow) {
			t.Errorf("stalled subscriber: err %v, want ErrTooSlow", stalled.Err())
		}
		if st := h.Stats(); st.Dropped != 1 || st.Subscribers != subscribers-1 || st.Lost != 0 {
			t.Errorf("stats %+v: want 1 dropped, %d subscribed, none lost", st, subscribers-1)
		}
		for _, s := range subs[1:] {
			s.Close()
		}
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Error(f)
		}
		for i, w := range worst[1:] {
			if w > time.Second {
				t.Errorf("subscriber %d: a change arrived %v after it was published, want within 1s", i+1, w)
			}
		}
	})
}

// TestHubResume: a subscriber resuming from an event inside the ring
// misses nothing; from outside it (too old, or from another run), it gets
// one Reload.
func TestHubResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Options{Ring: 50})
		defer h.Close()
		f := newFeeder(t, h)
		now := time.Now().Unix()
		s, _ := h.Subscribe(context.Background(), SubscribeOptions{Buffer: 1000})
		for i := 1; i <= 10; i++ {
			f.apply("east", mkTask(uint32(i), now+int64(i), ""))
		}
		var seen uint64
		for range 4 {
			seen = next(t, s).ID
		}
		s.Close() // the client goes away after 4 events
		for i := 11; i <= 30; i++ {
			f.apply("east", mkTask(uint32(i), now+int64(i), ""))
		}
		synctest.Wait()
		// Only the even pids, like a filtered stream.
		even := func(e *Event) bool { return e.Task.UPID.PID%2 == 0 }
		r, _ := h.Subscribe(context.Background(), SubscribeOptions{Resume: true, After: seen, Match: even})
		for pid := uint32(6); pid <= 30; pid += 2 {
			if e := next(t, r); e.Task.UPID.PID != pid || e.Type != Started {
				t.Fatalf("resumed: got %s pid %d, want started %d", e.Type, e.Task.UPID.PID, pid)
			}
		}
		// Up to date: nothing more.
		if r.Last != h.Stats().LastID {
			t.Errorf("Last %d, want %d", r.Last, h.Stats().LastID)
		}
		synctest.Wait()
		if len(r.C) != 0 {
			t.Errorf("%d unexpected events", len(r.C))
		}
		for i := 31; i <= 100; i++ { // event of `seen` leaves the ring
			f.apply("east", mkTask(uint32(i), now+int64(i), ""))
		}
		synctest.Wait()
		for _, after := range []uint64{seen, seen - 1_000_000, h.Stats().LastID + 5} {
			o, _ := h.Subscribe(context.Background(), SubscribeOptions{Resume: true, After: after})
			if e := next(t, o); e.Type != Reload || e.ID != h.Stats().LastID {
				t.Errorf("resume after %d: got %s id %d, want reload with the last id", after, e.Type, e.ID)
			}
			o.Close()
		}
	})
}

// TestHubNeverBlocksPublisher: a Hub that cannot keep up drops publishes
// (counted) rather than block the writer, and tells subscribers to reload.
func TestHubNeverBlocksPublisher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Options{Inbox: 4})
		defer h.Close()
		f := newFeeder(t, h)
		gate := make(chan struct{})
		block := func(*Event) bool { <-gate; return true } // holds the Hub's goroutine
		s, _ := h.Subscribe(context.Background(), SubscribeOptions{Match: block, Buffer: 100})
		now := time.Now().Unix()
		f.apply("east", mkTask(1, now+1, ""))
		synctest.Wait() // the Hub's goroutine holds the first publish
		for i := 2; i <= 10; i++ {
			f.apply("east", mkTask(uint32(i), now+int64(i), "")) // returns: never blocks
		}
		close(gate)
		synctest.Wait()
		if st := h.Stats(); st.Lost != 5 { // one taken, four queued
			t.Errorf("lost %d publishes, want 5", st.Lost)
		}
		var types []Type
		for len(s.C) > 0 {
			types = append(types, (<-s.C).Type)
		}
		if len(types) != 6 || types[1] != Reload {
			t.Errorf("got %v, want started, reload, then 4 started", types)
		}
	})
}

func TestHubClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Options{})
		s, _ := h.Subscribe(context.Background(), SubscribeOptions{})
		h.Close()
		if _, ok := <-s.C; ok || !errors.Is(s.Err(), ErrClosed) {
			t.Errorf("after Close: open %v, err %v", ok, s.Err())
		}
		if _, err := h.Subscribe(context.Background(), SubscribeOptions{}); !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe after Close: %v", err)
		}
		h.Publish(Published{Reload: "x"}) // no panic, no block
		s.Close()
		h.Close()
	})
}

func TestEventMatches(t *testing.T) {
	fin := Event{Type: Finished, Task: mkTask(1, 1000, "job errors")}
	run := task.Filter{Running: true}
	errs := task.Filter{Errors: true}
	other := task.Filter{Remote: "west"}
	if !fin.Matches(&run) || !fin.Matches(&errs) || fin.Matches(&other) {
		t.Error("a finished event matches the filters the task matched before or after")
	}
	st := Event{Type: Started, Task: mkTask(1, 1000, "")}
	if st.Matches(&errs) || !st.Matches(&run) {
		t.Error("a started event matches filters of running tasks only")
	}
	rl := Event{Type: Reload}
	if !rl.Matches(&other) {
		t.Error("reload matches everything")
	}
}
