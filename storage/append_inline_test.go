package storage

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/proto"
	"golang.org/x/sys/unix"
)

// TestMain: LOG_APPEND_INLINE=1 runs the whole package with every Append
// written inline on its caller (testAppendInline), the mode append.inline
// gives the broker's produce path: the suite's offsets, rolls, flush
// policy, faults and crash recovery then go through RunInline and its
// hand-backs to the writer goroutine.
func TestMain(m *testing.M) {
	if os.Getenv("LOG_APPEND_INLINE") == "1" {
		testAppendInline = true
	}
	os.Exit(m.Run())
}

// appendInline is what the broker does: AppendBatchInline, then RunInline
// when it took the writer role. It reports whether the callback had run
// by the time RunInline returned (on this goroutine).
func appendInline(t testing.TB, l *Log, b []byte, cb func(AppendResult)) (ranHere bool) {
	t.Helper()
	rb, _, err := proto.ParseRecordBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := false
	run, err := l.AppendBatchInline(rb, AppendFunc(func(r AppendResult) {
		mu.Lock()
		done = true
		mu.Unlock()
		cb(r)
	}))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if run {
		l.RunInline()
	}
	mu.Lock()
	defer mu.Unlock()
	return run && done
}

func waitResult(t testing.TB, ch chan AppendResult) AppendResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(stallFailSafe):
		t.Fatal("append callback not called")
	}
	return AppendResult{}
}

