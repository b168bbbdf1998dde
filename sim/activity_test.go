package sim

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/internal/fixtures"
	"github.com/taskfleet/taskfleet/task"
)

// epoch is the clock of the tests that need no bubble: a Wednesday noon.
var epoch = time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC)

func newFleet(t testing.TB, cfg Config) *Fleet {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// truthKeys renders tasks as comparable strings.
func truthKeys(ts []task.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = fmt.Sprintf("%s %s %d %s", t.Remote, t.UPID, t.EndTime, t.Status)
	}
	return out
}

func TestSameSeedSameTasks(t *testing.T) {
	cfg := Config{Seed: 42, PVEClusters: 2, PBSServers: 1, Now: newFixedClock(epoch).Now, History: 3 * 24 * time.Hour}
	a, b := newFleet(t, cfg), newFleet(t, cfg)
	ta, tb := truthKeys(a.GroundTruth()), truthKeys(b.GroundTruth())
	if len(ta) < 1000 {
		t.Fatalf("3 days of 7 nodes produced only %d tasks", len(ta))
	}
	if !slices.Equal(ta, tb) {
		t.Fatalf("same seed, different tasks: %d vs %d", len(ta), len(tb))
	}
	cfg.Seed = 43
	if tc := truthKeys(newFleet(t, cfg).GroundTruth()); slices.Equal(ta, tc) {
		t.Fatal("different seeds produced the same tasks")
	}
	// Tokens are deterministic too.
	if ra, rb := a.Remotes(), b.Remotes(); ra[0].TokenSecret != rb[0].TokenSecret || ra[0].TokenSecret == ra[1].TokenSecret {
		t.Fatalf("token secrets %q %q %q: want deterministic per remote", ra[0].TokenSecret, rb[0].TokenSecret, ra[1].TokenSecret)
	}
}

func TestAddingNodesChangesNoOtherTask(t *testing.T) {
	clock := newFixedClock(epoch)
	small := newFleet(t, Config{Seed: 7, PVEClusters: 1, NodesPerCluster: 2, Now: clock.Now, History: 2 * 24 * time.Hour})
	big := newFleet(t, Config{Seed: 7, PVEClusters: 1, NodesPerCluster: 4, Now: clock.Now, History: 2 * 24 * time.Hour})
	onNodes := func(ts []task.Task, nodes ...string) []string {
		var out []task.Task
		for _, t := range ts {
			if slices.Contains(nodes, t.UPID.Node) {
				out = append(out, t)
			}
		}
		return truthKeys(out)
	}
	want := onNodes(small.GroundTruth(), "pve-c001-n1", "pve-c001-n2")
	if got := onNodes(big.GroundTruth(), "pve-c001-n1", "pve-c001-n2"); !slices.Equal(got, want) {
		t.Fatalf("tasks of n1, n2 differ when the cluster has 4 nodes: %d vs %d", len(got), len(want))
	}
	// A node added at run time starts with no history and changes nothing else.
	name, err := small.AddNode("pve-c001")
	if err != nil || name != "pve-c001-n3" {
		t.Fatalf("AddNode = %q, %v; want pve-c001-n3", name, err)
	}
	clock.Advance(6 * time.Hour)
	after := small.GroundTruth()
	for _, tk := range after {
		if tk.UPID.Node == name && tk.UPID.StartTime < epoch.Unix() {
			t.Fatalf("added node has a task from before it was added: %v", tk.UPID)
		}
	}
	if len(onNodes(after, name)) == 0 {
		t.Fatal("added node ran no task in 6 hours")
	}
	if got := onNodes(after, "pve-c001-n1", "pve-c001-n2"); !slices.Equal(got[:0], nil) && !hasPrefixSet(got, want) {
		t.Fatal("adding a node changed the tasks of the others")
	}
}

// hasPrefixSet reports whether every element of sub whose task has
// finished by then is in all (tasks may have finished since).
func hasPrefixSet(all, sub []string) bool {
	set := map[string]bool{}
	for _, s := range all {
		set[s] = true
	}
	for _, s := range sub {
		if !set[s] && !strings.HasSuffix(s, " 0 ") {
			return false
		}
	}
	return true
}

