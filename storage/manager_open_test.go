package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openPartitions opens partitions 0..n-1 of topic through m with workers
// goroutines (what a CreateTopics of n partitions costs the log layer).
func openPartitions(m *Manager, topic string, n, workers int, cfg Config) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int32)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if _, err := m.OpenLog(topic, p, cfg); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for p := 0; p < n; p++ {
		next <- int32(p)
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// BenchmarkManagerOpen1000 times creating 1,000 fresh partition logs in an
// empty log dir (no clean-shutdown marker: the path a new topic takes),
// serially and from 8 goroutines, on both IO backends. The figure that
// matters is ms/1000opens:
//
//	go test -run '^$' -bench ManagerOpen1000 -benchtime 3x ./storage/
func BenchmarkManagerOpen1000(b *testing.B) {
	const partitions = 1000
	for name, newIO := range map[string]func() (IO, error){
		"portable": func() (IO, error) { return NewPortableIO(), nil },
		"uring":    NewUringIO,
	} {
		if io, err := newIO(); err != nil {
			b.Logf("%s: %v", name, err)
			continue
		} else {
			io.Close()
		}
		for _, workers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/workers=%d", name, workers), func(b *testing.B) {
				var total time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					dir := b.TempDir()
					m, err := OpenManager(dir, ManagerOptions{NewIO: newIO})
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					if err := openPartitions(m, "t", partitions, workers, DefaultConfig()); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					b.StopTimer()
					if err := m.Close(); err != nil {
						b.Fatal(err)
					}
					os.RemoveAll(dir)
					b.StartTimer()
				}
				b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/1000opens")
			})
		}
	}
}

// TestManagerConcurrentOpens: opens of the same partition from several
// goroutines yield one *Log; different partitions open in parallel; a
// DeleteLog racing OpenLogs of the same partition never leaves a log open
// on a removed directory; Close waits for opens in flight and later opens
// fail. Run with -race.
func TestManagerConcurrentOpens(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(dir, ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const partitions, openers = 20, 4
	got := make([][]*Log, openers)
	var wg sync.WaitGroup
	for g := 0; g < openers; g++ {
		got[g] = make([]*Log, partitions)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := 0; p < partitions; p++ {
				l, err := m.OpenLog("t", int32((p+g*5)%partitions), testConfig())
				if err != nil {
					t.Error(err)
					return
				}
				got[g][(p+g*5)%partitions] = l
			}
		}()
	}
	wg.Wait()
	for p := 0; p < partitions; p++ {
		for g := 1; g < openers; g++ {
			if got[g][p] != got[0][p] {
				t.Fatalf("partition %d opened twice", p)
			}
		}
	}

	// Delete and reopen partition 0 concurrently: whichever order they take,
	// an open log must have its directory (and accept appends).
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); m.DeleteLog("t", 0) }()
		go func() {
			defer wg.Done()
			if _, err := m.OpenLog("t", 0, testConfig()); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if l := m.Log("t", 0); l != nil {
			if _, err := os.Stat(l.Dir()); err != nil {
				t.Fatalf("round %d: open log without its directory: %v", round, err)
			}
			syncAppend(t, l, makeBatch(1, 10, 1, 1))
		}
	}

	logs, err := m.OpenLogs("u", []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range logs {
		if l == nil || l.Partition() != int32(i) || m.Log("u", int32(i)) != l {
			t.Fatalf("OpenLogs[%d] = %v", i, l)
		}
	}

	// Close while OpenLogs is opening: every log it returns was either
	// refused (ErrManagerClosed) or registered in time to be closed.
	var late []*Log
	lateDone := make(chan struct{})
	go func() {
		defer close(lateDone)
		ps := make([]int32, 20)
		for i := range ps {
			ps[i] = int32(i)
		}
		late, _ = m.OpenLogs("v", ps, testConfig())
	}()
	time.Sleep(time.Millisecond)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	<-lateDone
	for i, l := range late {
		if l != nil {
			if err := l.Append(makeBatch(1, 10, 1, 1), nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("v-%d opened during Close is still open: %v", i, err)
			}
		}
	}
	if _, err := m.OpenLog("t", 99, testConfig()); err != ErrManagerClosed {
		t.Fatalf("open after close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CleanShutdownFile)); err != nil {
		t.Fatal("no clean-shutdown marker")
	}
}

// countingIO counts fdatasyncs (alone or linked to a write).
type countingIO struct {
	PortableIO
	mu    sync.Mutex
	syncs int
}

func (c *countingIO) Writev(f *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	n, synced, err := c.PortableIO.Writev(f, iov, off, datasync)
	if synced {
		c.mu.Lock()
		c.syncs++
		c.mu.Unlock()
	}
	return n, synced, err
}

func (c *countingIO) Datasync(f *os.File) error {
	c.mu.Lock()
	c.syncs++
	c.mu.Unlock()
	return c.PortableIO.Datasync(f)
}

func (c *countingIO) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.syncs }

