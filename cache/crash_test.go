package cache

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// crashHarness runs the crash scenario: a Writer, its options and clock.
type crashHarness struct {
	opts  Options
	clock *fakeClock
	w     *Writer
}

// crashState is what a reopened cache must hold after an operation.
type crashState struct {
	tasks   []task.Task
	tracked []task.RemoteUPID
	cutoffs map[string]map[string]int64
}

func captureState(s *Snapshot) crashState {
	return crashState{tasks: all(s), tracked: s.AllTracked(), cutoffs: s.cutoffs.toMap()}
}

// crashOps is the scenario: every kind of write the cache does, including
// merges triggered by a full journal, a late task for a compressed period,
// rotations with compression and deletion, and a clean close.
func crashOps() []func(h *crashHarness) error {
	const remote, pbs = "east", "bak"
	running := pveTask(remote, "n1", 7, t0+2*3600+60, "qmigrate", "105", "root@pam", 0, "")
	tracked := pveTask(remote, "n2", 8, t0+2*3600+90, "vzdump", "", "root@pam!pdm", 0, "")
	apply := func(b Batch) func(h *crashHarness) error {
		return func(h *crashHarness) error { return h.w.Apply(b) }
	}
	many := func(base int64, n int) []task.Task {
		var ts []task.Task
		for i := range n {
			ts = append(ts, pveTask(remote, "n1", uint32(100+i), base+int64(i), "qmstart", fmt.Sprint(100+i), "alice@pve", base+int64(i)+3, "OK"))
		}
		return ts
	}
	finish := func(t task.Task, status string) task.Task {
		t.EndTime, t.Status = t.UPID.StartTime+30, status
		return t
	}
	ok := []NodeResult{{Node: "n1", OK: true}, {Node: "n2", OK: true}}
	return []func(h *crashHarness) error{
		func(h *crashHarness) (err error) { h.w, err = Open(h.opts); return err },
		apply(Batch{Remote: remote, Nodes: ok, Tasks: []task.Task{
			pveTask(remote, "n1", 1, t0+2*3600+10, "vzdump", "101", "root@pam", t0+2*3600+20, "OK"),
			pveTask(remote, "n2", 2, t0+3600+5, "qmstart", "102", "bob@pve", t0+3600+9, "WARNINGS: 1"),
			running,
		}}),
		func(h *crashHarness) error { return h.w.Track(remote, tracked.UPID) },
		apply(Batch{Remote: pbs, Nodes: []NodeResult{{Node: pbsNodeKey, OK: true}}, Tasks: []task.Task{
			pbsTask(pbs, "backup1", 3, t0+2*3600+30, "backup", "store1:vm/101", "root@pam", t0+2*3600+40, "OK"),
			pbsTask(pbs, "backup1", 4, t0+2*3600+31, "garbage_collection", "store1", "root@pam", t0+2*3600+50, "some error"),
		}}),
		func(h *crashHarness) error { return h.w.ApplyJournal() },
		apply(Batch{Remote: remote, Nodes: ok, Tasks: []task.Task{finish(running, "OK"), finish(tracked, "OK")}}),
		func(h *crashHarness) error { h.clock.Advance(time.Hour); _, err := h.w.MaybeRotate(); return err },
		apply(Batch{Remote: remote, Nodes: ok[:1], Tasks: []task.Task{ // late tasks for older, compressed periods
			pveTask(remote, "n1", 5, t0+3600+100, "vzstart", "103", "root@pam", t0+3600+101, "unknown"),
			pveTask(remote, "n1", 6, t0+3600+101, "qmstop", "104", "root@pam", t0+3600+102, "OK"),
		}}),
		func(h *crashHarness) error {
			return h.w.Track(pbs, pbsTask(pbs, "backup1", 9, t0+3*3600+5, "verify", "store1", "root@pam", 0, "").UPID)
		},
		func(h *crashHarness) error {
			return h.w.Untrack(pbs, pbsTask(pbs, "backup1", 9, t0+3*3600+5, "verify", "store1", "root@pam", 0, "").UPID)
		},
		apply(Batch{Remote: remote, Nodes: ok, Tasks: many(t0+3*3600+200, 30)}), // past JournalMaxBytes
		apply(Batch{Remote: "west", Nodes: []NodeResult{{Node: "w1", OK: true}}, Tasks: []task.Task{
			pveTask("west", "w1", 1, t0+3*3600+300, "aptupdate", "", "root@pam", t0+3*3600+330, "OK"),
		}}),
		func(h *crashHarness) error { h.clock.Advance(2 * time.Hour); _, err := h.w.MaybeRotate(); return err },
		func(h *crashHarness) error { return h.w.DropRemote("west") },
		apply(Batch{Remote: remote, Nodes: ok, Tasks: many(t0+5*3600+10, 5)}),
		func(h *crashHarness) error { return h.w.Close() },
	}
}

func crashOptions(fsys fsys, clock *fakeClock) Options {
	return Options{
		Dir: "/cache", Now: clock.Now, Rotation: time.Hour, Retention: 3, PlainFiles: 1,
		JournalMaxBytes: 2 << 10, fs: fsys,
	}
}

