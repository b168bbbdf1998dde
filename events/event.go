package events

import (
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/task"
)

// Type is the kind of an event.
type Type string

// The kinds of events.
const (
	// Started: a task the cache did not hold is now running.
	Started Type = "started"
	// Finished: a task got its final status (end time and status): it
	// was running, or the cache did not hold it yet (it started and ended
	// between two polls). A finished task's status never changes later,
	// so this is also the task's only status change.
	Finished Type = "finished"
	// Reload: changes were not or cannot be delivered one by one (events
	// were lost, the resume point left the ring, a remote was dropped, a
	// backfill changed too many tasks); reload the view.
	Reload Type = "reload"
)

// Event is one change. Events are plain values; subscribers may keep them.
type Event struct {
	ID     uint64    // increasing, unique within a run of the process
	Type   Type      // started, finished or reload
	Task   task.Task // the task as it is now; zero for Reload
	Reason string    // Reload: why
	At     time.Time // when the Hub took the publish
}

// Matches reports whether an event concerns the tasks f selects: a Reload
// always does; a change when the task matches f before or after it, so a
// subscriber can add rows that start matching and remove rows that stop
// matching (a running-only view sees its tasks finish). Start and Limit
// are ignored.
func (e *Event) Matches(f *task.Filter) bool {
	if e.Type == Reload {
		return true
	}
	if f.Match(&e.Task) {
		return true
	}
	if e.Type == Finished {
		before := e.Task
		before.EndTime, before.Status = 0, ""
		return f.Match(&before)
	}
	return false
}

// Published is what the cache writer hands the Hub after a change: the
// snapshots before and after it, and the tasks it touched. Prev and Next
// are immutable; the Hub reads them in its own goroutine.
type Published struct {
	Prev, Next *cache.Snapshot
	Remote     string
	Tasks      []task.Task // the batch's tasks; the Hub does not change them
	// Reload, when set, announces a change that is not a set of task
	// changes (a remote dropped from the cache): subscribers reload.
	Reload string
}
