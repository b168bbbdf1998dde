package cache

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// model is the naive cache the Writer must agree with: every finished task
// once (the first finished report wins) unless older than the retention,
// and every task seen running and not yet finished.
type model struct {
	tasks map[string]task.Task
}

func (m *model) apply(b Batch, oldest int64) {
	for _, t := range b.Tasks {
		if t.Running() {
			continue
		}
		k := ident(t)
		if old, ok := m.tasks[k]; ok && !old.Running() {
			continue
		}
		delete(m.tasks, k)
		if t.UPID.StartTime >= oldest {
			m.tasks[k] = t
		}
	}
	for _, t := range b.Tasks {
		if !t.Running() {
			continue
		}
		k := ident(t)
		if old, ok := m.tasks[k]; ok && !old.Running() {
			continue
		}
		if fin := finishedIn(b, k); fin {
			continue
		}
		m.tasks[k] = t
	}
}

func finishedIn(b Batch, k string) bool {
	for _, t := range b.Tasks {
		if !t.Running() && ident(t) == k {
			return true
		}
	}
	return false
}

// retain drops finished tasks older than oldest.
func (m *model) retain(oldest int64) {
	for k, t := range m.tasks {
		if !t.Running() && t.UPID.StartTime < oldest {
			delete(m.tasks, k)
		}
	}
}

func (m *model) list() []task.Task {
	out := make([]task.Task, 0, len(m.tasks))
	for _, t := range m.tasks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return task.Compare(out[i], out[j]) < 0 })
	return out
}

// gen makes random tasks with many start-time ties, PVE and PBS UPIDs,
// escaped worker ids and non-canonical UPID texts.
type gen struct {
	rng  *rand.Rand
	base int64
	pid  uint32
}

var (
	propRemotes  = []string{"a", "b", "c", "d"}
	propNodes    = []string{"n1", "n2", "N3"}
	propTypes    = []string{"vzdump", "qmstart", "qmigrate", "vzstart", "garbage_collection", "backup"}
	propUsers    = []string{"root@pam", "Root@PAM!tok", "alice@pve", "ALICE@pbs", "bob@pve!x"}
	propStatuses = []string{"OK", "OK", "OK", "WARNINGS: 1", "WARNINGS: 3", "some error", "unknown", "", "job errors"}
	propIDs      = []string{"", "100", "store1:vm/100", "a-b"}
)

func (g *gen) start() int64 { return g.base + int64(g.rng.Intn(60))*240 }

func (g *gen) task(remote string) task.Task {
	r := g.rng
	g.pid++
	kind := task.PVE
	if r.Intn(4) == 0 {
		kind = task.PBS
	}
	u := task.UPID{
		Kind: kind, Node: propNodes[r.Intn(len(propNodes))], PID: g.pid % 7, PStart: uint64(g.pid),
		StartTime: g.start(), Type: propTypes[r.Intn(len(propTypes))],
		ID: propIDs[r.Intn(len(propIDs))], User: propUsers[r.Intn(len(propUsers))],
	}
	if kind == task.PBS {
		u.TaskID = uint64(g.pid)
	} else if u.ID == "store1:vm/100" {
		u.ID = "vm100" // PVE ids have no ":" or "/"
	}
	if r.Intn(20) == 0 {
		// A non-canonical text: lower-case hex digits in the pid field.
		text := u.String()
		lower := []byte(text)
		for i := 5 + len(u.Node) + 1; i < 5+len(u.Node)+9; i++ {
			if lower[i] >= 'A' && lower[i] <= 'F' {
				lower[i] += 'a' - 'A'
			}
		}
		lower[5+len(u.Node)+1] = 'a'
		p, err := task.ParseUPID(string(lower))
		if err != nil {
			panic(fmt.Sprintf("parse %q: %v", lower, err))
		}
		u = p
	}
	t := task.Task{Remote: remote, UPID: u}
	if r.Intn(4) != 0 {
		t.EndTime = u.StartTime + int64(r.Intn(100)) + 1
		t.Status = propStatuses[r.Intn(len(propStatuses))]
	}
	return t
}

