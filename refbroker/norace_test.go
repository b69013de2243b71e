//go:build !race

package refbroker

const raceEnabled = false
