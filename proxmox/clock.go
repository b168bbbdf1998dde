package proxmox

import (
	"net/http"
	"time"
)

// Clock is a reading of a remote's clock: the Date header of an answer
// (one-second resolution) and our time when it arrived. Task start times
// are written with the remote's clock, so a poller compares its cutoffs
// with this clock, not with its own.
type Clock struct {
	Remote time.Time // the Date header; zero when the answer had none (or an unreadable one)
	Local  time.Time // when the answer arrived
}

// Now estimates the remote's time at our time now; ok is false without a
// reading.
func (c Clock) Now(now time.Time) (t time.Time, ok bool) {
	if c.Remote.IsZero() {
		return time.Time{}, false
	}
	return c.Remote.Add(now.Sub(c.Local)), true
}

// Skew is how far the remote's clock is ahead of ours (negative: behind),
// to the header's resolution; 0 without a reading.
func (c Clock) Skew() time.Duration {
	if c.Remote.IsZero() {
		return 0
	}
	return c.Remote.Sub(c.Local.Truncate(time.Second))
}

// readClock reads the Date header of an answer.
func readClock(h http.Header) Clock {
	c := Clock{Local: time.Now()}
	if v := h.Get("Date"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			c.Remote = t
		}
	}
	return c
}
