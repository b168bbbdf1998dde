package actors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/sim"
)

// TestWriterPublishesChanges: the cache writer hands the hub its changes;
// a task started on a remote arrives as started, then finished.
func TestWriterPublishesChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := events.New(events.Options{})
		defer hub.Close()
		h := newHarness(t, sim.Config{Seed: 9, PVEClusters: 1, NodesPerCluster: 1, TaskRate: 1, IndexSize: 50}, Options{Events: hub})
		h.start()
		h.refresh()
		h.freeze()
		sub, err := hub.Subscribe(context.Background(), events.SubscribeOptions{Buffer: 4096})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		r := h.fleet.Remotes()[0]
		u := h.fleet.StartTask(r.ID, r.Endpoints[0].Node, "vzdump", "", 30*time.Second)
		h.refresh()
		want := func(typ events.Type) {
			t.Helper()
			for {
				select {
				case e := <-sub.C:
					if e.Task.UPID == u {
						if e.Type != typ {
							t.Fatalf("got %s, want %s", e.Type, typ)
						}
						return
					}
				case <-time.After(time.Minute):
					t.Fatalf("no %s event", typ)
				}
			}
		}
		want(events.Started)
		h.frozen.Add(31)
		h.refresh()
		want(events.Finished)
	})
}

// TestPollerLogFetchesAreBounded: a poller fetches logs in the background,
// at most maxLogFetches at a time; more are refused at once, so its
// mailbox never waits for a remote.
func TestPollerLogFetchesAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 9, PVEClusters: 1, NodesPerCluster: 1, TaskRate: 1, IndexSize: 50}, Options{})
		h.start()
		h.refresh()
		r := h.fleet.Remotes()[0]
		u := h.fleet.StartTask(r.ID, r.Endpoints[0].Node, "qmigrate", "100", time.Hour)
		h.fleet.SetFaultAll(sim.Fault{Latency: 10 * time.Second})
		var wg sync.WaitGroup
		errs := make([]error, maxLogFetches+2)
		began := time.Now()
		for i := range errs {
			wg.Go(func() {
				_, _, _, errs[i] = h.sys.TaskLog(context.Background(), r.ID, u, 0, 0)
			})
			synctest.Wait()
		}
		busy := 0
		for _, err := range errs[maxLogFetches:] {
			if errors.Is(err, ErrLogBusy) {
				busy++
			}
		}
		if busy != 2 || time.Since(began) != 0 {
			t.Errorf("%d refused at once (after %v), want 2 at once: %v", busy, time.Since(began), errs)
		}
		wg.Wait()
		for _, err := range errs[:maxLogFetches] {
			if err != nil {
				t.Errorf("fetch: %v", err)
			}
		}
		h.fleet.SetFaultAll(sim.Fault{})
		log, cached, active, err := h.sys.TaskLog(context.Background(), r.ID, u, 0, 2)
		if err != nil || cached || len(log.Lines) != 2 || !strings.Contains(log.Lines[0].T, "starting migration of VM 100") {
			t.Errorf("log %+v cached %v active %v: %v", log, cached, active, err)
		}
		if _, _, _, err := h.sys.TaskLog(context.Background(), "nope", u, 0, 0); !errors.Is(err, ErrUnknownRemote) {
			t.Errorf("unknown remote: %v", err)
		}
	})
}

// TestStopWithTheHubOpen: Stop ends the task-log keeper without waiting
// for the hub to close (the host closes it after Stop; a daemon whose
// tree died stops the service before anything closes the hub).
func TestStopWithTheHubOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := events.New(events.Options{})
		h := newHarness(t, sim.Config{Seed: 9, PVEClusters: 1, NodesPerCluster: 1, TaskRate: 1, IndexSize: 50}, Options{Events: hub})
		h.start()
		h.refresh()
		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stopped <- h.sys.Stop(ctx)
		}()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("Stop: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Error("Stop still waiting with the events hub open")
		}
		hub.Close()
	})
}
