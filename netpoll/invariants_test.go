//go:build invariants || race

package netpoll

import (
	"testing"

	"github.com/ringbroker/ringbroker/invariants/invariantstest"
)

// These tests break a state on purpose and check that the invariant
// assertions catch it; they exist only in builds that compile the
// assertions in (-race, -tags invariants).

// A slot that leaves before it was answered breaks request order.
func TestOrderedQueueInvariantUnansweredLeaves(t *testing.T) {
	var q orderedQueue
	q.push(10)
	q.push(10)
	q.complete(1, bufOf(1))
	q.sent = 2 // as if a send had taken slot 1 past the pending slot 0
	invariantstest.Panics(t, "slot 0 leaves unanswered", func() { q.popSent() })
}

// Answering a slot behind sent means a later response already left.
func TestOrderedQueueInvariantAnswerBehindSent(t *testing.T) {
	var q orderedQueue
	q.push(10)
	q.push(10)
	q.sent = 1
	invariantstest.Panics(t, "unanswered slot 0 is behind sent 1", func() { q.complete(0, nil) })
}

func TestOrderedQueueInvariantSentPastTail(t *testing.T) {
	var q orderedQueue
	q.push(10)
	q.sent = 5
	invariantstest.Panics(t, "sent 5 outside [head 0, tail 2]", func() { q.push(10) })
}

func TestOrderedQueueBytes(t *testing.T) {
	var q orderedQueue
	q.push(10)
	q.push(20)
	b := bufOf(1)
	q.complete(1, b)
	if got, want := q.bytes(), 30+b.cost(); got != want {
		t.Fatalf("bytes = %d, want %d", got, want)
	}
}
