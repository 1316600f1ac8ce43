//go:build linux

package ring

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func tempFile(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open(filepath.Join(t.TempDir(), "f"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestSendmsgThreeIovecs(t *testing.T) {
	r := newTestRing(t, defaultParams)
	a, b := socketpair(t)
	// Heap memory kept reachable until the CQE (runtime.KeepAlive below).
	parts := [][]byte{[]byte("kafka-"), []byte("over-"), []byte("io_uring")}
	iov := make([]unix.Iovec, len(parts))
	for i, p := range parts {
		iov[i].Base = &p[0]
		iov[i].SetLen(len(p))
	}
	msg := &unix.Msghdr{Iov: &iov[0]}
	msg.SetIovlen(len(iov))
	s := getSQE(t, r)
	s.PrepSendmsg(a, msg, unix.MSG_NOSIGNAL)
	s.SetUserData(1)
	c := waitCQEs(t, r, 1, 2*time.Second)[0]
	runtime.KeepAlive(parts)
	runtime.KeepAlive(iov)
	runtime.KeepAlive(msg)
	want := "kafka-over-io_uring"
	if c.Res != int32(len(want)) {
		t.Fatalf("sendmsg %+v", c)
	}
	if got := mustRead(t, b, len(want)); string(got) != want {
		t.Fatalf("got %q", got)
	}
}

// tcpPairFile connects a loopback TCP pair and returns the connecting
// side as a file (its descriptor for the ring) and the accepted side;
// both are closed when the test ends.
func tcpPairFile(t *testing.T) (*os.File, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	f, err := client.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, server
}

func TestSendZC(t *testing.T) {
	r := newTestRing(t, defaultParams)
	f, server := tcpPairFile(t)
	buf := allocBuf(t, 64<<10)
	for i := range buf.Bytes() {
		buf.Bytes()[i] = byte(i)
	}
	s := getSQE(t, r)
	s.PrepSendZC(int(f.Fd()), buf.Ptr(), uint32(buf.Len()), unix.MSG_NOSIGNAL)
	s.SetUserData(5)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, buf.Len())
	done := make(chan error, 1)
	go func() {
		server.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := io_ReadFull(server, got)
		done <- err
	}()
	cqes := waitCQEs(t, r, 2, 2*time.Second)
	if cqes[0].Res == -int32(unix.EOPNOTSUPP) {
		t.Skip("SEND_ZC not supported on this socket")
	}
	if cqes[0].Res != int32(buf.Len()) || !cqes[0].More() || cqes[0].Notif() {
		t.Fatalf("first SEND_ZC cqe %+v", cqes[0])
	}
	if !cqes[1].Notif() || cqes[1].More() || cqes[1].UserData != 5 {
		t.Fatalf("notification cqe %+v", cqes[1])
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatal("SEND_ZC data mismatch")
	}
}

func io_ReadFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := c.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestReadWrite(t *testing.T) {
	fd := tempFile(t)
	buf := allocBuf(t, 8192)
	cases := []struct {
		name   string
		off    uint64
		data   string
		readAt uint64
		want   string
	}{
		{"at0", 0, "0123456789", 0, "0123456789"},
		{"at100", 100, "abc", 100, "abc"},
		{"overwrite", 2, "XY", 0, "01XY456789"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRing(t, defaultParams) // subtests run on their own goroutine
			w := buf.Bytes()[:4096]
			copy(w, c.data)
			s := getSQE(t, r)
			s.PrepWrite(fd, buf.Ptr(), uint32(len(c.data)), c.off)
			s.SetUserData(uint64(2 * i))
			s.SetFlags(SQEIOLink)
			rd := unsafe.Pointer(&buf.Bytes()[4096])
			s = getSQE(t, r)
			s.PrepRead(fd, rd, uint32(len(c.want)), c.readAt)
			s.SetUserData(uint64(2*i + 1))
			m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
			if m[uint64(2*i)].Res != int32(len(c.data)) || m[uint64(2*i+1)].Res != int32(len(c.want)) {
				t.Fatalf("cqes %+v", m)
			}
			if got := string(buf.Bytes()[4096 : 4096+len(c.want)]); got != c.want {
				t.Fatalf("read %q want %q", got, c.want)
			}
		})
	}
}

func TestWritevOffsetLinkedFdatasync(t *testing.T) {
	r := newTestRing(t, defaultParams)
	fd := tempFile(t)
	parts := [][]byte{[]byte("segment-"), []byte("batch-"), []byte("bytes")}
	iov := make([]unix.Iovec, len(parts))
	for i, p := range parts {
		iov[i].Base = &p[0]
		iov[i].SetLen(len(p))
	}
	const off = 4096
	s := getSQE(t, r)
	s.PrepWritev(fd, &iov[0], uint32(len(iov)), off)
	s.SetFlags(SQEIOLink)
	s.SetUserData(1)
	s = getSQE(t, r)
	s.PrepFsync(fd, true)
	s.SetUserData(2)
	m := byUserData(waitCQEs(t, r, 2, 5*time.Second))
	runtime.KeepAlive(parts)
	runtime.KeepAlive(iov)
	want := "segment-batch-bytes"
	if m[1].Res != int32(len(want)) || m[2].Res != 0 {
		t.Fatalf("writev %+v fsync %+v", m[1], m[2])
	}
	got := make([]byte, len(want))
	if _, err := unix.Pread(fd, got, off); err != nil || string(got) != want {
		t.Fatalf("pread %q %v", got, err)
	}
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	if st.Size != off+int64(len(want)) {
		t.Fatalf("size %d", st.Size)
	}
}

// TestLinkBrokenOnFailure: a failed SQE cancels the rest of its link chain.
func TestLinkBrokenOnFailure(t *testing.T) {
	r := newTestRing(t, defaultParams)
	fd := tempFile(t)
	buf := allocBuf(t, 16)
	s := getSQE(t, r)
	s.PrepWrite(-1, buf.Ptr(), 16, 0) // EBADF
	s.SetFlags(SQEIOLink)
	s.SetUserData(1)
	s = getSQE(t, r)
	s.PrepFsync(fd, true)
	s.SetUserData(2)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[1].Res != -int32(unix.EBADF) || m[2].Res != -int32(unix.ECANCELED) {
		t.Fatalf("got %+v", m)
	}
}

func TestFixedBuffers(t *testing.T) {
	r := newTestRing(t, defaultParams)
	fd := tempFile(t)
	bufs := []Buffer{allocBuf(t, 8192), allocBuf(t, 4096)}
	if err := r.RegisterBuffers(bufs); err != nil {
		t.Fatal(err)
	}
	defer r.UnregisterBuffers()
	copy(bufs[0].Bytes(), "fixed-buffer-write")
	s := getSQE(t, r)
	s.PrepWriteFixed(fd, bufs[0].Ptr(), 18, 512, 0)
	s.SetFlags(SQEIOLink)
	s.SetUserData(1)
	s = getSQE(t, r)
	// Read into the middle of registered buffer 1.
	s.PrepReadFixed(fd, unsafe.Pointer(&bufs[1].Bytes()[100]), 18, 512, 1)
	s.SetUserData(2)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[1].Res != 18 || m[2].Res != 18 {
		t.Fatalf("cqes %+v", m)
	}
	if got := string(bufs[1].Bytes()[100:118]); got != "fixed-buffer-write" {
		t.Fatalf("read %q", got)
	}
	// An address outside the registered buffer is refused.
	outside := allocBuf(t, 4096)
	s = getSQE(t, r)
	s.PrepReadFixed(fd, outside.Ptr(), 18, 512, 1)
	s.SetUserData(3)
	if c := waitCQEs(t, r, 1, 2*time.Second)[0]; c.Res != -int32(unix.EFAULT) {
		t.Fatalf("read outside registered buffer: %+v", c)
	}
}

func TestFixedFiles(t *testing.T) {
	r := newTestRing(t, defaultParams)
	a, b := socketpair(t)
	if err := r.RegisterFiles([]int32{-1, -1, -1}); err != nil {
		t.Fatal(err)
	}
	defer r.UnregisterFiles()
	if err := r.UpdateFiles(1, []int32{int32(a)}); err != nil {
		t.Fatal(err)
	}
	out := allocBuf(t, 16)
	copy(out.Bytes(), "fixed")
	send := func(ud uint64) CQE {
		s := getSQE(t, r)
		s.PrepSend(1, out.Ptr(), 5, unix.MSG_NOSIGNAL) // index 1 in the file table
		s.SetFlags(SQEFixedFile)
		s.SetUserData(ud)
		return waitCQEs(t, r, 1, 2*time.Second)[0]
	}
	if c := send(1); c.Res != 5 {
		t.Fatalf("fixed send %+v", c)
	}
	if got := mustRead(t, b, 5); string(got) != "fixed" {
		t.Fatalf("got %q", got)
	}
	if err := r.UpdateFiles(1, []int32{-1}); err != nil {
		t.Fatal(err)
	}
	if c := send(2); c.Res != -int32(unix.EBADF) {
		t.Fatalf("send on cleared slot %+v", c)
	}
}

func TestSpliceFilePipeSocketLinked(t *testing.T) {
	r := newTestRing(t, defaultParams)
	fd := tempFile(t)
	data := bytes.Repeat([]byte("record-batch-"), 1000) // 13000 bytes < pipe size
	if _, err := unix.Pwrite(fd, data, 0); err != nil {
		t.Fatal(err)
	}
	pr, pw := pipe(t)
	a, b := socketpair(t)
	const fileOff = 13 // skip the first record
	n := uint32(len(data) - fileOff)
	s := getSQE(t, r)
	s.PrepSplice(fd, fileOff, pw, -1, n, 0)
	s.SetFlags(SQEIOLink)
	s.SetUserData(1)
	s = getSQE(t, r)
	s.PrepSplice(pr, -1, a, -1, n, 0)
	s.SetUserData(2)
	got := make(chan []byte, 1)
	go func() { got <- mustRead(t, b, int(n)) }()
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[1].Res != int32(n) || m[2].Res != int32(n) {
		t.Fatalf("splice cqes %+v", m)
	}
	if !bytes.Equal(<-got, data[fileOff:]) {
		t.Fatal("spliced data mismatch")
	}
}

func TestTimeout(t *testing.T) {
	cases := []struct {
		name    string
		d       time.Duration
		count   uint32
		nops    int
		wantRes int32
		minWait time.Duration
	}{
		{"fires", 20 * time.Millisecond, 0, 0, -int32(unix.ETIME), 15 * time.Millisecond},
		{"count reached", 10 * time.Second, 2, 2, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRing(t, defaultParams) // subtests run on their own goroutine
			ts := new(unix.Timespec)           // heap, reachable until the CQE
			*ts = unix.NsecToTimespec(int64(c.d))
			start := time.Now()
			s := getSQE(t, r)
			s.PrepTimeout(ts, c.count, 0)
			s.SetUserData(99)
			for i := 0; i < c.nops; i++ {
				s := getSQE(t, r)
				s.PrepNop()
				s.SetUserData(uint64(i))
			}
			m := byUserData(waitCQEs(t, r, 1+c.nops, 3*time.Second))
			if m[99].Res != c.wantRes {
				t.Fatalf("timeout cqe %+v want res %d", m[99], c.wantRes)
			}
			if el := time.Since(start); el < c.minWait {
				t.Fatalf("timeout fired after %v, want >= %v", el, c.minWait)
			}
			runtime.KeepAlive(ts)
		})
	}
}

