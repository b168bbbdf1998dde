package sim

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// guestOutcome is one guest's result in a vzdump log, as a client parses it.
type guestOutcome struct {
	vmid   string
	class  task.StatusClass
	err    string
	result bool // a Finished or ERROR line was seen
}

var (
	startLine  = regexp.MustCompile(`^INFO: Starting Backup of VM (\d+) \((qemu|lxc)\)$`)
	finishLine = regexp.MustCompile(`^INFO: Finished Backup of VM (\d+) \((\d\d):(\d\d):(\d\d)\)$`)
	failLine   = regexp.MustCompile(`^ERROR: Backup of VM (\d+) failed - (.+)$`)
	storageArg = regexp.MustCompile(`^INFO: starting new backup job: vzdump .* --storage (\S+)`)
)

// parseVzdumpLog reads the per-guest outcomes of a vzdump task log the
// way a client would: a guest's lines run from its Starting line to the
// next one; Finished is ok (warning with a WARN: line), ERROR is error, no
// result is unknown.
func parseVzdumpLog(t *testing.T, lines []string) []guestOutcome {
	t.Helper()
	var out []guestOutcome
	cur := -1
	for _, l := range lines {
		switch {
		case startLine.MatchString(l):
			out = append(out, guestOutcome{vmid: startLine.FindStringSubmatch(l)[1], class: task.StatusUnknown})
			cur = len(out) - 1
		case finishLine.MatchString(l):
			m := finishLine.FindStringSubmatch(l)
			if cur < 0 || out[cur].vmid != m[1] || out[cur].result {
				t.Fatalf("Finished line %q out of place", l)
			}
			out[cur].class, out[cur].result = task.StatusOK, true
		case failLine.MatchString(l):
			m := failLine.FindStringSubmatch(l)
			if cur < 0 || out[cur].vmid != m[1] || out[cur].result {
				t.Fatalf("ERROR line %q out of place", l)
			}
			out[cur].class, out[cur].err, out[cur].result = task.StatusError, m[2], true
		case strings.HasPrefix(l, "WARN: ") && cur >= 0 && out[cur].class == task.StatusOK:
			out[cur].class = task.StatusWarning
		case strings.HasPrefix(l, "WARN: ") && cur >= 0 && !out[cur].result:
			out[cur].err = "warned" // kept until the result line
		}
	}
	for i := range out {
		if out[i].err == "warned" {
			out[i].err = ""
			if out[i].class == task.StatusOK {
				out[i].class = task.StatusWarning
			}
		}
	}
	return out
}

// watcher polls a fleet like a client: task lists of every node, the
// logs of finished multi-guest vzdump tasks (each once), the guest list.
type watcher struct {
	t      *testing.T
	f      *Fleet
	c      *testClient
	tasks  map[string]task.Task      // by remote!UPID, latest state
	logs   map[string][]guestOutcome // multi-guest vzdump tasks, by remote!UPID
	raw    map[string][]string       // their log lines
	ids    map[string]string         // PBS worker_id as listed, by remote!UPID
	guests map[string][]resourceItem // by remote
	fetch  map[string]int            // log fetches per task
}

func newWatcher(t *testing.T, f *Fleet, c *testClient) *watcher {
	return &watcher{t: t, f: f, c: c, tasks: map[string]task.Task{}, logs: map[string][]guestOutcome{},
		raw: map[string][]string{}, ids: map[string]string{}, guests: map[string][]resourceItem{}, fetch: map[string]int{}}
}

func (w *watcher) poll() {
	for _, r := range w.f.Remotes() {
		for _, node := range r.Nodes {
			for _, it := range w.c.fetchAll(r.ID, node, 500, "") {
				tk := it.toTask(w.t, r.ID)
				k := taskKey(tk)
				w.tasks[k] = tk
				if it.WorkerID != nil {
					w.ids[k] = *it.WorkerID
				}
				if r.Kind != task.PVE || tk.UPID.Type != "vzdump" || tk.UPID.ID != "" || tk.Running() {
					continue
				}
				if _, done := w.logs[k]; done {
					continue
				}
				env := w.c.getOK(r.ID, node, logPath(tk.UPID, tk.UPID.Node, "?limit=0"))
				var lines []string
				for _, l := range decodeLog(w.t, env) {
					lines = append(lines, l.T)
				}
				w.fetch[k]++
				w.raw[k] = lines
				w.logs[k] = parseVzdumpLog(w.t, lines)
			}
		}
		if r.Kind == task.PVE {
			env := w.c.getOK(r.ID, r.Nodes[0], "/api2/json/cluster/resources?type=vm")
			var items []resourceItem
			if err := json.Unmarshal(env.Data, &items); err != nil {
				w.t.Fatal(err)
			}
			w.guests[r.ID] = items
		}
	}
}

