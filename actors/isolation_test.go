package actors

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
)

// TestHungRemotesDoNotSlowTheOthers hangs half the fleet and checks that
// the healthy half still refreshes within 1.2× the time it takes when no
// remote hangs, and that a track request for a hanging remote is answered
// at once.
func TestHungRemotesDoNotSlowTheOthers(t *testing.T) {
	fullRefreshesOnly(t) // sweeps of equal cost: no change detection
	synctest.Test(t, func(t *testing.T) {
		// Connections stay open (IdleTimeout -1): the 1.2× bound is for
		// reused connections. With pveproxy's 5 s idle timeout every
		// sweep handshakes anew, the hung half too, and a hung request
		// holds its permit until parked (5× the typical request time,
		// which the handshakes triple): 1.25× was measured then.
		h := newHarness(t, sim.Config{Seed: 5, PVEClusters: 20, TaskRate: 1, IndexSize: 200, IdleTimeout: -1}, Options{})
		h.cfg.Polling.RequestTimeout = 20 * time.Second
		// A cap below the fleet's demand, so that hung remotes holding
		// permits would show.
		h.cfg.Polling.MaxConnections = 10
		slow := sim.Fault{Latency: 50 * time.Millisecond, ConnectLatency: 50 * time.Millisecond}
		h.fleet.SetFaultAll(slow)
		h.freeze()
		h.start()
		time.Sleep(time.Minute) // backfill
		synctest.Wait()

		var healthy, hung []string
		for i, r := range h.fleet.Remotes() {
			if i%2 == 0 {
				healthy = append(healthy, r.ID)
			} else {
				hung = append(hung, r.ID)
			}
		}
		sweep := func() time.Duration {
			ctx := context.Background()
			if _, err := h.sys.Refresh(ctx, false, hung...); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := h.sys.Refresh(ctx, true, healthy...)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					t.Errorf("refresh %s: %v", r.Remote, r.Err)
				}
			}
			return time.Since(start)
		}
		base := sweep()
		time.Sleep(time.Minute) // let the other half finish
		synctest.Wait()

		for _, id := range hung {
			h.fleet.SetFault(id, "", sim.Fault{Hang: true, Latency: slow.Latency, ConnectLatency: slow.ConnectLatency})
		}
		for i := range 3 {
			withHung := sweep()
			t.Logf("healthy half refresh %d: %v alone, %v with the other half hanging", i, base, withHung)
			if withHung > base*12/10 {
				t.Errorf("healthy half took %v with hung remotes, more than 1.2 × %v", withHung, base)
			}
			time.Sleep(h.cfg.Polling.RequestTimeout) // the hung requests time out
			synctest.Wait()
		}

		start := time.Now()
		upid := h.fleet.Truth(hung[0])[0].UPID
		if err := h.sys.Track(context.Background(), hung[0], upid); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 10*time.Millisecond {
			t.Errorf("track on a hanging remote took %v", d)
		}
		h.fleet.SetFaultAll(sim.Fault{})
		h.stop()
	})
}
