package messages

import (
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// FetchPanicked is posted by a poller's fetch goroutine to the poller when
// the goroutine, one of its workers or a decoder panicked: the poller then
// fails (panics in Receive) so that its supervisor restarts it.
type FetchPanicked struct {
	Gen    uint64 // the fetch generation
	Where  string // "fetch", "worker"
	Reason string // the panic value
	Stack  []byte // where it panicked
}

// UntrackTask asks the cache writer to stop tracking a task. Answered by
// UntrackTaskResult once that is durable.
type UntrackTask struct {
	Remote string
	UPID   task.UPID
}

// UntrackTaskResult answers UntrackTask.
type UntrackTaskResult struct {
	Err error
}

// GoneTask is a checked task whose status answer says it cannot be asked
// about: its node has no log of it, or the node left the cluster.
type GoneTask struct {
	UPID   task.UPID
	Reason string // proxmox.GoneNoTask or proxmox.GoneNoNode
}

// NodeClock is a reading of a node's clock taken during a fetch, and what
// the fetch did about a cutoff ahead of it.
type NodeClock struct {
	Node   string
	Skew   time.Duration // the node's clock minus ours, from its Date header
	Cutoff int64         // the node's cutoff when it was ahead of the node's clock; 0 otherwise
	Since  int64         // where the fetch started instead of Cutoff; 0 when not pulled back
}
