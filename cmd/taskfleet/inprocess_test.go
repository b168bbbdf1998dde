package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/sim"
)

// TestServeInProcess runs serve inside the test process, so that the race
// detector watches the daemon's wiring (the API, the backend, the
// reloader, the progress loop and the stop), and stops it through its
// context.
func TestServeInProcess(t *testing.T) {
	t.Parallel()
	fleet := newFleet(t, sim.Config{Seed: 3, PVEClusters: 2, NodesPerCluster: 2, PBSServers: 1, History: 24 * time.Hour, IndexSize: 200})
	path := writeConfig(t, fleet, t.TempDir(), anyPort, tokensTOML)

	srv := serveInProcess(t, path, "--log-level", "debug")
	c := srv.c

	c.refreshAll(opsSecret)
	checkTruth(t, fleet, c.list(opsSecret, nil))
	pbs := fleet.Held("pbs001")[0].UPID.String()
	if r := c.do(http.MethodPost, "/api2/json/remotes/tasks/track", opsSecret, url.Values{"remote": {"pve-c001"}, "upid": {pbs}}); r.status != http.StatusBadRequest {
		t.Errorf("track of a PBS upid on a PVE remote: %d %s, want 400", r.status, r.raw)
	}
	c.do(http.MethodPost, "/api2/json/remotes/tasks/track", opsSecret, url.Values{"remote": {"pbs001"}, "upid": {pbs}}).ok(t, nil)
	c.do(http.MethodPost, "/api2/json/reload", opsSecret, nil).ok(t, nil)
	c.do(http.MethodGet, "/api2/json/remotes/status", teamSecret, nil).ok(t, nil)
	if r := c.do(http.MethodGet, "/metrics", opsSecret, nil); r.status != http.StatusOK || !strings.Contains(string(r.raw), "taskfleet_tasks_cached ") {
		t.Errorf("/metrics: %d", r.status)
	}
	// A refresh with wait in flight while the daemon stops.
	go func() {
		req, _ := http.NewRequest(http.MethodPost, c.base+"/api2/json/remotes/tasks/refresh?wait=1", nil)
		req.Header.Set("Authorization", "Bearer "+opsSecret)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()

	srv.stop()
	if logs := srv.stderr.String(); !strings.Contains(logs, `"message":"service stopped"`) {
		t.Errorf("no \"service stopped\" in the logs:\n%s", tail(logs, 2000))
	}
}
