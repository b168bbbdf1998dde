package actors

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// lifecycle is how the tree tells its host that it is loaded, that the
// cache writer failed, and that it has ended and why. Its channels are
// closed once; its errors are set before the channel that announces them.
type lifecycle struct {
	loaded     chan struct{} // closed once the cache writer has opened the cache
	loadedOnce sync.Once
	writerFail chan struct{} // one token per cache writer failure (buffer 1: coalesced)
	done       chan struct{} // closed when the supervisor has stopped for good
	doneOnce   sync.Once

	cause     atomic.Pointer[error]  // why the tree ended; the first one wins
	stopping  atomic.Bool            // Stop was called: an ending is expected
	lastPanic atomic.Pointer[string] // the supervisor's last panic, for the cause
	closeErr  atomic.Pointer[error]  // the cache writer's last close result
}

func newLifecycle() lifecycle {
	return lifecycle{
		loaded:     make(chan struct{}),
		writerFail: make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
}

// markLoaded records that the cache is open (again).
func (l *lifecycle) markLoaded() { l.loadedOnce.Do(func() { close(l.loaded) }) }

// noteWriterFailure wakes a waiter of the first load.
func (l *lifecycle) noteWriterFailure() {
	select {
	case l.writerFail <- struct{}{}:
	default:
	}
}

// fail records why the tree ends, unless a cause is already known.
func (l *lifecycle) fail(err error) {
	if err != nil {
		l.cause.CompareAndSwap(nil, &err)
	}
}

// ended is called by the supervisor once it has stopped: an ending that
// Stop did not ask for is a failure whose cause names the last panic.
func (l *lifecycle) ended() {
	if !l.stopping.Load() {
		why := "stopped without Service.Stop (by its parent's strategy or by the host)"
		if p := l.lastPanic.Load(); p != nil {
			why += "; last panic: " + *p
		}
		l.fail(errors.New("taskfleet supervisor " + why))
	}
	l.doneOnce.Do(func() { close(l.done) })
}

// isDone reports whether the tree has ended.
func (l *lifecycle) isDone() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// err returns the recorded cause, or nil.
func (l *lifecycle) err() error {
	if p := l.cause.Load(); p != nil {
		return *p
	}
	return nil
}

// notePanic remembers a supervisor panic for the cause of an ending.
func (l *lifecycle) notePanic(reason any) {
	s := fmt.Sprint(reason)
	l.lastPanic.Store(&s)
}

// ErrStopped is returned (wrapped with the cause, if any) by commands sent
// to a tree that has ended.
var ErrStopped = errors.New("taskfleet has stopped")
