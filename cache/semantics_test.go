package cache

import (
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/internal/fixtures"
	"github.com/taskfleet/taskfleet/task"
)

func TestCutoffRules(t *testing.T) {
	fin := func(node string, pid uint32, start int64) task.Task {
		return pveTask("east", node, pid, start, "vzdump", "", "root@pam", start+1, "OK")
	}
	run := func(node string, pid uint32, start int64) task.Task {
		return pveTask("east", node, pid, start, "qmigrate", "", "root@pam", 0, "")
	}
	ok := func(nodes ...string) []NodeResult {
		var rs []NodeResult
		for _, n := range nodes {
			rs = append(rs, NodeResult{Node: n, OK: true})
		}
		return rs
	}
	tests := []struct {
		name    string
		batches []Batch
		track   []task.Task // tracked before the batches
		want    map[string]int64
	}{
		{
			name:    "newest_finished_start",
			batches: []Batch{{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{fin("n1", 1, t0+10), fin("n1", 2, t0+30), fin("n1", 3, t0+20)}}},
			want:    map[string]int64{"n1": t0 + 30},
		},
		{
			name: "never_goes_back_for_older_tasks",
			batches: []Batch{
				{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{fin("n1", 1, t0+50)}},
				{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{fin("n1", 2, t0+20)}},
			},
			want: map[string]int64{"n1": t0 + 50},
		},
		{
			name:    "oldest_running_task_holds_it_back",
			batches: []Batch{{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{fin("n1", 1, t0+50), run("n1", 2, t0+20), run("n1", 3, t0+40)}}},
			want:    map[string]int64{"n1": t0 + 20},
		},
		{
			name: "released_when_the_running_task_finishes",
			batches: []Batch{
				{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{fin("n1", 1, t0+50), run("n1", 2, t0+20)}},
				{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{finished(run("n1", 2, t0+20)), fin("n1", 4, t0+60)}},
			},
			want: map[string]int64{"n1": t0 + 60},
		},
		{
			name:    "running_on_another_node_does_not_count",
			batches: []Batch{{Remote: "east", Nodes: ok("n1", "n2"), Tasks: []task.Task{fin("n1", 1, t0+50), run("n2", 2, t0+20)}}},
			want:    map[string]int64{"n1": t0 + 50},
		},
		{
			name: "failed_node_keeps_its_cutoff",
			batches: []Batch{
				{Remote: "east", Nodes: ok("n1", "n2"), Tasks: []task.Task{fin("n1", 1, t0+10), fin("n2", 2, t0+10)}},
				{Remote: "east", Nodes: []NodeResult{{Node: "n1", OK: true}, {Node: "n2", OK: false}},
					Tasks: []task.Task{fin("n1", 3, t0+90), fin("n2", 4, t0+90)}},
			},
			want: map[string]int64{"n1": t0 + 90, "n2": t0 + 10},
		},
		{
			name:    "node_not_reported_gets_none",
			batches: []Batch{{Remote: "east", Tasks: []task.Task{fin("n1", 1, t0+10)}}},
			want:    map[string]int64{},
		},
		{
			name:    "only_running_tasks_give_none",
			batches: []Batch{{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{run("n1", 1, t0+10)}}},
			want:    map[string]int64{},
		},
		{
			name:    "tracked_task_holds_it_back",
			track:   []task.Task{run("n1", 9, t0+5)},
			batches: []Batch{{Remote: "east", Nodes: ok("n1"), Tasks: []task.Task{fin("n1", 1, t0+50)}}},
			want:    map[string]int64{"n1": t0 + 5},
		},
		{
			name: "pbs_uses_localhost",
			batches: []Batch{{Remote: "east", Nodes: ok(pbsNodeKey), Tasks: []task.Task{
				pbsTask("east", "backup1", 1, t0+70, "backup", "store1:vm/100", "root@pam", t0+80, "OK"),
			}}},
			want: map[string]int64{pbsNodeKey: t0 + 70},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clock := newClock(t0 + 1800)
			w := openTest(t, dir, clock)
			for _, tk := range tc.track {
				if err := w.Track(tk.Remote, tk.UPID); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range tc.batches {
				if err := w.Apply(b); err != nil {
					t.Fatal(err)
				}
			}
			check := func(when string) {
				s := w.Latest().Load()
				got := map[string]int64{}
				for _, n := range s.Nodes("east") {
					got[n], _ = s.Cutoff("east", n)
				}
				if !mapsEqual(got, tc.want) {
					t.Fatalf("%s: cutoffs %v, want %v", when, got, tc.want)
				}
			}
			check("live")
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w = openTest(t, dir, clock)
			defer w.Close()
			check("reopened")
		})
	}
}

