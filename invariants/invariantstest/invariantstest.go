// Package invariantstest holds the test helper that checks an invariant
// assertion fires. Only tests import it, so it never links into the
// broker binary.
package invariantstest

import (
	"strings"
	"testing"
)

// Panics runs f and fails t unless f panics with a string message that
// contains want (invariants.Check panics with such a string).
func Panics(t testing.TB, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		s, _ := r.(string)
		if r == nil || !strings.Contains(s, want) {
			t.Fatalf("panic = %v, want one containing %q", r, want)
		}
	}()
	f()
}