// batch returns a batch of one remote: new tasks, some of the remote's
// known tasks again (running ones now finished, finished ones repeated with
// another status, finished ones reported running).
func (g *gen) batch(m *model) Batch {
	r := g.rng
	remote := propRemotes[r.Intn(len(propRemotes))]
	b := Batch{Remote: remote}
	for range r.Intn(40) {
		b.Tasks = append(b.Tasks, g.task(remote))
	}
	for _, t := range m.list() {
		if t.Remote != remote || r.Intn(3) != 0 {
			continue
		}
		switch {
		case t.Running():
			t.EndTime = t.UPID.StartTime + 5
			t.Status = propStatuses[r.Intn(len(propStatuses))]
		case r.Intn(2) == 0:
			t.Status = "changed"
		default:
			t.EndTime, t.Status = 0, ""
		}
		b.Tasks = append(b.Tasks, t)
	}
	if r.Intn(10) == 0 && len(b.Tasks) > 0 {
		b.Tasks = append(b.Tasks, b.Tasks[0]) // a repeat inside the batch
	}
	for _, n := range propNodes {
		if r.Intn(3) != 0 {
			b.Nodes = append(b.Nodes, NodeResult{Node: n, OK: r.Intn(4) != 0})
		}
	}
	b.Nodes = append(b.Nodes, NodeResult{Node: pbsNodeKey, OK: true})
	return b
}

// filter returns a random filter.
func (g *gen) filter() task.Filter {
	r := g.rng
	f := task.Filter{}
	if r.Intn(4) == 0 {
		f.Remote = append(propRemotes, "zz")[r.Intn(len(propRemotes)+1)]
	}
	if r.Intn(6) == 0 {
		f.Node = append(propNodes, "nope")[r.Intn(len(propNodes)+1)]
	}
	if r.Intn(6) == 0 {
		f.Scope = map[string]bool{}
		for _, rm := range propRemotes {
			if r.Intn(2) == 0 {
				f.Scope[rm] = true
			}
		}
	}
	f.Running = r.Intn(8) == 0
	f.Errors = r.Intn(6) == 0
	if r.Intn(4) == 0 {
		f.TypeFilter = []string{"vz", "qm", "start", "garbage", "x", "backup"}[r.Intn(6)]
	}
	if r.Intn(4) == 0 {
		f.UserFilter = []string{"root", "ALICE", "pam!", "bob", "@", "nobody", "Root@pam!TOK"}[r.Intn(7)]
	}
	if r.Intn(5) == 0 {
		for c := task.StatusOK; c <= task.StatusUnknown; c++ {
			if r.Intn(2) == 0 {
				f.StatusFilter = f.StatusFilter.Add(c)
			}
		}
	}
	if r.Intn(3) == 0 {
		f.Since = g.start() + int64(r.Intn(3)-1) // on, before and after a start time
	}
	if r.Intn(3) == 0 {
		f.Until = g.start() + int64(r.Intn(3)-1)
	}
	return f
}

// page applies a start and a limit to a list of all matches.
func page(match []task.Task, start, limit int) task.Page {
	p := task.Page{Total: len(match)}
	start = max(start, 0)
	if start < len(match) {
		match = match[start:]
		if limit > 0 && limit < len(match) {
			match = match[:limit]
		}
		p.Tasks = match
	}
	return p
}

