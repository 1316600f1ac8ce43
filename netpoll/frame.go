package netpoll

import (
	"encoding/binary"
	"fmt"
)

// framer cuts a byte stream into Kafka frames: a 4-byte big-endian length
// followed by that many bytes. A frame that lies wholly inside one chunk is
// handed out as a sub-slice of it (no copy); only a frame that spans chunks
// is copied, into partial, which grows as bytes arrive (so a peer that
// announces 100 MB and sends 10 bytes costs 10 bytes, not 100 MB).
//
// Every growth of partial is asked of the sink first when it is a
// frameHolder (the backends' connections are): the bytes partial holds count
// toward the memory bound, and a growth the bound refuses stops the feed
// there until the connection may go on (limits.go, "Request memory").
//
// It is I/O-free; the backends feed it whatever recv returned.
type framer struct {
	maxFrameBytes int32
	lenBuf        [4]byte
	lenHave       int    // bytes of the length prefix seen so far (0..4)
	need          int    // body length of the frame being assembled, when lenHave == 4
	partial       []byte // body bytes of a spanning frame seen so far
	// held is cap(partial) as counted by the holder; turn is set while
	// this framer holds the process-wide oversize turn (frameTurn).
	held int
	turn bool
	// mapped: partial is an mmap'd buffer (partial_linux.go), unmapped once
	// its frame has been served or the connection closes.
	mapped bool
}

// frameSink receives frames; returning false stops the feed (the connection
// is closing).
type frameSink interface {
	onFrame(frame []byte) bool
}

// frameHolder is a sink that accounts the memory of spanning frames.
type frameHolder interface {
	// hold asks to grow f's partial-frame buffer by delta bytes (or, with
	// delta < 0, releases them). false refuses a growth: the feed stops
	// before it and the caller feeds the rest again later.
	hold(f *framer, delta int) bool
	// spanDone: f finished assembling a spanning frame.
	spanDone(f *framer)
}

// frameTryHolder is a frameHolder that can also answer at once: tryHold
// grows the count by delta when that fits now and reports false, with
// nothing changed, when it does not (hold may instead wait, or note the
// refusal for a mute).
type frameTryHolder interface {
	tryHold(f *framer, delta int) bool
}

// partialMinBytes is the first capacity of a spanning-frame buffer.
const partialMinBytes = 4 << 10

// errFrame reports a length prefix that can never be a valid frame.
type errFrame struct{ length int32 }

func (e errFrame) Error() string { return fmt.Sprintf("invalid frame length %d", e.length) }

// partialReuseMaxBytes: a spanning-frame buffer up to this size is kept for
// the next spanning frame (it stays counted); larger ones go back to the GC.
const partialReuseMaxBytes = 64 << 10

