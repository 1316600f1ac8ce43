//go:build race

package broker

// raceEnabled: the race detector makes sync.Pool drop items, so pooled
// paths allocate under it.
const raceEnabled = true