// runCrash runs the scenario until it fails. It returns the number of
// operations that completed.
func runCrash(fsys *memFS, clock *fakeClock, ops []func(*crashHarness) error) (done int) {
	h := &crashHarness{opts: crashOptions(fsys, clock), clock: clock}
	for i, op := range ops {
		if err := op(h); err != nil {
			if h.w != nil {
				h.w.Close()
			}
			return i
		}
	}
	return len(ops)
}

// TestCrashConsistency loses power at every mutating file-system step of a
// scenario (after the journal append, in the middle of an archive merge,
// between an archive rename and the state write, during compression,
// during rotation, during recovery itself) and checks that the reopened
// cache holds exactly the acknowledged changes, each task once: the
// operation in flight is either wholly there or not at all.
func TestCrashConsistency(t *testing.T) {
	ops := crashOps()
	// A crash-free run gives the state after each operation.
	ref := newMemFS("/cache")
	clock := newClock(t0 + 2*3600 + 1800)
	h := &crashHarness{opts: crashOptions(ref, clock), clock: clock}
	states := []crashState{{cutoffs: map[string]map[string]int64{}}}
	for i, op := range ops {
		if err := op(h); err != nil {
			t.Fatalf("reference run, operation %d: %v", i, err)
		}
		states = append(states, captureState(h.w.Latest().Load()))
	}
	total := ref.steps
	t.Logf("%d steps", total)
	for _, want := range []string{"sync journal", "write archive.", ".zst.tmp", "create state.tmp", "remove archive.", "truncate journal"} {
		if !slices.ContainsFunc(ref.trace, func(s string) bool { return strings.Contains(s, want) }) {
			t.Fatalf("scenario never does %q; steps: %v", want, ref.trace)
		}
	}
	modes := []struct {
		name            string
		keepNames, torn bool
	}{
		{name: "lost_metadata", keepNames: false, torn: false},
		{name: "kept_metadata_torn_appends", keepNames: true, torn: true},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			for k := 1; k <= total; k++ {
				fsys := newMemFS("/cache")
				fsys.crashAt = k
				clock := newClock(t0 + 2*3600 + 1800)
				done := runCrash(fsys, clock, ops)
				if done == len(ops) {
					t.Fatalf("crash at step %d did not stop the scenario", k)
				}
				step := fsys.trace[k-1]
				after := fsys.crashState(mode.keepNames, mode.torn)
				checkRecovered(t, fmt.Sprintf("crash at step %d (%s) in operation %d", k, step, done),
					after.crashState(true, false), clock, states[done], states[done+1])
				if k%20 == 0 {
					// Lose power again during the recovery, at each of its steps.
					probe := after.crashState(true, false)
					probe.steps = 0
					if w, err := Open(crashOptions(probe, clock)); err == nil {
						w.Close()
					}
					for m := 1; m <= probe.steps; m++ {
						again := after.crashState(true, false)
						again.crashAt = m
						if w, err := Open(crashOptions(again, clock)); err == nil {
							w.Close()
						}
						checkRecovered(t, fmt.Sprintf("crash at step %d (%s) in operation %d, then at recovery step %d (%s)",
							k, step, done, m, again.trace[m-1]),
							again.crashState(mode.keepNames, mode.torn), clock, states[done], states[done+1])
					}
				}
			}
		})
	}
}

// checkRecovered opens the crashed file system and checks it holds one of
// the two states (before or after the interrupted operation), with no
// cutoff past that state's.
func checkRecovered(t *testing.T, what string, fsys *memFS, clock *fakeClock, before, after crashState) {
	t.Helper()
	w, err := Open(crashOptions(fsys, clock))
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer w.Close()
	s := w.Latest().Load()
	got := captureState(s)
	seen := map[string]bool{}
	for _, tk := range got.tasks {
		if seen[ident(tk)] {
			t.Fatalf("%s: task %s twice", what, ident(tk))
		}
		seen[ident(tk)] = true
	}
	oldest := w.periods[0]
	for _, cand := range []crashState{before, after} {
		var want []task.Task
		for _, tk := range cand.tasks {
			if tk.Running() || tk.UPID.StartTime >= oldest {
				want = append(want, tk)
			}
		}
		if !slices.Equal(got.tasks, want) || !slices.EqualFunc(got.tracked, cand.tracked, func(a, b task.RemoteUPID) bool {
			return a.String() == b.String()
		}) {
			continue
		}
		for remote, nodes := range got.cutoffs {
			for node, c := range nodes {
				if wc, ok := cand.cutoffs[remote][node]; !ok || c > wc {
					t.Fatalf("%s: cutoff %s/%s = %d, beyond the durable state's %d (present %v)", what, remote, node, c, wc, ok)
				}
			}
		}
		return
	}
	t.Fatalf("%s: reopened cache holds\n%stracked %v\nwant before the operation\n%stracked %v\nor after it\n%stracked %v\nfiles: %s",
		what, describe(got.tasks), got.tracked, describe(before.tasks), before.tracked, describe(after.tasks), after.tracked, fsys.files())
}