func TestLinkTimeoutCancelsRecv(t *testing.T) {
	r := newTestRing(t, defaultParams)
	a, _ := socketpair(t)
	buf := allocBuf(t, 64)
	ts := new(unix.Timespec)
	*ts = unix.NsecToTimespec(int64(20 * time.Millisecond))
	s := getSQE(t, r)
	s.PrepRecv(a, buf.Ptr(), 64, 0) // nobody ever sends
	s.SetFlags(SQEIOLink)
	s.SetUserData(1)
	s = getSQE(t, r)
	s.PrepLinkTimeout(ts, 0)
	s.SetUserData(2)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	runtime.KeepAlive(ts)
	if m[1].Res != -int32(unix.ECANCELED) || m[2].Res != -int32(unix.ETIME) {
		t.Fatalf("recv %+v link timeout %+v", m[1], m[2])
	}
}

func TestAsyncCancel(t *testing.T) {
	r := newTestRing(t, defaultParams)
	a, _ := socketpair(t)
	buf := allocBuf(t, 64)
	s := getSQE(t, r)
	s.PrepRecv(a, buf.Ptr(), 64, 0)
	s.SetUserData(10)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	expectNoCQE(t, r, 5*time.Millisecond)
	s = getSQE(t, r)
	s.PrepCancel(10, 0)
	s.SetUserData(11)
	s = getSQE(t, r)
	s.PrepCancel(12345, 0) // no such request
	s.SetUserData(12)
	m := byUserData(waitCQEs(t, r, 3, 2*time.Second))
	if m[10].Res != -int32(unix.ECANCELED) || m[11].Res != 0 || m[12].Res != -int32(unix.ENOENT) {
		t.Fatalf("got %+v", m)
	}
	// Cancel by fd.
	s = getSQE(t, r)
	s.PrepRecv(a, buf.Ptr(), 64, 0)
	s.SetUserData(20)
	r.Submit()
	s = getSQE(t, r)
	s.PrepCancelFd(a, 0)
	s.SetUserData(21)
	m = byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[20].Res != -int32(unix.ECANCELED) || m[21].Res != 0 {
		t.Fatalf("cancel by fd %+v", m)
	}
}