// TestFreshLogDefersSyncs: opening a new partition fdatasyncs nothing and
// leaves its directory entries for the first data flush that needs them
// (durableNames); closing an untouched log syncs nothing either. Once an
// acknowledgement depends on an fdatasync (flush.messages=1), or the log
// is closed with unsynced data, the names are durable.
func TestFreshLogDefersSyncs(t *testing.T) {
	durable := func(l *Log) (seg, parent bool) {
		l.mu.RLock()
		seg = l.active().namesDurable.Load()
		l.mu.RUnlock()
		l.dirSyncMu.Lock()
		parent = !l.parentDirUnsynced
		l.dirSyncMu.Unlock()
		return seg, parent
	}
	root := t.TempDir()

	// Untouched: nothing synced at open or close.
	cio := &countingIO{}
	l, err := Open(filepath.Join(root, "idle-0"), testConfig(), Options{IO: cio})
	if err != nil {
		t.Fatal(err)
	}
	if seg, parent := durable(l); seg || parent || cio.count() != 0 {
		t.Fatalf("fresh open: names durable %v/%v, %d fdatasyncs", seg, parent, cio.count())
	}
	if err := l.Close(); err != nil || cio.count() != 0 {
		t.Fatalf("close of an untouched log: %v, %d fdatasyncs", err, cio.count())
	}

	// Default policy: appends are not fdatasync'd, so names stay pending
	// until Close flushes the data.
	cio = &countingIO{}
	dir := filepath.Join(root, "lazy-0")
	if l, err = Open(dir, testConfig(), Options{IO: cio}); err != nil {
		t.Fatal(err)
	}
	syncAppend(t, l, makeBatch(1, 10, 1, 1))
	if seg, parent := durable(l); seg || parent || cio.count() != 0 {
		t.Fatalf("after unflushed append: names durable %v/%v, %d fdatasyncs", seg, parent, cio.count())
	}
	act := l.active()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !act.namesDurable.Load() || cio.count() != 1 {
		t.Fatalf("close with unsynced data: names durable %v, %d fdatasyncs", act.namesDurable.Load(), cio.count())
	}
	// Reopened (after a crash, say): files found on disk count as named.
	if l, err = Open(dir, testConfig(), Options{}); err != nil {
		t.Fatal(err)
	}
	if seg, _ := durable(l); !seg {
		t.Fatal("existing segment not marked durable at load")
	}
	l.Close()

	// flush.messages=1: the first ack waits for the names, and a rolled-to
	// segment gets its own directory fsync before its first synced ack.
	cfg := testConfig()
	cfg.FlushMessages = 1
	cfg.SegmentBytes = 2048
	if l, err = Open(filepath.Join(root, "sync-0"), cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 3; i++ {
		syncAppend(t, l, makeBatch(1, 1500, 1, 1))
		if seg, parent := durable(l); !seg || !parent {
			t.Fatalf("append %d acked after fdatasync without durable names: %v/%v", i, seg, parent)
		}
	}
	if n := l.NumSegments(); n < 2 {
		t.Fatalf("%d segments: no roll exercised", n)
	}
}

// TestLazyIndexFiles: a new segment's index files appear at its first
// write, not at creation; an untouched log closes and reopens (clean or
// not) without them and without a rebuild; reads and ListOffset work on
// it; the first append creates them and lookups use them.
func TestLazyIndexFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	exists := func(ext string) bool {
		_, err := os.Stat(segmentName(dir, 0, ext))
		return err == nil
	}
	var logged []string
	logf := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
	for i, clean := range []bool{false, true, false} {
		l, err := Open(dir, testConfig(), Options{CleanShutdown: clean, Logf: logf})
		if err != nil {
			t.Fatal(err)
		}
		if !exists(".log") || exists(".index") || exists(".timeindex") {
			t.Fatalf("open %d: .log %v .index %v .timeindex %v", i, exists(".log"), exists(".index"), exists(".timeindex"))
		}
		if r, err := l.Read(0, 1000); err != nil || r.Len != 0 {
			t.Fatalf("read of empty log: %+v %v", r, err)
		} else {
			r.Release()
		}
		if _, _, found := l.ListOffset(0); found {
			t.Fatal("ListOffset found a record in an empty log")
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(logged) != 0 {
		t.Fatalf("untouched log reopened with messages: %q", logged)
	}
	cfg := testConfig()
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 20; i++ {
		syncAppend(t, l, makeBatch(1, 100, int64(1000+i), 'x'))
	}
	if !exists(".index") || !exists(".timeindex") {
		t.Fatal("index files not created by the first write")
	}
	if l.active().idx.entries() == 0 || l.active().tidx.entries() == 0 {
		t.Fatal("no index entries after 20 batches")
	}
	if off, _, found := l.ListOffset(1010); !found || off != 10 {
		t.Fatalf("ListOffset(1010) = %d %v", off, found)
	}
	if got := readAll(t, l, 7); len(got) != 13 || got[0].info.baseOffset != 7 {
		t.Fatalf("read from 7: %d batches", len(got))
	}
}

func TestIsDeletedPartitionDir(t *testing.T) {
	for name, want := range map[string]bool{
		"orders-0.0123456789abcdef0123456789abcdef-delete":  true,
		"a-b-12.0123456789abcdef0123456789abcdef-delete":    true,
		"orders-0.0123456789abcdef0123456789abcdef-stray":   false,
		"orders-0.0123456789abcdef0123456789abcdeg-delete":  false,
		"orders.0123456789abcdef0123456789abcdef-delete":    false,
		"orders-01.0123456789abcdef0123456789abcdef-delete": false,
		"backup-delete": false,
		"orders-0":      false,
		"-0.0123456789abcdef0123456789abcdef-delete": false,
	} {
		if got := IsDeletedPartitionDir(name); got != want {
			t.Errorf("IsDeletedPartitionDir(%q) = %v, want %v", name, got, want)
		}
	}
}
