// Package probe measures the machine limits a broker benchmark runs into:
// raw loopback TCP throughput, sequential write throughput (buffered with a
// final fdatasync, and with an fdatasync after every MiB), and cached file
// to socket throughput by splice, sendfile and pread+write, and, when
// asked, the sustained rate of fdatasync every MiB over a longer write
// (a virtual disk may grant a burst and then throttle). The harness
// prints these beside its table so every broker figure can be read against
// the ceiling of the resource it uses.
//
// Every measurement is bounded in bytes and in time. Figures are GB/s
// (10^9 bytes per second).
package probe

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// chunkBytes is the unit of every transfer: 1 MiB, also the largest pipe
// the default fs.pipe-max-size allows.
const chunkBytes = 1 << 20

// Options bounds a probe run.
type Options struct {
	// Dir is where the disk tests write (use the brokers' data dir
	// filesystem). Default: os.TempDir().
	Dir string
	// Duration bounds each measurement (default 1 s).
	Duration time.Duration
	// Bytes bounds each measurement and sizes the cached file (default
	// 256 MiB).
	Bytes int64
	// SustainedBytes and SustainedDuration bound the sustained
	// fdatasync-every-MiB write (WriteSyncSustainedGBps); zero bytes: not
	// measured.
	SustainedBytes    int64
	SustainedDuration time.Duration
}

// Result holds the figures in GB/s; a failed measurement is 0 with its
// error in Errors.
type Result struct {
	LoopbackGBps        float64 `json:"loopback_tcp_gbps"`
	WriteBufferedGBps   float64 `json:"write_buffered_then_fdatasync_gbps"`
	WriteSyncEachMBGBps float64 `json:"write_fdatasync_every_mib_gbps"`
	// WriteSyncSustainedGBps is the rate of the second half (by bytes) of
	// a write of up to SustainedBytes with an fdatasync after every MiB,
	// SustainedWrittenBytes what that write wrote in all: a disk that
	// grants a burst and then throttles shows its throttled rate here.
	WriteSyncSustainedGBps float64           `json:"write_fdatasync_every_mib_sustained_gbps,omitempty"`
	SustainedWrittenBytes  int64             `json:"sustained_written_bytes,omitempty"`
	SpliceGBps             float64           `json:"splice_file_to_socket_gbps"`
	SendfileGBps           float64           `json:"sendfile_file_to_socket_gbps"`
	ReadWriteGBps          float64           `json:"pread_write_file_to_socket_gbps"`
	Errors                 map[string]string `json:"errors,omitempty"`
}

// Run performs every measurement once.
func Run(opts Options) Result {
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	if opts.Duration <= 0 {
		opts.Duration = time.Second
	}
	if opts.Bytes <= 0 {
		opts.Bytes = 256 << 20
	}
	r := Result{Errors: map[string]string{}}
	note := func(name string, v float64, err error) float64 {
		if err != nil {
			r.Errors[name] = err.Error()
			return 0
		}
		return v
	}
	v, err := loopback(opts)
	r.LoopbackGBps = note("loopback", v, err)
	v, err = writeBuffered(opts)
	r.WriteBufferedGBps = note("write_buffered", v, err)
	v, err = writeSyncEach(opts)
	r.WriteSyncEachMBGBps = note("write_fdatasync_each", v, err)
	if opts.SustainedBytes > 0 {
		var n int64
		v, n, err = writeSyncSustained(opts)
		r.WriteSyncSustainedGBps = note("write_fdatasync_sustained", v, err)
		r.SustainedWrittenBytes = n
	}
	for _, m := range []struct {
		name string
		dst  *float64
		send sendFunc
	}{{"splice", &r.SpliceGBps, sendSplice}, {"sendfile", &r.SendfileGBps, sendSendfile}, {"pread_write", &r.ReadWriteGBps, sendReadWrite}} {
		v, err = fileToSocket(opts, m.send)
		*m.dst = note(m.name, v, err)
	}
	if len(r.Errors) == 0 {
		r.Errors = nil
	}
	return r
}

func gbps(n int64, d time.Duration) float64 { return float64(n) / max(d.Seconds(), 1e-6) / 1e9 }

// sink accepts one connection on a loopback listener and discards what it
// receives. It returns the address and a function that waits for the
// reader to finish.
func sink() (net.Listener, chan error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		_, err = io.CopyBuffer(io.Discard, c, make([]byte, chunkBytes))
		c.Close()
		done <- err
	}()
	return ln, done, nil
}

func loopback(opts Options) (float64, error) {
	ln, done, err := sink()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, chunkBytes)
	var n int64
	start := time.Now()
	for n < opts.Bytes*4 && time.Since(start) < opts.Duration {
		w, err := c.Write(buf)
		n += int64(w)
		if err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	<-done
	return gbps(n, time.Since(start)), nil
}

func writeBuffered(opts Options) (float64, error) {
	return writeFile(opts, false)
}

func writeSyncEach(opts Options) (float64, error) {
	return writeFile(opts, true)
}

