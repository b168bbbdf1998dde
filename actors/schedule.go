package actors

import (
	"hash/fnv"
	"time"
)

// offset spreads remotes over an interval: a stable offset per remote id,
// as Prometheus spreads scrape targets (scrape/target.go), so a thousand
// remotes never fire in the same tick.
func offset(remote string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(remote))
	return time.Duration(h.Sum64() % uint64(interval))
}

// slot numbers the periods of length interval, shifted by the remote's
// offset: a remote is due whenever its slot changes.
func slot(now time.Time, off, interval time.Duration) int64 {
	if interval <= 0 {
		return now.UnixNano()
	}
	return (now.UnixNano() - int64(off)) / int64(interval)
}

// tickPhases is how many phases a tick has. The ticker fires every
// tick/tickPhases and each remote polls once a tick, at its own phase (a
// stable offset like the refresh's): a fleet's polls spread over the tick
// instead of all starting at its first instant. At 10,000 remotes a third
// of them check their running tasks at every tick, each on a new
// connection (the remotes close idle ones after 5 s); started at once,
// they share the CPU with a tracked task's status check, which is first
// for a connection permit (urgent.go) but not for the CPU. In two runs
// each, tracked p99 was 12.6 and 9.69 s without phases, 9.53 and 9.88 s
// with them (docs/benchmarks.md, "Tracked freshness at 10,000 remotes").
// A remote still polls once per tick, so a tracked task is still seen
// within one tick and a round trip.
const tickPhases = 10

// schedule decides, for one remote, when it polls and which periodic work
// a poll brings. Its zero value has never run anything, so the first
// phase after start polls every remote, refreshes and checks running
// tasks: "at start" is a property of the state, not of a counter that
// happens to start at zero.
type schedule struct {
	pollSlot    int64 // slot of the last poll; valid when polled
	refreshSlot int64 // slot of the last refresh; valid when refreshed
	runningSlot int64
	polled      bool
	refreshed   bool
	checked     bool
	phase       phase
}

// phase is a remote's offset in the tick, a multiple of tick/tickPhases,
// kept with the tick it was computed for.
type phase struct {
	tick, off time.Duration
}

// pollDue reports whether remote polls at now: once per tick, at the
// first phase tick at or after its phase (so a late phase tick is caught
// up by the next one, never doubled).
func (s *schedule) pollDue(now time.Time, remote string, tick time.Duration) bool {
	if s.phase.tick != tick {
		step := tick / tickPhases
		s.phase = phase{tick: tick}
		if step > 0 {
			s.phase.off = offset(remote, tick) / step * step
		}
		// A new tick (a reload): the remote polls at its first phase of
		// the new tick, not with the whole fleet at the next phase tick.
		s.pollSlot = slot(now, s.phase.off, tick)
	}
	ps := slot(now, s.phase.off, tick)
	if s.polled && ps == s.pollSlot {
		return false
	}
	s.polled, s.pollSlot = true, ps
	return true
}

// due returns whether a refresh and a running-task check are due at now.
func (s *schedule) due(now time.Time, remote string, refresh, running time.Duration) (doRefresh, doRunning bool) {
	rs := slot(now, offset(remote, refresh), refresh)
	if !s.refreshed || rs != s.refreshSlot {
		doRefresh = true
		s.refreshed, s.refreshSlot = true, rs
	}
	cs := slot(now, offset(remote, running), running)
	if !s.checked || cs != s.runningSlot {
		doRunning = true
		s.checked, s.runningSlot = true, cs
	}
	return doRefresh, doRunning
}

// periodic tracks a job that runs at start and then every interval
// (rotation check, journal apply). The zero value is due at once.
type periodic struct {
	last time.Time // zero: never ran, so due now
}

// due reports whether the job is due at now and, if so, records the run.
func (p *periodic) due(now time.Time, interval time.Duration) bool {
	if !p.last.IsZero() && now.Sub(p.last) < interval {
		return false
	}
	p.last = now
	return true
}

// nextTick returns the next wall-clock multiple of tick strictly after now.
func nextTick(now time.Time, tick time.Duration) time.Time {
	return now.Truncate(tick).Add(tick)
}
