//go:build !race

package bench

// raceEnabled shrinks the quick sizes further under the race detector,
// which slows everything down several times.
const raceEnabled = false