func writeFile(opts Options, syncEach bool) (float64, error) {
	n, start, err := writeChunks(opts, opts.Bytes, opts.Duration, syncEach, nil)
	if err != nil {
		return 0, err
	}
	return gbps(n, time.Since(start)), nil
}

// writeChunks writes 1 MiB chunks to a temporary file in opts.Dir (removed
// after) until bytes or limit, with an fdatasync after each chunk when
// syncEach and one at the end; chunkDone, when set, gets the time each
// chunk was done. It returns the bytes written and when the writing began.
func writeChunks(opts Options, bytes int64, limit time.Duration, syncEach bool, chunkDone func(time.Time)) (int64, time.Time, error) {
	f, err := os.CreateTemp(opts.Dir, "probe-write-*")
	if err != nil {
		return 0, time.Time{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, chunkBytes)
	for i := range buf {
		buf[i] = byte(i)
	}
	var n int64
	start := time.Now()
	for n < bytes && time.Since(start) < limit {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			return n, start, err
		}
		if syncEach {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				return n, start, err
			}
		}
		if chunkDone != nil {
			chunkDone(time.Now())
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return n, start, err
	}
	return n, start, nil
}

// writeSyncSustained writes 1 MiB chunks with an fdatasync after each,
// up to SustainedBytes or SustainedDuration, and returns the rate of the
// second half of the bytes written (and the bytes written): the first
// half absorbs whatever burst the device grants.
func writeSyncSustained(opts Options) (float64, int64, error) {
	limit := opts.SustainedDuration
	if limit <= 0 {
		limit = opts.Duration
	}
	// done[i] is when chunk i had been written and synced.
	done := make([]time.Time, 0, opts.SustainedBytes/chunkBytes+1)
	n, _, err := writeChunks(opts, opts.SustainedBytes, limit, true, func(at time.Time) { done = append(done, at) })
	if err != nil {
		return 0, n, err
	}
	if len(done) < 2 {
		return 0, n, errors.New("sustained write: fewer than two chunks within the time bound")
	}
	half := len(done) / 2
	return gbps(int64(len(done)-half)*chunkBytes, done[len(done)-1].Sub(done[half-1])), n, nil
}

// sendFunc sends length bytes of file from off to the socket fd.
type sendFunc func(file *os.File, off int64, length int, sock int, pipe [2]int, buf []byte) (int, error)

// fileToSocket writes a cached file of min(Bytes, 64 MiB), then sends it
// over a loopback connection again and again with send until Duration or
// 4×Bytes have passed.
func fileToSocket(opts Options, send sendFunc) (float64, error) {
	size := min(opts.Bytes, 64<<20)
	size -= size % chunkBytes
	if size <= 0 {
		size = chunkBytes
	}
	path := filepath.Join(opts.Dir, fmt.Sprintf("probe-cached-%d", os.Getpid()))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, chunkBytes)
	for off := int64(0); off < size; off += chunkBytes {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	ln, done, err := sink()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	// File() hands back a blocking duplicate of the socket for plain
	// syscalls; the net.Conn is closed with it.
	sf, err := c.(*net.TCPConn).File()
	c.Close()
	if err != nil {
		return 0, err
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		sf.Close()
		return 0, err
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	unix.FcntlInt(uintptr(pipe[1]), unix.F_SETPIPE_SZ, chunkBytes)

	sock := int(sf.Fd())
	var n int64
	start := time.Now()
	for n < opts.Bytes*4 && time.Since(start) < opts.Duration {
		off := n % size
		w, err := send(f, off, chunkBytes, sock, pipe, buf)
		n += int64(w)
		if err != nil {
			sf.Close()
			<-done
			return 0, err
		}
	}
	elapsed := time.Since(start)
	sf.Close()
	<-done
	return gbps(n, elapsed), nil
}

func sendSplice(file *os.File, off int64, length int, sock int, pipe [2]int, _ []byte) (int, error) {
	in, err := unix.Splice(int(file.Fd()), &off, pipe[1], nil, length, unix.SPLICE_F_MOVE)
	if err != nil {
		return 0, fmt.Errorf("splice file→pipe: %w", err)
	}
	left := in
	for left > 0 {
		out, err := unix.Splice(pipe[0], nil, sock, nil, int(left), unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
		if err != nil {
			return int(in - left), fmt.Errorf("splice pipe→socket: %w", err)
		}
		left -= out
	}
	return int(in), nil
}

func sendSendfile(file *os.File, off int64, length int, sock int, _ [2]int, _ []byte) (int, error) {
	total := 0
	for total < length {
		n, err := unix.Sendfile(sock, int(file.Fd()), &off, length-total)
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, errors.New("sendfile: no progress")
		}
		total += n
	}
	return total, nil
}

func sendReadWrite(file *os.File, off int64, length int, sock int, _ [2]int, buf []byte) (int, error) {
	n, err := unix.Pread(int(file.Fd()), buf[:length], off)
	if err != nil {
		return 0, err
	}
	total := 0
	for total < n {
		w, err := unix.Write(sock, buf[total:n])
		if err != nil {
			return total, err
		}
		total += w
	}
	return total, nil
}
