package sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

func logPath(u task.UPID, node, query string) string {
	return "/api2/json/nodes/" + node + "/tasks/" + url.PathEscape(u.String()) + "/log" + query
}

func decodeLog(t *testing.T, env envelope) []logLine {
	t.Helper()
	var lines []logLine
	if err := json.Unmarshal(env.Data, &lines); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestTaskLog: a running task's log grows and has no end line; a finished
// one ends in TASK OK; paging follows PVE (n from 1, total); a task the
// node no longer holds has no log.
func TestTaskLog(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	runInBubble(t, Config{Seed: 3, PVEClusters: 1, PBSServers: 1, NodesPerCluster: 1, Now: clock.Now, IndexSize: 30, TaskRate: 1}, func(t *testing.T, f *Fleet, c *testClient) {
		var pve, pbs Remote
		for _, r := range f.Remotes() {
			if r.Kind == task.PBS {
				pbs = r
			} else {
				pve = r
			}
		}
		node := pve.Endpoints[0].Node
		u := f.StartTask(pve.ID, node, "vzdump", "", 10*time.Minute)
		env := c.getOK(pve.ID, node, logPath(u, node, "?limit=0"))
		running := decodeLog(t, env)
		if len(running) == 0 || !strings.HasPrefix(running[0].T, "INFO: starting new backup job: vzdump 1") || running[0].N != 1 {
			t.Fatalf("running log %+v", running)
		}
		if strings.HasPrefix(running[len(running)-1].T, "TASK ") {
			t.Errorf("running task's log ends with %q", running[len(running)-1].T)
		}
		clock.Advance(11 * time.Minute)
		env = c.getOK(pve.ID, node, logPath(u, node, "?limit=0"))
		done := decodeLog(t, env)
		if done[len(done)-1].T != "TASK OK" || *env.Total != len(done) || len(done) <= len(running) {
			t.Errorf("finished log: %d lines (total %d), last %q", len(done), *env.Total, done[len(done)-1].T)
		}
		text := ""
		for _, l := range done {
			text += l.T + "\n"
		}
		job := f.BackupTruth(clock.Now())
		var vmids []string
		for _, g := range job {
			if g.LastUPID == u {
				vmids = append(vmids, g.VMID)
			}
		}
		if len(vmids) != 3 {
			t.Fatalf("the client's job backed up %v, want the node's first three job guests", vmids)
		}
		for _, want := range []string{"INFO: Starting Backup of VM " + vmids[0] + " (", "INFO: Finished Backup of VM " + vmids[1] + " (00:", "INFO: Backup job finished successfully"} {
			if !strings.Contains(text, want) {
				t.Errorf("log has no %q:\n%s", want, text)
			}
		}
		page := decodeLog(t, c.getOK(pve.ID, node, logPath(u, node, "?start=2&limit=3")))
		if len(page) != 3 || page[0].N != 3 || page[0].T != done[2].T {
			t.Errorf("page start=2 limit=3: %+v", page)
		}
		if def := decodeLog(t, c.getOK(pve.ID, node, logPath(u, node, ""))); len(def) != min(50, len(done)) {
			t.Errorf("default limit: %d lines", len(def))
		}
		// Forgotten: a day of activity pushes it out of the 30-task index.
		clock.Advance(48 * time.Hour)
		gone := decodeLog(t, c.getOK(pve.ID, node, logPath(u, node, "")))
		if len(gone) != 1 || gone[0].T != noLogLine {
			t.Errorf("forgotten task's log: %+v", gone)
		}
		// PBS: lines carry their time; an unknown task is an error.
		pu := f.StartTask(pbs.ID, pbs.Endpoints[0].Node, "verificationjob", "store1:v-1234", time.Minute)
		clock.Advance(2 * time.Minute)
		pl := decodeLog(t, c.getOK(pbs.ID, pbs.Endpoints[0].Node, logPath(pu, "localhost", "?limit=0")))
		if !strings.Contains(pl[0].T, "Z: Starting datastore verification job 'store1:v-1234'") || !strings.HasSuffix(pl[len(pl)-1].T, "TASK OK") {
			t.Errorf("PBS log %+v", pl)
		}
		clock.Advance(72 * time.Hour)
		if r := c.get(pbs.ID, pbs.Endpoints[0].Node, logPath(pu, "localhost", "")); r.status != http.StatusBadRequest {
			t.Errorf("PBS forgotten log: %d %s", r.status, r.body)
		}
	})
}

// TestTaskLogFailures: failed tasks' logs say why, as PVE's do.
func TestTaskLogFailures(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	runInBubble(t, Config{Seed: 5, PVEClusters: 1, PBSServers: 1, NodesPerCluster: 1, Now: clock.Now}, func(t *testing.T, f *Fleet, c *testClient) {
		seen := map[string]bool{}
		for _, r := range f.Remotes() {
			for _, tk := range f.Held(r.ID) {
				if tk.Running() || tk.Class() != task.StatusError || seen[tk.UPID.Type] {
					continue
				}
				seen[tk.UPID.Type] = true
				node := tk.UPID.Node
				if r.Kind == task.PBS {
					node = "localhost"
				}
				lines := decodeLog(t, c.getOK(r.ID, tk.UPID.Node, logPath(tk.UPID, node, "?limit=0")))
				last := lines[len(lines)-1].T
				if tk.Status == "unexpected status" {
					// PVE's status of a log without a TASK line.
					if strings.HasPrefix(last, "TASK ") {
						t.Errorf("%s: last line %q, want no TASK line", tk.UPID, last)
					}
				} else if !strings.HasSuffix(last, "TASK ERROR: "+tk.Status) {
					t.Errorf("%s: last line %q, want TASK ERROR: %s", tk.UPID, last, tk.Status)
				}
				if tk.UPID.Type == "vzdump" && tk.Status == "job errors" {
					found := false
					for _, l := range lines {
						found = found || strings.HasPrefix(l.T, "ERROR: Backup of VM "+tk.UPID.ID) && strings.Contains(l.T, " failed - ")
					}
					if !found {
						t.Errorf("vzdump failure without ERROR line: %d lines, last %q", len(lines), last)
					}
				}
			}
		}
		if !seen["vzdump"] || len(seen) < 4 {
			t.Errorf("failed types seen: %v", seen)
		}
	})
}
