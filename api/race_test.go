//go:build race

package api

// raceEnabled skips the memory test of a 1M-task list under the race
// detector, which slows it down tenfold and changes allocation.
const raceEnabled = true
