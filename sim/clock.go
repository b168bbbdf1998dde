package sim

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// clock is a remote's clock, as offsets from the fleet's clock that
// change in steps (NTP correcting a clock that ran ahead, an operator
// setting it). A node writes every time it reads (a task's start and end,
// the Date header) with the offset in force when it reads it, so a task
// keeps the times it got. The zero clock (and a nil one) is the fleet's.
type clock struct {
	mu    sync.RWMutex
	steps []clockStep // by from
}

// clockStep is an offset in force from the fleet time from on.
type clockStep struct {
	from   int64 // fleet time, Unix seconds
	offset int64 // seconds ahead of the fleet's clock
}

// offsetAt returns the offset in force at fleet time t.
func (c *clock) offsetAt(t int64) int64 {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var off int64
	for _, s := range c.steps {
		if s.from > t {
			break
		}
		off = s.offset
	}
	return off
}

// stamp returns how the remote writes fleet time t.
func (c *clock) stamp(t int64) int64 { return t + c.offsetAt(t) }

// offsets returns every offset the clock ever had, 0 included.
func (c *clock) offsets() []int64 {
	out := []int64{0}
	if c == nil {
		return out
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.steps {
		if !slices.Contains(out, s.offset) {
			out = append(out, s.offset)
		}
	}
	return out
}

// step sets the offset from fleet time from on (from is not before the
// last step: time runs forward).
func (c *clock) step(from, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.steps); n > 0 && c.steps[n-1].from >= from {
		c.steps[n-1].offset = offset
		return
	}
	c.steps = append(c.steps, clockStep{from: from, offset: offset})
}

// SetClockOffset steps the clock of every node of a remote: from the
// fleet's time now on, they read the fleet's time plus offset (negative:
// behind). Tasks keep the start and end times they were written with, so
// setting +2h and later 0 is a clock that ran two hours ahead and was
// corrected: the tasks started after the correction have start times up
// to two hours before those of the tasks started just before it. The
// Date header of every answer follows the remote's clock.
func (f *Fleet) SetClockOffset(remoteID string, offset time.Duration) error {
	r, _ := f.lookup(remoteID, "")
	if r == nil {
		return fmt.Errorf("set clock offset: no remote %q", remoteID)
	}
	now := f.now()
	r.clock.step(now+1, int64(offset/time.Second))
	f.log.Debug().Str("remote", remoteID).Dur("offset_ms", offset).Msg("clock stepped")
	return nil
}

// RemoteNow returns a remote's time: the fleet's clock read with the
// remote's offset.
func (f *Fleet) RemoteNow(remoteID string) time.Time {
	r, _ := f.lookup(remoteID, "")
	now := f.now()
	if r == nil {
		return time.Unix(now, 0)
	}
	return time.Unix(r.clock.stamp(now), 0)
}

// date is the Date header of an answer: the remote's time.
func (s *nodeServer) date() string {
	return time.Unix(s.n.remote.clock.stamp(s.f.now()), 0).UTC().Format(http.TimeFormat)
}
