//go:build linux && (invariants || race)

package ring

// invariants enables internal consistency checks (ring index arithmetic)
// in test and race builds (the `invariants` tag, or -race), so the
// assertions run in every test run and cost nothing in release builds.
const invariants = true
