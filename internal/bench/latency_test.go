package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 .. 1, unsorted
	}
	for _, c := range []struct {
		name     string
		samples  []time.Duration
		p50, p99 time.Duration
	}{
		{name: "one", samples: ms(7), p50: 7 * time.Millisecond, p99: 7 * time.Millisecond},
		{name: "two", samples: ms(9, 1), p50: time.Millisecond, p99: 9 * time.Millisecond},
		{name: "hundred", samples: ms(hundred...), p50: 50 * time.Millisecond, p99: 99 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := Summarise(c.samples)
			if l.P50 != c.p50 || l.P99 != c.p99 || l.N != len(c.samples) {
				t.Errorf("Summarise = %+v, want p50 %v p99 %v", l, c.p50, c.p99)
			}
		})
	}
	if l := Summarise(nil); l != (Latency{}) {
		t.Errorf("Summarise(nil) = %+v", l)
	}
}

func TestSampler(t *testing.T) {
	calls := 0
	s := sampler{min: 3, max: 10, budget: 0}
	out, err := s.run(func(int) error { calls++; return nil })
	if err != nil || len(out) != 3 || calls != 3 {
		t.Errorf("budget spent: %d samples, %d calls, %v; want the minimum, 3", len(out), calls, err)
	}
	s = sampler{min: 1, max: 5, budget: time.Hour}
	if out, _ := s.run(func(int) error { return nil }); len(out) != 5 {
		t.Errorf("budget left: %d samples, want the maximum, 5", len(out))
	}
}

func TestBound(t *testing.T) {
	rtt := 50 * time.Millisecond
	for _, c := range []struct {
		name       string
		per        []int64
		global, pr int
		want       time.Duration
	}{
		{name: "global cap binds", per: []int64{4, 4, 4, 4, 4}, global: 3, pr: 5, want: 7 * rtt},
		{name: "remote cap binds", per: []int64{12, 1}, global: 100, pr: 5, want: 3 * rtt},
		{name: "nothing", per: []int64{0, 0}, global: 3, pr: 5, want: 0},
	} {
		if got := bound(c.per, c.global, c.pr, rtt); got != c.want {
			t.Errorf("%s: bound = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPinnedStart(t *testing.T) {
	now := time.Date(2026, 11, 27, 2, 30, 0, 0, time.UTC)
	if got, want := PinnedStart(now, 14*time.Hour), time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("PinnedStart(02:30, 14:00) = %v, want %v", got, want)
	}
	if got, want := PinnedStart(now, time.Hour), time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("PinnedStart(02:30, 01:00) = %v, want %v", got, want)
	}
}
