package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/notify/tmpl"
	"github.com/taskfleet/taskfleet/sim"
)

// TestServeStaleBackups: the backup overview reaches its three readers in
// a running daemon. A guest whose backups stopped 30 hours before the
// fleet was created is in backups?older_than=26h, in the per-guest metrics
// ([metrics] per_guest) and in a [[notify.stale]] notification.
func TestServeStaleBackups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against a simulated fleet with three days of history")
	}
	t.Parallel()
	var mu sync.Mutex
	stale := map[string]tmpl.StaleGuest{} // by remote/vmid
	hook := webhookReceiver(t, &mu, func(m tmpl.Message) {
		for _, g := range m.Stale {
			stale[g.Remote+"/"+g.VMID] = g
		}
	})
	fleet := newFleet(t, sim.Config{Seed: 11, PVEClusters: 1, NodesPerCluster: 1, History: 72 * time.Hour})
	now := time.Now()
	var overdue []sim.BackupStop
	for _, s := range fleet.BackupStops() {
		if s.At.Before(now.Add(-26 * time.Hour)) {
			overdue = append(overdue, s)
		}
	}
	if len(overdue) == 0 {
		t.Fatalf("the fleet has no guest whose backups stopped over 26 h ago: %+v", fleet.BackupStops())
	}
	dir := t.TempDir()
	path, err := fleet.WriteDaemonConfig(dir, sim.DaemonOptions{Listen: anyPort, Tick: time.Second, RefreshInterval: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, `
[metrics]
per_guest = true

[[notify]]
name = "stale"
kind = "webhook"
url = "`+hook.URL+`/alerts"
group_window = "1s"

[[notify.stale]]
hours = 26
`)
	srv := serveInProcess(t, path)
	c := srv.c
	for _, s := range overdue {
		key := s.Remote + "/" + s.VMID
		defer func() {
			if t.Failed() {
				r := c.do(http.MethodGet, pathBackups, "", url.Values{"remote": {s.Remote}})
				var d struct{ Guests []map[string]any }
				_ = json.Unmarshal(r.Data, &d)
				rows := d.Guests
				for _, row := range rows {
					if row["vmid"] == s.VMID {
						t.Logf("row of %s: %v (stop at %v, now %v)", key, row, s.At, time.Now())
					}
				}
				t.Logf("%d rows; status %d %s", len(rows), r.status, r.Message)
			}
		}()
		eventually(t, 30*time.Second, "backups?older_than=26h lists "+key, func() bool {
			var d struct {
				Guests []struct{ Remote, VMID string }
			}
			r := c.do(http.MethodGet, pathBackups, "", url.Values{"older_than": {"26h"}})
			if r.status != http.StatusOK || json.Unmarshal(r.Data, &d) != nil {
				return false
			}
			for _, row := range d.Guests {
				if row.Remote == s.Remote && row.VMID == s.VMID {
					return true
				}
			}
			return false
		})
		eventually(t, 30*time.Second, "per-guest metrics of "+key, func() bool {
			resp, err := http.Get(c.base + "/metrics")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), `taskfleet_guest_backup_last_success_timestamp_seconds{guest_type="`) &&
				strings.Contains(string(b), `remote="`+s.Remote+`",vmid="`+s.VMID+`"}`)
		})
		// The notifiers check stale rules at least once a minute; the
		// refresh interval here is shorter, so within it.
		eventually(t, 30*time.Second, "stale notification for "+key, func() bool {
			mu.Lock()
			defer mu.Unlock()
			g, ok := stale[key]
			return ok && g.Hours == 26
		})
	}
	srv.stop()
}
