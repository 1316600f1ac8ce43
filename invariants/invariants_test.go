package invariants

import (
	"testing"

	"github.com/ringbroker/ringbroker/invariants/invariantstest"
)

func TestCheckPanicsWithMessage(t *testing.T) {
	Check(true, "never")
	invariantstest.Panics(t, "invariant violated: hw 7 above 5", func() { Check(false, "hw %d above %d", 7, 5) })
}
