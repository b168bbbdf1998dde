package cache

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TestRunningLevels drives the incremental running set (running.go)
// through many small batches in which running tasks start, finish, change
// their status while running, are tracked, untracked and dropped with
// their remote, and compares every query, statistic and running list with
// the naive model; and checks the levels' invariants: O(log n) levels,
// dead tasks at most an eighth of each level.
func TestRunningLevels(t *testing.T) {
	for seed := int64(1); seed <= 2; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			clock := newClock(t0 + 3*3600 + 100)
			w := openTest(t, t.TempDir(), clock, func(o *Options) { o.Rotation, o.Retention = time.Hour, 4 })
			defer w.Close()
			g := &gen{rng: rand.New(rand.NewSource(seed)), base: t0}
			m := &model{tasks: map[string]task.Task{}}
			r := g.rng
			for step := range 400 {
				remote := propRemotes[r.Intn(len(propRemotes))]
				switch op := r.Intn(40); {
				case op == 0:
					if err := w.DropRemote(remote); err != nil {
						t.Fatal(err)
					}
					for k, tk := range m.tasks {
						if tk.Remote == remote && tk.Running() {
							delete(m.tasks, k)
						}
					}
				case op == 1:
					tk := g.task(remote)
					tk.EndTime, tk.Status = 0, ""
					if err := w.Track(remote, tk.UPID); err != nil {
						t.Fatal(err)
					}
					if _, ok := m.tasks[ident(tk)]; !ok {
						m.tasks[ident(tk)] = tk
					}
				case op == 2:
					for _, u := range w.Latest().Load().Tracked(remote) {
						if err := w.Untrack(remote, u); err != nil {
							t.Fatal(err)
						}
						delete(m.tasks, ident(task.Task{Remote: remote, UPID: u}))
						break
					}
				default:
					b := Batch{Remote: remote, Nodes: []NodeResult{{Node: propNodes[0], OK: true}}}
					for range r.Intn(4) {
						tk := g.task(remote)
						tk.EndTime, tk.Status = 0, ""
						b.Tasks = append(b.Tasks, tk)
					}
					for _, tk := range m.list() {
						if tk.Remote != remote || !tk.Running() || r.Intn(3) != 0 {
							continue
						}
						if r.Intn(4) == 0 {
							tk.Status = fmt.Sprint("step ", step) // still running, new status
						} else {
							tk.EndTime, tk.Status = tk.UPID.StartTime+5, "OK"
						}
						b.Tasks = append(b.Tasks, tk)
					}
					if err := w.Apply(b); err != nil {
						t.Fatal(err)
					}
					m.apply(b, w.periods[0])
				}
				s := w.Latest().Load()
				checkLevels(t, w, s)
				if step%20 == 19 {
					name := fmt.Sprint("step ", step)
					checkQueries(t, g, s, m, name)
					checkRunning(t, s, m, name)
				}
			}
		})
	}
}

// checkLevels checks the invariants of the levels of running tasks.
func checkLevels(t *testing.T, w *Writer, s *Snapshot) {
	t.Helper()
	live := 0
	for _, lv := range s.segs[:s.nrun] {
		if 8*lv.dead.n > lv.len() {
			t.Fatalf("level of %d tasks has %d dead", lv.len(), lv.dead.n)
		}
		live += lv.liveLen()
	}
	if live != s.RunningLen() || live != w.nactive {
		t.Fatalf("levels hold %d live tasks, RunningLen %d, active %d", live, s.RunningLen(), w.nactive)
	}
	if max := 2 * (1 + bitsLen(live)); s.nrun > max {
		t.Fatalf("%d levels for %d running tasks, want at most %d", s.nrun, live, max)
	}
	if w.levelMisses != 0 {
		t.Fatalf("%d running tasks were not found in the levels", w.levelMisses)
	}
}

func bitsLen(n int) int {
	k := 0
	for ; n > 0; n >>= 1 {
		k++
	}
	return k
}

// checkRunning compares Running and Remotes with the model.
func checkRunning(t *testing.T, s *Snapshot, m *model, step string) {
	t.Helper()
	byRemote := map[string][]task.Task{}
	remotes := map[string]bool{}
	for r := range s.cutoffs.toMap() {
		remotes[r] = true
	}
	for r := range s.tracked {
		remotes[r] = true
	}
	for _, tk := range m.list() {
		if tk.Running() {
			byRemote[tk.Remote] = append(byRemote[tk.Remote], tk)
			remotes[tk.Remote] = true
		}
	}
	for _, r := range propRemotes {
		got := s.Running(r)
		if !slices.EqualFunc(got, byRemote[r], func(a, b task.Task) bool { return ident(a) == ident(b) && a.Status == b.Status }) {
			t.Fatalf("%s: Running(%s) =\n%swant\n%s", step, r, describe(got), describe(byRemote[r]))
		}
	}
	var want []string
	for r := range remotes {
		want = append(want, r)
	}
	slices.Sort(want)
	if got := s.Remotes(); !slices.Equal(got, want) {
		t.Fatalf("%s: Remotes = %v, want %v", step, got, want)
	}
}