func TestUPIDsAreValidAndUnique(t *testing.T) {
	f := newFleet(t, Config{Seed: 3, PVEClusters: 10, PBSServers: 3, Now: newFixedClock(epoch).Now, History: 2 * 24 * time.Hour})
	seen := map[string]bool{}
	nineDigits, escaped := 0, 0
	for _, tk := range f.GroundTruth() {
		s := tk.UPID.String()
		if seen[taskKey(tk)] {
			t.Fatalf("UPID %s produced twice", s)
		}
		seen[taskKey(tk)] = true
		u, err := task.ParseUPID(s)
		if err != nil {
			t.Fatalf("invalid UPID %q: %v", s, err)
		}
		if u != tk.UPID || u.String() != s {
			t.Fatalf("UPID %q does not round-trip: %+v", s, u)
		}
		wantKind := task.PVE
		if strings.HasPrefix(tk.Remote, "pbs") {
			wantKind = task.PBS
		}
		if u.Kind != wantKind {
			t.Fatalf("UPID %q of %s parses as %v", s, tk.Remote, u.Kind)
		}
		if u.PStart > 0xFFFFFFFF {
			nineDigits++
		}
		if strings.Contains(s, `\x`) {
			escaped++
		}
	}
	if nineDigits == 0 {
		t.Error("no pstart needs 9 hex digits; nodes with more than 497 days of uptime are missing")
	}
	if escaped == 0 {
		t.Error("no PBS worker id is escaped")
	}
}

// statsOf summarises the tasks of one node.
type nodeStats struct {
	total, ok, warn, errs, unknown int
	types                          map[string]int
	users                          map[string]int
	maxDur                         int64
	nightBackups                   int // vzdump/backup tasks starting 01:00-06:00
}

func summarise(ts []task.Task, node string) nodeStats {
	s := nodeStats{types: map[string]int{}, users: map[string]int{}}
	for _, tk := range ts {
		if tk.UPID.Node != node || tk.Running() {
			continue
		}
		s.total++
		switch tk.Class() {
		case task.StatusOK:
			s.ok++
		case task.StatusWarning:
			s.warn++
		case task.StatusError:
			s.errs++
		default:
			s.unknown++
		}
		s.types[tk.UPID.Type]++
		s.users[tk.UPID.User]++
		if !(tk.UPID.Type == "vzdump" && tk.UPID.ID == "") { // a job over many guests runs for hours
			s.maxDur = max(s.maxDur, tk.EndTime-tk.UPID.StartTime)
		}
		h := time.Unix(tk.UPID.StartTime, 0).UTC().Hour()
		if (tk.UPID.Type == "vzdump" || tk.UPID.Type == "backup") && h >= 1 && h < 6 {
			s.nightBackups++
		}
	}
	return s
}

func TestActivityIsRealistic(t *testing.T) {
	const days = 7
	f := newFleet(t, Config{Seed: 11, PVEClusters: 1, PBSServers: 1, Now: newFixedClock(epoch).Now})
	truth := f.GroundTruth()
	pve := summarise(truth, "pve-c001-n1")
	pbs := summarise(truth, "pbs001")
	t.Logf("pve node, 7 days: %d tasks (%.0f/day), ok %d, warnings %d, errors %d, unknown %d, nightly vzdump %d, longest %ds",
		pve.total, float64(pve.total)/days, pve.ok, pve.warn, pve.errs, pve.unknown, pve.nightBackups, pve.maxDur)
	t.Logf("pbs server, 7 days: %d tasks (%.0f/day), types %v", pbs.total, float64(pbs.total)/days, pbs.types)

	for name, s := range map[string]nodeStats{"pve": pve, "pbs": pbs} {
		if share := float64(s.ok) / float64(s.total); share < 0.85 || share > 0.95 {
			t.Errorf("%s: %.1f%% OK, want about 90%%", name, 100*share)
		}
		if s.warn == 0 || s.errs == 0 {
			t.Errorf("%s: %d warnings, %d errors; want some of each", name, s.warn, s.errs)
		}
		if s.maxDur > 3600 || s.maxDur < 600 {
			t.Errorf("%s: longest task %ds, want up to an hour", name, s.maxDur)
		}
	}
	// ~6 background tasks an hour plus the night's vzdump job and a few
	// single-guest backups.
	if perDay := pve.total / days; perDay < 140 || perDay > 320 {
		t.Errorf("pve node: %d tasks a day, want 140-320", perDay)
	}
	if pve.nightBackups < days || pve.types["vzdump"] < days*3 {
		t.Errorf("pve node: %d nightly vzdump jobs, %d vzdump tasks in %d days; want a job a night and single-guest backups", pve.nightBackups, pve.types["vzdump"], days)
	}
	if pbs.nightBackups < days*100 {
		t.Errorf("pbs: %d nightly backups in %d days, want at least 100 a night", pbs.nightBackups, days)
	}
	for _, typ := range []string{"backup", "verificationjob", "garbage_collection", "syncjob", "prunejob", "reader", "logrotate"} {
		if pbs.types[typ] == 0 {
			t.Errorf("pbs: no %s task in 7 days", typ)
		}
	}
	if n := days * len(pbsStores); pbs.types["verificationjob"] != n || pbs.types["syncjob"] != n || pbs.types["garbage_collection"] != n {
		t.Errorf("pbs: %d verification, %d sync and %d GC jobs in %d days, want one per datastore a night", pbs.types["verificationjob"], pbs.types["syncjob"], pbs.types["garbage_collection"], days)
	}
	tokens := 0
	for u, n := range pve.users {
		if strings.Contains(u, "!") {
			tokens += n
		}
	}
	if tokens == 0 || pve.users["root@pam"] < pve.total/2 {
		t.Errorf("pve users %v: want mostly root@pam and some API tokens", pve.users)
	}
	running := 0
	for _, tk := range truth {
		if tk.Running() {
			running++
		}
	}
	if running == 0 {
		t.Error("no task runs at noon")
	}
}

