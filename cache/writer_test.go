package cache

import (
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

func TestApplyQueryReopen(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 1800)
	w := openTest(t, dir, clock)
	b := Batch{Remote: "east", Nodes: []NodeResult{{Node: "n1", OK: true}}, Tasks: []task.Task{
		pveTask("east", "n1", 1, t0+10, "vzdump", "101", "root@pam", t0+20, "OK"),
		pveTask("east", "n1", 2, t0+30, "qmstart", "102", "root@pam", 0, ""),
		pveTask("east", "n1", 3, t0-3600, "qmstop", "103", "alice@pve", t0-3500, "some error"),
	}}
	if err := w.Apply(b); err != nil {
		t.Fatal(err)
	}
	s := w.Latest().Load()
	if got := s.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	if c, ok := s.Cutoff("east", "n1"); !ok || c != t0+10 {
		t.Fatalf("Cutoff = %d, %v; want %d (the running task's start is later)", c, ok, t0+10)
	}
	if err := w.Apply(b); err != nil {
		t.Fatal(err)
	}
	if got := w.Latest().Load().Len(); got != 3 {
		t.Fatalf("after applying again: Len = %d, want 3", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openTest(t, dir, clock)
	defer w2.Close()
	got := all(w2.Latest().Load())
	want := reference(b.Tasks, task.Filter{}).Tasks
	if len(got) != len(want) {
		t.Fatalf("after reopen:\n%swant\n%s", describe(got), describe(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("after reopen:\n%swant\n%s", describe(got), describe(want))
		}
	}
}
