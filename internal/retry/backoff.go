// Package retry holds the one retry-delay formula of taskfleet: polling
// backoff, actor restarts (actors and notify), the backup keeper's
// restarts and the notifiers' delivery retries all use [Delay].
package retry

import (
	"math/rand/v2"
	"time"
)

// Delay is the delay after the n-th consecutive failure (n ≥ 1):
// lo·2^(n-1) up to hi, with 0.5–1.5× jitter so that what failed together
// (a network outage) does not retry in lock-step.
func Delay(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, hi)) * (0.5 + rand.Float64()))
}
