// Package reqtrace is a low-overhead per-request trace of Produce and
// Fetch requests for tail-latency work (issue 20). It is off unless the daemon is started
// with RINGBROKER_REQTRACE=<file>; when off, every hook is one load of a
// package-level bool and a nil check (BenchmarkHooksOff).
//
// A traced request carries a *Req from the frame's arrival to the moment its
// response has left. Each layer stamps the stage it owns with the monotonic
// clock (nanoseconds since the process's start):
//
//	recv ─► parsed ─► append_queued ─► write_start ─► written ─► synced ─► callback ─► reply ─► loop_woke ─► loop_took ─► send_queued ─► sent
//	netpoll  broker    broker           storage        storage    storage   broker      netpoll   netpoll       netpoll       netpoll        netpoll
//
// Stages:
//
//   - recv: the receive completion (io_uring) or read (portable) that
//     completed the frame was handled;
//   - parsed: the Produce body was decoded;
//   - append_queued: the last partition's batch was handed to its log (or
//     to the partition's produce worker);
//   - write_start: the log's writer goroutine is about to write the group
//     holding the batch (its wake-up, linger and the group's preparation
//     are before it);
//   - written: the log writer's pwritev (or io_uring WRITEV) returned;
//   - synced: the fdatasync returned (only when the flush policy asked);
//   - callback: the log called the produce callback (writer goroutine);
//   - woken (Fetch): the long poll was woken (the high watermark moved,
//     or its max wait ran out);
//   - wake_run (Fetch): the goroutine that re-reads the logs after a
//     wake-up started;
//   - reply: the response was encoded and handed to netpoll (Request.Reply);
//   - loop_woke (io_uring only): the io_uring_enter from which the loop
//     went on to take the reply returned; its delta is 0 when the loop was
//     already awake (the reply came while it ran), else the wake-up
//     latency of the mailbox's eventfd with DEFER_TASKRUN;
//   - loop_took: the connection's owner took it (io_uring: the loop read it
//     from its mailbox after the eventfd wake-up; portable: the connection
//     lock was taken);
//   - send_queued: the bytes were put on a send (SENDMSG prepared, or the
//     portable writer goroutine picked them up);
//   - sent: the send completed and the buffer was released.
//
// When the request finishes, the recorder adds each stage's delta (from the
// previous stage that was reached) to a per-stage histogram and keeps the
// slowest N timelines (bounded memory: N fixed arrays). A dump (SIGUSR1,
// and at shutdown) writes them as JSON with the process's GC pauses and
// scheduling latencies over the same interval (runtime/metrics), then starts
// a new interval.
//
// Concurrency: stamps are atomic (a request's partitions complete on
// several log writer goroutines; the latest stamp of a stage wins); the
// recorder is behind one mutex taken once per finished request.
package reqtrace

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stage is one point of a request's timeline.
type Stage uint8

// The stages, in timeline order.
const (
	Recv Stage = iota
	Parsed
	AppendQueued
	WriteStart
	Written
	Synced
	Callback
	Woken
	WakeRun
	Reply
	LoopWoke
	LoopTook
	SendQueued
	Sent
	NumStages
)

var stageNames = [NumStages]string{"recv", "parsed", "append_queued", "write_start", "written", "synced", "callback", "woken", "wake_run", "reply", "loop_woke", "loop_took", "send_queued", "sent"}

// String is the stage's name in dumps.
func (s Stage) String() string {
	if s < NumStages {
		return stageNames[s]
	}
	return "?"
}

// enabled is set once by Enable, before any request is served, and never
// changes afterwards: a plain load is enough.
var enabled bool

// Enabled reports whether requests are traced. Hooks that would do work
// (read the clock) check it first.
func Enabled() bool { return enabled }

// base is the process's time origin: stamps are monotonic ns since it (0
// means "not reached", so a stamp is never 0).
var base = time.Now()

// Now is the current stamp.
func Now() int64 { return int64(time.Since(base)) + 1 }

// Kind is the traced request's API.
type Kind uint8

// The kinds traced (their Kafka API keys).
const (
	KindProduce Kind = 0
	KindFetch   Kind = 1
	numKinds         = 2
)

// Req is one traced request's timeline. Nil-safe: every method on a nil
// *Req does nothing, so hooks pass along whatever they got.
type Req struct {
	ts    [NumStages]atomic.Int64
	bytes int32
	kind  Kind
}

var reqPool = sync.Pool{New: func() any { return new(Req) }}

// Begin starts the trace of a request frame (the 4-byte length already
// removed) received at recvNs (a Now stamp; 0: now). It returns nil when
// tracing is off or the frame is not a Produce request (API key 0): the
// caller attaches the result to the request as it is. Fetch requests
// (API key 1) are traced too: end-to-end latency also waits for them.
func Begin(frame []byte, recvNs int64) *Req {
	if !enabled { // inlined at the call sites: the off path is this load
		return nil
	}
	return begin(frame, recvNs)
}

func begin(frame []byte, recvNs int64) *Req {
	if len(frame) < 2 || frame[0] != 0 || frame[1] >= numKinds {
		return nil
	}
	if recvNs == 0 {
		recvNs = Now()
	}
	r := reqPool.Get().(*Req)
	for i := range r.ts {
		r.ts[i].Store(0)
	}
	r.ts[Recv].Store(recvNs)
	r.bytes = int32(len(frame))
	r.kind = Kind(frame[1])
	return r
}

// Mark stamps stage s now.
func (r *Req) Mark(s Stage) {
	if r != nil { // inlined: nil (untraced) costs a compare
		r.markNow(s)
	}
}

func (r *Req) markNow(s Stage) { r.markAt(s, Now()) }

// MarkAt stamps stage s at ns (a Now stamp taken earlier; 0 is ignored).
// The latest stamp of a stage wins.
func (r *Req) MarkAt(s Stage, ns int64) {
	if r != nil && ns != 0 {
		r.markAt(s, ns)
	}
}

func (r *Req) markAt(s Stage, ns int64) {
	for {
		old := r.ts[s].Load()
		if old >= ns || r.ts[s].CompareAndSwap(old, ns) {
			return
		}
	}
}

// Finish stamps Sent (unless sent is false: the response was dropped with
// its connection, or there was none), records the timeline and recycles r.
// r must not be used afterwards.
func Finish(r *Req, sent bool) {
	if r != nil {
		finish(r, sent)
	}
}

func finish(r *Req, sent bool) {
	if sent {
		r.Mark(Sent)
	}
	var tl timeline
	for i := range r.ts {
		tl.ts[i] = r.ts[i].Load()
	}
	tl.bytes, tl.kind = r.bytes, r.kind
	k := r.kind
	reqPool.Put(r)
	if sent {
		recs[k].add(&tl)
	} else {
		recs[k].dropped.Add(1)
	}
}
