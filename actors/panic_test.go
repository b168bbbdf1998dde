package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
)

// TestPollingPanicsCostOneRestart panics once in a poller's fetch
// goroutine, once in one of its workers and once in a decoder (the
// client's, through its BeforeDecode hook): each costs that poller one
// restart, never the process, and the fleet is complete afterwards.
func TestPollingPanicsCostOneRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const victim = "pve-c001"
		var (
			armed atomic.Value // the fetchStage to panic at next
			fired atomic.Int32
		)
		armed.Store(fetchStage(""))
		opts := Options{
			restartBase: 100 * time.Millisecond,
			restartMax:  time.Second,
			pollerHook: func(remote string, msg any) {
				s, ok := msg.(fetchStage)
				if !ok || remote != victim || s == "" {
					return
				}
				if armed.CompareAndSwap(s, fetchStage("")) {
					fired.Add(1)
					panic(fmt.Sprintf("injected %s panic", s))
				}
			},
		}
		h := newHarness(t, sim.Config{Seed: 27, PVEClusters: 2, PBSServers: 1, TaskRate: 6}, opts)
		h.start()
		time.Sleep(time.Minute)
		synctest.Wait()
		for i, s := range []fetchStage{stageFetch, stageWorker, stageDecode} {
			armed.Store(s)
			if _, err := h.sys.Refresh(context.Background(), false, victim); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second) // the restart delay
			synctest.Wait()
			if n := fired.Load(); n != int32(i+1) {
				t.Fatalf("%s: %d panics injected, want %d", s, n, i+1)
			}
			if r := h.healthOf(victim).Restarts; r != i+1 {
				t.Errorf("after a %s panic: %d restarts, want %d", s, r, i+1)
			}
		}
		for _, hl := range h.sys.Remotes() {
			if hl.Remote != victim && hl.Restarts != 0 {
				t.Errorf("%s restarted %d times", hl.Remote, hl.Restarts)
			}
		}
		h.freeze()
		h.refresh()
		if d := h.check(); d != "" {
			t.Errorf("after the panics: %s", d)
		}
		if st := h.healthOf(victim).State; st != StateUp {
			t.Errorf("%s is %s after the panics", victim, st)
		}
		h.stop()
	})
}