// feed consumes data, calling sink for each complete frame in order. It
// returns how many bytes it consumed: all of data, unless the sink returned
// false (muted or closing), in which case parsing stopped right after that
// frame and the caller keeps data[consumed:] for later.
func (f *framer) feed(data []byte, sink frameSink) (consumed int, err error) {
	total := len(data)
	for len(data) > 0 {
		if f.lenHave < 4 {
			if f.lenHave == 0 && len(data) >= 4 {
				n := int32(binary.BigEndian.Uint32(data))
				if err := f.checkLength(n); err != nil {
					return total - len(data), err
				}
				if len(data) >= 4+int(n) { // whole frame in this chunk: zero copy
					frame := data[4 : 4+int(n) : 4+int(n)]
					data = data[4+int(n):]
					if !sink.onFrame(frame) {
						return total - len(data), nil
					}
					continue
				}
				f.lenHave, f.need = 4, int(n)
				data = data[4:]
				continue
			}
			c := copy(f.lenBuf[f.lenHave:], data)
			f.lenHave += c
			data = data[c:]
			if f.lenHave < 4 {
				return total, nil
			}
			n := int32(binary.BigEndian.Uint32(f.lenBuf[:]))
			if err := f.checkLength(n); err != nil {
				return total - len(data), err
			}
			f.need = int(n)
			if f.need == 0 {
				f.lenHave = 0
				if !sink.onFrame(f.partial[:0]) {
					return total - len(data), nil
				}
			}
			continue
		}
		take := f.need - len(f.partial)
		if take > len(data) {
			take = len(data)
		}
		if len(f.partial)+take > cap(f.partial) && !f.grow(len(f.partial)+take, sink) {
			return total - len(data), nil
		}
		f.partial = append(f.partial, data[:take]...)
		data = data[take:]
		if len(f.partial) == f.need {
			frame, mapped := f.partial, f.mapped
			f.lenHave, f.need = 0, 0
			if cap(f.partial) <= partialReuseMaxBytes && !mapped {
				f.partial = f.partial[:0]
			} else {
				f.partial, f.mapped = nil, false
				f.release(sink)
			}
			if h, ok := sink.(frameHolder); ok {
				h.spanDone(f)
			}
			more := sink.onFrame(frame)
			if mapped {
				releaseMapping(frame) // ServeFrame has returned: nobody holds it
			}
			if !more {
				return total - len(data), nil
			}
		}
	}
	return total, nil
}

// grow makes room in partial for at least want bytes: doubling, capped at
// the frame's length, each growth asked of a frameHolder sink first; with
// the oversize turn, straight to the frame's length (the turn is the
// reservation, and the smaller copies doubling leaves to the GC would count
// twice in the RSS). It reports false when the holder refused.
func (f *framer) grow(want int, sink frameSink) bool {
	newCap := min(max(want, 2*cap(f.partial), partialMinBytes), f.need)
	if f.turn {
		newCap = f.need
	}
	if !f.mapped && f.need > partialReuseMaxBytes {
		// A cached mapping that holds the whole frame is memory already
		// resident: take it at once, with no doubling on the way.
		// It is counted whole at once, so only when that fits now
		// (tryHold never waits); otherwise it goes back and the growth
		// proceeds as without a cache.
		if p := cachedMapping(f.need); p != nil {
			_, held := sink.(frameHolder)
			th, try := sink.(frameTryHolder)
			if !held || (try && th.tryHold(f, f.need-f.held)) {
				if held {
					f.held = f.need
				}
				f.partial, f.mapped = p[:copy(p[:len(f.partial)], f.partial)], true
				return true
			}
			releaseMapping(p)
		}
	}
	if h, ok := sink.(frameHolder); ok {
		if !h.hold(f, newCap-f.held) {
			return false
		}
		f.held = newCap
	}
	if newCap > partialReuseMaxBytes {
		if p, err := mapPartial(f.partial, f.mapped, newCap); err == nil {
			f.partial, f.mapped = p, true
			return true
		}
		// No mapping (ENOMEM, map count): the heap will do.
	}
	p := make([]byte, len(f.partial), newCap)
	copy(p, f.partial)
	if f.mapped {
		releaseMapping(f.partial)
		f.mapped = false
	}
	f.partial = p
	return true
}

// discard drops a partly assembled frame (the connection is closing): its
// count is given back and a mapping unmapped.
func (f *framer) discard(sink frameSink) {
	f.release(sink)
	if f.mapped {
		releaseMapping(f.partial)
	}
	f.partial, f.mapped = nil, false
}

// release gives back the count of a partial buffer that was dropped.
func (f *framer) release(sink frameSink) {
	if h, ok := sink.(frameHolder); ok && f.held > 0 {
		h.hold(f, -f.held)
	}
	f.held = 0
}

func (f *framer) checkLength(n int32) error {
	if n < 0 || n > f.maxFrameBytes {
		return errFrame{length: n}
	}
	return nil
}

// pending reports whether a frame is partly assembled (used to tell a clean
// EOF from a truncated one in logs).
func (f *framer) pending() bool { return f.lenHave > 0 }
