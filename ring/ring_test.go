//go:build linux

package ring

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSetupFlagCombos(t *testing.T) {
	cases := []struct {
		name string
		p    Params
		want uint32
	}{
		{"plain", Params{Entries: 8}, 0},
		{"single-defer", Params{Entries: 8, SingleIssuer: true, DeferTaskrun: true}, SetupSingleIssuer | SetupDeferTaskrun | SetupTaskrunFlag},
		{"coop", Params{Entries: 8, CoopTaskrun: true}, SetupCoopTaskrun | SetupTaskrunFlag},
		{"default", defaultParams, SetupSingleIssuer | SetupDeferTaskrun | SetupCoopTaskrun | SetupTaskrunFlag},
		{"cqsize", Params{Entries: 8, CQEntries: 64}, SetupCQSize},
		{"sqpoll", Params{Entries: 8, SQPoll: true, SQThreadIdle: 10 * time.Millisecond}, SetupSQPoll},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRing(t, c.p)
			if r.SetupFlags() != c.want {
				t.Fatalf("SetupFlags=%#x want %#x", r.SetupFlags(), c.want)
			}
			if c.p.CQEntries != 0 && r.CQEntries() != c.p.CQEntries {
				t.Fatalf("CQEntries=%d want %d", r.CQEntries(), c.p.CQEntries)
			}
			if r.Features()&FeatSingleMmap == 0 {
				t.Logf("kernel without SINGLE_MMAP: two ring mappings")
			}
			// Each combination must actually work.
			s := getSQE(t, r)
			s.PrepNop()
			s.SetUserData(7)
			c := waitCQEs(t, r, 1, 2*time.Second)
			if c[0].UserData != 7 || c[0].Res != 0 {
				t.Fatalf("cqe %+v", c[0])
			}
		})
	}
}

func TestNewInvalidParams(t *testing.T) {
	for _, p := range []Params{
		{Entries: 0},
		{Entries: 3},
		{Entries: 8, DeferTaskrun: true},
		{Entries: 8, SingleIssuer: true, DeferTaskrun: true, SQPoll: true},
	} {
		if r, err := New(p); err == nil {
			r.Close()
			t.Errorf("New(%+v) succeeded, want error", p)
		} else if errors.Is(err, ErrUnavailable) {
			t.Errorf("New(%+v) = %v, must not be ErrUnavailable", p, err)
		}
	}
}

func TestNop(t *testing.T) {
	r := newTestRing(t, defaultParams)
	for i := uint64(0); i < 10; i++ {
		s := getSQE(t, r)
		s.PrepNop()
		s.SetUserData(100 + i)
	}
	if got := r.SQReady(); got != 10 {
		t.Fatalf("SQReady=%d want 10", got)
	}
	n, err := r.SubmitAndWait(10)
	if err != nil || n != 10 {
		t.Fatalf("SubmitAndWait = %d, %v", n, err)
	}
	if r.SQReady() != 0 {
		t.Fatalf("SQReady=%d after submit", r.SQReady())
	}
	if r.CQReady() != 10 {
		t.Fatalf("CQReady=%d want 10", r.CQReady())
	}
	var cqes [4]CQE
	var got []uint64
	for {
		k := r.PeekBatch(cqes[:])
		if k == 0 {
			break
		}
		for _, c := range cqes[:k] {
			if c.Res != 0 {
				t.Fatalf("nop res %d", c.Res)
			}
			got = append(got, c.UserData)
		}
	}
	if len(got) != 10 {
		t.Fatalf("got %d CQEs", len(got))
	}
	for i, u := range got {
		if u != 100+uint64(i) {
			t.Fatalf("order: %v", got)
		}
	}
}

