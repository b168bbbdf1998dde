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

// schedule decides, for one remote, which periodic work a tick brings. Its
// zero value has never run anything, so the first tick after start always
// refreshes and checks running tasks: "at start" is a property of the
// state, not of a counter that happens to start at zero.
type schedule struct {
	refreshSlot int64 // slot of the last refresh; valid when refreshed
	runningSlot int64
	refreshed   bool
	checked     bool
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
