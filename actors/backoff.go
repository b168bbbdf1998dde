package actors

import (
	"math/rand/v2"
	"time"
)

// backoff computes the delay before a failing remote is polled again:
// exponential from min up to max, with 0.5–1.5× jitter so that remotes
// that failed together (a network outage) do not retry in lock-step —
// the "thundering herd" that Tailscale's util/backoff guards against.
type backoff struct {
	min, max time.Duration
	n        int // consecutive failures
}

// failed records a failure and returns the delay before the next attempt.
func (b *backoff) failed() time.Duration {
	b.n++
	d := b.min
	for i := 1; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// succeeded resets the backoff.
func (b *backoff) succeeded() { b.n = 0 }