func TestSQFull(t *testing.T) {
	r := newTestRing(t, Params{Entries: 4, SingleIssuer: true, DeferTaskrun: true})
	for i := 0; i < 4; i++ {
		getSQE(t, r).PrepNop()
	}
	if s := r.GetSQE(); s != nil {
		t.Fatal("GetSQE on full SQ returned an SQE")
	}
	if n, err := r.Submit(); err != nil || n != 4 {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	if s := r.GetSQE(); s == nil {
		t.Fatal("GetSQE nil after Submit")
	} else {
		s.PrepNop()
	}
	waitCQEs(t, r, 5, 2*time.Second)
}

func TestGetSQEZeroed(t *testing.T) {
	r := newTestRing(t, Params{Entries: 2})
	s := getSQE(t, r)
	s.PrepSend(-1, nil, 9, 3)
	s.SetUserData(9)
	s.SetFlags(SQEIOLink)
	getSQE(t, r).PrepNop()
	if _, err := r.SubmitAndWait(2); err != nil {
		t.Fatal(err)
	}
	var c [2]CQE
	r.PeekBatch(c[:])
	s = getSQE(t, r) // same slot as the first one
	if *s != (SQE{}) {
		t.Fatalf("reused SQE not zeroed: %+v", *s)
	}
}

func TestCQOverflowFlushed(t *testing.T) {
	r := newTestRing(t, Params{Entries: 4, CQEntries: 4, SingleIssuer: true, DeferTaskrun: true})
	if r.Features()&FeatNoDrop == 0 {
		t.Skip("kernel without IORING_FEAT_NODROP")
	}
	total := 0
	for round := 0; round < 3; round++ {
		for i := 0; i < 4; i++ {
			s := getSQE(t, r)
			s.PrepNop()
			s.SetUserData(uint64(total))
			total++
		}
		if _, err := r.SubmitAndWait(0); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	var got []uint64
	var buf [3]CQE
	for i := 0; i < 20 && len(got) < total; i++ {
		k := r.PeekBatch(buf[:])
		for _, c := range buf[:k] {
			got = append(got, c.UserData)
		}
	}
	if len(got) != total {
		t.Fatalf("got %d CQEs of %d after overflow: %v", len(got), total, got)
	}
	for i, u := range got {
		if u != uint64(i) {
			t.Fatalf("order after overflow: %v", got)
		}
	}
	if r.CQOverflow() != 0 {
		t.Fatalf("kernel dropped %d CQEs", r.CQOverflow())
	}
}

// TestTaskrunFlagPeek checks that under DEFER_TASKRUN a completion that needs
// task work becomes visible to PeekBatch alone (via IORING_SQ_TASKRUN).
func TestTaskrunFlagPeek(t *testing.T) {
	r := newTestRing(t, defaultParams)
	a, b := socketpair(t)
	buf := allocBuf(t, 64)
	s := getSQE(t, r)
	s.PrepRecv(a, buf.Ptr(), 64, 0)
	s.SetUserData(1)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, b, []byte("hi"))
	var c [1]CQE
	deadline := time.Now().Add(2 * time.Second)
	for r.PeekBatch(c[:]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("PeekBatch never saw the recv completion")
		}
		time.Sleep(time.Millisecond)
	}
	if c[0].Res != 2 || string(buf.Bytes()[:2]) != "hi" {
		t.Fatalf("cqe %+v data %q", c[0], buf.Bytes()[:2])
	}
}

func TestSendRecv(t *testing.T) {
	r := newTestRing(t, defaultParams)
	a, b := socketpair(t)
	out := allocBuf(t, 4096)
	in := allocBuf(t, 4096)
	copy(out.Bytes(), "hello, ring")
	s := getSQE(t, r)
	s.PrepRecv(b, in.Ptr(), 4096, 0)
	s.SetUserData(1)
	s = getSQE(t, r)
	s.PrepSend(a, out.Ptr(), 11, unix.MSG_NOSIGNAL)
	s.SetUserData(2)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[2].Res != 11 {
		t.Fatalf("send %+v", m[2])
	}
	if m[1].Res != 11 || string(in.Bytes()[:11]) != "hello, ring" {
		t.Fatalf("recv %+v %q", m[1], in.Bytes()[:11])
	}
}

func TestAcceptMultishot(t *testing.T) {
	r := newTestRing(t, defaultParams)
	lfd, addr := tcpListener(t)
	s := getSQE(t, r)
	s.PrepAccept(lfd, true)
	s.OpFlags = unix.SOCK_CLOEXEC
	s.SetUserData(42)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	const nConns = 3
	var clients []net.Conn
	for i := 0; i < nConns; i++ {
		c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		defer c.Close()
	}
	cqes := waitCQEs(t, r, nConns, 2*time.Second)
	for _, c := range cqes {
		if c.UserData != 42 || c.Res < 0 || !c.More() {
			t.Fatalf("accept cqe %+v", c)
		}
		// Prove it is a real connected socket: write to it, read at client.
		if _, err := unix.Write(int(c.Res), []byte("x")); err != nil {
			t.Fatalf("write to accepted fd: %v", err)
		}
		unix.Close(int(c.Res))
	}
	for _, c := range clients {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil || b[0] != 'x' {
			t.Fatalf("client read: %v %q", err, b)
		}
	}
	// Cancel the multishot accept: the cancel succeeds and the accept ends
	// with -ECANCELED and no More flag.
	s = getSQE(t, r)
	s.PrepCancel(42, 0)
	s.SetUserData(43)
	m := byUserData(waitCQEs(t, r, 2, 2*time.Second))
	if m[43].Res != 0 {
		t.Fatalf("cancel %+v", m[43])
	}
	if m[42].Res != -int32(unix.ECANCELED) || m[42].More() {
		t.Fatalf("cancelled accept %+v", m[42])
	}
}