// waitParked waits (bounded) until l's writer goroutine parked idle after
// its last group: an inline append finding it still busy queues for it.
func waitParked(t testing.TB, l *Log) {
	t.Helper()
	deadline := time.Now().Add(stallFailSafe)
	for {
		l.mu.RLock()
		st := l.writerState
		l.mu.RUnlock()
		if st == writerIdle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer not parked after %v (state %d)", stallFailSafe, st)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func inlineConfig() Config {
	c := testConfig()
	c.AppendInline = true
	return c
}

// The common case runs on the caller; the segment's first write (index
// files to create), a roll and a new leader epoch go to the writer
// goroutine; offsets are the same either way.
func TestAppendInlineRunsOnCaller(t *testing.T) {
	cfg := inlineConfig()
	cfg.SegmentBytes = 4 << 10
	// A fake clock: on a loaded machine one write over inlineStallNs of
	// wall time would send the rest to the writer goroutine (the backoff
	// has a test of its own).
	l, err := Open(t.TempDir(), cfg, Options{Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetLeaderEpoch(3)
	ch := make(chan AppendResult, 1)
	cb := func(r AppendResult) { ch <- r }
	here, handed := 0, 0
	for i := 0; i < 40; i++ {
		waitParked(t, l)
		if appendInline(t, l, makeBatch(1, 300, int64(i), byte(i)), cb) {
			here++
		} else {
			handed++
		}
		r := waitResult(t, ch)
		if r.Err != nil || r.BaseOffset != int64(i) || r.LastOffset != int64(i) {
			t.Fatalf("append %d: %+v", i, r)
		}
		if i == 20 {
			l.SetLeaderEpoch(4)
		}
	}
	// ~13 batches per 4 KiB segment: a few rolls, one first write, one epoch.
	if here < 25 || handed < 3 {
		t.Fatalf("%d appends written on the caller, %d by the writer goroutine", here, handed)
	}
	wantSequence(t, l, 40, "after inline appends")
	if _, e := l.EndOffsetForEpoch(3); e != 21 {
		t.Fatalf("epoch 3 ends at %d, want 21", e)
	}
	l.mu.RLock()
	segs := len(l.segments)
	l.mu.RUnlock()
	if segs < 3 {
		t.Fatalf("%d segments: no roll", segs)
	}
}

// Off, AppendBatchInline never hands the write to its caller.
func TestAppendInlineOff(t *testing.T) {
	if testAppendInline {
		t.Skip("LOG_APPEND_INLINE=1 forces inline appends")
	}
	l, err := Open(t.TempDir(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan AppendResult, 1)
	for i := 0; i < 5; i++ {
		if appendInline(t, l, makeBatch(1, 10, int64(i), 1), func(r AppendResult) { ch <- r }) {
			t.Fatal("callback ran on the caller with append.inline off")
		}
		if r := waitResult(t, ch); r.BaseOffset != int64(i) {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
}

// flush.messages=1: every group needs an fdatasync, which a caller never
// waits for: all go to the writer goroutine, acknowledged after the sync.
func TestAppendInlineSyncGoesToWriter(t *testing.T) {
	cfg := inlineConfig()
	cfg.FlushMessages = 1
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan AppendResult, 1)
	for i := 0; i < 10; i++ {
		if appendInline(t, l, makeBatch(1, 10, int64(i), 1), func(r AppendResult) { ch <- r }) {
			t.Fatalf("append %d: written on the caller though flush.messages=1", i)
		}
		if r := waitResult(t, ch); r.Err != nil || r.BaseOffset != int64(i) {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
	l.mu.RLock()
	rp, end := l.recoveryPoint, l.end
	l.mu.RUnlock()
	if rp != end {
		t.Fatalf("recovery point %d, log end %d: acknowledged records not synced", rp, end)
	}
}

// A failed inline write is cut back off the file, its append fails, and
// the next one reuses its offset, as on the writer goroutine.
func TestAppendInlineWriteError(t *testing.T) {
	fio := NewFaultIO(NewPortableIO())
	fio.SetScratchDir(t.TempDir())
	l, err := Open(t.TempDir(), inlineConfig(), Options{IO: fio})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan AppendResult, 1)
	cb := func(r AppendResult) { ch <- r }
	appendInline(t, l, makeBatch(1, 10, 0, 0), cb)
	if r := waitResult(t, ch); r.Err != nil {
		t.Fatal(r.Err)
	}
	fio.SetShortWrites(1)
	fio.SetWriteError(syscall.EIO)
	waitParked(t, l)
	if !appendInline(t, l, makeBatch(2, 10, 1, 1), cb) {
		t.Fatal("the failing append was not written on the caller")
	}
	if r := waitResult(t, ch); !errors.Is(r.Err, syscall.EIO) {
		t.Fatalf("failed write: %+v", r)
	}
	fio.SetWriteError(nil)
	appendInline(t, l, makeBatch(1, 10, 1, 1), cb)
	if r := waitResult(t, ch); r.Err != nil || r.BaseOffset != 1 {
		t.Fatalf("after the failure: %+v, want offset 1", r)
	}
	wantSequence(t, l, 2, "after a failed inline write")
}

// Inline appenders on several goroutines race plain Appends, a truncation,
// SetConfig and Close: every acknowledged append is in the log once, in
// offset order, and nothing is written by two threads at once (-race).
func TestAppendInlineConcurrent(t *testing.T) {
	cfg := inlineConfig()
	cfg.SegmentBytes = 16 << 10
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 4, 300
	var mu sync.Mutex
	acked := map[int64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ch := make(chan AppendResult, 1)
				cb := func(r AppendResult) { ch <- r }
				if g == 0 {
					if err := l.Append(makeBatch(1, 50, 0, 0), AppendFunc(cb)); err != nil {
						t.Error(err)
						return
					}
				} else {
					appendInline(t, l, makeBatch(1, 50, 0, 0), cb)
				}
				r := waitResult(t, ch)
				if r.Err != nil {
					t.Error(r.Err)
					return
				}
				mu.Lock()
				if acked[r.BaseOffset] {
					t.Errorf("offset %d acknowledged twice", r.BaseOffset)
				}
				acked[r.BaseOffset] = true
				mu.Unlock()
			}
		}(g)
	}
	cfg2 := cfg
	cfg2.FlushMs = 5
	if err := l.SetConfig(cfg2); err != nil && !errors.Is(err, ErrConfigPending) {
		t.Fatal(err)
	}
	wg.Wait()
	got := readAll(t, l, 0)
	if len(got) != goroutines*each || len(acked) != goroutines*each {
		t.Fatalf("%d batches in the log, %d acknowledged, want %d", len(got), len(acked), goroutines*each)
	}
	for i, b := range got {
		if b.info.baseOffset != int64(i) {
			t.Fatalf("batch %d at offset %d", i, b.info.baseOffset)
		}
	}
	if err := l.TruncateTo(100); err != nil {
		t.Fatal(err)
	}
	ch := make(chan AppendResult, 1)
	appendInline(t, l, makeBatch(1, 50, 0, 0), func(r AppendResult) { ch <- r })
	if r := waitResult(t, ch); r.BaseOffset != 100 {
		t.Fatalf("after TruncateTo(100): %+v", r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// slowIO is an IO whose writes take a set time on the log's (fake) clock,
// and that notes which goroutine made the last write. With sleeps, each
// write also sleeps in the kernel, as one throttled by dirty pages does
// (a voluntary context switch of the writing thread).
type slowIO struct {
	IO
	clk    *fakeClock
	took   atomic.Int64 // ns per write
	sleeps atomic.Bool
	writer atomic.Value // goroutineID() of the last Writev
}

func (s *slowIO) Writev(f *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	s.writer.Store(goroutineID())
	s.clk.Advance(time.Duration(s.took.Load()))
	if s.sleeps.Load() {
		ts := unix.NsecToTimespec(int64(200 * time.Microsecond))
		for unix.Nanosleep(&ts, &ts) == unix.EINTR {
		}
	}
	return s.IO.Writev(f, iov, off, datasync)
}

// stalls makes every following write slow and asleep in the kernel (a
// stalled write), or (off) neither.
func (s *slowIO) stalls(on bool) {
	s.sleeps.Store(on)
	if on {
		s.took.Store(int64(5 * time.Millisecond))
	} else {
		s.took.Store(0)
	}
}

// goroutineID is the calling goroutine's number, from its stack header
// ("goroutine 42 [running]:"): which thread of control wrote a group,
// without relying on when a callback ran.
func goroutineID() string {
	var b [64]byte
	return strings.Fields(string(b[:runtime.Stack(b[:], false)]))[1]
}

// newSlowInlineLog opens a log with append.inline over a slowIO on a fake
// clock, closed when the test ends.
func newSlowInlineLog(t *testing.T) (*Log, *slowIO) {
	clk := newFakeClock()
	io := &slowIO{IO: NewPortableIO(), clk: clk}
	l, err := Open(t.TempDir(), inlineConfig(), Options{IO: io, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, io
}

// An inline write that stalls (dirty-page throttling, a slow disk) sends
// the log's appends to its writer goroutine for inlineBackoffNs, so the
// caller's thread (a ring thread serving other connections) pays one stall,
// not one per request; inline resumes after it.
func TestAppendInlineBacksOffAfterStall(t *testing.T) {
	l, io := newSlowInlineLog(t)
	a := newInlineAppender(t, l, io)
	a.appendOne() // the segment's first write creates its indexes: the writer's
	if !a.appendOne() {
		t.Fatal("a fast write did not run on the caller")
	}
	io.stalls(true)
	if !a.appendOne() {
		t.Fatal("the first slow write did not run on the caller (nothing was known yet)")
	}
	io.stalls(false)
	for i := 0; i < 3; i++ {
		if a.appendOne() {
			t.Fatalf("append %d ran on the caller within the backoff after a stalled inline write", i)
		}
	}
	io.clk.Advance(time.Duration(inlineBackoffNs))
	if !a.appendOne() {
		t.Fatal("inline appends did not resume after the backoff")
	}
	wantSequence(t, l, int(a.next), "after the backoff")
}

// An inline write that was slow only because its thread was preempted
// (on the CPU briefly, no sleep in the kernel) is not a stall: the writer
// goroutine's thread would have waited for a CPU too, so inline appends
// go on. On two CPUs shared with the clients, such preemptions of a
// millisecond or more came several times a second and each cost a second
// of inline appends.
func TestAppendInlinePreemptedWriteKeepsInline(t *testing.T) {
	l, io := newSlowInlineLog(t)
	// The kernel's figures for a preempted thread: no sleep, 50 µs of CPU
	// per step, however long the step took on the clock.
	var calls int64
	orig := threadUsageNow
	threadUsageNow = func() threadUsage {
		calls++
		return threadUsage{sleeps: 7, cpuNs: calls * int64(25*time.Microsecond), ok: true}
	}
	defer func() { threadUsageNow = orig }()
	a := newInlineAppender(t, l, io)
	a.appendOne() // the segment's first write creates its indexes: the writer's
	io.took.Store(int64(5 * time.Millisecond))
	for i := 0; i < 3; i++ {
		if !a.appendOne() {
			t.Fatalf("append %d went to the writer goroutine after a preempted (not stalled) inline write", i)
		}
	}
	if calls == 0 {
		t.Fatal("RunInline never sampled the thread's usage")
	}
	wantSequence(t, l, int(a.next), "after preempted writes")
}

// inlineStalled: slow and asleep, or slow and busy on the CPU, is a stall;
// slow while preempted is not; fast never is; without the kernel's figures
// a slow step counts.
func TestInlineStalled(t *testing.T) {
	ms := int64(time.Millisecond)
	at := func(sleeps, cpuNs int64) threadUsage { return threadUsage{sleeps: sleeps, cpuNs: cpuNs, ok: true} }
	for _, c := range []struct {
		name          string
		wall          int64
		before, after threadUsage
		want          bool
	}{
		{"fast, slept", ms / 2, at(1, 0), at(2, 0), false},
		{"slow, slept", 3 * ms, at(1, 0), at(2, ms/10), true},
		{"slow, on the CPU", 3 * ms, at(1, 0), at(1, 2*ms), true},
		{"slow, preempted", 3 * ms, at(1, 0), at(1, ms/10), false},
		{"slow, no figures", 3 * ms, threadUsage{}, at(1, 0), true},
	} {
		if got := inlineStalled(c.wall, c.before, c.after); got != c.want {
			t.Errorf("%s: inlineStalled = %v, want %v", c.name, got, c.want)
		}
	}
}

// threadUsageNow reads this thread's figures from the kernel: a sleep in
// nanosleep is a voluntary context switch, and a busy loop adds CPU time.
func TestThreadUsageNow(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadUsageNow()
	if !before.ok {
		t.Fatal("getrusage(RUSAGE_THREAD) failed")
	}
	ts := unix.NsecToTimespec(int64(time.Millisecond))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
	if after := threadUsageNow(); after.sleeps <= before.sleeps {
		t.Errorf("a 1 ms nanosleep: voluntary switches %d -> %d", before.sleeps, after.sleeps)
	}
	// Spin until the thread has run 2 ms more (bounded: a loaded machine
	// may give it the CPU slowly, never not at all).
	start, deadline := threadUsageNow(), time.Now().Add(time.Minute)
	for threadUsageNow().cpuNs-start.cpuNs < 2*int64(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not grow by 2 ms in a minute of spinning")
		}
	}
}

// A stalled inline write sends every log of the same log dir to its
// writer goroutine for the backoff, not only the one that stalled: a loop
// serving many partitions of a throttled disk would otherwise stall once
// per partition.
func TestAppendInlineBackoffCoversTheLogDir(t *testing.T) {
	clk := newFakeClock()
	var ios []*slowIO
	m, err := OpenManager(t.TempDir(), ManagerOptions{Defaults: inlineConfig(), Clock: clk, NewIO: func() (IO, error) {
		io := &slowIO{IO: NewPortableIO(), clk: clk}
		ios = append(ios, io)
		return io, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var logs []*Log
	for p := int32(0); p < 2; p++ {
		l, err := m.OpenLog("t", p, inlineConfig())
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	if len(ios) != 2 {
		t.Fatalf("%d IOs for 2 logs", len(ios))
	}
	stalls, other := newInlineAppender(t, logs[0], ios[0]), newInlineAppender(t, logs[1], ios[1])
	for _, a := range []*inlineAppender{stalls, other} {
		a.appendOne() // first write: indexes, on the writer
		if !a.appendOne() {
			t.Fatalf("log %d: a fast write did not run on the caller", a.l.partition)
		}
	}
	ios[0].stalls(true)
	if !stalls.appendOne() {
		t.Fatal("the slow write did not run on the caller")
	}
	ios[0].stalls(false)
	for i := 0; i < 3; i++ {
		if other.appendOne() {
			t.Fatalf("append %d of the other log ran on the caller within the dir's backoff", i)
		}
	}
	clk.Advance(time.Duration(inlineBackoffNs))
	for _, a := range []*inlineAppender{stalls, other} {
		if !a.appendOne() {
			t.Fatalf("log %d: inline appends did not resume after the backoff", a.l.partition)
		}
		wantSequence(t, a.l, int(a.next), "after the backoff")
	}

	// A log opened on its own (no Manager) has no dir to share with.
	alone, err := Open(t.TempDir(), inlineConfig(), Options{IO: NewPortableIO(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	if alone.dirState != nil {
		t.Fatal("a log opened alone shares a dir state")
	}
}

// inlineAppender appends one batch at a time to a log with append.inline
// from the test's goroutine and tells whether the write ran there.
type inlineAppender struct {
	t    *testing.T
	l    *Log
	io   *slowIO
	me   string
	ch   chan AppendResult
	next int64
}

func newInlineAppender(t *testing.T, l *Log, io *slowIO) *inlineAppender {
	return &inlineAppender{t: t, l: l, io: io, me: goroutineID(), ch: make(chan AppendResult, 1)}
}

// appendOne appends the next batch once the writer is parked and reports
// whether it was written on the caller's goroutine (inline).
func (a *inlineAppender) appendOne() (here bool) {
	a.t.Helper()
	waitParked(a.t, a.l)
	appendInline(a.t, a.l, makeBatch(1, 100, a.next, 1), func(r AppendResult) { a.ch <- r })
	if r := waitResult(a.t, a.ch); r.Err != nil || r.BaseOffset != a.next {
		a.t.Fatalf("append %d: %+v", a.next, r)
	}
	a.next++
	return a.io.writer.Load() == a.me
}
