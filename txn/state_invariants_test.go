//go:build invariants || race

package txn

import (
	"testing"

	"github.com/ringbroker/ringbroker/invariants/invariantstest"
)

// TestPrepareChecksTransitions: with invariants on (this file's build
// tags), preparing an edge Kafka does not allow, or a second transition
// while one is pending, panics where it is taken.
func TestPrepareChecksTransitions(t *testing.T) {
	c := New(Config{})
	m := &Metadata{TransactionalID: "x", State: Empty, partitions: map[TopicPartition]struct{}{}}
	invariantstest.Panics(t, "invariant violated: txn x: Empty -> PrepareCommit is not an edge Kafka allows", func() {
		c.prepare(m, m.newTransit(PrepareCommit, 1, -1, 0, -1, 1000, nil, 0, 0, 0), pendingClient, nil)
	})
	m.pending = nil
	c.prepare(m, m.newTransit(Ongoing, 1, -1, 0, -1, 1000, nil, 0, 0, 0), pendingClient, nil)
	invariantstest.Panics(t, "invariant violated: txn x: preparing Ongoing while", func() {
		c.prepare(m, m.newTransit(Ongoing, 1, -1, 0, -1, 1000, nil, 0, 0, 0), pendingClient, nil)
	})
}