func TestRecvMultishotBufRing(t *testing.T) {
	r := newTestRing(t, defaultParams)
	const group, entries, size = 7, 4, 64
	br, err := r.NewBufRing(group, entries, size)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	a, b := socketpair(t)
	s := getSQE(t, r)
	s.PrepRecvMultishot(a, group, 0)
	s.SetUserData(9)
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	// Send more messages than buffers: recycling must keep the recv going.
	const msgs = 3 * entries
	var got bytes.Buffer
	var want bytes.Buffer
	seen := map[uint16]int{}
	for i := 0; i < msgs; i++ {
		msg := []byte{'m', byte('a' + i)}
		want.Write(msg)
		mustWrite(t, b, msg)
		c := waitCQEs(t, r, 1, 2*time.Second)[0]
		if c.UserData != 9 || c.Res <= 0 || !c.More() {
			t.Fatalf("msg %d: cqe %+v", i, c)
		}
		id, ok := c.BufferID()
		if !ok || id >= entries {
			t.Fatalf("msg %d: no buffer id in %+v", i, c)
		}
		seen[id]++
		got.Write(br.Buf(id)[:c.Res])
		br.Recycle(id)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("data %q want %q", got.Bytes(), want.Bytes())
	}
	if len(seen) != entries {
		t.Fatalf("buffer ids used %v, want all %d", seen, entries)
	}
	// EOF ends the multishot: Res 0, no More.
	unix.Shutdown(b, unix.SHUT_WR)
	c := waitCQEs(t, r, 1, 2*time.Second)[0]
	if c.Res != 0 || c.More() {
		t.Fatalf("eof cqe %+v", c)
	}
}

