//go:build !race

package sim

// raceEnabled scales the heaviest tests down under the race detector.
const raceEnabled = false