func TestTypesAndStatusesComeFromFixtures(t *testing.T) {
	readTypes := func(files ...string) map[string]bool {
		out := map[string]bool{}
		for _, f := range files {
			for _, line := range strings.Split(string(fixtures.Read(t, "task-types/"+f)), "\n") {
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				typ, _, _ := strings.Cut(line, "\t")
				out[typ] = true
			}
		}
		return out
	}
	pveTypesFixture := readTypes("pve-task-types.txt", "common-task-types.txt")
	pbsTypesFixture := readTypes("pbs-task-types.txt", "common-task-types.txt")
	f := newFleet(t, Config{Seed: 5, PVEClusters: 2, PBSServers: 2, Now: newFixedClock(epoch).Now, History: 3 * 24 * time.Hour})
	for _, tk := range f.GroundTruth() {
		known := pveTypesFixture
		if tk.UPID.Kind == task.PBS {
			known = pbsTypesFixture
		}
		if !known[tk.UPID.Type] {
			t.Errorf("%v worker type %q is not in the fixtures' task-types tables", tk.UPID.Kind, tk.UPID.Type)
		}
	}
	for _, wt := range pveTypes {
		if !pveTypesFixture[wt.name] {
			t.Errorf("PVE worker type %q is not in the fixtures", wt.name)
		}
	}

	var doc struct {
		Statuses []struct {
			Status         string         `json:"status"`
			Classification map[string]any `json:"classification"`
		} `json:"statuses"`
	}
	if err := json.Unmarshal(fixtures.Read(t, "task-status/status-strings.json"), &doc); err != nil {
		t.Fatal(err)
	}
	classOf := map[string]map[string]any{}
	for _, s := range doc.Statuses {
		classOf[s.Status] = s.Classification
		// pveClass follows pve-common's normalize_status_type.
		if got := pveClass(s.Status).String(); got != s.Classification["pve_common_normalize_status_type"] {
			t.Errorf("pveClass(%q) = %s, fixture says %s", s.Status, got, s.Classification["pve_common_normalize_status_type"])
		}
		// pbsClass agrees with PDM for the statuses PBS writes (never "").
		if got := pbsClass(s.Status).String(); s.Status != "" && got != s.Classification["pdm_TaskStateType_new_from_str"] {
			t.Errorf("pbsClass(%q) = %s, PDM says %s", s.Status, got, s.Classification["pdm_TaskStateType_new_from_str"])
		}
	}
	for _, st := range statuses {
		if c, ok := classOf[st]; ok {
			if got := task.ClassifyStatus(st).String(); got != c["pdm_TaskStateType_new_from_str"] {
				t.Errorf("status %q classifies as %s, fixture (PDM) says %s", st, got, c["pdm_TaskStateType_new_from_str"])
			}
			continue
		}
		if _, ok := sourcedStatuses[st]; !ok && !warningsPattern.MatchString(st) {
			t.Errorf("status %q is neither verbatim in status-strings.json nor WARNINGS: n", st)
		}
	}
}

func TestIndexKeepsTheNewestFinishedTasks(t *testing.T) {
	clock := newFixedClock(epoch)
	f := newFleet(t, Config{Seed: 9, PVEClusters: 1, NodesPerCluster: 1, PBSServers: 1, IndexSize: 100, Now: clock.Now, History: 2 * 24 * time.Hour})
	for _, remote := range []string{"pve-c001", "pbs001"} {
		for range 3 {
			held, truth := f.Held(remote), f.Truth(remote)
			var finished []task.Task
			running := 0
			for _, tk := range truth {
				if tk.Running() {
					running++
				} else {
					finished = append(finished, tk)
				}
			}
			if len(finished) <= 100 {
				t.Fatalf("%s: only %d finished tasks, the test needs more than the index holds", remote, len(finished))
			}
			// The index holds the 100 that finished last.
			slices.SortStableFunc(finished, func(a, b task.Task) int { return int(b.EndTime - a.EndTime) })
			cutoff := finished[99].EndTime
			heldSet := map[string]bool{}
			for _, tk := range held {
				heldSet[taskKey(tk)] = true
			}
			if len(held) != running+100 {
				t.Fatalf("%s holds %d tasks, want %d running + 100", remote, len(held), running)
			}
			for _, tk := range finished {
				if tk.EndTime > cutoff && !heldSet[taskKey(tk)] {
					t.Fatalf("%s: task %s finished after the cutoff but fell off", remote, tk.UPID)
				}
				if tk.EndTime < cutoff && heldSet[taskKey(tk)] {
					t.Fatalf("%s: task %s finished before the cutoff but is still held", remote, tk.UPID)
				}
			}
			clock.Advance(5 * time.Hour)
		}
	}
}

