package actors

import (
	"fmt"
	"testing"
	"time"
)

// TestPeriodicDueAtStart states the "at start" rule: a periodic job is due
// on its first check whatever the time is, and then once per interval. It
// depends on no counter starting at zero.
func TestPeriodicDueAtStart(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 13, 37, 10, 0, time.UTC), // not a multiple of anything
	} {
		var p periodic
		if !p.due(start, time.Hour) {
			t.Errorf("first check at %v: not due", start)
		}
		if p.due(start.Add(59*time.Minute), time.Hour) {
			t.Errorf("due again after 59 minutes")
		}
		if !p.due(start.Add(time.Hour), time.Hour) {
			t.Errorf("not due after an hour")
		}
	}
}

func TestScheduleFirstTickRefreshes(t *testing.T) {
	now := time.Date(2026, 11, 27, 13, 37, 10, 0, time.UTC)
	var s schedule
	if r, c := s.due(now, "pve-east", 10*time.Minute, 30*time.Second); !r || !c {
		t.Errorf("first tick: refresh %v, running check %v; want both", r, c)
	}
	refreshes, checks := 0, 0
	for tick := now.Add(10 * time.Second); tick.Before(now.Add(time.Hour).Add(time.Second)); tick = tick.Add(10 * time.Second) {
		r, c := s.due(tick, "pve-east", 10*time.Minute, 30*time.Second)
		if r {
			refreshes++
		}
		if c {
			checks++
		}
	}
	if refreshes != 6 || checks != 120 {
		t.Errorf("in an hour of 10 s ticks: %d refreshes, %d running checks; want 6 and 120", refreshes, checks)
	}
}

// TestOffsetsSpread checks that 1000 remotes are spread over the refresh
// interval: no 10 s tick refreshes far more than its share (1000/60).
func TestOffsetsSpread(t *testing.T) {
	const interval, tick = 10 * time.Minute, 10 * time.Second
	perTick := map[int64]int{}
	for i := range 1000 {
		off := offset(fmt.Sprintf("pve-%04d", i), interval)
		if off < 0 || off >= interval {
			t.Fatalf("offset %v outside [0, %v)", off, interval)
		}
		perTick[int64(off/tick)]++
	}
	most := 0
	for _, n := range perTick {
		most = max(most, n)
	}
	if len(perTick) < 55 || most > 35 {
		t.Errorf("1000 remotes fall into %d of 60 ticks, at most %d in one; want them spread", len(perTick), most)
	}
	if offset("pve-0001", interval) != offset("pve-0001", interval) {
		t.Error("offset not stable")
	}
}

func TestBackoffGrowsWithJitterAndResets(t *testing.T) {
	b := backoff{min: 10 * time.Second, max: 5 * time.Minute}
	for i, base := range []time.Duration{10, 20, 40, 80, 160, 300, 300} {
		d := b.failed()
		base *= time.Second
		if d < base/2 || d > base*3/2 {
			t.Errorf("failure %d: delay %v outside 0.5–1.5 × %v", i+1, d, base)
		}
	}
	b.succeeded()
	if d := b.failed(); d > 15*time.Second {
		t.Errorf("after a success the delay is %v, want it reset", d)
	}
}
