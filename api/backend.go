package api

import (
	"context"
	"errors"

	"github.com/taskfleet/taskfleet/task"
)

// Backend is what the API serves. Its methods are called concurrently, one
// call per request, with the request's context, and must not block on
// remotes except Refresh with wait.
type Backend interface {
	// Tasks returns the tasks matching f, newest first (task.Compare),
	// skipping f.Start and returning at most f.Limit (0: all), and the
	// number of all matching tasks. It must honor f.Scope.
	Tasks(ctx context.Context, f task.Filter) (task.Page, error)
	// Statistics counts the finished tasks matching f (Start and Limit
	// aside). It must honor f.Scope.
	Statistics(ctx context.Context, f task.Filter) (task.Statistics, error)
	// Track polls the task on every tick until it finishes. It returns an
	// error wrapping ErrUnknownRemote if remote is not configured, and one
	// wrapping ErrInvalidTask if the UPID cannot belong to the remote
	// (a PBS UPID for a PVE remote).
	Track(ctx context.Context, remote string, upid task.UPID) error
	// Untrack stops tracking a task. It returns an error wrapping
	// ErrUnknownRemote if remote is not configured, and one wrapping
	// ErrNotTracked if the task is not tracked.
	Untrack(ctx context.Context, remote string, upid task.UPID) error
	// Refresh fetches the given remotes (all when none are given) now.
	// With wait it returns when each remote's fetch has finished or
	// failed, with one result per remote; without wait it returns once the
	// fetches are scheduled. It returns an error wrapping ErrUnknownRemote
	// if a remote is not configured, and ctx's error when ctx ends first.
	Refresh(ctx context.Context, wait bool, remotes ...string) ([]RefreshResult, error)
	// Remotes returns the health of every configured remote.
	Remotes(ctx context.Context) []RemoteStatus
	// Reload re-reads the configuration and applies it. An invalid file
	// returns an error wrapping ErrConfigRejected.
	Reload(ctx context.Context) error
	// Ready returns nil when the cache is loaded, queries are answered and
	// the cache takes writes, and otherwise why not (the cache loading, a
	// failing disk); /readyz answers 503 with it.
	Ready(ctx context.Context) error
	// HasRemote reports whether a remote with this id is configured.
	HasRemote(ctx context.Context, id string) bool
}

// ErrUnknownRemote is returned (wrapped) by a Backend for a remote id that
// is not configured; the API answers 404.
var ErrUnknownRemote = errors.New("unknown remote")

// ErrConfigRejected is returned (wrapped) by Backend.Reload when the
// configuration file is invalid; the rest of the error's text must be fit
// for the caller (it names the problems, never a secret). The API answers
// 422 with it: a 5xx would hide the message.
var ErrConfigRejected = errors.New("configuration rejected")

// ErrInvalidTask is returned (wrapped) by Backend.Track for a UPID that
// cannot be a task of the remote; the API answers 400.
var ErrInvalidTask = errors.New("invalid task for this remote")

// RefreshResult is the outcome of refreshing one remote.
type RefreshResult struct {
	Remote   string  `json:"remote"`
	Error    string  `json:"error,omitempty"` // why the fetch failed; "" on success
	Tasks    int     `json:"tasks"`           // tasks fetched (new or changed)
	Duration float64 `json:"duration"`        // seconds the fetch took
}

// RemoteStatus is the health of one remote, as kept by its poller.
type RemoteStatus struct {
	Remote string `json:"remote"`
	Type   string `json:"type"` // "pve" or "pbs"
	// State is the poller's state: "starting", "up", "down", "degraded"
	// (some nodes failed) or "crashing" (the poller panicked and restarts).
	State               string   `json:"state"`
	LastSuccess         int64    `json:"last_success,omitempty"`    // Unix time of the last successful fetch; 0: never
	LastError           string   `json:"last_error,omitempty"`      // message of the last failure
	LastErrorTime       int64    `json:"last_error_time,omitempty"` // Unix time of the last failure; 0: never
	ConsecutiveFailures int      `json:"consecutive_failures"`
	LastFetchDuration   float64  `json:"last_fetch_duration"` // seconds
	Nodes               []string `json:"nodes"`               // node names from the last node list
	Tracked             []string `json:"tracked"`             // remote UPIDs of tracked tasks
	TasksFetched        int      `json:"tasks_fetched"`       // tasks fetched since start

	// TrackingEnded says why tracking of tasks ended (the last few),
	// e.g. "no such task": recorded on the task, not as a failure.
	TrackingEnded []TrackingEnd `json:"tracking_ended,omitempty"`
	Settled       int           `json:"settled,omitempty"`    // running tasks settled as unknown (node or log gone)
	ClockSkew     float64       `json:"clock_skew,omitempty"` // seconds the remote's clock is ahead of ours
	// ClockBehind lists nodes whose cutoff is ahead of their clock (it was
	// stepped back); they are fetched from their own time meanwhile.
	ClockBehind   []string `json:"clock_behind,omitempty"`
	ClockStep     float64  `json:"clock_step,omitempty"`      // seconds a cutoff was ahead when last found so
	ClockStepTime int64    `json:"clock_step_time,omitempty"` // Unix time it was found
}

// TrackingEnd is why tracking of one task ended.
type TrackingEnd struct {
	UPID   string `json:"upid"`   // remote UPID
	Reason string `json:"reason"` // "finished", "untracked", "no such task", "no such node"
	Time   int64  `json:"time"`
}