// TestMsgRing: a ring owned by another goroutine (its own locked thread,
// waiting in SubmitAndWait) is woken by MSG_RING from this ring.
func TestMsgRing(t *testing.T) {
	r := newTestRing(t, defaultParams)
	type result struct {
		cqe CQE
		err error
	}
	ready := make(chan int)
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		target, err := New(defaultParams)
		if err != nil {
			close(ready)
			done <- result{err: err}
			return
		}
		defer target.Close()
		ready <- target.Fd()
		if _, err := target.SubmitAndWaitTimeout(1, 5*time.Second); err != nil {
			done <- result{err: err}
			return
		}
		var c [1]CQE
		if target.PeekBatch(c[:]) != 1 {
			done <- result{err: os.ErrDeadlineExceeded}
			return
		}
		done <- result{cqe: c[0]}
	}()
	fd, ok := <-ready
	if !ok {
		t.Fatal((<-done).err)
	}
	time.Sleep(10 * time.Millisecond) // let the target block in the kernel
	s := getSQE(t, r)
	s.PrepMsgRing(fd, 123, 0xfeed, 0)
	s.SetUserData(1)
	if c := waitCQEs(t, r, 1, 2*time.Second)[0]; c.Res != 0 {
		t.Fatalf("sender cqe %+v", c)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.cqe.UserData != 0xfeed || res.cqe.Res != 123 {
		t.Fatalf("target cqe %+v", res.cqe)
	}
}

