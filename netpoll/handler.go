package netpoll

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/ringbroker/ringbroker/internal/reqtrace"
)

// Handler serves request frames. ServeFrame is called on the connection's
// loop goroutine, once per frame, in arrival order. frame is the request
// without its 4-byte length prefix and is valid only until ServeFrame
// returns: a handler that needs the bytes later copies them.
//
// ServeFrame must not block (it runs on a ring thread that serves many
// connections). It answers through req exactly once — Reply, NoReply or
// Close — either before returning or later from any goroutine.
type Handler interface {
	ServeFrame(req Request, frame []byte)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(req Request, frame []byte)

// ServeFrame calls f.
func (f HandlerFunc) ServeFrame(req Request, frame []byte) { f(req, frame) }

// completer is what a backend's connection implements for Request.
type completer interface {
	complete(gen, seq uint32, kind completionKind, buf *Buffer, reason string)
	remoteAddr() string
	copies() *copyBudget
	runOnLoop(f func()) bool
}

type completionKind uint8

const (
	completeReply   completionKind = iota + 1 // send buf
	completeNoReply                           // slot done, nothing to send (acks=0)
	completeClose                             // close the connection now
)

// Request is the handle of one request's slot in its connection's ordered
// response queue. It is a small value, copied freely; it becomes inert once
// answered (a second answer is a bug and is dropped by the slot state).
type Request struct {
	conn completer
	sess Session
	gen  uint32
	seq  uint32
	// tr is the request's trace (internal/reqtrace), nil unless tracing
	// is on and the frame is a Produce.
	tr *reqtrace.Req
}

// Trace is the request's trace timeline, nil when it is not traced (the
// handler stamps its own stages on it; every method is nil-safe).
func (r Request) Trace() *reqtrace.Req { return r.tr }

// Session is the connection's Session (Options.Sessions), nil without one.
func (r Request) Session() Session { return r.sess }

// Reply queues buf as this request's response. buf must come from
// GetBuffer and starts with the 4-byte length placeholder GetBuffer put
// there; Reply fills it in (counting buf.Files). Ownership of buf passes to
// netpoll, which releases it (and its file references) after the bytes are
// sent or the connection closes. Safe from any goroutine.
func (r Request) Reply(buf *Buffer) {
	n := int64(len(buf.B) - 4)
	for i := range buf.Files {
		n += buf.Files[i].Len
	}
	binary.BigEndian.PutUint32(buf.B[0:4], uint32(n))
	if r.tr != nil { // the buffer carries the trace to its send
		r.tr.Mark(reqtrace.Reply)
		buf.trace = r.tr
	}
	r.conn.complete(r.gen, r.seq, completeReply, buf, "")
}

// ReplyThenClose queues buf as Reply does and closes the connection once
// buf has been sent (the responses before it are sent too; requests after
// it are dropped). Kafka's answer to a failed authentication. Safe from any
// goroutine.
func (r Request) ReplyThenClose(buf *Buffer) {
	buf.closeAfter = true
	r.Reply(buf)
}

// ReplyThrottled queues buf as Reply does and then stops reading the
// connection for throttle (KIP-219: a client over its quota gets its
// answer at once, carrying throttle_time_ms, and is not read meanwhile).
// Requests already read are still served. Safe from any goroutine.
func (r Request) ReplyThrottled(buf *Buffer, throttle time.Duration) {
	buf.throttle = throttle
	r.Reply(buf)
}

// NoReply marks the request answered without a response (Produce with
// acks=0). Later responses are not held back by it.
func (r Request) NoReply() {
	reqtrace.Finish(r.tr, false)
	r.conn.complete(r.gen, r.seq, completeNoReply, nil, "")
}

// NoReplyThrottled is NoReply, then the connection is not read for
// throttle (a throttled acks=0 Produce: Kafka mutes the channel without an
// answer). Safe from any goroutine.
func (r Request) NoReplyThrottled(throttle time.Duration) {
	if throttle <= 0 {
		r.NoReply()
		return
	}
	reqtrace.Finish(r.tr, false)
	buf := GetBuffer() // carries the throttle only; released, never sent
	buf.throttle = throttle
	r.conn.complete(r.gen, r.seq, completeNoReply, buf, "")
}

// Close closes the connection at once (responses not yet sent are dropped)
// and logs reason. Used where Kafka closes the connection: unknown API keys,
// unparsable headers, unsupported versions of most APIs.
func (r Request) Close(reason string) {
	reqtrace.Finish(r.tr, false)
	r.conn.complete(r.gen, r.seq, completeClose, nil, reason)
}

// RunOnLoop runs f later on the thread of the connection's io_uring loop,
// among its other work, and reports true; it reports false, and f is not
// run, on the portable backend and once the loop has stopped. f must not
// block, as ServeFrame must not: it is how a handler woken on another
// thread (a fetch's long poll) answers from the loop that sends the answer
// without readying a goroutine first. Safe from any goroutine, including
// the loop's own (f then runs after the current frame or completion).
func (r Request) RunOnLoop(f func()) bool { return r.conn.runOnLoop(f) }

// ReserveCopy reserves n bytes for buf from the server's budget of bytes
// handlers copy into responses (process-wide, queued.max.request.bytes) and
// reports whether they fit. The reservation is given back when buf is
// released (sent, dropped with its connection, or released by the handler).
// A handler about to copy bulk bytes into a response (file bytes read into
// memory) calls it first and, on false, sends them another way (a
// FileRegion) or not at all: responses to clients that do not read must not
// hold unbounded memory. Safe from any goroutine.
func (r Request) ReserveCopy(buf *Buffer, n int64) bool {
	b := r.conn.copies()
	if buf.budget != nil && buf.budget != b {
		return false // reserved for another server's connection: a bug
	}
	if !b.take(n) {
		return false
	}
	buf.budget = b
	buf.reserved += n
	return true
}

// RemoteAddr is the client's address, for log lines.
func (r Request) RemoteAddr() string { return r.conn.remoteAddr() }

// Buffer is a response under construction. B starts with 4 bytes reserved for
// the frame length. Buffers are pooled: steady-state responses allocate
// nothing.
//
// Files splices byte ranges of files into the response without copying them
// through user space: the bytes on the wire are B[:Files[0].At], then
// Files[0]'s range, then B[Files[0].At:Files[1].At], and so on, then the rest
// of B. At must be non-decreasing. The io_uring backend sends file ranges
// with SPLICE file→pipe→socket, the portable backend with sendfile.
type Buffer struct {
	B     []byte
	Files []FileRegion

	// budget and reserved: what ReserveCopy took for this buffer.
	budget   *copyBudget
	reserved int64
	// closeAfter: close the connection once this buffer has been sent
	// (ReplyThenClose).
	closeAfter bool
	// throttle: stop reading the connection for this long once the
	// buffer is queued (ReplyThrottled).
	throttle time.Duration
	// trace: the traced request this buffer answers (Reply); finished
	// when the buffer is released after its send (or dropped with its
	// connection, which the trace then counts as sent: rare in a
	// benchmark, and only while tracing is on).
	trace *reqtrace.Req
}

// FileRegion is a range of an open file to send as part of a response.
type FileRegion struct {
	At  int   // position in Buffer.B before which the file bytes go
	Fd  int   // file descriptor; must stay open until Ref is released
	Off int64 // file offset
	Len int64
	// Ref, if not nil, is released once the bytes have left (or the
	// connection closed): it keeps the file open meanwhile.
	Ref Releaser
}

// Releaser is released exactly once.
type Releaser interface{ Release() }

// bufferPoolMaxBytes: larger buffers are dropped rather than pooled so one
// huge response does not pin memory forever.
const bufferPoolMaxBytes = 1 << 20

var bufferPool = sync.Pool{New: func() any { return &Buffer{B: make([]byte, 0, 4096)} }}

// GetBuffer returns an empty response buffer with the length placeholder.
func GetBuffer() *Buffer {
	b := bufferPool.Get().(*Buffer)
	b.B = append(b.B[:0], 0, 0, 0, 0)
	return b
}

// Release returns b to the pool. netpoll calls it after sending; handlers
// call it only for a buffer they decide not to reply with.
func (b *Buffer) Release() {
	if b == nil {
		return
	}
	if b.trace != nil {
		reqtrace.Finish(b.trace, true)
		b.trace = nil
	}
	for i := range b.Files {
		if ref := b.Files[i].Ref; ref != nil {
			ref.Release()
		}
		b.Files[i] = FileRegion{}
	}
	b.Files = b.Files[:0]
	b.closeAfter = false
	b.throttle = 0
	if b.budget != nil {
		b.budget.give(b.reserved)
		b.budget, b.reserved = nil, 0
	}
	if cap(b.B) > bufferPoolMaxBytes {
		return
	}
	bufferPool.Put(b)
}

// cost is the memory b holds, for the in-flight bounds: its capacity, not
// its length (a pooled 4 KiB buffer holding a 40-byte answer costs 4 KiB).
func (b *Buffer) cost() int64 { return int64(cap(b.B)) }

// hasFiles reports whether b splices file ranges.
func (b *Buffer) hasFiles() bool { return len(b.Files) > 0 }
