package broker

// acks=all on a replicated partition (Kafka's DelayedProduce and its
// purgatory). After the leader's append, a Produce with acks=-1 to a
// partition led here whose log is in replicated mode (replication.go)
// waits until the high watermark passes the append's last offset: every
// in-sync replica has it. Then it is answered NONE, or
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below the topic's
// min.insync.replicas meanwhile (checked when the high watermark reaches
// it, as Kafka's checkEnoughReplicasReachOffset); REQUEST_TIMED_OUT when
// the request's timeout_ms passes first; NOT_LEADER_OR_FOLLOWER when this
// node stops leading the partition or the broker closes. The records stay
// in the log in every case, as in Kafka: a retry of an idempotent
// producer is answered as a duplicate.
//
// The wait is a storage.Log waiter (woken by SetHighWatermark, on the
// goroutine that moved the high watermark) and a timer; whichever comes
// first answers, once (answered). The answer goes through the request's
// countDown and Reply, which posts it to the loop that owns the connection,
// like every asynchronous answer. Waits are bounded per process
// (ackWaitsMax); past it a produce is answered REQUEST_TIMED_OUT at once.
//
// Differences from Apache Kafka: a retried duplicate of an idempotent
// batch is answered at once with its original offsets, without waiting
// for the high watermark to reach them.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/storage"
)

// ackWaitsMax bounds the acks=all produces waiting at once, per process.
const ackWaitsMax = 1 << 16

// ackWaits is the set of waiting acks=all produces.
type ackWaits struct {
	n   atomic.Int64
	mu  sync.Mutex
	all map[*ackWait]struct{}
}

// ackWait is one partition of one acks=all Produce waiting for the high
// watermark to pass last.
type ackWait struct {
	set      *ackWaits
	r        *replication
	slot     *partSlot        // a produce's partition, or
	notify   func(code int16) // a coordinator's append (coord_append.go)
	p        *Partition
	last     int64
	res      storage.AppendResult
	minISR   int
	answered atomic.Bool
	mu       sync.Mutex // guards timer
	timer    clock.Timer
}

// waitAcks parks slot's answer until the high watermark passes the append
// res when its partition is replicated and led here; it reports false
// (answer now) otherwise. Called from the append callback (the log's
// writer goroutine): it does not block.
func (r *replication) waitAcks(slot *partSlot, p *Partition, res storage.AppendResult, minISR int, timeout time.Duration) bool {
	return r.waitHW(&ackWait{set: &r.acks, r: r, slot: slot, p: p, last: res.LastOffset, res: res, minISR: minISR}, timeout)
}

// waitReplicated is waitAcks for a coordinator's append (coord_append.go):
// notify gets the code instead of a produce slot. It reports false (notify
// not called: the append is answered now) when p is not replicated here.
func (r *replication) waitReplicated(p *Partition, res storage.AppendResult, minISR int, timeout time.Duration, notify func(code int16)) bool {
	return r.waitHW(&ackWait{set: &r.acks, r: r, notify: notify, p: p, last: res.LastOffset, res: res, minISR: minISR}, timeout)
}

func (r *replication) waitHW(w *ackWait, timeout time.Duration) bool {
	p := w.p
	replicated, lost, isr := r.ackState(p)
	if !replicated && !lost {
		// Not waiting (the ISR is this node alone, so the high
		// watermark is already past the append), but the ISR may have
		// shrunk below min.insync.replicas since the check before the
		// append: then the append is on too few replicas to acknowledge
		// (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND), or a later leader
		// may lack what this answer would promise.
		if isr < w.minISR {
			w.answer(kerr.NotEnoughReplicasAfterAppend.Code)
			return true
		}
		return false
	}
	if lost || r.stopped.Load() {
		// Leadership lost since the append, or shutting down: the next
		// leader answers the retry.
		w.answer(kerr.NotLeaderForPartition.Code)
		return true
	}
	set := w.set
	if set.n.Add(1) > ackWaitsMax {
		set.n.Add(-1)
		w.answer(kerr.RequestTimedOut.Code)
		return true
	}
	set.mu.Lock()
	if set.all == nil {
		set.all = map[*ackWait]struct{}{}
	}
	set.all[w] = struct{}{}
	set.mu.Unlock()
	if r.stopped.Load() {
		// close's failAll may have run before w was in the set.
		w.finish(kerr.NotLeaderForPartition.Code)
		return true
	}
	w.mu.Lock()
	w.timer = r.b.clock.AfterFunc(timeout, func() { w.finish(kerr.RequestTimedOut.Code) })
	w.mu.Unlock()
	if !p.Log.AddWaiter(w, w.last) {
		w.settle()
	}
	return true
}

// answer gives the wait's outcome to its produce slot or its notify.
func (w *ackWait) answer(code int16) {
	if w.notify != nil {
		w.notify(code)
		return
	}
	if code == kerr.NotLeaderForPartition.Code && w.slot.ctx.hdr.APIVersion >= 10 {
		// KIP-951: name the new leader (the image that took the
		// leadership away has it), so the client moves without waiting
		// for a Metadata refresh.
		w.slot.leader = w.r.b.currentLeader(w.p.Topic.Name, w.p.Index)
	}
	w.slot.done(code, w.res.BaseOffset, w.res.LogAppendTime, w.res.LogStartOffset, "")
}

// HWAdvanced implements storage.Waiter: answer once the high watermark
// passed the append, else wait for the next advance. It runs on the
// goroutine that moved the high watermark and does not block.
func (w *ackWait) HWAdvanced(hw int64) {
	if w.answered.Load() {
		return
	}
	if hw > w.last || !w.p.Log.AddWaiter(w, w.last) {
		w.settle()
	}
}

// settle answers from the high watermark as it is: passed the append
// (NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND below min.insync.replicas),
// else the log is closing (NOT_LEADER_OR_FOLLOWER).
func (w *ackWait) settle() {
	if w.p.Log.HighWatermark() <= w.last {
		w.finish(kerr.NotLeaderForPartition.Code)
		return
	}
	if w.r.inSync(w.p) < w.minISR {
		w.finish(kerr.NotEnoughReplicasAfterAppend.Code)
		return
	}
	w.finish(0)
}

// finish answers the produce's partition with code, once.
func (w *ackWait) finish(code int16) {
	if !w.answered.CompareAndSwap(false, true) {
		return
	}
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.p.Log.RemoveWaiter(w)
	w.set.mu.Lock()
	delete(w.set.all, w)
	w.set.mu.Unlock()
	w.set.n.Add(-1)
	w.answer(code)
}

// failPartition answers every produce waiting on p with code.
func (a *ackWaits) failPartition(p *Partition, code int16) {
	a.failIf(func(w *ackWait) bool { return w.p == p }, code)
}

// failAll answers every waiting produce with code.
func (a *ackWaits) failAll(code int16) {
	a.failIf(func(*ackWait) bool { return true }, code)
}

func (a *ackWaits) failIf(match func(*ackWait) bool, code int16) {
	a.mu.Lock()
	var ws []*ackWait
	for w := range a.all {
		if match(w) {
			ws = append(ws, w)
		}
	}
	a.mu.Unlock()
	for _, w := range ws {
		w.finish(code)
	}
}
