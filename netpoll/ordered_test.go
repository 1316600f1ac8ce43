package netpoll

import (
	"math/rand"
	"testing"
)

func bufOf(tag byte) *Buffer { return &Buffer{B: []byte{0, 0, 0, 1, tag}} }

// Completing in reverse order releases nothing until the head completes; then
// everything leaves in request order.
func TestOrderedQueueReverseCompletion(t *testing.T) {
	var q orderedQueue
	const n = 100
	for i := 0; i < n; i++ {
		if seq := q.push(10); seq != uint32(i) {
			t.Fatalf("seq = %d", seq)
		}
	}
	for i := n - 1; i >= 1; i-- {
		if !q.complete(uint32(i), bufOf(byte(i))) {
			t.Fatalf("complete %d", i)
		}
		if got := q.nextReady(nil, 1000); len(got) != 0 {
			t.Fatalf("sent %d buffers before the head completed", len(got))
		}
	}
	q.complete(0, bufOf(0))
	got := q.nextReady(nil, 1000)
	if len(got) != n {
		t.Fatalf("ready = %d", len(got))
	}
	for i, b := range got {
		if b.B[4] != byte(i) {
			t.Fatalf("out of order at %d: %d", i, b.B[4])
		}
	}
	req, _ := q.popSent()
	if req != 10*n || q.len() != 0 {
		t.Fatalf("req bytes %d len %d", req, q.len())
	}
}

func TestOrderedQueueNoReplyAndStale(t *testing.T) {
	var q orderedQueue
	a, b, c := q.push(1), q.push(1), q.push(1)
	q.complete(b, nil) // acks=0 in the middle
	if q.complete(b, bufOf(9)) {
		t.Fatal("second answer accepted")
	}
	q.complete(c, bufOf(3))
	if got := q.nextReady(nil, 10); len(got) != 0 {
		t.Fatal("sent past pending head")
	}
	q.complete(a, bufOf(1))
	got := q.nextReady(nil, 10)
	if len(got) != 2 || got[0].B[4] != 1 || got[1].B[4] != 3 {
		t.Fatalf("got %v", got)
	}
	q.popSent()
	if q.complete(a, bufOf(1)) || q.complete(1000, bufOf(1)) {
		t.Fatal("stale completion accepted")
	}
}

// Random completion order, random send batching, with sequence numbers
// wrapping past 2^32: the concatenated output is always request order.
func TestOrderedQueueRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var q orderedQueue
	q.head, q.sent, q.tail = ^uint32(0)-50, ^uint32(0)-50, ^uint32(0)-50
	var pending []uint32
	next, want := 0, 0
	for step := 0; step < 20000; step++ {
		switch r := rng.Intn(3); {
		case r == 0 && q.len() < 500:
			seq := q.push(1)
			pending = append(pending, seq)
			_ = next
			next++
		case r == 1 && len(pending) > 0:
			i := rng.Intn(len(pending))
			seq := pending[i]
			pending = append(pending[:i], pending[i+1:]...)
			tag := byte(seq - (^uint32(0) - 50))
			q.complete(seq, bufOf(tag))
		default:
			for _, b := range q.nextReady(nil, 1+rng.Intn(8)) {
				if b.B[4] != byte(want) {
					t.Fatalf("step %d: got %d want %d", step, b.B[4], byte(want))
				}
				want++
			}
			q.popSent()
		}
	}
}