func TestStartTask(t *testing.T) {
	clock := newFixedClock(epoch)
	f := newFleet(t, Config{Seed: 1, PVEClusters: 1, PBSServers: 1, Now: clock.Now, History: time.Hour})
	u := f.StartTask("pve-c001", "pve-c001-n2", "qmstart", "123", 90*time.Second)
	if u.IsZero() || u.Node != "pve-c001-n2" || u.User != "taskfleet@pve!poll" || u.StartTime != epoch.Unix() {
		t.Fatalf("StartTask = %+v", u)
	}
	p := f.StartTask("pbs001", "pbs001", "verificationjob", "store1:v-1234abcd-0001", time.Minute)
	if p.Kind != task.PBS || !strings.Contains(p.String(), `store1\x3av\x2d1234abcd\x2d0001`) {
		t.Fatalf("PBS StartTask = %s", p)
	}
	find := func(remote string, u task.UPID) (task.Task, bool) {
		for _, tk := range f.Truth(remote) {
			if tk.UPID == u {
				return tk, true
			}
		}
		return task.Task{}, false
	}
	if tk, ok := find("pve-c001", u); !ok || !tk.Running() {
		t.Fatalf("started task in the ground truth: %v, running %v", ok, tk.Running())
	}
	clock.Advance(90 * time.Second)
	if tk, ok := find("pve-c001", u); !ok || tk.Running() || tk.Status != "OK" || tk.EndTime != epoch.Unix()+90 {
		t.Fatalf("after 90s the task is %+v, want finished OK at start+90", tk)
	}
	for _, bad := range [][4]string{
		{"nope", "pve-c001-n1", "qmstart", "1"},
		{"pve-c001", "nope", "qmstart", "1"},
		{"pve-c001", "pve-c001-n1", "", "1"},
		{"pve-c001", "pve-c001-n1", "qm start", "1"},
		{"pve-c001", "pve-c001-n1", "qmstart", "a:b"},
		{"pve-c001", "pve-c001-n1", "qmstart", "a/b"},
		{"pbs001", "pbs001", "backup", "bad\x01id"},
	} {
		if u := f.StartTask(bad[0], bad[1], bad[2], bad[3], time.Second); !u.IsZero() {
			t.Errorf("StartTask(%q) = %s, want the zero UPID", bad, u)
		}
	}
}

// TestGenerate200Remotes measures what a 200-remote fleet costs: 150 PVE
// clusters of 3 nodes and 50 PBS servers, 7 days of history (a tenth of
// it under the race detector).
func TestGenerate200Remotes(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 7 days of 200 remotes")
	}
	pveN, pbsN := 150, 50
	if raceEnabled {
		pveN, pbsN = 15, 5
	}
	nodes := 3*pveN + pbsN
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f := newFleet(t, Config{Seed: 1, PVEClusters: pveN, PBSServers: pbsN, Now: newFixedClock(epoch).Now})
	newDur := time.Since(start)
	held := 0
	for _, r := range f.Remotes() {
		held += len(f.Held(r.ID))
	}
	genDur := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	truthStart := time.Now()
	truth := len(f.GroundTruth())
	truthDur := time.Since(truthStart)
	mem := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d remotes (%d nodes), 7 days: New %v, generation to now %v; %d tasks held, %d produced (GroundTruth in %v); heap %.1f MiB held (%.0f B per held task)",
		pveN+pbsN, nodes, newDur.Round(time.Millisecond), genDur.Round(time.Millisecond), held, truth, truthDur.Round(time.Millisecond), float64(mem)/(1<<20), float64(mem)/float64(held))
	if held < nodes*1000 || truth < held {
		t.Fatalf("held %d, produced %d: want about 1500 per node", held, truth)
	}
	if mem > int64(nodes)<<17 { // 128 KiB per node
		t.Errorf("the fleet holds %d MiB, want it compact", mem>>20)
	}
}
