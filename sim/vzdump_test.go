package sim

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TestVzdumpPlansMatchTasks: the plan a log or the truth recomputes for a
// vzdump task is the one the task was generated from (its duration and
// status), and the status follows PVE's rules from the guests' outcomes.
func TestVzdumpPlansMatchTasks(t *testing.T) {
	f := newFleet(t, Config{Seed: 21, PVEClusters: 2, Now: newFixedClock(epoch).Now})
	kinds := map[string]int{}
	for _, id := range []string{"pve-c001", "pve-c002"} {
		r, _ := f.lookup(id, "")
		for _, n := range f.nodesOf(r) {
			a := n.act
			a.mu.Lock()
			a.advance(f.now())
			for _, rp := range a.history() {
				if a.typeName(&rp) != "vzdump" {
					continue
				}
				pl := a.dumpPlan(&rp)
				if pl.dur != int64(rp.dur) || pl.status != uint16(rp.status) {
					t.Errorf("%s: generated %ds %q, plan %ds %q", a.upid(&rp), rp.dur, statuses[rp.status], pl.dur, statuses[pl.status])
				}
				errs, cut := 0, 0
				for _, g := range pl.guests {
					switch g.outcome {
					case outError:
						errs++
					case outCut:
						cut++
					}
				}
				st := statuses[pl.status]
				switch {
				case a.ids[rp.id] == "" && len(pl.guests) < 2:
					t.Errorf("%s: a job task without worker id for %d guests", a.upid(&rp), len(pl.guests))
				case a.ids[rp.id] != "" && len(pl.guests) != 1:
					t.Errorf("%s: a single-guest task for %d guests", a.upid(&rp), len(pl.guests))
				case cut > 0 && st != "unexpected status", cut == 0 && st == "unexpected status":
					t.Errorf("%s: %d guests cut, status %q", a.upid(&rp), cut, st)
				case pl.jobErr == "" && !pl.hook && cut == 0 && (errs > 0) != (st == "job errors"):
					t.Errorf("%s: %d guests failed, status %q", a.upid(&rp), errs, st)
				}
				kind := "single"
				if a.ids[rp.id] == "" {
					kind = "job"
				}
				kinds[kind+" "+st]++
			}
			a.mu.Unlock()
		}
	}
	t.Logf("vzdump tasks by kind and status: %v", kinds)
	for _, want := range []string{"job OK", "job job errors", "single OK"} {
		if kinds[want] == 0 {
			t.Errorf("no %q vzdump task in 7 days of 6 nodes", want)
		}
	}
}

// TestVzdumpLogLines: every line that matters to a client is exactly
// PVE's: the job's first line, per guest Starting/Finished (with the
// guest's duration)/ERROR, the job's last lines and the TASK line.
func TestVzdumpLogLines(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	runInBubble(t, Config{Seed: 21, PVEClusters: 2, NodesPerCluster: 3, Now: clock.Now, History: 4 * 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		seen := map[string]bool{}
		for _, r := range f.Remotes() {
			for _, tk := range f.Held(r.ID) {
				if tk.UPID.Type != "vzdump" || tk.Running() {
					continue
				}
				_, n := f.lookup(r.ID, tk.UPID.Node)
				n.act.mu.Lock()
				rp, _ := n.act.find(tk.UPID)
				pl := n.act.dumpPlan(&rp)
				n.act.mu.Unlock()
				var lines []string
				for _, l := range decodeLog(t, c.getOK(r.ID, tk.UPID.Node, logPath(tk.UPID, tk.UPID.Node, "?limit=0"))) {
					lines = append(lines, l.T)
				}
				text := strings.Join(lines, "\n")
				if !strings.HasPrefix(lines[0], "INFO: starting new backup job: vzdump ") || !strings.Contains(lines[0], " --storage "+pl.storage+" ") {
					t.Errorf("%s: first line %q", tk.UPID, lines[0])
				}
				for _, g := range pl.guests {
					kind := map[bool]string{false: "qemu", true: "lxc"}[g.lxc]
					started := fmt.Sprintf("INFO: Starting Backup of VM %d (%s)\n", g.vmid, kind)
					finished := fmt.Sprintf("INFO: Finished Backup of VM %d (%s)\n", g.vmid, hms(g.dur))
					failed := fmt.Sprintf("ERROR: Backup of VM %d failed - %s\n", g.vmid, g.err)
					has := func(s string) bool { return strings.Contains(text+"\n", s) }
					ok := false
					switch g.outcome {
					case outOK, outWarn:
						ok = has(started) && has(finished) && !has(failed)
						seen["finished"] = true
					case outError:
						ok = has(started) && has(failed) && !has(finished)
						seen["failed"] = true
					case outCut:
						ok = has(started) && !strings.Contains(text, fmt.Sprintf("Backup of VM %d failed", g.vmid)) && !strings.Contains(text, fmt.Sprintf("Finished Backup of VM %d ", g.vmid))
						seen["cut"] = true
					case outSkipped:
						ok = !has(started)
					}
					if !ok {
						t.Errorf("%s: guest %d (outcome %d) not logged as PVE does:\n%s", tk.UPID, g.vmid, g.outcome, text)
					}
				}
				last := lines[len(lines)-1]
				switch tk.Status {
				case "OK":
					ok := last == "TASK OK" && lines[len(lines)-2] == "INFO: Backup job finished successfully"
					if !ok {
						t.Errorf("%s: OK job ends %q", tk.UPID, lines[len(lines)-2:])
					}
				case "job errors":
					seen["job errors"] = true
					if last != "TASK ERROR: job errors" || lines[len(lines)-2] != "INFO: Backup job finished with errors" {
						t.Errorf("%s: failed job ends %q", tk.UPID, lines[len(lines)-2:])
					}
				case "unexpected status":
					if strings.HasPrefix(last, "TASK ") {
						t.Errorf("%s: unknown status, but the log ends %q", tk.UPID, last)
					}
				default:
					if last != "TASK "+tk.Status && last != "TASK ERROR: "+tk.Status {
						t.Errorf("%s: status %q, log ends %q", tk.UPID, tk.Status, last)
					}
				}
			}
		}
		for _, want := range []string{"finished", "failed", "job errors"} {
			if !seen[want] {
				t.Errorf("no %s guest or job in the held vzdump tasks", want)
			}
		}
	})
}

