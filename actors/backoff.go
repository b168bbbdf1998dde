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
	return backoffDelay(b.min, b.max, b.n)
}

// backoffDelay is the delay after the n-th consecutive failure (n ≥ 1):
// lo·2^(n-1) up to hi, with 0.5–1.5× jitter. Polling backoff, actor
// restarts (strategy.go) and the backup keeper's restarts all use it.
func backoffDelay(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, hi)) * (0.5 + rand.Float64()))
}

// succeeded resets the backoff.
func (b *backoff) succeeded() { b.n = 0 }