func TestPollAddMultishotEventfd(t *testing.T) {
	r := newTestRing(t, defaultParams)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	s := getSQE(t, r)
	s.PrepPollAdd(efd, unix.POLLIN, true)
	s.SetUserData(77)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	var drain [8]byte
	for i := 0; i < 3; i++ {
		mustWrite(t, efd, one)
		c := waitCQEs(t, r, 1, 2*time.Second)[0]
		if c.UserData != 77 || c.Res&unix.POLLIN == 0 || !c.More() {
			t.Fatalf("wakeup %d: %+v", i, c)
		}
		if _, err := unix.Read(efd, drain[:]); err != nil {
			t.Fatal(err)
		}
	}
	expectNoCQE(t, r, 5*time.Millisecond)
	s = getSQE(t, r)
	s.PrepPollRemove(77)
	s.SetUserData(78)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[78].Res != 0 || m[77].Res != -int32(unix.ECANCELED) || m[77].More() {
		t.Fatalf("poll remove %+v", m)
	}
}

func TestClose(t *testing.T) {
	r := newTestRing(t, defaultParams)
	_, w := pipe(t)
	dup, err := unix.Dup(w)
	if err != nil {
		t.Fatal(err)
	}
	s := getSQE(t, r)
	s.PrepClose(dup)
	s.SetUserData(1)
	s = getSQE(t, r)
	s.PrepClose(-1)
	s.SetUserData(2)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[1].Res != 0 || m[2].Res != -int32(unix.EBADF) {
		t.Fatalf("close cqes %+v", m)
	}
	if _, err := unix.FcntlInt(uintptr(dup), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("fd still open after CLOSE: %v", err)
	}
}

