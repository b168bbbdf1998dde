package actors

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// urgencyClient records whether its status requests came marked urgent.
type urgencyClient struct {
	fakeClient
	calls  int
	urgent bool
}

func (c *urgencyClient) TaskStatus(ctx context.Context, u task.UPID) (proxmox.TaskStatus, error) {
	c.calls++
	c.urgent = isUrgent(ctx)
	return proxmox.TaskStatus{UPID: u, Running: true}, nil
}

// TestPrioSemUrgentFirst: with every permit taken, a freed permit goes to
// the oldest urgent waiter before routine waiters that queued earlier;
// routine waiters keep their order; a waiter whose context ends leaves
// the queue without taking a permit.
func TestPrioSemUrgentFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPrioSem(1)
		ctx := context.Background()
		if err := s.Acquire(ctx, false); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 10)
		wait := func(name string, urgent bool) {
			go func() {
				if err := s.Acquire(ctx, urgent); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				got <- name
			}()
			synctest.Wait() // queued in this order
		}
		wait("routine1", false)
		wait("routine2", false)
		cctx, cancel := context.WithCancel(ctx)
		gone := make(chan error, 1)
		go func() { gone <- s.Acquire(cctx, true) }()
		synctest.Wait()
		wait("urgent1", true)
		wait("urgent2", true)
		cancel()
		if err := <-gone; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v", err)
		}
		var order []string
		for range 4 {
			s.Release()
			synctest.Wait()
			select {
			case n := <-got:
				order = append(order, n)
			default:
				t.Fatalf("no waiter got the permit after %v", order)
			}
		}
		want := []string{"urgent1", "urgent2", "routine1", "routine2"}
		for i := range want {
			if order[i] != want[i] {
				t.Fatalf("order %v, want %v", order, want)
			}
		}
		s.Release()
		if s.cur != 0 || s.urgent.Len() != 0 || s.routine.Len() != 0 {
			t.Errorf("left: %d permits taken, %d urgent and %d routine waiters", s.cur, s.urgent.Len(), s.routine.Len())
		}
	})
}

// TestPrioSemWaiterTimesOut: a waiter whose context ends leaves the
// queue; the permits released afterwards are all there to take.
func TestPrioSemWaiterTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPrioSem(2)
		ctx := context.Background()
		for range 2 {
			if err := s.Acquire(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- s.Acquire(cctx, true) }()
		time.Sleep(2 * time.Second) // the timeout passes first
		err := <-errc
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire: %v", err)
		}
		s.Release()
		s.Release()
		if s.cur != 0 {
			t.Errorf("%d permits taken after every release", s.cur)
		}
		for range 2 {
			if err := s.Acquire(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestTrackedPollIsUrgent: a fetch that checks a tracked task marks its
// requests urgent; one that checks only running tasks does not.
func TestTrackedPollIsUrgent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tracked bool
	}{{"tracked", true}, {"running only", false}} {
		t.Run(tc.name, func(t *testing.T) {
			u := task.UPID{Kind: task.PVE, Node: "n1", PID: 7, PStart: 1, StartTime: time.Now().Unix() - 60, Type: "qmstart", ID: "100", User: "root@pam"}
			cl := &urgencyClient{fakeClient: fakeClient{nodes: []proxmox.Node{{Name: "n1", Online: true}}}}
			j := &fetchJob{remote: "r", kind: task.PVE, nodes: []string{"n1"}, check: []task.UPID{u},
				tracked: map[task.UPID]bool{u: tc.tracked}, snap: emptySnapshot(t), retention: time.Hour, workers: 1, client: cl}
			j.run(context.Background())
			if cl.calls == 0 || cl.urgent != tc.tracked {
				t.Errorf("%d status requests, urgent %v; want urgent %v", cl.calls, cl.urgent, tc.tracked)
			}
		})
	}
}
