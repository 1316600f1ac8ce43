package invariants

import (
	"strings"
	"testing"
)

func TestCheckPanicsWithMessage(t *testing.T) {
	if !Enabled {
		t.Fatal("tests run with -race or -tags invariants: Enabled must be true")
	}
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