func TestCQESkipSuccess(t *testing.T) {
	r := newTestRing(t, defaultParams)
	if r.Features()&FeatCQESkip == 0 {
		t.Skip("no IORING_FEAT_CQE_SKIP")
	}
	for i := uint64(0); i < 4; i++ {
		s := getSQE(t, r)
		s.PrepNop()
		s.SetFlags(SQECQESkipSuccess)
		s.SetUserData(i)
	}
	s := getSQE(t, r)
	s.PrepClose(-1) // fails: a failure is posted despite the flag
	s.SetFlags(SQECQESkipSuccess)
	s.SetUserData(10)
	s = getSQE(t, r)
	s.PrepNop()
	s.SetUserData(11)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if _, ok := m[10]; !ok || m[10].Res != -int32(unix.EBADF) {
		t.Fatalf("failed skip-success SQE must post: %+v", m)
	}
	if _, ok := m[11]; !ok {
		t.Fatalf("plain NOP missing: %+v", m)
	}
	expectNoCQE(t, r, 5*time.Millisecond)
}

func TestSQPollAfterIdle(t *testing.T) {
	const idle = 10 * time.Millisecond
	r := newTestRing(t, Params{Entries: 8, SQPoll: true, SQThreadIdle: idle})
	for round := 0; round < 3; round++ {
		s := getSQE(t, r)
		s.PrepNop()
		s.SetUserData(uint64(round))
		if n, err := r.Submit(); err != nil || n != 1 {
			t.Fatalf("round %d: Submit = %d, %v", round, n, err)
		}
		c := waitCQEs(t, r, 1, 2*time.Second)[0]
		if c.UserData != uint64(round) {
			t.Fatalf("cqe %+v", c)
		}
		// Let the poller thread go to sleep; the next Submit must wake it.
		time.Sleep(5 * idle)
		if round == 0 && r.sqFlagsNow()&sqNeedWakeup == 0 {
			t.Logf("poller not asleep after %v (flags %#x)", 5*idle, r.sqFlagsNow())
		}
	}
	// Plain Submit (no wait) after idle must still get the SQE consumed.
	s := getSQE(t, r)
	s.PrepNop()
	s.SetUserData(50)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for r.SQReady() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("SQPOLL thread never consumed the SQE after idle")
		}
		time.Sleep(time.Millisecond)
	}
	waitCQEs(t, r, 1, 2*time.Second)
}

func TestProbe(t *testing.T) {
	r := newTestRing(t, defaultParams)
	p, err := r.Probe()
	if err != nil {
		t.Fatal(err)
	}
	used := []Op{OpNop, OpAccept, OpRecv, OpSend, OpSendmsg, OpSendZC, OpRead, OpWrite, OpWritev,
		OpReadFixed, OpWriteFixed, OpFsync, OpSplice, OpTimeout, OpLinkTimeout, OpAsyncCancel,
		OpMsgRing, OpPollAdd, OpClose}
	for _, op := range used {
		if !p.Supported(op) {
			t.Errorf("probe: %v not supported", op)
		}
	}
	if err := p.Require(used...); err != nil {
		t.Error(err)
	}
	if p.Supported(Op(255)) {
		t.Error("op 255 reported supported")
	}
	t.Logf("kernel last op %d (%v)", p.LastOp(), p.LastOp())
}

