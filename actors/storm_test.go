package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/sim"
)

// TestNoResendStormIntoFailingWriter makes the cache writer fail for ten
// minutes, twenty apply limits (it panics on a batch, then in every
// Started): pollers fetch nothing while it fails, so when it opens again
// its mailbox holds at most one batch per poller, not one per ack
// timeout; afterwards the cache is complete. Counted are the batches sent while it fails and the
// first of each poller after it returned (the later ones are the usual
// polls).
func TestNoResendStormIntoFailingWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			failing atomic.Bool
			mu      sync.Mutex
			batches int // batches the writer got while failing and when it came back
			counted bool
			back    = map[string]bool{} // remotes that sent a batch after the return
		)
		opts := Options{
			restartBase: 100 * time.Millisecond,
			restartMax:  10 * time.Second,
			applyLimit:  30 * time.Second,
			writerHook: func(msg any, applied bool) {
				switch msg.(type) {
				case *messages.ApplyBatch:
					if applied {
						return
					}
					mu.Lock()
					if r := msg.(*messages.ApplyBatch).Remote; counted && (failing.Load() || !back[r]) {
						batches++
						back[r] = !failing.Load()
					}
					mu.Unlock()
				case *actor.Started:
				default:
					return
				}
				if failing.Load() {
					panic("injected writer failure")
				}
			},
		}
		h := newHarness(t, sim.Config{Seed: 31, PVEClusters: 3, TaskRate: 12}, opts)
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		counted = true
		mu.Unlock()
		failing.Store(true)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		failing.Store(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		got := batches
		counted = false
		mu.Unlock()
		t.Logf("%d batches reached the writer during 10 minutes of failure and its return", got)
		if limit := 2 * len(h.cfg.Remotes); got > limit {
			t.Errorf("%d batches reached the failing writer, want at most %d (one per poller, twice)", got, limit)
		}
		if err := h.sys.WriterFailure(); err != nil {
			t.Errorf("writer still failing: %v", err)
		}
		h.freeze()
		time.Sleep(6 * time.Minute) // backoffs end
		synctest.Wait()
		h.refresh()
		if d := h.check(); d != "" {
			t.Errorf("after the writer came back: %s", d)
		}
		h.stop()
	})
}
