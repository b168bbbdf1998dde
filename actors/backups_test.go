package actors

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/backups"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// logCounter counts the task-log requests the pollers get, per UPID.
type logCounter struct {
	mu sync.Mutex
	n  map[task.UPID]int
}

func (c *logCounter) hook(_ string, msg any) {
	if m, ok := msg.(*messages.FetchTaskLog); ok {
		c.mu.Lock()
		c.n[m.UPID]++
		c.mu.Unlock()
	}
}

func (c *logCounter) counts() map[task.UPID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// TestBackupOverviewMatchesTruth: over a simulated day, the backup
// overview equals the simulator's ground truth for every guest
// (multi-guest job guests and never backed-up guests included) and every
// PBS job, each multi-guest job's log is fetched exactly once, and a
// restarted service fetches none again. The task-log keeper runs too (as
// in the daemon): a failed job's log it keeps is not fetched again for
// the overview. The fleet: with -soak the demo's (20 PVE clusters, 5 PBS
// servers, 30 tasks per node and hour; long), else 2 PVE clusters and a
// PBS server, with -short one cluster, under the race detector one cluster
// with fewer tasks besides the backups and a 1-minute tick.
func TestBackupOverviewMatchesTruth(t *testing.T) {
	sc := sim.Config{Seed: 11, PVEClusters: 2, PBSServers: 1, TaskRate: 5}
	switch {
	case *soak:
		sc = sim.Config{Seed: 11, PVEClusters: 20, PBSServers: 5, TaskRate: 30}
	case raceEnabled:
		sc.PVEClusters, sc.TaskRate = 1, 1
	case testing.Short():
		sc.PVEClusters = 1
	}
	synctest.Test(t, func(t *testing.T) {
		logs := &logCounter{n: map[task.UPID]int{}}
		hub := events.New(events.Options{})
		defer hub.Close() // after the last Stop
		h := newHarness(t, sc, Options{pollerHook: logs.hook, Events: hub})
		h.slowTickUnderRace()
		h.start()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		h.freeze()
		settle(t, h)
		compareTruth(t, h)
		fetched := logs.counts()
		jobs := multiGuestJobs(h)
		if len(jobs) == 0 {
			t.Fatal("no multi-guest vzdump job in a day")
		}
		for _, u := range jobs {
			if fetched[u] != 1 {
				t.Errorf("log of %s fetched %d times, want 1", u, fetched[u])
			}
		}
		// Jobs the cache has dropped since (their period left the
		// retention) were fetched once too, as the other failed tasks'
		// logs the task-log keeper keeps.
		for u, n := range fetched {
			if n != 1 {
				t.Errorf("log of %s fetched %d times, want once", u, n)
			}
		}
		// The simulator counts the log requests it answered: one per
		// request the pollers got.
		served := int64(0)
		for _, r := range h.fleet.Remotes() {
			served += h.fleet.Stats(r.ID).TaskLog
		}
		if served != int64(total(fetched)) {
			t.Errorf("the simulator served %d log requests, the pollers got %d", served, total(fetched))
		}
		t.Logf("%d guest rows, %d job rows, %d multi-guest job logs fetched once each (%d log requests in all)",
			len(h.sys.Backups().All()), len(h.sys.Backups().AllJobs()), len(jobs), served)

		// A restart reads the parsed logs from the cache dir: no log is
		// fetched again, and the overview is the same.
		h.stop()
		h.start()
		settle(t, h)
		compareTruth(t, h)
		if again := logs.counts(); !maps.Equal(again, fetched) {
			t.Errorf("logs fetched again after a restart: %d requests before, %d after", total(fetched), total(again))
		}
		after := int64(0)
		for _, r := range h.fleet.Remotes() {
			after += h.fleet.Stats(r.ID).TaskLog
		}
		if after != served {
			t.Errorf("the simulator served %d log requests after the restart", after-served)
		}
		h.stop()
	})
}

func total(m map[task.UPID]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// settle refreshes until the overview has every job log and a guest list
// of every PVE remote, and the keeper is idle. After each refresh it lets
// the keeper's publish gap pass (virtual time): the keeper takes a round
// of notes at most once per backupPublishGap.
func settle(t *testing.T, h *harness) {
	t.Helper()
	for i := range 2 * FullRefreshEvery {
		h.refresh()
		time.Sleep(backupPublishGap) // the keeper's next round
		synctest.Wait()
		o := h.sys.Backups()
		if o != nil && len(o.PendingLogs()) == 0 && i >= FullRefreshEvery {
			return
		}
	}
	t.Fatalf("backup overview not settled: pending logs %v", h.sys.Backups().PendingLogs())
}

// drainBackupLogs refreshes until the backup keeper has fetched the logs
// of every multi-guest vzdump job in the cache, so that the refreshes
// that follow (in a frozen fleet) make no log requests.
func drainBackupLogs(t *testing.T, h *harness) {
	t.Helper()
	for range 50 {
		h.refresh()
		time.Sleep(backupPublishGap) // the keeper's next round
		synctest.Wait()
		if o := h.sys.Backups(); o != nil && len(o.PendingLogs()) == 0 {
			return
		}
	}
	t.Fatalf("backup job logs still pending: %v", h.sys.Backups().PendingLogs())
}

// multiGuestJobs lists the finished multi-guest vzdump tasks in the cache.
func multiGuestJobs(h *harness) []task.UPID {
	var out []task.UPID
	for _, tk := range h.cached() {
		if tk.UPID.Kind == task.PVE && tk.UPID.Type == "vzdump" && tk.UPID.ID == "" && !tk.Running() {
			out = append(out, tk.UPID)
		}
	}
	return out
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func upidString(u task.UPID) string {
	if u.IsZero() {
		return ""
	}
	return u.String()
}

// compareTruth compares the overview with the simulator's BackupTruth and
// JobTruth at the fleet's (frozen) time.
func compareTruth(t *testing.T, h *harness) {
	t.Helper()
	o := h.sys.Backups()
	at := time.Unix(h.frozen.Load(), 0)
	type key struct{ remote, store, typ, id string }
	mine := map[key]backups.Guest{}
	for _, g := range o.All() {
		k := key{g.Remote, "", "", g.VMID}
		if g.Type == "vm" || g.Type == "ct" || g.Type == "host" {
			k.store, k.typ = g.Storage, g.Type
		}
		mine[k] = g
	}
	truth := h.fleet.BackupTruth(at)
	never, multi := 0, 0
	for _, tr := range truth {
		k := key{tr.Remote, "", "", tr.VMID}
		pbs := tr.Type == "vm" || tr.Type == "ct" || tr.Type == "host"
		if pbs {
			k.store, k.typ = tr.Storage, tr.Type
		}
		g, ok := mine[k]
		if !ok {
			t.Errorf("%+v: no row in the overview", k)
			continue
		}
		delete(mine, k)
		want := backups.Guest{
			Remote: tr.Remote, Node: tr.Node, VMID: tr.VMID, Type: tr.Type, Name: tr.Name, Template: tr.Template, Listed: !pbs,
			Class: tr.LastStatus.String(), LastStart: unix(tr.LastStart), LastEnd: unix(tr.LastEnd), LastUPID: upidString(tr.LastUPID),
			LastOKStart: unix(tr.LastOKStart), LastOK: unix(tr.LastOKEnd), LastOKUPID: upidString(tr.LastOKUPID),
			LastStatus: g.LastStatus, Storage: g.Storage,
		}
		if tr.LastUPID.IsZero() {
			want.Class = backups.ClassNone
			never++
		}
		if tr.LastUPID.ID == "" && !tr.LastUPID.IsZero() {
			multi++
		}
		if g != want {
			t.Errorf("%+v:\n got  %+v\n want %+v (truth %+v)", k, g, want, tr)
			continue
		}
		switch {
		case tr.LastStatus == task.StatusError && !strings.Contains(g.LastStatus, tr.LastError):
			t.Errorf("%+v: last status %q, want the error %q", k, g.LastStatus, tr.LastError)
		case g.Storage != "" && g.Storage != tr.Storage:
			t.Errorf("%+v: storage %q, want %q", k, g.Storage, tr.Storage)
		case !pbs && tr.LastUPID.ID == "" && !tr.LastUPID.IsZero() && g.Storage != tr.Storage:
			t.Errorf("%+v: storage %q of a multi-guest job, want %q", k, g.Storage, tr.Storage)
		}
	}
	for k, g := range mine {
		if g.Listed || g.Type == "vm" || g.Type == "ct" || g.Type == "host" {
			t.Errorf("%+v: row %+v not in the truth", k, g)
		}
	}
	// older_than=26h: the guests without a good backup for 26 h, among
	// them those whose backups stopped (sim.Config.BackupStopAfter).
	var staleWant, staleGot []string
	stopped := 0
	for _, tr := range truth {
		if tr.LastOKUPID.IsZero() || at.Sub(tr.LastOKEnd) > 26*time.Hour {
			staleWant = append(staleWant, tr.Remote+"/"+tr.Type+"/"+tr.VMID)
			if !tr.LastOKUPID.IsZero() {
				stopped++
			}
		}
	}
	for _, r := range o.Guests(backups.Query{OlderThan: 26 * time.Hour}, at) {
		if r.Listed || r.Type == "vm" || r.Type == "ct" || r.Type == "host" {
			staleGot = append(staleGot, r.Remote+"/"+r.Type+"/"+r.VMID)
		}
	}
	slices.Sort(staleWant)
	slices.Sort(staleGot)
	if !slices.Equal(staleGot, staleWant) || stopped == 0 {
		t.Errorf("older_than=26h: got %d guests, want %d (%d whose backups stopped)", len(staleGot), len(staleWant), stopped)
	}
	overdue := 0
	for _, s := range h.fleet.BackupStops() {
		if at.Sub(s.At) > 50*time.Hour { // a night's job after At did not run: 26 h overdue at least
			overdue++
			if !slices.ContainsFunc(staleGot, func(k string) bool { return strings.HasPrefix(k, s.Remote+"/") && strings.HasSuffix(k, "/"+s.VMID) }) {
				t.Errorf("%s guest %s, backups stopped at %v: not in older_than=26h", s.Remote, s.VMID, s.At)
			}
		}
	}
	if overdue == 0 {
		t.Error("no guest whose backups stopped more than 50 h ago")
	}
	if never == 0 || multi == 0 {
		t.Errorf("the truth has %d never backed-up guests and %d whose last backup was a multi-guest job: want some of each", never, multi)
	}

	type jkey struct{ remote, typ, id string }
	jobs := map[jkey]backups.Job{}
	for _, j := range o.AllJobs() {
		jobs[jkey{j.Remote, j.WorkerType, j.ID}] = j
	}
	for _, tr := range h.fleet.JobTruth(at) {
		k := jkey{tr.Remote, tr.Type, tr.ID}
		j, ok := jobs[k]
		delete(jobs, k)
		if !ok || j.Datastore != tr.Store || j.LastUPID != tr.UPID.String() || j.LastStatus != tr.Status ||
			j.Class != tr.Class.String() || j.LastStart != tr.Start.Unix() || j.LastEnd != tr.End.Unix() {
			t.Errorf("job %+v: got %+v, want %+v", k, j, tr)
		}
	}
	for k, j := range jobs {
		t.Errorf("job %+v: %+v not in the truth", k, j)
	}
	t.Logf("%d guests compared (%d never backed up, %d last in a multi-guest job)", len(truth), never, multi)
}

// TestBackupKeeperRestartsAfterPanic: a panic in the backup keeper (here:
// in its first three rounds) restarts it after a growing delay from what
// it kept on disk; the overview still ends equal to the ground truth.
func TestBackupKeeperRestartsAfterPanic(t *testing.T) {
	sc := sim.Config{Seed: 12, PVEClusters: 1, PBSServers: 1, TaskRate: 5}
	if raceEnabled {
		sc.TaskRate = 1 // the nightly jobs are what matters
	}
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		panics := 0
		hook := func(remote string) {
			mu.Lock()
			defer mu.Unlock()
			if panics < 3 {
				panics++
				panic("injected: backup keeper round of " + remote)
			}
		}
		h := newHarness(t, sc, Options{backupHook: hook, restartBase: time.Second, restartMax: 10 * time.Second})
		h.slowTickUnderRace()
		h.start()
		time.Sleep(6 * time.Hour)
		synctest.Wait()
		h.freeze()
		settle(t, h) // every job log parsed, after the panics too
		if o := h.sys.Backups(); o == nil || len(o.All()) == 0 {
			t.Fatal("no backup overview after the keeper's restarts")
		}
		if n := h.sys.backups.restarts.Load(); n != 3 {
			t.Errorf("backup keeper restarted %d times, want 3", n)
		}
		h.stop()
	})
}
