package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/taskfleet/taskfleet/task"
)

func TestFinishedRecorder(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	r := m.NewFinishedRecorder()
	r.Declare("east", "vzdump")
	r.Add("east", "vzdump", task.StatusOK, 3)
	r.Add("east", "vzdump", task.StatusError, 1)
	r.Add("east", "vzdump", task.StatusError, 1)
	r.Add("west", "qmstart", task.StatusWarning, 2)
	r.Add("west", "qmstart", task.StatusClass(9), 1) // out of range: unknown
	r.Add("west", "qmstart", task.StatusOK, 0)       // nothing
	want := `
# HELP taskfleet_tasks_finished_total Finished tasks the cache writer added to the cache since this process started, by status class (ok, warning, error, unknown); a task is counted once.
# TYPE taskfleet_tasks_finished_total counter
taskfleet_tasks_finished_total{remote="east",status="error",type="vzdump"} 2
taskfleet_tasks_finished_total{remote="east",status="ok",type="vzdump"} 3
taskfleet_tasks_finished_total{remote="east",status="unknown",type="vzdump"} 0
taskfleet_tasks_finished_total{remote="east",status="warning",type="vzdump"} 0
taskfleet_tasks_finished_total{remote="west",status="unknown",type="qmstart"} 1
taskfleet_tasks_finished_total{remote="west",status="warning",type="qmstart"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "taskfleet_tasks_finished_total"); err != nil {
		t.Fatal(err)
	}
	// ForgetRemote leaves the series to their one writer, which forgets
	// a dropped remote in order with its batches.
	m.ForgetRemote("east")
	r.Add("east", "vzdump", task.StatusError, 1)
	if got := testutil.ToFloat64(m.outcomes.finished.WithLabelValues("east", "vzdump", "error")); got != 3 {
		t.Errorf("error count after ForgetRemote and one more = %v, want 3", got)
	}
	r.Forget("east")
	if n := testutil.CollectAndCount(m.outcomes.finished); n != 2 {
		t.Errorf("%d series after Forget(east), want west's 2", n)
	}
	r.Add("east", "vzdump", task.StatusOK, 1)
	if got := testutil.ToFloat64(m.outcomes.finished.WithLabelValues("east", "vzdump", "ok")); got != 1 {
		t.Errorf("ok count after Forget and one more = %v, want 1", got)
	}
	var nilR *FinishedRecorder
	nilR.Forget("r")
	nilR.Add("r", "t", task.StatusOK, 1)
	nilR.Declare("r", "t")
	var nilM *Metrics
	if nilM.NewFinishedRecorder() != nil {
		t.Error("a nil Metrics gave a recorder")
	}
	nilM.SetCacheCountsFunc(func() (CacheCounts, bool) { return CacheCounts{}, false })
}

// TestTypeLabelBound feeds more types than the bound, and odd ones: the
// type label never has more than len(PinnedTaskTypes)+MaxTaskTypes+1
// values, the pinned types keep theirs even when they come last, and
// every folded task is counted with its reason.
func TestTypeLabelBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	r := m.NewFinishedRecorder()
	const extra = 3 * MaxTaskTypes
	for i := range extra {
		r.Add("east", fmt.Sprintf("type%03d", i), task.StatusOK, 1)
	}
	odd := []string{"", "with space", "sp\u00e4ter", strings.Repeat("x", 49), "-dash", "a\x00b"}
	for _, typ := range odd {
		r.Add("east", typ, task.StatusError, 1)
	}
	for _, p := range PinnedTaskTypes {
		r.Add("east", p, task.StatusError, 1)
	}
	r.Add("east", "other", task.StatusOK, 1) // a real type "other": not folded

	types := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "taskfleet_tasks_finished_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "type" {
					types[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	if bound := len(PinnedTaskTypes) + MaxTaskTypes + 1; len(types) != bound {
		t.Errorf("%d type label values, want the bound %d", len(types), bound)
	}
	for _, p := range PinnedTaskTypes {
		if types[p] != 1 {
			t.Errorf("pinned type %s counted %v, want 1 under its own label", p, types[p])
		}
	}
	if want := float64(extra - MaxTaskTypes + len(odd) + 1); types[OtherType] != want {
		t.Errorf("type other counted %v, want %v", types[OtherType], want)
	}
	if got := testutil.ToFloat64(m.outcomes.folded.WithLabelValues("cap")); got != extra-MaxTaskTypes {
		t.Errorf("folded{cap} = %v, want %d", got, extra-MaxTaskTypes)
	}
	if got := testutil.ToFloat64(m.outcomes.folded.WithLabelValues("malformed")); got != float64(len(odd)) {
		t.Errorf("folded{malformed} = %v, want %d", got, len(odd))
	}
	// Once admitted, a type keeps its label; one refused keeps folding.
	r2 := m.NewFinishedRecorder()
	r2.Add("west", "type000", task.StatusOK, 1)
	r2.Add("west", fmt.Sprintf("type%03d", extra-1), task.StatusOK, 1)
	if got := testutil.ToFloat64(m.outcomes.finished.WithLabelValues("west", "type000", "ok")); got != 1 {
		t.Errorf("admitted type000 on another remote = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.outcomes.finished.WithLabelValues("west", OtherType, "ok")); got != 1 {
		t.Errorf("refused type on another remote under other = %v, want 1", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestCacheCounts(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	if n := testutil.CollectAndCount(m.outcomes.counts); n != 0 {
		t.Errorf("%d series before SetCacheCountsFunc, want 0", n)
	}
	ok := false
	m.SetCacheCountsFunc(func() (CacheCounts, bool) {
		return CacheCounts{
			Running: map[RemoteType]int{
				{"east", "vzdump"}: 2, {"east", "qmstart"}: 1, {"east", "bad type"}: 1, {"east", "other"}: 1,
			},
			Finished: map[string]task.Counts{
				"east": {OK: 5, Error: 1},
				"west": {Warning: 1, Unknown: 2},
			},
		}, ok
	})
	if n := testutil.CollectAndCount(m.outcomes.counts); n != 0 {
		t.Errorf("%d series while there is no snapshot, want 0", n)
	}
	ok = true
	want := `
# HELP taskfleet_tasks_running Running tasks in the cache.
# TYPE taskfleet_tasks_running gauge
taskfleet_tasks_running{remote="east",type="other"} 2
taskfleet_tasks_running{remote="east",type="qmstart"} 1
taskfleet_tasks_running{remote="east",type="vzdump"} 2
# HELP taskfleet_tasks_finished_cached Finished tasks the cache holds (its retention), by status class: the archive's totals beside taskfleet_tasks_finished_total.
# TYPE taskfleet_tasks_finished_cached gauge
taskfleet_tasks_finished_cached{remote="east",status="error"} 1
taskfleet_tasks_finished_cached{remote="east",status="ok"} 5
taskfleet_tasks_finished_cached{remote="east",status="unknown"} 0
taskfleet_tasks_finished_cached{remote="east",status="warning"} 0
taskfleet_tasks_finished_cached{remote="west",status="error"} 0
taskfleet_tasks_finished_cached{remote="west",status="ok"} 0
taskfleet_tasks_finished_cached{remote="west",status="unknown"} 2
taskfleet_tasks_finished_cached{remote="west",status="warning"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "taskfleet_tasks_running", "taskfleet_tasks_finished_cached"); err != nil {
		t.Fatal(err)
	}
	m.SetCacheCountsFunc(nil)
	if n := testutil.CollectAndCount(m.outcomes.counts); n != 0 {
		t.Errorf("%d series after SetCacheCountsFunc(nil), want 0", n)
	}
}