// TestBackupsStop: on node 1 of each cluster one guest has had no
// backup for more than 26 h when the fleet is created, and another
// stops being backed up then, so that its last good backup is more than
// 26 h old a day and a bit later, while the job goes on for the others.
func TestBackupsStop(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	f := newFleet(t, Config{Seed: 5, PVEClusters: 2, Now: clock.Now})
	created := clock.Now()
	lastTry := map[string]time.Time{}
	stale := func(at time.Time) map[string]bool {
		out := map[string]bool{}
		for _, g := range f.BackupTruth(at) {
			if g.Type != "qemu" && g.Type != "lxc" || g.Template || g.LastOKUPID.IsZero() {
				continue
			}
			lastTry[g.Remote+"/"+g.VMID] = g.LastStart
			if at.Sub(g.LastOKEnd) > 26*time.Hour {
				out[g.Remote+"/"+g.VMID] = true
			}
		}
		return out
	}
	before := stale(created)
	clock.Advance(30 * time.Hour)
	after := stale(clock.Now())
	for _, id := range []string{"pve-c001", "pve-c002"} {
		var stops []string
		early := ""
		for _, s := range f.BackupStops() {
			if s.Remote == id {
				if s.Node != id+"-n1" {
					t.Errorf("%+v: not on node 1", s)
				}
				stops = append(stops, id+"/"+s.VMID)
				if s.At.Before(created) {
					early = stops[len(stops)-1]
				}
			}
		}
		if len(stops) != 2 || !before[early] {
			t.Fatalf("%s: stopping guests %v, the one stopped before the creation (%q) not stale then: %v", id, stops, early, before)
		}
		for _, s := range stops {
			if !after[s] || !lastTry[s].Before(created) {
				t.Errorf("%s: not stale 30 h after the creation (stale: %v), or backed up after it (%v)", s, after, lastTry[s])
			}
		}
	}
	if len(after) > 10 {
		t.Errorf("%d guests stale after 30 h: %v", len(after), after)
	}
}

// TestBackupTruthIsDeterministic: the same seed and clock give the same
// truth; another seed another.
func TestBackupTruthIsDeterministic(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	build := func(seed int64) ([]GuestBackup, []DatastoreJob) {
		f := newFleet(t, Config{Seed: seed, PVEClusters: 1, PBSServers: 1, NodesPerCluster: 2, Now: newFixedClock(at).Now, History: 2 * 24 * time.Hour})
		return f.BackupTruth(at), f.JobTruth(at)
	}
	g1, j1 := build(3)
	g2, j2 := build(3)
	g3, _ := build(4)
	if !reflect.DeepEqual(g1, g2) || !reflect.DeepEqual(j1, j2) {
		t.Error("two fleets of one seed differ")
	}
	if reflect.DeepEqual(g1, g3) {
		t.Error("two seeds give the same backups")
	}
}

