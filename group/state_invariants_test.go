//go:build invariants || race

package group

import (
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/invariants/invariantstest"
)

// TestSetStateChecksTransitions: with invariants on (this file's build
// tags), an edge Kafka does not allow panics where it is taken.
func TestSetStateChecksTransitions(t *testing.T) {
	g := &Group{ID: "g", State: Empty}
	g.setState(PreparingRebalance, time.Unix(0, 0))
	invariantstest.Panics(t, "state PreparingRebalance -> Stable is not an edge Kafka allows", func() {
		g.setState(Stable, time.Unix(0, 0))
	})
}
