package cache

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// fakeClock is an injectable clock for Options.Now.
type fakeClock struct{ t time.Time }

func newClock(unix int64) *fakeClock { return &fakeClock{t: time.Unix(unix, 0)} }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }
func (c *fakeClock) Unix() int64             { return c.t.Unix() }

// t0 is a start time aligned to a day, used as "now" by most tests.
const t0 = 1_700_006_400 // 2023-11-15T00:00:00Z

// pveTask returns a finished (end != 0) or running PVE task.
func pveTask(remote, node string, pid uint32, start int64, typ, id, user string, end int64, status string) task.Task {
	return task.Task{
		Remote: remote,
		UPID: task.UPID{Kind: task.PVE, Node: node, PID: pid, PStart: uint64(pid) * 7,
			StartTime: start, Type: typ, ID: id, User: user},
		EndTime: end,
		Status:  status,
	}
}

// pbsTask returns a finished or running PBS task.
func pbsTask(remote, node string, pid uint32, start int64, typ, id, user string, end int64, status string) task.Task {
	t := pveTask(remote, node, pid, start, typ, id, user, end, status)
	t.UPID.Kind = task.PBS
	t.UPID.TaskID = uint64(pid % 13)
	return t
}

// openTest opens a Writer on dir with the clock and small test settings.
func openTest(t testing.TB, dir string, clock *fakeClock, mod ...func(*Options)) *Writer {
	t.Helper()
	o := Options{Dir: dir, Now: clock.Now, Rotation: time.Hour, Retention: 4, PlainFiles: 2}
	for _, m := range mod {
		m(&o)
	}
	w, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

// all returns every task of a snapshot in list order.
func all(s *Snapshot) []task.Task {
	return s.Query(task.Filter{}).Tasks
}

// ident is a task's identity for set comparisons.
func ident(t task.Task) string { return t.Remote + "!" + t.UPID.String() }

// describe renders tasks for failure messages.
func describe(ts []task.Task) string {
	s := ""
	for _, t := range ts {
		s += fmt.Sprintf("  %s end=%d status=%q\n", ident(t), t.EndTime, t.Status)
	}
	return s
}

// reference is the naive implementation queries must agree with.
func reference(tasks []task.Task, f task.Filter) task.Page {
	sorted := append([]task.Task(nil), tasks...)
	sort.SliceStable(sorted, func(i, j int) bool { return task.Compare(sorted[i], sorted[j]) < 0 })
	var match []task.Task
	for i := range sorted {
		if f.Match(&sorted[i]) {
			match = append(match, sorted[i])
		}
	}
	p := task.Page{Total: len(match)}
	start := max(f.Start, 0)
	if start < len(match) {
		match = match[start:]
		if f.Limit > 0 && f.Limit < len(match) {
			match = match[:f.Limit]
		}
		p.Tasks = match
	}
	return p
}

// referenceStats is the naive implementation of Statistics.
func referenceStats(tasks []task.Task, f task.Filter) task.Statistics {
	st := task.Statistics{ByType: map[string]task.Counts{}, ByRemote: map[string]task.Counts{}}
	for i := range tasks {
		t := &tasks[i]
		if t.Running() || !f.Match(t) {
			continue
		}
		c := st.ByType[t.UPID.Type]
		c.Add(t.Class())
		st.ByType[t.UPID.Type] = c
		c = st.ByRemote[t.Remote]
		c.Add(t.Class())
		st.ByRemote[t.Remote] = c
	}
	return st
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