// TestPBSBackupWorkerIDs: PBS lists a backup's worker id plain and
// escapes it in the UPID systemd-style, as in the fixtures
// ("PBSHOST\x3avm-903"): ':' is \x3a, '/' is '-', '-' is \x2d.
func TestPBSBackupWorkerIDs(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	runInBubble(t, Config{Seed: 2, PBSServers: 1, Now: clock.Now, History: 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		pbs := f.Remotes()[0]
		seen := map[string]bool{}
		for _, it := range c.fetchAll(pbs.ID, pbs.Nodes[0], 500, "&typefilter=backup") {
			if it.WorkerID == nil {
				t.Fatalf("backup without worker id: %+v", it)
			}
			id := *it.WorkerID
			store, group, _ := strings.Cut(id, ":")
			typ, bid, _ := strings.Cut(group, "/")
			want := store + `\x3a` + typ + "-" + strings.ReplaceAll(bid, "-", `\x2d`)
			if !strings.Contains(it.UPID, ":backup:"+want+":") {
				t.Errorf("worker id %q in UPID %s, want %s", id, it.UPID, want)
			}
			seen[typ] = true
		}
		for _, typ := range []string{"vm", "ct", "host"} {
			if !seen[typ] {
				t.Errorf("no %s backup in a day", typ)
			}
		}
	})
}

// TestPBSJobs: every datastore has its prune, sync, verification and
// garbage collection jobs, with PBS's worker ids, and over a week the
// outcomes include a sync that ended in warnings, a failed sync and a
// failed verification, each with its log.
func TestPBSJobs(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	runInBubble(t, Config{Seed: 3, PBSServers: 6, Now: clock.Now}, func(t *testing.T, f *Fleet, c *testClient) {
		statusSeen := map[string]bool{}
		for _, r := range f.Remotes() {
			for _, tk := range f.Held(r.ID) {
				if tk.Running() {
					continue
				}
				switch tk.UPID.Type {
				case "syncjob", "verificationjob", "garbage_collection", "prunejob":
				default:
					continue
				}
				st := jobDatastore(tk.UPID.Type, tk.UPID.ID)
				if !jobStore(tk.UPID.Type, tk.UPID.ID, st) || !strings.HasPrefix(st, "store") {
					t.Errorf("%s: datastore %q", tk.UPID, st)
				}
				key := tk.UPID.Type + " " + tk.Status
				if statusSeen[key] {
					continue
				}
				statusSeen[key] = true
				var lines []string
				for _, l := range decodeLog(t, c.getOK(r.ID, r.Nodes[0], logPath(tk.UPID, "localhost", "?limit=0"))) {
					_, text, _ := strings.Cut(l.T, "Z: ")
					lines = append(lines, text)
				}
				warns := 0
				for _, l := range lines {
					if strings.HasPrefix(l, "WARN: ") {
						warns++
					}
				}
				if tk.Class() == task.StatusWarning && fmt.Sprintf("WARNINGS: %d", warns) != tk.Status {
					t.Errorf("%s: %s with %d WARN lines", tk.UPID, tk.Status, warns)
				}
				end := "TASK " + tk.Status
				if tk.Class() == task.StatusError {
					end = "TASK ERROR: " + tk.Status
				}
				if tk.Status == "unknown" {
					end = lines[len(lines)-1] // the log just stops
					if strings.HasPrefix(end, "TASK ") {
						t.Errorf("%s: status unknown, log ends %q", tk.UPID, end)
					}
				}
				if lines[len(lines)-1] != end {
					t.Errorf("%s: log ends %q, want %q", tk.UPID, lines[len(lines)-1], end)
				}
			}
		}
		for _, want := range []string{"syncjob WARNINGS: 2", "syncjob sync failed with some errors.", "verificationjob verification failed - please check the log for details", "garbage_collection OK", "prunejob OK"} {
			if !statusSeen[want] {
				t.Errorf("no %q in a week of 6 servers (seen %v)", want, statusSeen)
			}
		}
	})
}

// TestDemoFleetHasBackupCases: the fleet `taskfleet demo` runs (20
// clusters, 5 PBS servers, 30 tasks an hour) has multi-guest jobs,
// failing guests and guests whose backups stopped.
func TestDemoFleetHasBackupCases(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f := newFleet(t, Config{Seed: 1, PVEClusters: 20, PBSServers: 5, TaskRate: 30, Now: newFixedClock(at).Now, History: 2 * 24 * time.Hour})
	var jobs, failing, stale int
	jobUPIDs := map[task.UPID]bool{}
	for _, g := range f.BackupTruth(at) {
		if g.LastUPID.ID == "" && !g.LastUPID.IsZero() && g.LastUPID.Kind == task.PVE {
			jobUPIDs[g.LastUPID] = true
		}
		if g.LastStatus == task.StatusError {
			failing++
		}
		if !g.LastOKEnd.IsZero() && at.Sub(g.LastOKEnd) > 26*time.Hour {
			stale++
		}
	}
	jobs = len(jobUPIDs)
	t.Logf("demo fleet: %d multi-guest jobs, %d failing guests, %d stale", jobs, failing, stale)
	if jobs < 60 || failing == 0 || stale < 20 {
		t.Errorf("demo fleet: %d multi-guest jobs, %d failing guests, %d stale; want 60+, some, 20+", jobs, failing, stale)
	}
}
