package bench

import (
	"strings"
	"testing"
	"time"
)

// TestSweepTableSteadyRuns: one steady sweep is a "steady" row; several
// are a row each and their median.
func TestSweepTableSteadyRuns(t *testing.T) {
	run := func(wall time.Duration) SweepRun { return SweepRun{Wall: wall, Requests: 10, Bound: time.Second} }
	for _, tc := range []struct {
		steady []SweepRun
		median SweepRun
		want   []string
		not    []string
	}{
		{[]SweepRun{run(2 * time.Second)}, run(2 * time.Second), []string{"steady"}, []string{"steady 1", "median"}},
		{[]SweepRun{run(3 * time.Second), run(time.Second), run(2 * time.Second)}, run(2 * time.Second), []string{"steady 1", "steady 3", "median    2.00s"}, nil},
	} {
		var b strings.Builder
		p := &printer{w: &b}
		p.sweepTable([]SweepResult{{SweepCase: SweepCase{Remotes: 1, GlobalCap: 1}, Backfill: run(time.Second), SteadyAll: tc.steady, Steady: tc.median}})
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%d steady sweeps: no %q in\n%s", len(tc.steady), w, b.String())
			}
		}
		for _, w := range tc.not {
			if strings.Contains(b.String(), w) {
				t.Errorf("%d steady sweeps: %q in\n%s", len(tc.steady), w, b.String())
			}
		}
	}
}
