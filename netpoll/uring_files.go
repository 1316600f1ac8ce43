//go:build linux

package netpoll

import (
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/ring"
)

// Sending a response that splices file ranges (a Fetch) on io_uring.
//
// The response is a sequence of pieces: bytes of B, a file range, bytes, a
// file range, ..., bytes. One step submits one linked chain and waits for all
// of its completions before the next step:
//
//	[SEND bytes, MSG_WAITALL|MSG_MORE] -link-> [SPLICE file→pipe n] -link-> [SPLICE pipe→socket n]
//
// (the SEND only when a bytes piece is pending; n ≤ the pipe's capacity,
// 1 MiB where fs.pipe-max-size allows). io_uring fails a short send or
// splice, which cancels the rest of its link (-ECANCELED): so a link never
// moves on past a partial piece, and after any short result the byte
// counters (sent, read, inPipe) say where to resume. Bytes left in the pipe
// are drained before anything else. Pipes come from a per-loop pool; a pipe
// that may hold stray bytes (error, close) is closed, never pooled.

const (
	kindFileSend  uint64 = iota + 16 // bytes piece of a file-splicing response
	kindSpliceIn                     // file → pipe
	kindSpliceOut                    // pipe → socket
)

// pipeMaxBytes is the pipe size we ask for (fs.pipe-max-size is 1 MiB by
// default; the kernel may give less and we use what it gives).
const pipeMaxBytes = 1 << 20

type pipePair struct {
	r, w     int
	capBytes int64
}

func (l *uloop) getPipe() (*pipePair, error) {
	if n := len(l.pipes); n > 0 {
		p := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return p, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	p := &pipePair{r: fds[0], w: fds[1], capBytes: 64 << 10}
	if n, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, pipeMaxBytes); err == nil {
		p.capBytes = int64(n)
	}
	return p, nil
}

func (l *uloop) putPipe(p *pipePair, clean bool) {
	if clean && len(l.pipes) < 64 {
		l.pipes = append(l.pipes, p)
		return
	}
	unix.Close(p.r)
	unix.Close(p.w)
}

// fileSend is the state of a connection's file-splicing send.
type fileSend struct {
	buf    *Buffer
	piece  int   // 2i: bytes before Files[i]; 2i+1: Files[i]; 2*len(Files): the tail bytes
	sent   int64 // bytes of the current piece that reached the socket
	read   int64 // file pieces: bytes of the current piece moved into the pipe
	inPipe int64
	pipe   *pipePair
	ops    int  // completions outstanding in the current chain
	failed bool // an op failed: the connection is closing
}

func (f *fileSend) lastPiece() int { return 2 * len(f.buf.Files) }

// bytesPiece returns the [start, end) of B for even piece p.
func (f *fileSend) bytesPiece(p int) (int, int) {
	i := p / 2
	start := 0
	if i > 0 {
		start = f.buf.Files[i-1].At
	}
	end := len(f.buf.B)
	if i < len(f.buf.Files) {
		end = f.buf.Files[i].At
	}
	return start, end
}

func (l *uloop) startFileSend(c *uconn, b *Buffer) {
	p, err := l.getPipe()
	if err != nil {
		l.closeConn(c, "pipe for splice: "+err.Error(), zap.WarnLevel)
		return
	}
	c.fs = fileSend{buf: b, pipe: p}
	c.sending = true
	l.fileStep(c)
}