func TestSendZCFixed(t *testing.T) {
	r := newTestRing(t, defaultParams)
	f, server := tcpPairFile(t)
	bufs := []Buffer{allocBuf(t, 4096), allocBuf(t, 64<<10)}
	if err := r.RegisterBuffers(bufs); err != nil {
		t.Fatal("registering buffers:", err)
	}
	defer r.UnregisterBuffers()
	buf := bufs[1]
	for i := range buf.Bytes() {
		buf.Bytes()[i] = byte(i * 7)
	}
	// From the connecting side (Go's listener is Multipath TCP, whose
	// accepted sockets refuse SEND_ZC with EOPNOTSUPP).
	// Half of registered buffer 1, from its middle.
	part := buf.Bytes()[1000 : 1000+32<<10]
	s := getSQE(t, r)
	s.PrepSendZCFixed(int(f.Fd()), unsafe.Pointer(&part[0]), uint32(len(part)), unix.MSG_NOSIGNAL, 1)
	s.SetUserData(6)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(part))
	done := make(chan error, 1)
	go func() {
		server.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := io_ReadFull(server, got)
		done <- err
	}()
	cqes := waitCQEs(t, r, 2, 2*time.Second)
	first := cqes[0]
	if first.Res != int32(len(part)) || !first.More() {
		t.Fatalf("first SEND_ZC cqe %+v", first)
	}
	if n := cqes[1]; !n.Notif() || n.UserData != 6 {
		t.Fatalf("notification cqe %+v", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, part) {
		t.Fatal("SEND_ZC fixed data mismatch")
	}
}

// TestSubmitAndWaitMin: a batched wait returns at once when all waitNr
// completions are there; with fewer, it holds on for the minimum wait and
// then returns with what there is; one completion that arrives after the
// minimum wait ends it; with none, it runs to its timeout. The lower bounds
// are the kernel's promise; the upper ones are fail-safes far off. A kernel
// without batched waits refuses them as unsupported.
func TestSubmitAndWaitMin(t *testing.T) {
	r := newTestRing(t, defaultParams)
	if r.Features()&FeatMinTimeout == 0 {
		// Before Linux 6.12: refused as unsupported (netpoll falls back
		// to waiting for one completion).
		if _, err := r.SubmitAndWaitMin(2, time.Millisecond, time.Millisecond); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("SubmitAndWaitMin without IORING_FEAT_MIN_TIMEOUT: %v, want ErrUnsupported", err)
		}
		return
	}
	drain := func() int {
		var cqes [8]CQE
		return r.PeekBatch(cqes[:])
	}
	nops := func(n int) {
		for i := range n {
			s := getSQE(t, r)
			s.PrepNop()
			s.SetUserData(uint64(i))
		}
	}
	wait := func(waitNr uint32, minWait, d time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := r.SubmitAndWaitMin(waitNr, minWait, d); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}

	// All four there: no minimum wait is served.
	nops(4)
	if el := wait(4, 10*time.Second, 20*time.Second); el > 5*time.Second {
		t.Fatalf("four of four completions: returned after %v", el)
	}
	if n := drain(); n != 4 {
		t.Fatalf("%d completions, want 4", n)
	}

	// One of four: the minimum wait, then it returns with the one.
	nops(1)
	if el := wait(4, 30*time.Millisecond, 20*time.Second); el < 30*time.Millisecond || el > 10*time.Second {
		t.Fatalf("one of four completions, minimum wait 30ms: returned after %v", el)
	}
	if n := drain(); n != 1 {
		t.Fatalf("%d completions, want 1", n)
	}

	// None ready; one arrives 40 ms in, after the 5 ms minimum: it ends
	// the wait.
	ts := new(unix.Timespec) // heap, reachable until the CQE
	*ts = unix.NsecToTimespec(int64(40 * time.Millisecond))
	s := getSQE(t, r)
	s.PrepTimeout(ts, 0, 0)
	s.SetUserData(99)
	if el := wait(4, 5*time.Millisecond, 20*time.Second); el < 40*time.Millisecond || el > 10*time.Second {
		t.Fatalf("a completion at 40ms after a 5ms minimum: returned after %v", el)
	}
	if n := drain(); n != 1 {
		t.Fatalf("%d completions, want 1", n)
	}
	runtime.KeepAlive(ts)

	// None at all: the timeout ends it, with nothing.
	if el := wait(2, time.Millisecond, 50*time.Millisecond); el < 50*time.Millisecond || el > 10*time.Second {
		t.Fatalf("no completion, 50ms timeout: returned after %v", el)
	}
	if n := drain(); n != 0 {
		t.Fatalf("%d completions, want 0", n)
	}
}
