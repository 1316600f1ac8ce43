package netpoll

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// writeWithFiles writes a response that splices file ranges (portable
// backend): the byte pieces with Write, the file ranges with sendfile(2)
// from the page cache straight to the socket.
func writeWithFiles(nc net.Conn, b *Buffer) error {
	pos := 0
	for i := range b.Files {
		f := &b.Files[i]
		if f.At > pos {
			if _, err := nc.Write(b.B[pos:f.At]); err != nil {
				return err
			}
			pos = f.At
		}
		if err := sendfile(nc, f.Fd, f.Off, f.Len); err != nil {
			return err
		}
	}
	if pos < len(b.B) {
		_, err := nc.Write(b.B[pos:])
		return err
	}
	return nil
}

func sendfile(nc net.Conn, fd int, off, n int64) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return errNoSendfile
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = raw.Write(func(sock uintptr) bool {
		for n > 0 {
			w, err := unix.Sendfile(int(sock), fd, &off, int(min(n, 1<<30)))
			if w > 0 {
				n -= int64(w)
			}
			switch {
			case err == unix.EAGAIN:
				return false // wait until the socket is writable
			case err == unix.EINTR:
			case err != nil:
				werr = err
				return true
			case w == 0:
				werr = io.ErrUnexpectedEOF // file shorter than the region
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

var errNoSendfile = &net.OpError{Op: "sendfile", Err: syscall.ENOTSUP}

// writeCopyingFiles writes a response with file ranges through a
// connection that cannot take sendfile (a TLS record layer encrypts in
// user space): each range is pread into *scratch, 64 KiB at a time, and
// written. One scratch buffer per connection writer, reused.
func writeCopyingFiles(nc net.Conn, b *Buffer, scratch *[]byte) error {
	const chunk = 64 << 10
	if cap(*scratch) < chunk {
		*scratch = make([]byte, chunk)
	}
	buf := (*scratch)[:chunk]
	pos := 0
	for i := range b.Files {
		f := &b.Files[i]
		if f.At > pos {
			if _, err := nc.Write(b.B[pos:f.At]); err != nil {
				return err
			}
			pos = f.At
		}
		off, left := f.Off, f.Len
		for left > 0 {
			n, err := unix.Pread(f.Fd, buf[:min(left, chunk)], off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return io.ErrUnexpectedEOF // file shorter than the region
			}
			if _, err := nc.Write(buf[:n]); err != nil {
				return err
			}
			off += int64(n)
			left -= int64(n)
		}
	}
	if pos < len(b.B) {
		_, err := nc.Write(b.B[pos:])
		return err
	}
	return nil
}
