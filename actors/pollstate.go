package actors

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// Bounds of a poller's lists.
const (
	// MaxWaiters bounds the RefreshRemote senders waiting for one remote's
	// next refresh; one more is answered at once with ErrTooManyWaiters.
	// Requests without a sender only mark a refresh due (coalesced).
	MaxWaiters = 64
	// MaxTracked bounds the tracked tasks of one remote (Track refuses
	// more); all of them are asked about on every poll.
	MaxTracked = 20
	// MaxTrackingEnded bounds Health.TrackingEnded.
	MaxTrackingEnded = 16
)

// Names of the bounded queues in metrics (label "queue").
const (
	queueWaiters = "refresh_waiters" // RefreshRemote senders waiting
	queueRefresh = "refresh"         // refreshes due while one runs (coalesced into one)
	queueChecks  = "status_checks"   // running tasks left for the next check (rotation)
	queueTracked = "tracked"         // tracked tasks of the remote
)

// ErrTooManyWaiters answers a RefreshRemote when MaxWaiters requests wait
// for the same remote already.
var ErrTooManyWaiters = errors.New("too many refresh requests waiting for this remote")

// Reasons tracking ends (Health.TrackingEnded, metrics).
const (
	EndFinished  = "finished"         // the task finished and its end is in the cache
	EndUntracked = "untracked"        // DELETE …/track
	EndNoTask    = proxmox.GoneNoTask // the node has no log of it
	EndNoNode    = proxmox.GoneNoNode // the node is not in the cluster
)

// addWaiter records who waits for the next refresh. It returns false when
// nothing more is to be done: a request without a sender while a refresh
// is already due or running (coalesced), or one over MaxWaiters (answered
// with ErrTooManyWaiters).
func (p *poller) addWaiter(c actor.Context, w *actor.PID) bool {
	id := p.deps.remote.ID
	if w == nil {
		if p.busy || p.pending || len(p.waiters) > 0 {
			p.pending = true
			p.deps.metrics.QueueCoalesced(id, queueRefresh)
			return false
		}
		return true
	}
	if len(p.waiters) >= MaxWaiters {
		p.deps.metrics.QueueDropped(id, queueWaiters)
		c.Send(w, &messages.RefreshDone{Err: ErrTooManyWaiters})
		return false
	}
	p.waiters = append(p.waiters, w)
	p.mark(&p.health.Marks.Waiters, len(p.waiters), queueWaiters)
	return true
}

// mark raises a high-water mark.
func (p *poller) mark(hw *int, n int, queue string) {
	if n > *hw {
		*hw = n
		p.deps.metrics.QueueHighWater(p.deps.remote.ID, queue, n)
		if p.deps.health != nil {
			p.publish()
		}
	}
}

// toCheck returns the tasks whose status this poll asks: every tracked
// task, and with running the running tasks in rotation, starting after the
// last one checked, up to MaxStatusChecks in all. Every running task is
// so asked about within ceil(running / (MaxStatusChecks - MaxTracked))
// running-task checks.
func (p *poller) toCheck(running bool) []task.UPID {
	id := p.deps.remote.ID
	snap := p.deps.latest.Load()
	tracked := snap.Tracked(id)
	p.mark(&p.health.Marks.Tracked, len(tracked), queueTracked)
	check := tracked[:min(len(tracked), MaxTracked)]
	if !running {
		return check
	}
	seen := map[task.UPID]bool{}
	for _, u := range check {
		seen[u] = true
	}
	var rest []string
	byText := map[string]task.UPID{}
	for _, t := range snap.Running(id) {
		if !seen[t.UPID] {
			s := t.UPID.String()
			if _, dup := byText[s]; !dup {
				byText[s] = t.UPID
				rest = append(rest, s)
			}
		}
	}
	slices.Sort(rest)
	room := MaxStatusChecks - len(check)
	if len(rest) > room {
		p.deps.metrics.QueueCoalescedN(id, queueChecks, len(rest)-room)
	}
	first, _ := slices.BinarySearch(rest, p.rotor+"\x00")
	for k := 0; k < min(room, len(rest)); k++ {
		s := rest[(first+k)%len(rest)]
		check = append(check, byText[s])
		p.rotor = s
	}
	p.mark(&p.health.Marks.Checks, len(check), queueChecks)
	return check
}

