package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/task"
)

// ErrInvalidTrack is returned (wrapped) by Track for a request that cannot
// be right: a UPID of the other product, a node that is not in the
// remote's cluster, a task that starts in the remote's future, or one
// task more than MaxTracked.
var ErrInvalidTrack = errors.New("invalid track request")

// ErrNotTracked is returned (wrapped) by Untrack for a task that is not
// tracked.
var ErrNotTracked = errors.New("task not tracked")

// futureSlack is how far in the remote's future a tracked task may start
// (clocks and the Date header's resolution).
const futureSlack = 5 * time.Minute

// checkTrack checks a track request at once, so that a task that cannot
// exist is refused with a reason instead of being polled: the UPID must be
// of the remote's product and well-formed, its node one of the cluster's
// nodes (once the remote's node list is known), its start not in the
// remote's future, and the remote must track fewer than MaxTracked tasks.
// The caller holds trackMu, so the count stays exact.
func (s *Service) checkTrack(remote string, upid task.UPID) error {
	r, ok := s.env.remote(remote)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownRemote, remote)
	}
	if upid.Kind != r.Type {
		return fmt.Errorf("%w: remote %q is a %v remote and the upid a %v one", ErrInvalidTrack, remote, r.Type, upid.Kind)
	}
	if _, err := task.ParseUPID(upid.String()); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidTrack, err)
	}
	h, known := s.health(remote)
	if known && upid.Kind == task.PVE && len(h.Nodes) > 0 && !slices.Contains(h.Nodes, upid.Node) {
		return fmt.Errorf("%w: node %q is not in the cluster of remote %q (nodes %s)", ErrInvalidTrack, upid.Node, remote, strings.Join(h.Nodes, ", "))
	}
	// (Not when a benchmark runs the remotes' clocks faster than ours:
	// SetTimeScale. Then the skew measured at the last fetch is stale.)
	if now := time.Now().Add(h.ClockSkew); timeScale.Load() <= 1 && upid.StartTime > now.Add(futureSlack).Unix() {
		return fmt.Errorf("%w: the task starts at %s, in the future of remote %q (its time is %s)", ErrInvalidTrack,
			time.Unix(upid.StartTime, 0).UTC().Format(time.RFC3339), remote, now.UTC().Format(time.RFC3339))
	}
	if snap := s.latest.Load(); snap != nil {
		tracked := snap.Tracked(remote)
		if !slices.Contains(tracked, upid) && len(tracked) >= MaxTracked {
			s.env.Metrics.QueueDropped(remote, queueTracked)
			return fmt.Errorf("%w: remote %q tracks %d tasks already, the most it may", ErrInvalidTrack, remote, len(tracked))
		}
	}
	return nil
}

// health returns the published health of a remote.
func (s *Service) health(remote string) (Health, bool) {
	for _, h := range s.env.Board.all() {
		if h.Remote == remote {
			return h, true
		}
	}
	return Health{}, false
}

// Untrack stops tracking a task. The task stays in the cache as the lists
// report it (a running task that was only tracked leaves the running
// set). It returns once that is durable, an error wrapping ErrNotTracked
// when the task is not tracked and one wrapping ErrUnknownRemote for a
// remote that is not configured.
func (s *Service) Untrack(ctx context.Context, remote string, upid task.UPID) error {
	if !s.HasRemote(remote) {
		return fmt.Errorf("untrack %s: %w %q", upid, ErrUnknownRemote, remote)
	}
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	snap := s.latest.Load()
	if snap == nil {
		return fmt.Errorf("untrack %s: %w", upid, ErrNotReady)
	}
	if !slices.Contains(snap.Tracked(remote), upid) {
		return fmt.Errorf("untrack %s: %w", task.RemoteUPID{Remote: remote, UPID: upid}, ErrNotTracked)
	}
	res, err := s.request(ctx, s.childPID(WriterName), &messages.UntrackTask{Remote: remote, UPID: upid})
	if err != nil {
		return fmt.Errorf("untrack %s: %w", upid, err)
	}
	r, ok := res.(*messages.UntrackTaskResult)
	if !ok {
		return fmt.Errorf("untrack %s: unexpected answer %T", upid, res)
	}
	if r.Err == nil {
		s.env.Metrics.TrackingEnded(remote, EndUntracked)
	}
	return r.Err
}
