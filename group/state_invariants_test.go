//go:build invariants || race

package group

import (
	"testing"
	"time"
)

// TestSetStateChecksTransitions: with invariants on (this file's build
// tags), an edge Kafka does not allow panics where it is taken.
func TestSetStateChecksTransitions(t *testing.T) {
	g := &Group{ID: "g", State: Empty}
	g.setState(PreparingRebalance, time.Unix(0, 0))
	defer func() {
		if recover() == nil {
			t.Fatal("PreparingRebalance -> Stable did not panic")
		}
	}()
	g.setState(Stable, time.Unix(0, 0))
}
