package invariants

import (
	"strings"
	"testing"
)

func TestCheckPanicsWithMessage(t *testing.T) {
	Check(true, "never")
	defer func() {
		r := recover()
		s, _ := r.(string)
		if !strings.Contains(s, "invariant violated: hw 7 above 5") {
			t.Fatalf("panic = %v", r)
		}
	}()
	Check(false, "hw %d above %d", 7, 5)
	t.Fatal("Check(false) returned")
}