// overview computes what the client concludes, per guest.
func (w *watcher) overview() []GuestBackup {
	rows := map[string]*GuestBackup{}
	var order []string
	for remote, items := range w.guests {
		for _, it := range items {
			k := remote + "/" + strconv.Itoa(it.VMID)
			rows[k] = &GuestBackup{Remote: remote, Node: it.Node, VMID: strconv.Itoa(it.VMID), Type: it.Type, Name: it.Name, Template: it.Template != nil && *it.Template == 1}
			order = append(order, k)
		}
	}
	update := func(k string, tk task.Task, cls task.StatusClass, msg, storage string) {
		row := rows[k]
		if row == nil {
			return
		}
		start, end := time.Unix(tk.UPID.StartTime, 0).UTC(), time.Unix(tk.EndTime, 0).UTC()
		if row.LastUPID.IsZero() || !start.Before(row.LastStart) {
			row.LastStart, row.LastEnd, row.LastStatus, row.LastError, row.LastUPID, row.Storage = start, end, cls, msg, tk.UPID, storage
		}
		if (cls == task.StatusOK || cls == task.StatusWarning) && (row.LastOKUPID.IsZero() || !start.Before(row.LastOKStart)) {
			row.LastOKStart, row.LastOKEnd, row.LastOKUPID = start, end, tk.UPID
		}
	}
	keys := make([]string, 0, len(w.tasks))
	for k := range w.tasks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		tk := w.tasks[k]
		if tk.Running() {
			continue
		}
		switch {
		case tk.UPID.Kind == task.PVE && tk.UPID.Type == "vzdump" && tk.UPID.ID != "":
			cls, msg := tk.Class(), ""
			if cls == task.StatusError || cls == task.StatusUnknown {
				msg = tk.Status
			}
			update(tk.Remote+"/"+tk.UPID.ID, tk, cls, msg, "")
		case tk.UPID.Kind == task.PVE && tk.UPID.Type == "vzdump":
			storage := ""
			if m := storageArg.FindStringSubmatch(w.raw[k][0]); m != nil {
				storage = m[1]
			}
			for _, g := range w.logs[k] {
				update(tk.Remote+"/"+g.vmid, tk, g.class, g.err, storage)
			}
		case tk.UPID.Kind == task.PBS && tk.UPID.Type == "backup":
			id := w.ids[k]
			if id != tk.UPID.ID {
				w.t.Fatalf("%s: worker_id %q, UPID id %q", tk.UPID, id, tk.UPID.ID)
			}
			store, group, _ := strings.Cut(id, ":")
			typ, bid, _ := strings.Cut(group, "/")
			rk := tk.Remote + "/" + id
			if rows[rk] == nil {
				rows[rk] = &GuestBackup{Remote: tk.Remote, Node: tk.UPID.Node, VMID: bid, Type: typ}
				order = append(order, rk)
			}
			cls, msg := tk.Class(), ""
			if cls == task.StatusError || cls == task.StatusUnknown {
				msg = tk.Status
			}
			update(rk, tk, cls, msg, store)
		}
	}
	out := make([]GuestBackup, 0, len(rows))
	for _, k := range order {
		out = append(out, *rows[k])
	}
	return out
}

