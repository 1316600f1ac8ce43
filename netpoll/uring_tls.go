//go:build linux

package netpoll

import (
	"errors"
	"math/bits"
	"net"
	"syscall"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/internal/tlsrec"
	"github.com/ringbroker/ringbroker/ring"
)

// TLS connections served by an io_uring loop (tls_loop.go says how they
// get here).
//
// Receive: the multishot RECV fills provided buffers with ciphertext as
// for any connection; consumeTLS opens the records in place in those
// buffers and feeds their plaintext to the framer (or the stash of a
// muted connection), exactly where a plaintext connection's bytes go. A
// record cut by a buffer's end is reassembled in the record layer's own
// buffer (one record, at most 16 KiB + 261 bytes per connection, counted
// in the loop's queuedBytes).
//
// Send: one SENDMSG in flight per connection, as for plaintext, but its
// bytes are records sealed into the connection's send buffer (tlsOutBytes,
// taken from a per-loop pool while the connection sends and counted in
// queuedBytes); with Options.TLSSendZC the buffer is one of a fixed pool
// registered with the ring, sent by SEND_ZC (uring_tls_zc.go). The run of
// responses at the head of the queue is sealed
// record by record: response bytes are copied into the record, file
// regions are read from the page cache straight into it (preadv2 with
// RWF_NOWAIT; a plain pread on the loop thread when the pages are not
// cached), then the record is encrypted in place. A run larger than the
// buffer goes out in several sends. A KeyUpdate the client asked for
// leaves before the next record (or on its own when nothing else waits).
//
// Errors: close_notify from the client closes cleanly; a record that
// fails (authentication, limits, unexpected message) gets its fatal alert
// written (best effort, non-blocking, only between our own records) and
// the connection closes. A connection we close for any other reason gets a
// close_notify the same way.
//
// Costs against plaintext on the ring: the AEAD work on the loop thread,
// one copy of response bytes into the send buffer (splice is not possible:
// the bytes must pass through user space to be encrypted), and file bytes
// read instead of spliced.

// tlsOutBytes is a connection's send buffer: 32 full records (532 KiB).
// Each fill costs a loop wake-up per SENDMSG, so it is sized like the
// plaintext path's splice steps (up to 1 MiB): with 8 records a fetch
// catch-up over SSL took 20-30% more broker CPU per GiB than with 32.
const tlsOutBytes = 32 * (tlsrec.MaxRecordBytes + 1)

// tlsOutPoolMax bounds a loop's idle send buffers (8.5 MiB).
const tlsOutPoolMax = 16

// tlsSend is the state of a TLS connection's send.
type tlsSend struct {
	// out holds the sealed records of the current SENDMSG (heap, reachable
	// from the connection until the completion); sent: bytes of out that
	// left.
	out  []byte
	sent int
	// reg: 1 + the index of the registered buffer out lies in (0: heap);
	// zc: the send in flight is a SEND_ZC;
	// zcRes: the result of a SEND_ZC whose notification is still to come;
	// waiting: c waits in the loop's queue for a registered buffer.
	reg     int
	zc      bool
	zcRes   int32
	waiting bool
	// Where sealing stands in c.sendBufs: buffer index, piece (even 2i:
	// the bytes before Files[i]; odd: Files[i]), offset in the piece.
	buf   int
	piece int
	off   int64
}

// adopt hands a TLS connection whose handshake ended (nc, records) to a
// loop. nc is closed on success: the loop owns a duplicate of its socket.
func (s *uringServer) adopt(nc net.Conn, records *tlsrec.Conn, key peerKey, sess Session) error {
	fd, err := dupSocket(nc)
	if err != nil {
		return err
	}
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	if s.adoptClosed {
		unix.Close(fd)
		return errAdoptRefused
	}
	nc.Close()
	l := s.loops[int(s.adoptNext.Add(1))%len(s.loops)]
	l.post(mail{kind: mailAdopt, adopt: &adoption{fd: fd, remote: nc.RemoteAddr(), key: key, limited: s.limits != nil, sess: sess, records: records}})
	return nil
}

// closeAdoption stops adoptions: Shutdown calls it before telling the loops
// to drain, so every adoption posted is in a mailbox ahead of the drain.
func (s *uringServer) closeAdoption() {
	s.adoptMu.Lock()
	s.adoptClosed = true
	s.adoptMu.Unlock()
}