func finished(t task.Task) task.Task {
	t.EndTime, t.Status = t.UPID.StartTime+1, "OK"
	return t
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestTrackedLifecycle(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 1800)
	w := openTest(t, dir, clock)
	tk := pveTask("east", "n1", 1, t0+100, "vzdump", "", "root@pam!pdm", 0, "")
	other := pveTask("east", "n1", 2, t0+200, "qmstart", "100", "root@pam!pdm", 0, "")
	for _, x := range []task.Task{tk, other, tk} {
		if err := w.Track("east", x.UPID); err != nil {
			t.Fatal(err)
		}
	}
	s := w.Latest().Load()
	if got := s.Tracked("east"); len(got) != 2 || got[0] != other.UPID || got[1] != tk.UPID {
		t.Fatalf("Tracked = %v", got)
	}
	if got := s.Running("east"); len(got) != 2 {
		t.Fatalf("Running = %v, want the two tracked tasks", got)
	}
	if err := w.Untrack("east", other.UPID); err != nil {
		t.Fatal(err)
	}
	if got := w.Latest().Load().Running("east"); len(got) != 1 || got[0] != tk {
		t.Fatalf("after Untrack, Running = %v", got)
	}
	// Seen finished: untracked and archived.
	done := tk
	done.EndTime, done.Status = t0+150, "OK"
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{done}}); err != nil {
		t.Fatal(err)
	}
	s = w.Latest().Load()
	if len(s.Tracked("east")) != 0 || len(s.Running("east")) != 0 || s.Len() != 1 {
		t.Fatalf("after finishing: tracked %v running %v len %d", s.Tracked("east"), s.Running("east"), s.Len())
	}
	// Tracking an archived task does nothing.
	if err := w.Track("east", tk.UPID); err != nil {
		t.Fatal(err)
	}
	if len(w.Latest().Load().Tracked("east")) != 0 {
		t.Fatal("tracking a finished task must do nothing")
	}
	if err := w.Track("/bad", other.UPID); err == nil {
		t.Fatal("Track with an invalid remote id must fail")
	}
	third := pveTask("west", "n1", 3, t0+300, "vzdump", "", "root@pam", 0, "")
	if err := w.Track("west", third.UPID); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openTest(t, dir, clock)
	defer w.Close()
	s = w.Latest().Load()
	if got := s.AllTracked(); len(got) != 1 || got[0].Remote != "west" || got[0].UPID != third.UPID {
		t.Fatalf("after reopen, AllTracked = %v", got)
	}
	if got := s.Remotes(); !slices.Equal(got, []string{"west"}) {
		t.Fatalf("Remotes = %v", got)
	}
}

