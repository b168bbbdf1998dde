package cache

import (
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TestFinished: Snapshot.Finished agrees with a query of the snapshot for
// finished tasks, running ones, a running task that finished since (its
// running copy dead), tasks of rotated periods, a non-canonical UPID, and
// tasks the cache never had.
func TestFinished(t *testing.T) {
	clock := newClock(t0)
	w := openTest(t, t.TempDir(), clock)
	defer w.Close()
	apply := func(b Batch) {
		t.Helper()
		if err := w.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := task.ParseUPID("UPID:n1:0000abcd:0000beef:6554C8A0:qmstart:100:root@pam:")
	if err != nil || raw.Canonical() {
		t.Fatalf("want a non-canonical UPID: %v %v", raw, err)
	}
	old := pveTask("a", "n1", 1, t0-600, "vzdump", "", "root@pam", t0-500, "OK")
	running := pveTask("a", "n1", 2, t0-300, "qmstart", "100", "root@pam", 0, "")
	ends := pveTask("a", "n2", 3, t0-200, "qmigrate", "101", "root@pam", 0, "")
	apply(Batch{Remote: "a", Tasks: []task.Task{old, running, ends}, Nodes: []NodeResult{{"n1", true}, {"n2", true}}})
	clock.Advance(2 * time.Hour) // the first period is archived
	if _, err := w.MaybeRotate(); err != nil {
		t.Fatal(err)
	}
	ended := ends
	ended.EndTime, ended.Status = t0+60, "OK"
	nonCanon := task.Task{Remote: "a", UPID: raw, EndTime: raw.StartTime + 5, Status: "OK"}
	otherRemote := pveTask("b", "n1", 9, t0-600, "vzdump", "", "root@pam", t0-500, "OK")
	apply(Batch{Remote: "a", Tasks: []task.Task{ended, nonCanon}, Nodes: []NodeResult{{"n2", true}}})
	apply(Batch{Remote: "b", Tasks: []task.Task{otherRemote}, Nodes: []NodeResult{{"n1", true}}})
	snap := w.Latest().Load()

	queried := map[string]bool{} // finished tasks by a query
	for _, tk := range all(snap) {
		if !tk.Running() {
			queried[ident(tk)] = true
		}
	}
	// The same fields in canonical text: not the task the cache holds.
	canonical := task.UPID{Kind: raw.Kind, Node: raw.Node, PID: raw.PID, PStart: raw.PStart, StartTime: raw.StartTime, Type: raw.Type, ID: raw.ID, User: raw.User}
	otherPID := old.UPID
	otherPID.PID++
	for _, tc := range []struct {
		name   string
		remote string
		upid   task.UPID
		want   bool
	}{
		{"finished, archived", "a", old.UPID, true},
		{"running", "a", running.UPID, false},
		{"finished since it was cached running", "a", ends.UPID, true},
		{"non-canonical UPID", "a", raw, true},
		{"its canonical form", "a", canonical, false},
		{"another pid", "a", otherPID, false},
		{"another remote's task", "a", otherRemote.UPID, false},
		{"that remote", "b", otherRemote.UPID, true},
		{"unknown remote", "c", old.UPID, false},
	} {
		got := snap.Finished(tc.remote, tc.upid)
		if got != tc.want {
			t.Errorf("%s: Finished = %v, want %v", tc.name, got, tc.want)
		}
		if byQuery := queried[tc.remote+"!"+tc.upid.String()]; tc.upid.Canonical() && got != byQuery {
			t.Errorf("%s: Finished = %v, a query says %v", tc.name, got, byQuery)
		}
	}
	if n := testing.AllocsPerRun(100, func() { snap.Finished("a", old.UPID) }); n != 0 {
		t.Errorf("Finished allocates %v times", n)
	}
}
