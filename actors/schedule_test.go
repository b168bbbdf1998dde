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

// TestPollPhases: over a run of phase ticks each remote polls once a tick,
// the first time at the first phase tick; a fleet's polls spread over the
// tick's phases; phase ticks that never came are caught up by the next
// one, never doubled; a new tick length moves the phases.
func TestPollPhases(t *testing.T) {
	const tick, remotes = 10 * time.Second, 1000
	step := tick / tickPhases
	start := time.Date(2026, 12, 3, 20, 0, 3, 0, time.UTC).Truncate(step)
	sched := make([]schedule, remotes)
	id := func(i int) string { return fmt.Sprintf("pve-%04d", i) }
	perPhase := map[time.Duration]int{}
	polls := make([][]time.Time, remotes)
	for at := start; at.Before(start.Add(time.Minute)); at = at.Add(step) {
		for i := range sched {
			if sched[i].pollDue(at, id(i), tick) {
				polls[i] = append(polls[i], at)
				if at != start {
					perPhase[time.Duration(at.UnixNano())%tick]++
				}
			}
		}
	}
	for i, p := range polls {
		if len(p) < 6 || len(p) > 7 || !p[0].Equal(start) {
			t.Fatalf("%s polled at %v: want at the start, then once a tick", id(i), p)
		}
		for j := 2; j < len(p); j++ {
			if p[j].Sub(p[j-1]) != tick {
				t.Fatalf("%s polled at %v: not once a tick", id(i), p)
			}
		}
	}
	if len(perPhase) != tickPhases {
		t.Errorf("polls in %d phases of the tick, want %d: %v", len(perPhase), tickPhases, perPhase)
	}
	for ph, n := range perPhase {
		if share := 6 * remotes / tickPhases; n < share/2 || n > 2*share {
			t.Errorf("phase %v: %d polls in a minute, want about %d", ph, n, share)
		}
	}

	// Phase ticks lost for 2.5 s: each remote whose phase passed polls at
	// the next one, once.
	var s schedule
	r := id(7)
	s.pollDue(start, r, tick)
	ph := s.phase.off
	next := start.Truncate(tick).Add(ph)
	if !next.After(start) {
		next = next.Add(tick)
	}
	late := next.Add(2*step + step/2).Truncate(step)
	for at := start.Add(step); at.Before(next); at = at.Add(step) {
		if s.pollDue(at, r, tick) {
			t.Fatalf("polled at %v, before its phase %v", at, next)
		}
	}
	if !s.pollDue(late, r, tick) || s.pollDue(late.Add(step), r, tick) {
		t.Errorf("a late phase tick did not catch up once")
	}

	// A new tick length (a reload): each remote polls at its first phase
	// of the new tick, then once a new tick; not with the fleet at the
	// reload.
	const newTick = 20 * time.Second
	newStep := newTick / tickPhases
	reload := start.Add(time.Minute).Truncate(newStep)
	for i := range sched {
		var polls []time.Time
		for at := reload; !at.After(reload.Add(3 * newTick)); at = at.Add(newStep) {
			if sched[i].pollDue(at, id(i), newTick) {
				polls = append(polls, at)
			}
		}
		if len(polls) != 3 || !polls[0].After(reload) || polls[0].Sub(reload) > newTick ||
			polls[1].Sub(polls[0]) != newTick || polls[2].Sub(polls[1]) != newTick {
			t.Fatalf("%s after the reload at %v polled at %v: want at its phase, once a new tick", id(i), reload, polls)
		}
		if ph := sched[i].phase; ph.tick != newTick || ph.off%newStep != 0 || ph.off >= newTick {
			t.Fatalf("%s phase after the reload: %+v", id(i), ph)
		}
	}
}