// observeFetch takes in what a fetch saw besides its batch: malformed
// items, failed status checks and the nodes' clocks. Repeated conditions
// are logged when they begin and end, never on every poll.
func (p *poller) observeFetch(m *messages.FetchFinished) {
	id, log := p.deps.remote.ID, p.deps.log
	if n := len(m.Skipped) + m.Omitted; n > 0 {
		p.health.MalformedItems += int64(n)
		p.deps.metrics.MalformedItems(id, n)
		p.malformed.seen(log, n, m.Skipped[0])
	} else if m.Refresh && len(m.Nodes) > 0 && m.Err == nil {
		// Only a full refresh lists every node (detect.go).
		p.malformed.clear(log)
	}
	if n := len(m.CheckErrors); n > 0 {
		p.health.CheckErrors += int64(n)
		p.deps.metrics.StatusCheckFailed(id, n)
		p.checkErrs.seen(log, n, m.CheckErrors[0])
	} else if m.Checked > 0 {
		p.checkErrs.clear(log)
	}
	if m.Refresh && len(m.Nodes) > 0 {
		p.forgetLeftNodes(m.Nodes)
	}
	now := time.Now()
	for i, c := range m.Clocks {
		p.clocks[c.Node] = proxmox.Clock{Remote: now.Add(c.Skew), Local: now}
		if i == 0 {
			p.health.ClockSkew = c.Skew
			p.deps.metrics.SetClockSkew(id, c.Skew)
		}
		// A node stays "behind" until its clock passes the cutoff found
		// ahead of it (the cache may lower and raise the cutoff meanwhile:
		// that is no new step).
		remoteNow := now.Add(c.Skew).Unix()
		ahead, behind := p.pulled[c.Node]
		switch {
		case c.Since != 0 && !behind:
			p.pulled[c.Node] = c.Cutoff
			step := time.Duration(c.Cutoff-remoteNow) * time.Second
			p.health.ClockStepAt, p.health.ClockStep = now, step
			p.deps.metrics.CutoffPulledBack(id)
			log.Warn().Str("node", c.Node).Dur("ahead_ms", step).Dur("skew_ms", c.Skew).
				Msg("node clock behind its cutoff (clock stepped back): fetching from the node's time")
		case c.Since != 0:
			p.pulled[c.Node] = max(ahead, c.Cutoff)
		case behind && remoteNow > ahead:
			delete(p.pulled, c.Node)
			log.Info().Str("node", c.Node).Msg("node clock caught up with its cutoff")
		}
	}
	p.health.ClockBehind = p.health.ClockBehind[:0:0]
	for n := range p.pulled {
		p.health.ClockBehind = append(p.health.ClockBehind, n)
	}
	slices.Sort(p.health.ClockBehind)
}

// forgetLeftNodes drops the per-node state of the nodes that are not in
// nodes, the node list of a refresh: a node that left the cluster is
// neither behind nor failing, and its clock and last fetch are forgotten.
func (p *poller) forgetLeftNodes(nodes []string) {
	in := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		in[n] = true
	}
	keepNodes(p.clocks, in)
	keepNodes(p.lastOK, in)
	keepNodes(p.pulled, in)
	keepNodes(p.failing, in)
}

// keepNodes deletes from m the nodes not in in.
func keepNodes[V any](m map[string]V, in map[string]bool) {
	maps.DeleteFunc(m, func(n string, _ V) bool { return !in[n] })
}

// applied takes in a batch the writer made durable: the nodes fetched
// completely, the tasks settled and the tracking that ended.
func (p *poller) applied(m *messages.FetchFinished) {
	id, log := p.deps.remote.ID, p.deps.log
	for _, n := range m.Batch.Nodes {
		if n.OK {
			p.lastOK[n.Node] = p.started
		}
	}
	gone := map[task.UPID]string{}
	for _, g := range m.Gone {
		gone[g.UPID] = g.Reason
	}
	untracked := map[task.UPID]bool{}
	for _, u := range m.Batch.Untrack {
		untracked[u] = true
		reason, ok := gone[u]
		if !ok {
			reason = EndFinished
		}
		p.trackingEnded(u, reason)
	}
	// A tracked task is settled, besides ending tracking, when its node
	// left the cluster (fetchJob.nodeLeft): the batch has its end.
	settledTracked := map[task.UPID]bool{}
	for _, t := range m.Batch.Tasks {
		if untracked[t.UPID] && t.Status == settleStatus {
			settledTracked[t.UPID] = true
		}
	}
	settled := map[string]int{}
	for _, g := range m.Gone {
		if !untracked[g.UPID] || settledTracked[g.UPID] {
			settled[g.Reason]++
		}
	}
	for reason, n := range settled {
		p.health.Settled += int64(n)
		p.deps.metrics.TasksSettled(id, reason, n)
		log.Info().Int("tasks", n).Str("reason", reason).Msg("running tasks that can no longer be asked about settled as unknown")
	}
}

// trackingEnded records why tracking of u ended, on the remote's health
// (the last MaxTrackingEnded) and in metrics.
func (p *poller) trackingEnded(u task.UPID, reason string) {
	p.deps.metrics.TrackingEnded(p.deps.remote.ID, reason)
	if reason != EndFinished {
		p.deps.log.Info().Str("upid", u.String()).Str("reason", reason).Msg("tracking ended: the task cannot be asked about")
	}
	ends := append(slices.Clone(p.health.TrackingEnded), TrackingEnd{UPID: u.String(), Reason: reason, At: time.Now()})
	if len(ends) > MaxTrackingEnded {
		ends = ends[len(ends)-MaxTrackingEnded:]
	}
	p.health.TrackingEnded = ends
}

// condition is a repeated condition of a remote (malformed items in its
// lists, failing status checks): logged when it begins, with the first
// error, and when it ends, with how often it was seen.
type condition struct {
	what   string
	active bool
	count  int64
	since  time.Time
}

func (c *condition) seen(log zerolog.Logger, n int, sample error) {
	if !c.active {
		c.active, c.count, c.since = true, 0, time.Now()
		log.Warn().Err(sample).Int("count", n).Msg(c.what)
	}
	c.count += int64(n)
}

func (c *condition) clear(log zerolog.Logger) {
	if !c.active {
		return
	}
	c.active = false
	log.Info().Int64("count", c.count).Dur("duration_ms", time.Since(c.since)).Msg(strings.TrimSpace(c.what) + ": no longer")
}
