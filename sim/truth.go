package sim

import (
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/taskfleet/taskfleet/task"
)

// GroundTruth returns every task the fleet has produced up to now, in its
// current state (running tasks have EndTime 0 and no Status), sorted by
// task.Compare. Tasks of removed nodes are included as they were at
// removal. It regenerates the history, so it costs about as much as
// generating it did; see Truth for one remote.
func (f *Fleet) GroundTruth() []task.Task {
	f.mu.RLock()
	ids := slices.Clone(f.ids)
	f.mu.RUnlock()
	parts := make([][]task.Task, len(ids))
	for i, id := range ids {
		parts[i] = f.truth(id)
	}
	out := slices.Concat(parts...)
	sortTasks(out)
	return out
}

// Truth is GroundTruth for one remote.
func (f *Fleet) Truth(remoteID string) []task.Task {
	out := f.truth(remoteID)
	sortTasks(out)
	return out
}

func (f *Fleet) truth(remoteID string) []task.Task {
	r, _ := f.lookup(remoteID, "")
	if r == nil {
		return nil
	}
	f.mu.RLock()
	acts := slices.Clone(r.retired)
	for _, n := range r.nodes {
		acts = append(acts, n.act)
	}
	f.mu.RUnlock()
	now := f.now()
	var out []task.Task
	for _, a := range acts {
		a.mu.Lock()
		a.advance(now)
		for _, rp := range a.history() {
			out = append(out, a.task(remoteID, &rp, a.frontier))
		}
		a.mu.Unlock()
	}
	return out
}

// Held returns the tasks a remote holds now: on each node the running
// tasks and the finished ones still in its index, i.e. everything a
// complete fetch can get (offline nodes included), sorted by
// task.Compare.
func (f *Fleet) Held(remoteID string) []task.Task {
	r, _ := f.lookup(remoteID, "")
	if r == nil {
		return nil
	}
	now := f.now()
	var out []task.Task
	for _, n := range f.nodesOf(r) {
		a := n.act
		a.mu.Lock()
		a.advance(now)
		for i := range a.running {
			out = append(out, a.task(remoteID, &a.running[i], a.frontier))
		}
		for k := range a.index.len() {
			out = append(out, a.task(remoteID, a.index.newest(k), a.frontier))
		}
		a.mu.Unlock()
	}
	sortTasks(out)
	return out
}

// task converts r to a task.Task as of time now; the caller holds a.mu.
func (a *activity) task(remoteID string, r *rec, now int64) task.Task {
	t := task.Task{Remote: remoteID, UPID: a.upid(r)}
	if r.end() <= now {
		t.EndTime, t.Status = a.endStamp(r), statuses[r.status]
	}
	return t
}

// StartTask starts a task on a node as if the client had started it (the
// user is the remote's API token): it runs for d of the fleet's clock
// (rounded up to whole seconds, at least one) and finishes OK. typ is the
// worker type, id the worker id (may be empty). It returns the task's
// UPID, or the zero UPID when the remote or node does not exist or typ or
// id are not valid in a UPID.
func (f *Fleet) StartTask(remoteID, nodeName, typ, id string, d time.Duration) task.UPID {
	_, n := f.lookup(remoteID, nodeName)
	if n == nil || !validStartTask(n.remote.kind, typ, id) {
		return task.UPID{}
	}
	secs := int64(math.Ceil(d.Seconds()))
	now := f.now()
	a := n.act
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	if now > a.until {
		return task.UPID{}
	}
	r := a.add(typ, id, userToken, now, secs)
	return a.upid(&r)
}

// validStartTask checks a worker type and id against the UPID grammar:
// valid UTF-8 without colon, white space or '/'; a PBS id may hold
// anything printable, it is escaped.
func validStartTask(kind task.Kind, typ, id string) bool {
	bad := func(r rune) bool { return unicode.IsSpace(r) || r == ':' || r == '/' || r == utf8.RuneError }
	if typ == "" || strings.ContainsFunc(typ, bad) || !utf8.ValidString(typ) || !utf8.ValidString(id) {
		return false
	}
	if kind == task.PBS {
		return !strings.ContainsFunc(id, unicode.IsControl)
	}
	return !strings.ContainsFunc(id, bad)
}

// sortTasks sorts like task.Compare, formatting each UPID once and
// moving each task once.
func sortTasks(ts []task.Task) {
	upids := make([]string, len(ts))
	perm := make([]int32, len(ts))
	for i := range ts {
		upids[i] = ts[i].UPID.String()
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(i, j int32) int {
		a, b := &ts[i], &ts[j]
		if a.UPID.StartTime != b.UPID.StartTime {
			if a.UPID.StartTime > b.UPID.StartTime {
				return -1
			}
			return 1
		}
		if c := strings.Compare(upids[i], upids[j]); c != 0 {
			return c
		}
		return strings.Compare(a.Remote, b.Remote)
	})
	sorted := make([]task.Task, len(ts))
	for k, i := range perm {
		sorted[k] = ts[i]
	}
	copy(ts, sorted)
}
