package main

import (
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestSIGTERMDuringBackfill stops the daemon while it backfills a slow
// fleet, then checks that it exited cleanly and in time, that the cache
// reopens without corruption and with every task the API had shown, and
// that a restart completes it to exactly the fleet's ground truth.
func TestSIGTERMDuringBackfill(t *testing.T) {
	t.Parallel()
	fleet := newFleet(t, sim.Config{Seed: 11, PVEClusters: 16, NodesPerCluster: 3, PBSServers: 4, History: 48 * time.Hour, TaskRate: 30})
	fleet.SetFaultAll(sim.Fault{Latency: 400 * time.Millisecond})
	path := writeConfig(t, fleet, t.TempDir(), anyPort, tokensTOML)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, "serve", "--config", path)
	c := &apiClient{t: t, base: p.apiURL()}
	c.waitReady(p)
	// Mid-backfill: some remotes are done, others are being fetched.
	var done int
	eventually(t, 60*time.Second, "no remote backfilled", func() bool {
		var st []api.RemoteStatus
		c.do(http.MethodGet, "/api2/json/remotes/status", opsSecret, nil).ok(t, &st)
		done = 0
		for _, s := range st {
			if s.LastSuccess != 0 {
				done++
			}
		}
		return done > 0
	})
	shown := c.list(opsSecret, nil) // acknowledged: in a published snapshot
	if done == len(cfg.Remotes) {
		t.Fatalf("all %d remotes backfilled before SIGTERM: the fleet is too fast for this test", done)
	}
	began := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("SIGTERM with %d/%d remotes backfilled and %d tasks shown: exited in %v", done, len(cfg.Remotes), len(shown), time.Since(began).Round(time.Millisecond))

	// The cache reopens without damage and holds every task shown.
	w, err := cache.Open(cache.Options{Dir: cfg.Server.CacheDir, Retention: cfg.Polling.RetentionDays})
	if err != nil {
		t.Fatalf("reopen the cache: %v", err)
	}
	if cs := w.Corruptions(); len(cs) != 0 {
		t.Errorf("reopened cache found %d corruptions, first: %v", len(cs), cs[0])
	}
	kept := map[string]bool{}
	for _, tk := range w.Latest().Load().Query(task.Filter{}).Tasks {
		kept[tk.RemoteUPID().String()] = true
	}
	for _, k := range keys(shown) {
		if !kept[k] {
			t.Fatalf("task %s was shown before SIGTERM and is lost", k)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close the reopened cache: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(cfg.Server.CacheDir, "*.tmp")); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}

	// A restart completes the backfill: exactly the ground truth, no duplicates.
	fleet.SetFaultAll(sim.Fault{})
	p = start(t, "serve", "--config", path)
	c.base = p.apiURL() // another free port
	c.waitReady(p)
	c.refreshAll(opsSecret)
	checkTruth(t, fleet, c.list(opsSecret, nil))
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after the second SIGTERM, want 0", code)
	}
}