// checkQueries compares the snapshot with the model for many filters,
// starts and limits.
func checkQueries(t *testing.T, g *gen, s *Snapshot, m *model, step string) {
	t.Helper()
	tasks := m.list()
	if s.Len() != len(tasks) {
		t.Fatalf("%s: Len = %d, want %d", step, s.Len(), len(tasks))
	}
	filters := []task.Filter{{}, {Running: true}, {Errors: true}, {Limit: 50}}
	for range 20 {
		filters = append(filters, g.filter())
	}
	for _, f := range filters {
		var ref task.Page // all matches; tasks are sorted, so a page is a slice of it
		for i := range tasks {
			if f.Match(&tasks[i]) {
				ref.Tasks = append(ref.Tasks, tasks[i])
			}
		}
		ref.Total = len(ref.Tasks)
		n := ref.Total
		combos := [][2]int{{0, 0}, {0, 50}, {1, 3}, {2, 1}, {n / 2, 50}, {n - 1, 0}, {n, 1}, {n + 3, 0},
			{g.rng.Intn(n + 1), 1 + g.rng.Intn(60)}}
		for _, sl := range combos {
			{
				start, limit := sl[0], sl[1]
				f.Start, f.Limit = start, limit
				want := page(ref.Tasks, start, limit)
				got := s.Query(f)
				if total, seq := s.Stream(f); total != got.Total || !equalTasks(slices.Collect(seq), got.Tasks) {
					t.Fatalf("%s: Stream(%+v) differs from Query: total %d, want %d", step, f, total, got.Total)
				}
				if got.Total != want.Total || len(got.Tasks) != len(want.Tasks) {
					t.Fatalf("%s: Query(%+v): total %d, %d tasks; want %d, %d\ngot:\n%swant:\n%s",
						step, f, got.Total, len(got.Tasks), want.Total, len(want.Tasks), describe(got.Tasks), describe(want.Tasks))
				}
				for i := range got.Tasks {
					if !reflect.DeepEqual(got.Tasks[i], want.Tasks[i]) {
						t.Fatalf("%s: Query(%+v): task %d = %s end=%d %q, want %s end=%d %q", step, f, i,
							ident(got.Tasks[i]), got.Tasks[i].EndTime, got.Tasks[i].Status,
							ident(want.Tasks[i]), want.Tasks[i].EndTime, want.Tasks[i].Status)
					}
				}
			}
		}
		f.Start, f.Limit = 0, 0
		if got, want := s.Statistics(f), referenceStats(tasks, f); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Statistics(%+v) =\n%v\nwant\n%v", step, f, got, want)
		}
	}
}

// TestQueryProperty runs random batches (running tasks that finish, repeats,
// start-time ties, non-canonical UPIDs) through a Writer with journal
// merges, rotations and reopens, and compares every query and statistic
// with the naive reference after each step.
func TestQueryProperty(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clock := newClock(t0 + 3*3600 + 100)
			opts := func(o *Options) { o.Rotation, o.Retention = time.Hour, 4 }
			w := openTest(t, dir, clock, opts)
			defer func() { w.Close() }()
			g := &gen{rng: rand.New(rand.NewSource(seed)), base: t0}
			m := &model{tasks: map[string]task.Task{}}
			var old *Snapshot
			var oldTasks []task.Task
			for step := range 40 {
				name := fmt.Sprintf("step %d", step)
				switch op := g.rng.Intn(20); {
				case op == 0 || step == 12:
					if err := w.ApplyJournal(); err != nil {
						t.Fatal(err)
					}
					name += " (merge)"
				case op == 1 || step == 18:
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					w = openTest(t, dir, clock, opts)
					name += " (reopen)"
				case op == 2 && step > 20 || step == 26:
					clock.Advance(time.Hour)
					if _, err := w.MaybeRotate(); err != nil {
						t.Fatal(err)
					}
					m.retain(w.periods[0])
					name += " (rotate)"
				default:
					b := g.batch(m)
					if err := w.Apply(b); err != nil {
						t.Fatal(err)
					}
					m.apply(b, w.periods[0])
				}
				checkQueries(t, g, w.Latest().Load(), m, name)
				if step == 30 {
					old, oldTasks = w.Latest().Load(), m.list()
				}
			}
			// An old snapshot is unchanged by later writes.
			om := &model{tasks: map[string]task.Task{}}
			for _, tk := range oldTasks {
				om.tasks[ident(tk)] = tk
			}
			checkQueries(t, g, old, om, "old snapshot")
			if n := len(w.Corruptions()); n != 0 {
				t.Fatalf("corruptions: %v", w.Corruptions())
			}
		})
	}
}

// equalTasks reports whether a and b hold the same tasks (nil and empty
// are equal).
func equalTasks(a, b []task.Task) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}
