//go:build linux && (invariants || race)

package ring

// invariants enables internal consistency checks (ring index arithmetic)
// in test and race builds; see STYLE.md "Bounds and invariants".
const invariants = true
