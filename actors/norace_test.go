//go:build !race

package actors

// raceEnabled scales the scale tests down under the race detector, whose
// cost grows with the number of remotes while what it can find does not.
const raceEnabled = false
