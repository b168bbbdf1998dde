package actors

import (
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// Health states of a remote.
const (
	StateStarting = "starting" // no poll has finished yet
	StateUp       = "up"       // the last poll succeeded
	StateDown     = "down"     // the last poll failed; retried with backoff
	StateDegraded = "degraded" // some nodes were fetched, others failed
	StateCrashing = "crashing" // its poller panicked and is restarted with backoff
)

// Health is the state of one remote's polling, for the status API and
// metrics. Values are immutable once published.
type Health struct {
	Remote              string
	Kind                task.Kind
	State               string
	LastSuccess         time.Time // zero: never
	LastError           string    // "" when the last poll succeeded
	LastErrorKind       string    // client error class, e.g. "timeout"
	LastErrorAt         time.Time
	ConsecutiveFailures int
	LastFetchDuration   time.Duration
	TasksFetched        int64 // total since start
	Nodes               []string
	Tracked             []string // tracked task UPIDs
	SkippedTicks        int64    // ticks that arrived while a poll was in flight
	Restarts            int      // poller restarts after a panic
	NextAttempt         time.Time

	// TrackingEnded lists why tracking of tasks ended, the last
	// MaxTrackingEnded, oldest first: a task that cannot be asked about is
	// recorded here, not as a failure of the remote.
	TrackingEnded []TrackingEnd
	// Settled counts running tasks settled with status "unknown" because
	// their node or their log is gone.
	Settled        int64
	MalformedItems int64 // malformed list items skipped since start
	CheckErrors    int64 // status checks that failed (the remote's health ignores them)
	// ClockSkew is the remote's clock minus ours, from its Date header.
	ClockSkew time.Duration
	// ClockBehind lists the nodes whose cutoff is ahead of their clock
	// (their clock was stepped back): they are fetched from their own
	// time until it passes the cutoff.
	ClockBehind []string
	ClockStepAt time.Time     // when a cutoff was last found ahead of its node's clock
	ClockStep   time.Duration // how far ahead it was
	// Marks are the high-water marks of the poller's bounded lists.
	Marks QueueMarks
}

// TrackingEnd says when and why tracking of a task ended.
type TrackingEnd struct {
	UPID   string
	Reason string // EndFinished, EndUntracked, EndNoTask or EndNoNode
	At     time.Time
}

// QueueMarks are the largest lengths a poller's lists reached; each stays
// within its bound.
type QueueMarks struct {
	Waiters int // refresh requests waiting (bound MaxWaiters)
	Checks  int // status requests of one poll (bound MaxStatusChecks)
	Tracked int // tracked tasks of the remote (bound MaxTracked, enforced by Track)
}

// healthCell holds the latest Health of one remote. Its poller is the only
// writer; anyone may Load it.
type healthCell struct {
	p atomic.Pointer[Health]
}

func (c *healthCell) load() Health {
	if h := c.p.Load(); h != nil {
		return *h
	}
	return Health{}
}

func (c *healthCell) store(h Health) { c.p.Store(&h) }

// healthBoard publishes the set of cells. The supervisor is the only
// writer (on reconfiguration); readers load the map and never wait.
type healthBoard struct {
	p atomic.Pointer[map[string]*healthCell]
}

// all returns the health of every configured remote, sorted by remote id.
func (b *healthBoard) all() []Health {
	m := b.p.Load()
	if m == nil {
		return nil
	}
	ids := slices.Sorted(maps.Keys(*m))
	out := make([]Health, 0, len(ids))
	for _, id := range ids {
		out = append(out, (*m)[id].load())
	}
	return out
}

// publish replaces the set of cells with a copy of cells.
func (b *healthBoard) publish(cells map[string]*healthCell) {
	m := maps.Clone(cells)
	b.p.Store(&m)
}