// TestBackupTruthFromEndpoints: a client that polls the fleet for three
// days, reads the guest lists and parses the logs of the multi-guest
// vzdump tasks (each fetched once) concludes exactly BackupTruth, for
// every guest: never backed up ones, guests of multi-guest jobs
// (failing ones too), single-guest backups and PBS backup groups; and the
// PBS jobs' last runs are JobTruth.
func TestBackupTruthFromEndpoints(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	cfg := Config{Seed: 8, PVEClusters: 1, NodesPerCluster: 3, PBSServers: 1, Now: clock.Now, History: 2 * 24 * time.Hour, IndexSize: 250}
	runInBubble(t, cfg, func(t *testing.T, f *Fleet, c *testClient) {
		w := newWatcher(t, f, c)
		w.poll()
		for range 3 * 24 {
			clock.Advance(time.Hour)
			w.poll()
		}
		truth := f.BackupTruth(clock.Now())
		got := w.overview()
		byKey := func(rows []GuestBackup) map[string]GuestBackup {
			m := map[string]GuestBackup{}
			for _, r := range rows {
				k := r.Remote + "/" + r.VMID
				if r.Type != "qemu" && r.Type != "lxc" {
					k = r.Remote + "/" + r.Storage + ":" + r.Type + "/" + r.VMID
				}
				m[k] = r
			}
			return m
		}
		want, have := byKey(truth), byKey(got)
		if len(want) != len(truth) || len(have) != len(got) {
			t.Fatalf("duplicate rows: truth %d/%d, client %d/%d", len(want), len(truth), len(have), len(got))
		}
		for k, tr := range want {
			g, ok := have[k]
			if tr.LastUPID.ID != "" && (tr.Type == "qemu" || tr.Type == "lxc") {
				g.Storage = tr.Storage // in the log, which this client reads for multi-guest tasks only
			}
			if !ok || g != tr {
				t.Errorf("guest %s:\nclient %+v\ntruth  %+v", k, g, tr)
			}
		}
		if len(have) != len(want) {
			t.Errorf("client has %d rows, truth %d", len(have), len(want))
		}
		logs := 0
		for k, n := range w.fetch {
			if n != 1 {
				t.Errorf("log of %s fetched %d times", k, n)
			}
			logs += n
		}
		if served := f.Stats("pve-c001").TaskLog; served != int64(logs) {
			t.Errorf("stats: %d task logs served, the client fetched %d", served, logs)
		}

		// Coverage: what the overview must handle is there.
		var never, multiErr, multiOK, single, pbs, stale, warn int
		for _, tr := range truth {
			switch {
			case tr.Type != "qemu" && tr.Type != "lxc":
				pbs++
			case tr.LastUPID.IsZero():
				never++
			case tr.LastUPID.ID == "" && tr.LastStatus == task.StatusError:
				multiErr++
			case tr.LastUPID.ID == "" && tr.LastStatus == task.StatusOK:
				multiOK++
			case tr.LastUPID.ID != "":
				single++
			}
			if tr.LastStatus == task.StatusWarning {
				warn++
			}
			if !tr.LastOKEnd.IsZero() && clock.Now().Sub(tr.LastOKEnd) > 26*time.Hour {
				stale++
			}
		}
		t.Logf("%d rows: %d never backed up, %d ok and %d failed in multi-guest jobs, %d single, %d warnings, %d PBS groups, %d stale; %d job logs",
			len(truth), never, multiOK, multiErr, single, warn, pbs, stale, len(w.logs))
		logErr, failing := 0, 0
		for _, gs := range w.logs {
			for _, g := range gs {
				if g.class == task.StatusError {
					logErr++
				}
			}
		}
		for _, tr := range truth {
			if tr.LastStatus == task.StatusError {
				failing++
			}
		}
		t.Logf("%d guests failed in the job logs, %d failing now", logErr, failing)
		if never == 0 || logErr == 0 || failing == 0 || multiOK == 0 || single == 0 || pbs == 0 || stale < 2 || warn == 0 {
			t.Errorf("the fleet lacks a case")
		}

		// PBS jobs: the last run of each, from the task lists.
		jobs := map[string]task.Task{}
		for _, tk := range w.tasks {
			if tk.UPID.Kind != task.PBS || !slices.Contains(pbsJobTypes, tk.UPID.Type) || tk.Running() {
				continue
			}
			k := tk.UPID.Type + " " + tk.UPID.ID
			if old, ok := jobs[k]; !ok || old.UPID.StartTime < tk.UPID.StartTime {
				jobs[k] = tk
			}
		}
		jt := f.JobTruth(clock.Now())
		if len(jt) != len(jobs) || len(jt) != 4*len(pbsStores) {
			t.Errorf("%d jobs in the truth, %d seen, want %d", len(jt), len(jobs), 4*len(pbsStores))
		}
		for _, j := range jt {
			tk := jobs[j.Type+" "+j.ID]
			if tk.UPID != j.UPID || tk.Status != j.Status || tk.EndTime != j.End.Unix() || j.Class != tk.Class() || !slices.Contains(pbsStores, j.Store) || !strings.Contains(j.ID, j.Store) {
				t.Errorf("job %+v, seen %+v", j, tk)
			}
		}
	})
}
