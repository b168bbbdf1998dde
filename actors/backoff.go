package actors

import (
	"time"

	"github.com/taskfleet/taskfleet/internal/retry"
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
	return retry.Delay(b.min, b.max, b.n)
}

// succeeded resets the backoff.
func (b *backoff) succeeded() { b.n = 0 }
