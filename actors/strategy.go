package actors

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
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
	d := s.env.restartBase
	for i := 1; i < st.failures && d < s.env.restartMax; i++ {
		d *= 2
	}
	d = time.Duration(float64(min(d, s.env.restartMax)) * (0.5 + rand.Float64()))

	ev := s.env.Log.Error().Str("reason", fmt.Sprint(reason)).Int("failures", st.failures).Dur("restart_in_ms", d).Str("actor", child.Id)
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
