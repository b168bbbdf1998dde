package retry

import (
	"testing"
	"time"
)

// TestDelayDoublesUpToTheCeiling: lo·2^(n-1) up to hi, within 0.5–1.5×.
func TestDelayDoublesUpToTheCeiling(t *testing.T) {
	for n, base := range map[int]time.Duration{1: 5, 2: 10, 3: 20, 4: 40, 7: 320, 8: 600, 60: 600} {
		base *= time.Second
		for range 50 {
			if d := Delay(5*time.Second, 10*time.Minute, n); d < base/2 || d > base*3/2 {
				t.Fatalf("failure %d: delay %v outside 0.5–1.5 × %v", n, d, base)
			}
		}
	}
}
