//go:build linux && !invariants && !race

package ring

const invariants = false
