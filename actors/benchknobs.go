package actors

import (
	"sync/atomic"
	"time"
)

// Benchmark knobs: process-wide switches for taskfleet bench's schedule
// section, which runs the production schedule in compressed time, with and
// without change detection, in one process. Production never sets them;
// set them only while no System runs.
var (
	detectionOff atomic.Bool  // change detection off: every refresh full, running checks by status
	urgentOff    atomic.Bool  // tracked polls wait in the one FIFO queue with the others (urgent.go)
	timeScale    atomic.Int64 // RunningCheckInterval is divided by this (0, 1: not)
)

// SetChangeDetection turns change detection (detect.go) on or off for
// Systems started afterwards; it is on by default. For benchmarks that
// compare both.
func SetChangeDetection(on bool) { detectionOff.Store(!on) }

// SetUrgentFirst turns the budget's preference for urgent requests
// (urgent.go) on or off for Systems started afterwards; it is on by
// default. Off, the budget is the plain FIFO queue it was before, for
// benchmarks that compare both.
func SetUrgentFirst(on bool) { urgentOff.Store(!on) }

// SetTimeScale divides the fixed running-task check interval by scale for
// Systems started afterwards (1: the real interval), for benchmarks that run
// the schedule scale times faster than real time (with tick, refresh
// interval and the remotes' clocks scaled by the caller).
func SetTimeScale(scale int) { timeScale.Store(int64(max(scale, 1))) }

// runningCheckInterval is RunningCheckInterval, divided by the time scale.
func runningCheckInterval() time.Duration {
	if s := timeScale.Load(); s > 1 {
		return RunningCheckInterval / time.Duration(s)
	}
	return RunningCheckInterval
}
