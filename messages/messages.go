package messages

import (
	"time"

	"github.com/taskfleet/taskfleet/backups"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/task"
)

// Tick is the supervisor's clock: sent at wall-clock multiples of a tenth
// of the tick interval, each remote's phase in the tick. A tick the
// supervisor sees more than a tick interval late is skipped.
type Tick struct {
	At time.Time // the aligned instant this tick stands for
}

// PollRemote tells a poller what is due this tick. Tracked tasks are polled
// on every PollRemote; a poller that is still busy skips it and counts that.
type PollRemote struct {
	Refresh      bool // a full incremental refresh of every node is due
	CheckRunning bool // re-check the running tasks we did not start
}

// RefreshRemote asks a poller for a full incremental refresh now. The poller
// answers RefreshDone to the sender once the batch is applied or has failed.
type RefreshRemote struct{}

// RefreshDone answers RefreshRemote.
type RefreshDone struct {
	Tasks    int           // tasks fetched
	Duration time.Duration // fetch and apply time
	Err      error
}

// TrackTask asks the cache writer to track a task started outside
// taskfleet: the remote's poller then polls its status every tick until it
// finishes. Answered by TrackTaskResult once the tracking is durable.
type TrackTask struct {
	Remote string
	UPID   task.UPID
}

// TrackTaskResult answers TrackTask.
type TrackTaskResult struct {
	Err error
}

// NodeResult says whether one node's incremental fetch since its cutoff
// completed. Only complete fetches may advance the node's cutoff.
type NodeResult struct {
	Node string
	OK   bool
}

// ApplyBatch asks the cache writer to apply a poller's batch; it answers
// BatchApplied once the batch is durable and visible in a snapshot.
type ApplyBatch struct {
	Remote string
	Seq    uint64 // the poller's fetch generation, echoed in BatchApplied
	Tasks  []task.Task
	Nodes  []NodeResult
	// Untrack lists tracked tasks seen finished in this batch; the writer
	// drops them from tracking in the same step.
	Untrack []task.UPID
}

// BatchApplied answers ApplyBatch.
type BatchApplied struct {
	Seq uint64
	Err error
}

// DropRemote tells the cache writer that a remote left the configuration:
// its tracked tasks, active tasks and cutoffs are dropped.
type DropRemote struct {
	Remote string
}

// CheckRotation asks the cache writer to rotate the archive if the newest
// file is at least one rotation interval old.
type CheckRotation struct{}

// ApplyJournal asks the cache writer to merge its journal into the archive.
type ApplyJournal struct{}

// Reconfigure gives the supervisor a new configuration: new remotes get a
// poller, removed ones are stopped and dropped, changed ones are restarted,
// and [polling] applies at once (or the whole configuration is refused).
// Answered by Reconfigured.
type Reconfigure struct {
	Config *config.Config
}

// Reconfigured answers Reconfigure with the remote ids that changed, or
// with why the configuration was refused (nothing changed then).
type Reconfigured struct {
	Added, Removed, Changed []string
	Err                     error
}

// Shutdown asks the supervisor to stop gracefully: stop the ticker, stop
// every poller (cancelling in-flight fetches), then let the cache writer
// apply what is queued, apply its journal and close. Answered by
// ShutdownDone once all of that has happened.
type Shutdown struct{}

// ShutdownDone answers Shutdown. Err is the cache's final merge or sync
// error (or why the cache writer was failing): nil only after a clean stop.
type ShutdownDone struct {
	Err error
}

// FetchFinished is posted by a poller's fetch goroutine to the poller
// itself: the statuses it checked, the nodes it fetched and the batch to
// hand to the cache writer.
type FetchFinished struct {
	Gen      uint64   // the fetch generation; results of older generations are dropped
	Refresh  bool     // it was a full refresh (the node list was renewed)
	Nodes    []string // the remote's nodes, when Refresh
	Batch    ApplyBatch
	Requests int
	Duration time.Duration
	Skipped  []error // malformed task items left out of the batch (at most MaxSkipped)
	Omitted  int     // malformed task items beyond MaxSkipped, only counted
	Gone     []GoneTask
	Clocks   []NodeClock // per node fetched with a Date header
	// Checked counts the status requests made; CheckErrors lists those that
	// failed otherwise than with a GoneTask answer (they leave the remote's
	// health alone: the next check or refresh asks again).
	Checked     int
	CheckErrors []error
	Err         error // nil when every list request succeeded
	// The guest list is asked for on a full refresh of a PVE cluster when
	// it may have changed (actors/guestlist.go).
	Guests        []backups.GuestInfo // the cluster's guest list, when GuestsFetched
	GuestsFetched bool                // the list was fetched (possibly with malformed items skipped)
	GuestsErr     error               // why the list failed or is incomplete; the remote's health ignores it
	GuestsChanged bool                // a guest-changing task ended that the list, if any, may not show
	GuestsEnd     int64               // newest end of a guest-changing task known (Unix, the remote's clock); 0: none
}

// MaxSkipped bounds FetchFinished.Skipped.
const MaxSkipped = 20
