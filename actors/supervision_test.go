package actors

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/sim"
)

// TestPanicsHeal injects panics into pollers (on every 3rd fetch result of
// some remotes) and into the cache writer (before applying a batch, so the
// batch is lost in flight, and after applying one, so its acknowledgement
// is lost). The fleet keeps being polled and nothing is lost or duplicated.
func TestPanicsHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu      sync.Mutex
			results = map[string]int{}
			batches int
			panics  int
		)
		opts := Options{
			restartBase: 100 * time.Millisecond,
			restartMax:  5 * time.Second,
			applyLimit:  30 * time.Second,
			pollerHook: func(remote string, msg any) {
				if _, ok := msg.(*messages.FetchFinished); !ok || remote > "pve-c003" {
					return
				}
				mu.Lock()
				results[remote]++
				n := results[remote]
				if n%3 == 0 {
					panics++
				}
				mu.Unlock()
				if n%3 == 0 {
					panic("injected poller panic")
				}
			},
			writerHook: func(msg any, applied bool) {
				if _, ok := msg.(*messages.ApplyBatch); !ok {
					return
				}
				mu.Lock()
				if !applied {
					batches++
				}
				n := batches
				mu.Unlock()
				if n == 5 && !applied || n == 9 && applied {
					panic("injected writer panic")
				}
			},
		}
		h := newHarness(t, sim.Config{Seed: 9, PVEClusters: 3, PBSServers: 1, TaskRate: 20, IndexSize: 100}, opts)
		h.start()
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		h.freeze()
		time.Sleep(time.Minute) // backoffs expire
		h.refresh()
		if d := h.check(); d != "" {
			t.Errorf("after panics: %s", d)
		}
		mu.Lock()
		t.Logf("%d poller panics, %d batches", panics, batches)
		if panics < 10 || batches < 10 {
			t.Errorf("only %d poller panics and %d batches: the injection did not run", panics, batches)
		}
		mu.Unlock()
		var restarts int
		for _, hl := range h.sys.Remotes() {
			restarts += hl.Restarts
		}
		if restarts == 0 {
			t.Error("health shows no poller restart")
		}
		h.stop()
	})
}