// TestBufRingExhausted: without recycling, the multishot recv stops with
// -ENOBUFS once every buffer is in use.
func TestBufRingExhausted(t *testing.T) {
	r := newTestRing(t, defaultParams)
	br, err := r.NewBufRing(1, 2, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	a, b := socketpair(t)
	s := getSQE(t, r)
	s.PrepRecvMultishot(a, 1, 0)
	s.SetUserData(1)
	for i := 0; i < 2; i++ {
		mustWrite(t, b, []byte("abc"))
		c := waitCQEs(t, r, 1, 2*time.Second)[0]
		if c.Res != 3 || !c.More() {
			t.Fatalf("cqe %+v", c)
		}
	}
	mustWrite(t, b, []byte("abc"))
	c := waitCQEs(t, r, 1, 2*time.Second)[0]
	if c.Res != -int32(unix.ENOBUFS) || c.More() {
		t.Fatalf("want -ENOBUFS without More, got %+v", c)
	}
}

// TestSeparateRingMmaps exercises the mapping path for kernels without
// IORING_FEAT_SINGLE_MMAP.
func TestSeparateRingMmaps(t *testing.T) {
	testSeparateMmap = true
	defer func() { testSeparateMmap = false }()
	r := newTestRing(t, defaultParams)
	if &r.cqRingMem[0] == &r.sqRingMem[0] {
		t.Fatal("CQ ring not mapped separately")
	}
	for i := 0; i < 100; i++ {
		s := getSQE(t, r)
		s.PrepNop()
		s.SetUserData(uint64(i))
		if c := waitCQEs(t, r, 1, time.Second)[0]; c.UserData != uint64(i) {
			t.Fatalf("cqe %+v", c)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecvBundleBufRing: bundled multishot recvs on two sockets share one
// buffer group; messages larger than a buffer come back as CQEs covering
// several buffers, and walking BufRing.Next from each CQE's first buffer
// yields the bytes in order, while buffers are recycled out of order (some
// held back over later CQEs), so the ring's slots are rewritten before the
// buffers they named are read. On a kernel without bundles (before Linux
// 6.10) only the first part runs: BufRing's bookkeeping on an idle group.
func TestRecvBundleBufRing(t *testing.T) {
	r := newTestRing(t, defaultParams)
	const group, entries, size = 3, 16, 64
	br, err := r.NewBufRing(group, entries, size)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	// The bookkeeping alone, on any kernel, on a group no request uses:
	// buffers Added in the order 2, 0, 1 (after the initial 0..3) follow
	// one another, and Take refuses a buffer taken twice.
	idle, err := r.NewBufRing(group+1, 4, size)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	for _, id := range []uint16{0, 1, 2} {
		if !idle.Take(id) {
			t.Fatalf("Take(%d) of a provided buffer refused", id)
		}
	}
	if idle.Take(1) {
		t.Fatal("Take(1) twice accepted")
	}
	idle.Add(2)
	idle.Add(0)
	idle.Add(1)
	if idle.Next(3) != 2 || idle.Next(2) != 0 || idle.Next(0) != 1 || idle.Bufs(1) != 1 || idle.Bufs(size) != 1 || idle.Bufs(size+1) != 2 {
		t.Fatalf("Next(3), Next(2), Next(0) = %d, %d, %d; Bufs(1, %d, %d) = %d, %d, %d",
			idle.Next(3), idle.Next(2), idle.Next(0), size, size+1, idle.Bufs(1), idle.Bufs(size), idle.Bufs(size+1))
	}
	if r.Features()&FeatRecvSendBundle == 0 {
		return // before Linux 6.10: netpoll receives one buffer per completion
	}
	var fds [2][2]int
	for i := range fds {
		fds[i][0], fds[i][1] = socketpair(t)
		s := getSQE(t, r)
		s.PrepRecvMultishot(fds[i][0], group, 0)
		s.SetRecvBundle()
		s.SetUserData(uint64(i))
	}
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	var got, want [2]bytes.Buffer
	var held []uint16
	multi := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 40; round++ {
		// Both sockets get a message of 1 to 4 buffers before the ring
		// runs, so their receives interleave in the buffer ring.
		for i := range fds {
			msg := bytes.Repeat([]byte{byte('a' + round%26), byte('0' + i)}, (round%4+1)*size/2-(round%3))
			want[i].Write(msg)
			mustWrite(t, fds[i][1], msg)
		}
		deadline := time.Now().Add(5 * time.Second)
		for want[0].Len() > got[0].Len() || want[1].Len() > got[1].Len() {
			left := time.Until(deadline)
			if left <= 0 {
				t.Fatalf("round %d: got %d and %d of %d and %d bytes", round, got[0].Len(), got[1].Len(), want[0].Len(), want[1].Len())
			}
			if _, err := r.SubmitAndWaitTimeout(1, left); err != nil {
				t.Fatal(err)
			}
			var cqes [8]CQE
			for _, c := range cqes[:r.PeekBatch(cqes[:])] {
				if c.UserData > 1 || c.Res <= 0 || !c.More() {
					t.Fatalf("round %d: cqe %+v", round, c)
				}
				id, ok := c.BufferID()
				if !ok {
					t.Fatalf("round %d: no buffer in %+v", round, c)
				}
				n := br.Bufs(int(c.Res))
				if n > 1 {
					multi++
				}
				rest := int(c.Res)
				for k := 0; k < n; k++ {
					if !br.Take(id) {
						t.Fatalf("round %d: buffer %d named while owned", round, id)
					}
					chunk := min(rest, size)
					got[c.UserData].Write(br.Buf(id)[:chunk])
					rest -= chunk
					next := br.Next(id)
					held = append(held, id)
					id = next
				}
				// Recycle held buffers in a scrambled order (so the
				// ring's order stops following the ids), keeping
				// four out over the next CQEs.
				for len(held) > 4 {
					k := rng.IntN(len(held))
					br.Add(held[k])
					held = append(held[:k], held[k+1:]...)
				}
				br.Publish()
			}
		}
	}
	for i := range fds {
		if !bytes.Equal(got[i].Bytes(), want[i].Bytes()) {
			t.Fatalf("socket %d: got %d bytes, want %d (or they differ)", i, got[i].Len(), want[i].Len())
		}
	}
	if multi == 0 {
		t.Fatal("no CQE covered more than one buffer: the bundle flag did nothing")
	}
	if br.Take(held[0]) {
		t.Fatal("Take accepted a buffer the caller owns")
	}
}
