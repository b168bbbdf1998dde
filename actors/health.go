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