// fileStep submits the next chain, or finishes the response.
func (l *uloop) fileStep(c *uconn) {
	f := &c.fs
	if f.inPipe > 0 {
		l.prepSpliceOut(c, f.inPipe)
		return
	}
	for f.piece <= f.lastPiece() { // skip finished or empty pieces
		if f.piece%2 == 0 {
			start, end := f.bytesPiece(f.piece)
			if int64(start)+f.sent < int64(end) {
				break
			}
		} else if f.sent < f.buf.Files[f.piece/2].Len {
			break
		}
		f.piece++
		f.sent, f.read = 0, 0
	}
	if f.piece > f.lastPiece() {
		l.finishFileSend(c)
		return
	}
	if f.piece%2 == 0 {
		start, end := f.bytesPiece(f.piece)
		from := start + int(f.sent)
		more := f.piece < f.lastPiece()
		flags := unix.MSG_NOSIGNAL | unix.MSG_WAITALL
		if more {
			flags |= unix.MSG_MORE
		}
		sqe := l.getSQE()
		sqe.PrepSend(c.fd, ptrOf(f.buf.B[from:end]), uint32(end-from), flags)
		sqe.SetUserData(userData(kindFileSend, c.gen, c.idx))
		var next *FileRegion
		if more && f.buf.Files[f.piece/2].Len > 0 {
			next = &f.buf.Files[f.piece/2]
			sqe.SetFlags(ring.SQEIOLink)
		}
		l.countOp(c)
		if next != nil {
			l.prepSpliceChunk(c, next, 0)
		}
		return
	}
	l.prepSpliceChunk(c, &f.buf.Files[f.piece/2], f.read)
}

// prepSpliceChunk submits SPLICE file→pipe linked to SPLICE pipe→socket for
// the next chunk of region r starting read bytes in.
func (l *uloop) prepSpliceChunk(c *uconn, r *FileRegion, read int64) {
	n := min(r.Len-read, c.fs.pipe.capBytes)
	sqe := l.getSQE()
	sqe.PrepSplice(r.Fd, r.Off+read, c.fs.pipe.w, -1, uint32(n), 0)
	sqe.SetUserData(userData(kindSpliceIn, c.gen, c.idx))
	sqe.SetFlags(ring.SQEIOLink)
	l.countOp(c)
	l.prepSpliceOut(c, n)
}

func (l *uloop) prepSpliceOut(c *uconn, n int64) {
	sqe := l.getSQE()
	sqe.PrepSplice(c.fs.pipe.r, -1, c.fd, -1, uint32(n), 0)
	sqe.SetUserData(userData(kindSpliceOut, c.gen, c.idx))
	l.countOp(c)
}

func (l *uloop) countOp(c *uconn) {
	c.fs.ops++
	l.opStarted(c)
}

// onFileOp handles a completion of a file-splicing chain.
func (l *uloop) onFileOp(kind uint64, c *uconn, cqe *ring.CQE) {
	f := &c.fs
	f.ops--
	l.opEnded(c)
	res := cqe.Res
	switch {
	case res == -int32(unix.ECANCELED) && !c.closing:
		// A short result earlier in the chain broke the link (io_uring
		// fails short splices and sends); the counters say where we are
		// and the next step resumes from there.
	case res < 0:
		if !f.failed {
			l.closeConn(c, "splice send: "+unix.Errno(-res).Error(), zap.DebugLevel)
		}
		f.failed = true
	case kind == kindFileSend:
		l.s.opts.Metrics.BytesOut(int(res))
		f.sent += int64(res)
		start, end := f.bytesPiece(f.piece)
		if int64(start)+f.sent >= int64(end) {
			f.piece++
			f.sent, f.read = 0, 0
		}
	case kind == kindSpliceIn:
		if res == 0 {
			f.failed = true
			l.closeConn(c, "segment file shorter than its region", zap.ErrorLevel)
			break
		}
		f.read += int64(res)
		f.inPipe += int64(res)
	case kind == kindSpliceOut:
		l.s.opts.Metrics.BytesOut(int(res))
		f.inPipe -= int64(res)
		f.sent += int64(res)
	}
	if f.ops > 0 {
		return
	}
	if f.failed || c.closing {
		if f.pipe != nil {
			l.putPipe(f.pipe, false)
			f.pipe = nil
		}
		c.sending = false
		c.fs = fileSend{}
		l.maybeFree(c)
		return
	}
	l.fileStep(c)
}

func (l *uloop) finishFileSend(c *uconn) {
	l.putPipe(c.fs.pipe, true)
	c.fs = fileSend{}
	c.sending = false
	c.sendBufs[0] = nil
	c.sendBufs = c.sendBufs[:0]
	l.afterSend(c)
}
