//go:build race

package broker

// raceEnabled: the race detector makes sync.Pool drop items, so pooled
// paths allocate under it.
const raceEnabled = true

// raceAllocFactor: under the race detector the compiler does not fuse
// append(a, make([]T, n)...) into one allocation, so kmsg's array decode
// allocates its elements twice (make, then the append's copy).
const raceAllocFactor = 2
