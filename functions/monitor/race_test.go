//go:build race

package monitor

// raceEnabled slows the replay's cadence under the race detector.
const raceEnabled = true
