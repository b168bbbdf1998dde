package actors

import (
	"container/list"
	"context"
	"sync"
)

// Urgent requests. A poll that checks a tracked task (a task a user is
// waiting for: Service.Track) is urgent: its requests take the global
// budget's next free permit before the requests of routine polls (running
// checks, refreshes) that queued earlier. At a tick, a fleet's routine
// polls all queue at once (at 1000 remotes, a third of them check their
// running tasks); behind them, a tracked task's status check waited up to
// the whole burst, which kept its freshness from one tick + 2 RTT
// (docs/benchmarks.md, "Freshness of tracked tasks"). Tracked tasks are
// bounded (MaxTracked per remote, one status request each per tick, and
// the fetch of the node a finished one ran on), so routine polls wait at
// most that much longer.

// urgentKey marks a context as urgent.
type urgentKey struct{}

// withUrgency marks ctx's requests as urgent for the budget.
func withUrgency(ctx context.Context) context.Context {
	return context.WithValue(ctx, urgentKey{}, true)
}

// isUrgent reports whether ctx was marked by withUrgency.
func isUrgent(ctx context.Context) bool {
	u, _ := ctx.Value(urgentKey{}).(bool)
	return u
}

// prioSem is a counting semaphore with two FIFO queues: a free permit
// goes to the oldest urgent waiter, else to the oldest other one. Like
// golang.org/x/sync/semaphore (which it replaces in Budget), a waiter
// whose context ends leaves the queue, and one granted a permit just as
// its context ended gives it back.
type prioSem struct {
	mu      sync.Mutex
	size    int64
	cur     int64
	urgent  list.List // of chan struct{}
	routine list.List
}

func newPrioSem(n int64) *prioSem { return &prioSem{size: n} }

// Acquire takes a permit, waiting in the urgent or the routine queue.
func (s *prioSem) Acquire(ctx context.Context, urgent bool) error {
	done := ctx.Done()
	s.mu.Lock()
	select {
	case <-done:
		s.mu.Unlock()
		return ctx.Err()
	default:
	}
	if s.cur < s.size && s.urgent.Len() == 0 && s.routine.Len() == 0 {
		s.cur++
		s.mu.Unlock()
		return nil
	}
	q := &s.routine
	if urgent {
		q = &s.urgent
	}
	ready := make(chan struct{})
	elem := q.PushBack(ready)
	s.mu.Unlock()

	select {
	case <-ready:
		return nil
	case <-done:
		s.mu.Lock()
		select {
		case <-ready:
			// Granted as the context ended: give the permit back.
			s.cur--
			s.notify()
		default:
			q.Remove(elem)
			s.notify()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// Release returns a permit.
func (s *prioSem) Release() {
	s.mu.Lock()
	s.cur--
	if s.cur < 0 {
		s.mu.Unlock()
		panic("actors: prioSem released more than acquired")
	}
	s.notify()
	s.mu.Unlock()
}

// notify hands free permits to waiters, urgent ones first; s.mu is held.
func (s *prioSem) notify() {
	for s.cur < s.size {
		q := &s.urgent
		if q.Len() == 0 {
			q = &s.routine
		}
		front := q.Front()
		if front == nil {
			return
		}
		s.cur++
		q.Remove(front)
		close(front.Value.(chan struct{}))
	}
}