func TestDropRemote(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 1800)
	w := openTest(t, dir, clock)
	fin := pveTask("east", "n1", 1, t0+10, "vzdump", "", "root@pam", t0+20, "OK")
	run := pveTask("east", "n1", 2, t0+30, "vzdump", "", "root@pam", 0, "")
	keep := pveTask("west", "n1", 3, t0+40, "vzdump", "", "root@pam", t0+50, "OK")
	for _, b := range []Batch{
		{Remote: "east", Nodes: []NodeResult{{Node: "n1", OK: true}}, Tasks: []task.Task{fin, run}},
		{Remote: "west", Nodes: []NodeResult{{Node: "n1", OK: true}}, Tasks: []task.Task{keep}},
	} {
		if err := w.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	tracked := pveTask("east", "n2", 4, t0+60, "qmstart", "1", "root@pam", 0, "")
	if err := w.Track("east", tracked.UPID); err != nil {
		t.Fatal(err)
	}
	if err := w.DropRemote("east"); err != nil {
		t.Fatal(err)
	}
	check := func(when string, s *Snapshot) {
		if len(s.Nodes("east")) != 0 || len(s.Tracked("east")) != 0 || len(s.Running("east")) != 0 {
			t.Fatalf("%s: east still has cutoffs %v, tracked %v or running %v", when, s.Nodes("east"), s.Tracked("east"), s.Running("east"))
		}
		if got := all(s); len(got) != 2 || got[0] != keep || got[1] != fin {
			t.Fatalf("%s: tasks %v, want the archived ones", when, got)
		}
		if _, ok := s.Cutoff("west", "n1"); !ok {
			t.Fatalf("%s: west lost its cutoff", when)
		}
	}
	check("live", w.Latest().Load())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openTest(t, dir, clock)
	defer w.Close()
	check("reopened", w.Latest().Load())
}

func TestIdempotentAdd(t *testing.T) {
	clock := newClock(t0 + 1800)
	w := openTest(t, t.TempDir(), clock)
	defer w.Close()
	run := pveTask("east", "n1", 1, t0+10, "vzdump", "", "root@pam", 0, "")
	fin := run
	fin.EndTime, fin.Status = t0+20, "OK"
	again := fin
	again.Status = "some error"
	old := pveTask("east", "n1", 2, t0-10*3600, "vzdump", "", "root@pam", t0-10*3600+5, "OK")
	oldRunning := pveTask("east", "n1", 3, t0-10*3600, "vzdump", "", "root@pam", 0, "")
	for _, b := range [][]task.Task{{run, run}, {fin, run}, {again}, {run}, {old, oldRunning}} {
		if err := w.Apply(Batch{Remote: "east", Tasks: b}); err != nil {
			t.Fatal(err)
		}
	}
	got := all(w.Latest().Load())
	if len(got) != 2 || got[0] != fin || got[1] != oldRunning {
		t.Fatalf("tasks:\n%swant the first finished report, once, and the old running task (the old finished one is past the retention)", describe(got))
	}
}

func TestInvalidBatch(t *testing.T) {
	w := openTest(t, t.TempDir(), newClock(t0+1800))
	defer w.Close()
	good := pveTask("east", "n1", 1, t0+10, "vzdump", "", "root@pam", t0+20, "OK")
	for name, b := range map[string]Batch{
		"bad_remote_id":  {Remote: "/etc", Tasks: []task.Task{good}},
		"foreign_task":   {Remote: "west", Tasks: []task.Task{good}},
		"zero_upid":      {Remote: "east", Tasks: []task.Task{{Remote: "east"}}},
		"unnamed_node":   {Remote: "east", Nodes: []NodeResult{{OK: true}}},
		"pve_with_taskd": {Remote: "east", Tasks: []task.Task{func() task.Task { x := good; x.UPID.TaskID = 3; return x }()}},
		"colon_in_type":  {Remote: "east", Tasks: []task.Task{func() task.Task { x := good; x.UPID.Type = "a:b"; return x }()}},
		"space_in_user":  {Remote: "east", Tasks: []task.Task{func() task.Task { x := good; x.UPID.User = "a b@pam"; return x }()}},
		"bad_node":       {Remote: "east", Tasks: []task.Task{func() task.Task { x := good; x.UPID.Node = "-n"; return x }()}},
		"huge_start":     {Remote: "east", Tasks: []task.Task{func() task.Task { x := good; x.UPID.StartTime = 1 << 40; return x }()}},
	} {
		if err := w.Apply(b); err == nil || errors.Is(err, ErrFailed) {
			t.Errorf("%s: Apply = %v, want a validation error", name, err)
		}
	}
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{good}}); err != nil {
		t.Fatalf("a valid batch after invalid ones: %v", err)
	}
	// Apply checks each string once per kind of UPID: a PBS worker type
	// with '/' and a worker id with a space, valid in a PBS UPID, are
	// still rejected in a PVE UPID once interned; a rejected batch interns
	// nothing, not even the strings of its valid tasks.
	pbs := pbsTask("east", "n1", 2, t0+30, "sync/job", "a b", "root@pam", t0+40, "OK")
	for range 2 { // the first interns the strings, the second finds them checked
		if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{pbs}}); err != nil {
			t.Fatalf("a valid PBS batch: %v", err)
		}
	}
	size := w.in.size()
	for name, x := range map[string]task.Task{
		"pve_slash_type": pveTask("east", "n1", 3, t0+50, "sync/job", "", "root@pam", t0+60, "OK"),
		"pve_space_id":   pveTask("east", "n1", 3, t0+50, "vzdump", "a b", "root@pam", t0+60, "OK"),
	} {
		fresh := pveTask("east", "n9", 4, t0+70, "newtype", "101", "new@pam", t0+80, "new status")
		if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{fresh, good, x}}); err == nil || errors.Is(err, ErrFailed) {
			t.Errorf("%s: Apply = %v, want a validation error", name, err)
		}
		if got := w.in.size(); got != size {
			t.Errorf("%s: a rejected batch interned %d strings", name, got-size)
		}
	}
}

