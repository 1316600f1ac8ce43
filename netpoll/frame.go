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
// It is I/O-free; the backends feed it whatever recv returned.
type framer struct {
	maxFrameBytes int32
	lenBuf        [4]byte
	lenHave       int    // bytes of the length prefix seen so far (0..4)
	need          int    // body length of the frame being assembled, when lenHave == 4
	partial       []byte // body bytes of a spanning frame seen so far
}

// frameSink receives frames; returning false stops the feed (the connection
// is closing).
type frameSink interface {
	onFrame(frame []byte) bool
}

// errFrame reports a length prefix that can never be a valid frame.
type errFrame struct{ length int32 }

func (e errFrame) Error() string { return fmt.Sprintf("invalid frame length %d", e.length) }

// partialReuseMaxBytes: a spanning-frame buffer up to this size is kept for
// the next spanning frame; larger ones go back to the GC.
const partialReuseMaxBytes = 1 << 20

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
		f.partial = append(f.partial, data[:take]...)
		data = data[take:]
		if len(f.partial) == f.need {
			frame := f.partial
			f.lenHave, f.need = 0, 0
			if cap(f.partial) <= partialReuseMaxBytes {
				f.partial = f.partial[:0]
			} else {
				f.partial = nil
			}
			if !sink.onFrame(frame) {
				return total - len(data), nil
			}
		}
	}
	return total, nil
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
