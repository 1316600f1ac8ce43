// Package invariants holds the assertions that check internal state which
// can drift without any test noticing: accounting that must balance,
// sequences that must not skip, orders that must hold. They compile in
// with the `invariants` build tag or under the race detector (so every
// `make test` run checks them) and compile out of release builds: with
// Enabled false, `if invariants.Enabled { ... }` is dead code the compiler
// removes, arguments and all.
//
// Use:
//
//	if invariants.Enabled {
//		invariants.Check(hw <= next, "hw %d above next offset %d", hw, next)
//	}
//
// A failed check panics with the message: an invariant that does not
// hold is a bug, and the test that found it must fail where it happened,
// not later where the drift shows.
package invariants

import "fmt"

// Check panics with the formatted message when ok is false. Call it only
// under `if Enabled`, so release builds pay nothing for the arguments.
func Check(ok bool, format string, args ...any) {
	if !ok {
		panic("invariant violated: " + fmt.Sprintf(format, args...))
	}
}
