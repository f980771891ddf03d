//go:build race

package netstack

// raceEnabled: timing tests mean nothing under the race detector.
const raceEnabled = true
