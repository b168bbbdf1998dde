package cache

import (
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestDropRemoteThenAddBack drops a remote and applies a batch of it again
// (a reload removed it and a later one added it back): the batch applies
// with a fresh cutoff, live and after a reopen (the chaos soak found
// setCutoff writing to the dropped remote's nil map, which failed every
// later Open as well).
func TestDropRemoteThenAddBack(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0 + 1800)
	w := openTest(t, dir, clock)
	first := pveTask("east", "n1", 1, t0+10, "vzdump", "", "root@pam", t0+20, "OK")
	if err := w.Apply(Batch{Remote: "east", Nodes: []NodeResult{{Node: "n1", OK: true}}, Tasks: []task.Task{first}}); err != nil {
		t.Fatal(err)
	}
	if err := w.DropRemote("east"); err != nil {
		t.Fatal(err)
	}
	again := pveTask("east", "n1", 2, t0+30, "vzdump", "", "root@pam", t0+40, "OK")
	if err := w.Apply(Batch{Remote: "east", Nodes: []NodeResult{{Node: "n1", OK: true}}, Tasks: []task.Task{again}}); err != nil {
		t.Fatal(err)
	}
	if c, ok := w.Latest().Load().Cutoff("east", "n1"); !ok || c != again.UPID.StartTime {
		t.Fatalf("cutoff after adding back = %d, %v; want %d", c, ok, again.UPID.StartTime)
	}
	w.Abandon() // the journal is replayed by the next Open
	w = openTest(t, dir, clock)
	defer w.Close()
	if c, ok := w.Latest().Load().Cutoff("east", "n1"); !ok || c != again.UPID.StartTime {
		t.Fatalf("cutoff after reopen = %d, %v; want %d", c, ok, again.UPID.StartTime)
	}
}