func TestWriterFailure(t *testing.T) {
	fsys := newMemFS("/cache")
	clock := newClock(t0 + 1800)
	w, err := Open(crashOptions(fsys, clock))
	if err != nil {
		t.Fatal(err)
	}
	tk := pveTask("east", "n1", 1, t0+10, "vzdump", "", "root@pam", t0+20, "OK")
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{tk}}); err != nil {
		t.Fatal(err)
	}
	fsys.crashAt = fsys.steps + 2 // the journal fsync of the next Apply
	if err := w.Apply(Batch{Remote: "east", Tasks: []task.Task{tk}}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Apply after a failed fsync = %v, want ErrFailed", err)
	}
	if err := w.ApplyJournal(); !errors.Is(err, ErrFailed) {
		t.Fatalf("ApplyJournal after the failure = %v, want ErrFailed", err)
	}
	if w.Latest().Load().Len() != 1 {
		t.Fatal("readers lost the last snapshot")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after a failure = %v, want nil", err)
	}
	if err := w.Apply(Batch{Remote: "east"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close = %v, want ErrClosed", err)
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 1800)
	for name, o := range map[string]Options{
		"no_dir":          {},
		"fraction_second": {Dir: dir, Rotation: 1500 * time.Millisecond},
		"negative_keep":   {Dir: dir, Retention: -1},
	} {
		if _, err := Open(o); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
	w := openTest(t, dir, clock)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir, Now: clock.Now, Rotation: 2 * time.Hour}); err == nil {
		t.Fatal("reopening with another rotation must fail")
	}
	// More and then fewer files kept.
	w = openTest(t, dir, clock, func(o *Options) { o.Retention = 6 })
	if plain, zst, _ := archiveFiles(t, dir); len(plain)+len(zst) != 6 || len(w.Corruptions()) != 0 {
		t.Fatalf("retention 6: files %v %v, corruptions %v", plain, zst, w.Corruptions())
	}
	w.Close()
	w = openTest(t, dir, clock, func(o *Options) { o.Retention = 2 })
	defer w.Close()
	if plain, zst, _ := archiveFiles(t, dir); len(plain) != 2 || len(zst) != 0 {
		t.Fatalf("retention 2: files %v %v", plain, zst)
	}
}

