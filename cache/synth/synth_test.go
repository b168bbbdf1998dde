package synth

import (
	"reflect"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

func TestSynthetic(t *testing.T) {
	const n = 20_000
	tasks := Synthetic(n, 50, 7, 1)
	if len(tasks) != n {
		t.Fatalf("%d tasks, want %d", len(tasks), n)
	}
	if again := Synthetic(n, 50, 7, 1); !reflect.DeepEqual(again, tasks) {
		t.Fatal("same arguments, different tasks")
	}
	end := End.Unix()
	seen := map[string]bool{}
	var classes [4]int
	remotes := map[string]bool{}
	running := 0
	for i, tk := range tasks {
		if i > 0 && tk.UPID.StartTime < tasks[i-1].UPID.StartTime {
			t.Fatal("not sorted by start time")
		}
		if tk.UPID.StartTime < end-7*86400 || tk.UPID.StartTime >= end {
			t.Fatalf("start %d outside the 7 days before %d", tk.UPID.StartTime, end)
		}
		text := tk.UPID.String()
		if _, err := task.ParseUPID(text); err != nil {
			t.Fatalf("invalid upid %q: %v", text, err)
		}
		if k := tk.Remote + "!" + text; seen[k] {
			t.Fatalf("task %s twice", k)
		} else {
			seen[k] = true
		}
		remotes[tk.Remote] = true
		if tk.Running() {
			running++
			continue
		}
		classes[tk.Class()]++
	}
	if len(remotes) != 50 {
		t.Fatalf("%d remotes, want 50", len(remotes))
	}
	finished := n - running
	if ok := float64(classes[task.StatusOK]) / float64(finished); ok < 0.9 || ok > 0.96 {
		t.Fatalf("%.3f of the tasks ok, want about 0.93", ok)
	}
	if running == 0 || running > n/100 {
		t.Fatalf("%d running tasks, want a few", running)
	}
}
