package actors

import (
	"cmp"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/taskfleet/taskfleet/internal/retry"
)

// restartState counts one child's recent panics.
type restartState struct {
	failures int       // consecutive panics, reset after a quiet period
	last     time.Time // time of the last panic
}

// HandleFailure implements actor.SupervisorStrategy on the supervisor
// itself, so it runs on the supervisor's goroutine and may update its state.
//
// protoactor's own ExponentialBackoffStrategy grows linearly (in
// nanoseconds) and OneForOne gives up after a count; a poller must neither
// hammer a remote that makes it panic nor be abandoned. So: restart after
// base·2^(n-1) (with 0.5–1.5× jitter) up to a ceiling, forever; n resets
// after the child ran for ten ceilings without a panic. The writer is
// restarted the same way; it recovers from disk in Started.
func (s *supervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, msg any) {
	st := s.failures[child.Id]
	if st == nil {
		st = &restartState{}
		s.failures[child.Id] = st
	}
	now := time.Now()
	if now.Sub(st.last) > 10*s.env.restartMax {
		st.failures = 0
	}
	st.failures++
	st.last = now
	d := retry.Delay(s.env.restartBase, s.env.restartMax, st.failures)

	ev := s.env.Log.Error().Str("reason", fmt.Sprint(reason)).Int("failures", st.failures).Int64("restart_in_ms", d.Milliseconds()).Str("actor", child.Id)
	if remote, ok := s.remoteOf(child); ok {
		ev = ev.Str("remote", remote)
		if cell := s.cells[remote]; cell != nil {
			h := cell.load()
			h.State = StateCrashing
			h.Restarts++
			h.LastError, h.LastErrorKind, h.LastErrorAt = "poller panicked", "panic", now
			cell.store(h)
		}
		s.env.Metrics.PollerRestarted(remote)
	} else if child.Equal(s.writer) {
		err := fmt.Errorf("cache writer failed: %v", reason)
		s.env.writerErr.Store(&err)
		s.env.life.noteWriterFailure()
	}
	ev.Msgf("actor panicked while handling %T", msg)
	// The child's mailbox stays suspended until the restart; messages
	// queued meanwhile survive it. The timer needs no stop path: it only
	// posts a system message, which a stopped child turns into a dead letter.
	time.AfterFunc(d, func() { sup.RestartChildren(child) })
}

// remoteOf returns the remote id of a poller PID.
func (s *supervisor) remoteOf(pid *actor.PID) (string, bool) {
	for id, p := range s.pollers {
		if p.Equal(pid) {
			return id, true
		}
	}
	i := strings.LastIndex(pid.Id, "/poller/")
	if i < 0 {
		return "", false
	}
	return pid.Id[i+len("/poller/"):], true
}

// Root supervision defaults: the supervisor itself is restarted after
// RootRestartBase·2^(n-1) (0.5–1.5× jitter) up to RootRestartMax; after
// RootFailureLimit failures in a row (failures count as in a row while
// less than RootQuietPeriod passes between them) taskfleet gives up: the
// tree stops for good and Service.Done is closed.
const (
	RootRestartBase  = time.Second
	RootRestartMax   = time.Minute
	RootFailureLimit = 20
	RootQuietPeriod  = 10 * time.Minute
)

// rootStrategy supervises taskfleet's supervisor when taskfleet spawns it
// under the actor system's root (its own system, or a host's without a
// parent actor): protoactor's default there is OneForOne(10 in 10 s),
// which stops the tree silently after the 11th quick panic. It restarts
// with growing backoff and, at the documented limit, gives up loudly:
// the cause is recorded and the supervisor stopped, which closes Done.
//
// HandleFailure runs on the failing supervisor's goroutine (protoactor's
// guardian calls it synchronously); the restart runs on a timer, so the
// state is guarded by mu.
type rootStrategy struct {
	env              *Env
	base, max, quiet time.Duration
	limit            int
	mu               sync.Mutex
	failures         int
	last             time.Time
	timer            *time.Timer
	restart          func() // the pending restart, nil when none
}

func newRootStrategy(env *Env, opts Options) *rootStrategy {
	return &rootStrategy{
		env:   env,
		base:  orDefault(opts.rootBase, RootRestartBase),
		max:   orDefault(opts.rootMax, RootRestartMax),
		quiet: orDefault(opts.rootQuiet, RootQuietPeriod),
		limit: cmp.Or(opts.rootLimit, RootFailureLimit),
	}
}

// HandleFailure implements actor.SupervisorStrategy.
func (r *rootStrategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, msg any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.last) > r.quiet {
		r.failures = 0
	}
	r.failures++
	r.last = now
	if r.failures >= r.limit || r.env.life.stopping.Load() {
		err := fmt.Errorf("taskfleet supervisor failed %d times in a row (limit %d): stopped for good; last panic while handling %T: %v", r.failures, r.limit, msg, reason)
		if r.env.life.stopping.Load() {
			err = fmt.Errorf("taskfleet supervisor failed while stopping, handling %T: %v", msg, reason)
		}
		r.env.life.fail(err)
		r.env.Log.Error().Str("actor", child.Id).Int("failures", r.failures).Str("reason", fmt.Sprint(reason)).Msg("taskfleet stopped for good")
		sup.StopChildren(child)
		return
	}
	d := retry.Delay(r.base, r.max, r.failures)
	r.env.Log.Error().Str("actor", child.Id).Int("failures", r.failures).Int("failure_limit", r.limit).
		Int64("restart_in_ms", d.Milliseconds()).Str("reason", fmt.Sprint(reason)).Msgf("supervisor panicked while handling %T", msg)
	// One pending restart at most: a failure while one is pending (a
	// Started that panicked during a restart protoactor ran itself)
	// replaces it.
	if r.timer != nil {
		r.timer.Stop()
	}
	r.restart = func() { sup.RestartChildren(child) }
	r.timer = time.AfterFunc(d, r.restartNow)
}

// restartNow runs the pending restart at once (Stop calls it, so that a
// Shutdown does not wait for the backoff). Its timer needs no other stop
// path: a restart of a stopped supervisor is a dead letter.
func (r *rootStrategy) restartNow() {
	if r == nil {
		return
	}
	r.mu.Lock()
	f := r.restart
	r.restart = nil
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.mu.Unlock()
	if f != nil {
		f()
	}
}