// TestUPIDRendering checks the compact form renders every UPID exactly as
// task.UPID.String and orders tasks exactly as task.Compare.
func TestUPIDRendering(t *testing.T) {
	in := newInterner()
	var tasks []task.Task
	for _, rel := range []string{"upid/pve-upids.json", "upid/pbs-upids.json"} {
		var doc struct {
			UPIDs []struct {
				UPID string `json:"upid"`
			} `json:"upids"`
		}
		if raw, ok := fixtures.Optional(rel); ok {
			if err := jsonUnmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range doc.UPIDs {
			p, err := task.ParseUPID(u.UPID)
			if err != nil {
				t.Fatalf("fixture %s: %v", u.UPID, err)
			}
			tasks = append(tasks, task.Task{Remote: "r", UPID: p})
		}
	}
	g := &gen{rng: rand.New(rand.NewSource(7)), base: t0}
	for range 300 {
		tasks = append(tasks, g.task(propRemotes[g.rng.Intn(len(propRemotes))]))
	}
	recs := make([]rec, len(tasks))
	raws := make([]*task.UPID, len(tasks))
	for i := range tasks {
		var raw bool
		recs[i], raw = in.toRec(&tasks[i])
		if raw {
			raws[i] = &tasks[i].UPID
		}
	}
	d := in.view()
	for i := range tasks {
		if got, want := string(d.appendUPID(nil, &recs[i], raws[i])), tasks[i].UPID.String(); got != want {
			t.Fatalf("rendered %q, want %q", got, want)
		}
		if got := d.task(&recs[i], raws[i]); got != tasks[i] {
			t.Fatalf("task round trip %+v, want %+v", got, tasks[i])
		}
		j := g.rng.Intn(len(tasks))
		if got, want := sign(d.cmp(&recs[i], raws[i], &recs[j], raws[j])), sign(task.Compare(tasks[i], tasks[j])); got != want {
			t.Fatalf("cmp(%s, %s) = %d, want %d", ident(tasks[i]), ident(tasks[j]), got, want)
		}
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// TestTaskLines checks the line format: round trips with awkward strings,
// and Proxmox Datacenter Manager's own lines.
func TestTaskLines(t *testing.T) {
	in := newInterner()
	for _, status := range []string{"OK", "", `quote " and \ backslash`, "tab\tnew\nline\x01", "ünïcödé ✓", "WARNINGS: 2"} {
		tk := pbsTask("east", "backup1", 1, t0, "backup", `store1:vm/100 "x"`, "root@pam!tok", t0+5, status)
		r, _ := in.toRec(&tk)
		line := in.view().appendLine(nil, &r, nil)
		got, err := parseLine(line[:len(line)-1])
		if err != nil || got != tk {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", line, got, err, tk)
		}
	}
	if raw, ok := fixtures.Optional("pdm/task-cache-archive-lines.jsonl"); ok {
		n := 0
		if ce := scanLines("pdm", raw, true, func(tk *task.Task) { n++ }); ce != nil || n != 2 {
			t.Fatalf("PDM lines: %d parsed, %v", n, ce)
		}
	}
	for _, bad := range []string{`{}`, `{"upid":"x"}`, `{"upid":"pve:r!UPID:n:00000001:00000002:00000003:t::u@pam:",}`, `[1]`,
		`{"upid":"pve:r!UPID:n:00000001:00000002:00000003:t::u@pam:","status":{"a":1}}`} {
		if _, err := parseLine([]byte(bad)); err == nil {
			t.Errorf("parseLine(%s) succeeded", bad)
		}
	}
}

// TestCompaction ages out tasks with many distinct statuses and checks
// that rotation rebuilds the string tables and queries stay right.
func TestCompaction(t *testing.T) {
	clock := newClock(t0 + 1800)
	w := openTest(t, t.TempDir(), clock, func(o *Options) { o.hooks = &hooks{compactMin: 10}; o.Retention = 2 })
	defer w.Close()
	var kept []task.Task
	for h := range int64(6) {
		var ts []task.Task
		for i := range 20 {
			st := clock.Unix() - int64(i)
			ts = append(ts, pveTask("east", "n1", uint32(h*100+int64(i)), st, "vzdump", "", "root@pam", st+1, "error "+time.Unix(st, 0).String()))
		}
		if err := w.Apply(Batch{Remote: "east", Tasks: ts}); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, ts...)
		clock.Advance(time.Hour)
		if _, err := w.MaybeRotate(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.in.statuses.strs); n > 3*20 {
		t.Fatalf("%d statuses interned after compaction, want at most %d", n, 3*20)
	}
	var want []task.Task
	for _, tk := range kept {
		if tk.UPID.StartTime >= w.periods[0] {
			want = append(want, tk)
		}
	}
	if got := all(w.Latest().Load()); !slices.Equal(got, reference(want, task.Filter{}).Tasks) {
		t.Fatalf("after compaction:\n%s", describe(got))
	}
}