// dupSocket returns a close-on-exec duplicate of nc's socket.
func dupSocket(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("connection has no socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return fd, dupErr
}

// onAdopt gives an adopted connection its slot (or closes it when the
// loop is draining).
func (l *uloop) onAdopt(a *adoption) {
	if l.draining {
		unix.Close(a.fd)
		if a.limited {
			l.s.limits.release(a.key)
		}
		sessionDone(a.sess)
		return
	}
	peer, _ := a.remote.(*net.TCPAddr)
	l.setupConn(a.fd, peer, a.key, a.limited, a.sess, a.records)
}

// consumeTLS opens the records in data (a provided buffer, decrypted in
// place) and consumes their plaintext.
func (l *uloop) consumeTLS(c *uconn, data []byte) {
	err := c.tls.Open(data, func(plain []byte) error {
		l.consume(c, plain)
		if c.closing {
			return errConnClosing
		}
		return nil
	})
	l.tlsAccount(c)
	switch {
	case err == nil, errors.Is(err, errConnClosing):
	case errors.Is(err, tlsrec.ErrCloseNotify):
		l.closeConn(c, "client closed (close_notify)", zap.DebugLevel)
	default:
		if alert, ok := tlsrec.AlertFor(err); ok {
			l.tlsWriteAlert(c, alert)
		}
		c.tls.Release()
		l.tlsAccount(c)
		l.closeConn(c, err.Error(), zap.WarnLevel)
	}
	if !c.closing && !c.sending && c.tls.PendingControl() {
		l.startTLSSend(c) // the KeyUpdate the client asked for
	}
}

var errConnClosing = errors.New("connection closing")

// tlsAccount brings c.tlsHeld (and the loop's queuedBytes) up to what the
// record layer and the send buffer hold now.
func (l *uloop) tlsAccount(c *uconn) {
	held := int64(cap(c.ts.out))
	if c.tls != nil {
		held += int64(c.tls.Buffered())
	}
	l.queuedBytes += held - c.tlsHeld
	c.tlsHeld = held
}

// tlsWriteAlert writes a record of c's own (an alert) straight to the
// socket, without blocking, when no send of ours is in flight (a record of
// ours must not land inside another). Best effort: the connection closes
// next.
func (l *uloop) tlsWriteAlert(c *uconn, desc uint8) {
	if c.sending || c.fd < 0 {
		return
	}
	var buf [64]byte
	rec := c.tls.AppendAlert(buf[:0], desc)
	_, _ = unix.SendmsgN(c.fd, rec, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
}

// tlsClosing runs when closeConn starts closing a TLS connection: a
// close_notify for the client (best effort).
func (l *uloop) tlsClosing(c *uconn) {
	if !c.sending && !c.tls.Closed() {
		l.tlsWriteAlert(c, 0)
	}
}

func (l *uloop) getTLSOut() []byte {
	if l.tlsReg != nil {
		return nil
	}
	if n := len(l.tlsOuts); n > 0 {
		b := l.tlsOuts[n-1]
		l.tlsOuts[n-1] = nil
		l.tlsOuts = l.tlsOuts[:n-1]
		return b
	}
	return make([]byte, 0, tlsOutBytes)
}

// putTLSOut takes back ts's send buffer.
func (l *uloop) putTLSOut(ts *tlsSend) {
	if ts.reg > 0 {
		l.putTLSReg(ts.reg - 1)
		return
	}
	if b := ts.out; b != nil && len(l.tlsOuts) < tlsOutPoolMax {
		l.tlsOuts = append(l.tlsOuts, b[:0])
	}
}

// startTLSSend seals the first part of c.sendBufs (possibly none: a
// pending KeyUpdate alone) and sends it.
func (l *uloop) startTLSSend(c *uconn) {
	if l.tlsReg != nil {
		if !l.startTLSReg(c) {
			return // waits for a registered buffer
		}
	} else {
		c.ts = tlsSend{out: l.getTLSOut()}
	}
	l.tlsAccount(c)
	c.sending = true // sealing may close c: no other send may start meanwhile
	if !l.tlsFill(c) {
		c.sending = false
		l.endTLSSend(c)
		l.maybeFree(c)
		return
	}
	if len(c.ts.out) == 0 { // only empty responses: nothing to seal
		c.sending = false
		l.finishTLSSend(c)
		return
	}
	l.tlsSubmit(c)
}

// tlsFill seals records into c.ts.out (emptied) until it is full or the run
// is sealed; false when c closed on an error.
func (l *uloop) tlsFill(c *uconn) bool {
	ts := &c.ts
	out, err := c.tls.AppendControl(ts.out[:0])
	for err == nil && ts.buf < len(c.sendBufs) && len(out)+tlsrec.MaxRecordBytes+1 <= cap(out) {
		var start int
		out, start = tlsrec.BeginRecord(out)
		out = l.tlsGather(c, out, start, &err)
		if err != nil {
			break
		}
		if len(out) == start { // nothing left: an empty record is not needed
			out = out[:start-tlsrec.HeaderBytes]
			break
		}
		out, err = c.tls.FinishRecord(out, start)
	}
	ts.out, ts.sent = out, 0
	if err != nil {
		l.closeConn(c, "tls send: "+err.Error(), zap.WarnLevel)
		return false
	}
	return true
}

// tlsGather appends up to MaxPlaintextBytes of the response run (from
// where c.ts stands) to out, whose record started at start.
func (l *uloop) tlsGather(c *uconn, out []byte, start int, errp *error) []byte {
	ts := &c.ts
	for ts.buf < len(c.sendBufs) {
		room := tlsrec.MaxPlaintextBytes - (len(out) - start)
		if room == 0 {
			return out
		}
		b := c.sendBufs[ts.buf]
		if ts.piece > 2*len(b.Files) {
			ts.buf, ts.piece, ts.off = ts.buf+1, 0, 0
			continue
		}
		if ts.piece%2 == 0 {
			from, end := 0, len(b.B)
			if i := ts.piece / 2; i > 0 {
				from = b.Files[i-1].At
			}
			if i := ts.piece / 2; i < len(b.Files) {
				end = b.Files[i].At
			}
			from += int(ts.off)
			n := min(end-from, room)
			out = append(out, b.B[from:from+n]...)
			ts.off += int64(n)
			if from+n == end {
				ts.piece, ts.off = ts.piece+1, 0
			}
			continue
		}
		r := &b.Files[ts.piece/2]
		n := int(min(r.Len-ts.off, int64(room)))
		if n == 0 {
			ts.piece, ts.off = ts.piece+1, 0
			continue
		}
		got, err := preadCached(r.Fd, out[len(out):len(out)+n], r.Off+ts.off)
		if err != nil {
			*errp = err
			return out
		}
		if got == 0 {
			*errp = errors.New("segment file shorter than its region")
			return out
		}
		out = out[:len(out)+got]
		ts.off += int64(got)
	}
	return out
}

// preadCached reads from the page cache without blocking when it can
// (RWF_NOWAIT), else with a plain pread (the loop waits for the disk: a
// fetch of cold data costs the loop that read). It allocates nothing
// (unix.Preadv2 builds its iovec slice on the heap at every call).
func preadCached(fd int, dst []byte, off int64) (int, error) {
	for {
		n, err := preadv2NoWait(fd, dst, off)
		if err == nil && n > 0 {
			return n, nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil && err != unix.EAGAIN && err != unix.EOPNOTSUPP {
			return 0, err
		}
		n, err = unix.Pread(fd, dst, off)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// preadv2NoWait is preadv2(fd, {dst}, 1, off, RWF_NOWAIT). The iovec lives
// on this frame: the call is synchronous, the kernel is done with it when
// it returns.
func preadv2NoWait(fd int, dst []byte, off int64) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	iov := unix.Iovec{Base: &dst[0]}
	iov.SetLen(len(dst))
	// The offset goes as (low, high) halves of the word size; on 64-bit
	// the high half is 0 (the kernel's pos_from_hilo).
	lo := uintptr(off)
	hi := uintptr(uint64(off) >> (bits.UintSize / 2) >> (bits.UintSize / 2))
	n, _, errno := unix.Syscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, lo, hi, unix.RWF_NOWAIT)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func (l *uloop) tlsSubmit(c *uconn) {
	b := c.ts.out[c.ts.sent:]
	if c.ts.reg > 0 {
		l.submitTLSZC(c, b)
		return
	}
	c.iov[0] = unix.Iovec{Base: &b[0]}
	c.iov[0].SetLen(len(b))
	l.submitSend(c, 0, 1)
}

// onTLSSend handles a TLS connection's send completion.
func (l *uloop) onTLSSend(c *uconn, cqe *ring.CQE) {
	if c.ts.zc {
		var done bool
		if cqe, done = c.ts.zcCompletion(cqe); !done {
			return
		}
	}
	c.sending = false
	l.opEnded(c)
	if c.closing {
		l.maybeFree(c)
		return
	}
	if c.ts.zc && cqe.Res == -int32(unix.EOPNOTSUPP) {
		l.tlsZCRefused(c) // nothing left: the same bytes again, by SEND
		return
	}
	if cqe.Res < 0 {
		l.closeConn(c, "send: "+unix.Errno(-cqe.Res).Error(), zap.DebugLevel)
		l.maybeFree(c)
		return
	}
	l.s.opts.Metrics.BytesOut(int(cqe.Res))
	c.ts.sent += int(cqe.Res)
	if c.ts.sent < len(c.ts.out) {
		l.tlsSubmit(c)
		return
	}
	if c.ts.buf < len(c.sendBufs) || c.tls.PendingControl() {
		c.sending = true
		if !l.tlsFill(c) {
			c.sending = false
			l.endTLSSend(c)
			l.maybeFree(c)
			return
		}
		if len(c.ts.out) > 0 {
			l.tlsSubmit(c)
			return
		}
		c.sending = false
	}
	l.finishTLSSend(c)
}

// finishTLSSend ends a send whose run of responses has left.
func (l *uloop) finishTLSSend(c *uconn) {
	l.endTLSSend(c)
	for i := range c.sendBufs {
		c.sendBufs[i] = nil
	}
	c.sendBufs = c.sendBufs[:0]
	l.afterSend(c)
}

// endTLSSend returns c's send buffer to the pool.
func (l *uloop) endTLSSend(c *uconn) {
	l.putTLSOut(&c.ts)
	c.ts = tlsSend{}
	l.tlsAccount(c)
}
