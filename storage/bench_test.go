package storage

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Benchmarks (go test -run '^$' -bench . -benchmem ./storage/). Each log
// benchmark has a raw-syscall twin on the same machine in the same run; the
// figures that matter are the ratios (see the issue):
//
//	BenchmarkAppend/<size>        vs BenchmarkRawPwrite/<size>       (>= 0.9x for >= 16 KiB)
//	BenchmarkAppendFlush64        vs BenchmarkRawWrite1MiBFdatasync  (>= 0.7x)
//	BenchmarkReadLookup1000Segments: offset lookup cost
//	allocs/op of BenchmarkAppend: 0 in steady state

var benchSizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"16KiB", 16 << 10}, {"1MiB", 1 << 20}}

// batchOfSize builds a one-record batch of exactly n bytes.
func batchOfSize(n int) []byte {
	b := makeBatch(1, n-batchHeaderSize-10, 1, 7)
	for len(b) != n { // varint widths: adjust the value size until exact
		d := n - len(b)
		b = makeBatch(1, n-batchHeaderSize-10+d, 1, 7)
		if len(b) > n {
			b = makeBatch(1, n-batchHeaderSize-10+d-1, 1, 7)
		}
		if len(b) != n {
			return b
		}
	}
	return b
}

// semCallback releases one in-flight slot per completion; no allocation.
type semCallback struct {
	sem    chan struct{}
	failed atomic.Int64
}

func (c *semCallback) AppendDone(r AppendResult) {
	if r.Err != nil {
		c.failed.Add(1)
	}
	<-c.sem
}

func BenchmarkAppend(b *testing.B) {
	for _, bs := range benchSizes {
		// No roll inside the timed loop: a roll fdatasyncs the rolled
		// segment in the background (Kafka's flush-on-roll), which the raw
		// twin does not do; BenchmarkAppendRoll measures that case.
		b.Run(bs.name, func(b *testing.B) { benchAppend(b, bs.size, math.MaxInt32) })
	}
}

// BenchmarkAppendRoll: 1 MiB appends into 64 MiB segments, paying the
// background flush of every rolled segment.
func BenchmarkAppendRoll(b *testing.B) { benchAppend(b, 1<<20, 64<<20) }

func benchAppend(b *testing.B, size int, segmentBytes int64) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = segmentBytes
	l, err := Open(b.TempDir(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	batch := batchOfSize(size)
	slots := max(2, benchInflightBytes/size)
	cb := &semCallback{sem: make(chan struct{}, slots)}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cb.sem <- struct{}{}
		if err := l.Append(batch, cb); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < slots; i++ { // drain: every append completed
		cb.sem <- struct{}{}
	}
	b.StopTimer()
	if cb.failed.Load() != 0 {
		b.Fatal("appends failed")
	}
	l.Close()
}

func BenchmarkRawPwrite(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := batchOfSize(bs.size)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			b.ResetTimer()
			var off int64
			for i := 0; i < b.N; i++ {
				n, err := unix.Pwrite(int(f.Fd()), buf, off)
				if err != nil || n != len(buf) {
					b.Fatal(err)
				}
				off += int64(n)
			}
		})
	}
}

// waitCallback: one per appender goroutine, reused.
type waitCallback struct {
	done chan AppendResult
}

func (c *waitCallback) AppendDone(r AppendResult) { c.done <- r }

// BenchmarkAppendFlush64: 64 concurrent appenders of 16 KiB batches with
// flush.messages=1 (each waits for its own fdatasync'd ack).
func BenchmarkAppendFlush64(b *testing.B) {
	for name, mk := range map[string]func() (IO, error){"portable": func() (IO, error) { return NewPortableIO(), nil }, "uring": NewUringIO} {
		b.Run(name, func(b *testing.B) {
			io, err := mk()
			if err != nil {
				b.Skip(err)
			}
			cfg := DefaultConfig()
			cfg.FlushMessages = 1
			cfg.SegmentBytes = 256 << 20
			l, err := Open(b.TempDir(), cfg, Options{IO: io})
			if err != nil {
				b.Fatal(err)
			}
			batch := batchOfSize(16 << 10)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.SetParallelism(64 / max(1, runtimeGOMAXPROCS()))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				cb := &waitCallback{done: make(chan AppendResult, 1)}
				for pb.Next() {
					if err := l.Append(batch, cb); err != nil {
						b.Error(err)
						return
					}
					if r := <-cb.done; r.Err != nil {
						b.Error(r.Err)
						return
					}
				}
			})
			b.StopTimer()
			l.Close()
		})
	}
}

func BenchmarkRawWrite1MiBFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	var off int64
	for i := 0; i < b.N; i++ {
		if _, err := unix.Pwrite(int(f.Fd()), buf, off); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		off += int64(len(buf))
	}
}

// BenchmarkReadLookup1000Segments: cost of Read (segment binary search,
// sparse index, header scan, batch-aligned end) at random offsets in a log
// of 1,000 segments.
func BenchmarkReadLookup1000Segments(b *testing.B) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 16 << 10 // 1 KiB batches: 16 per segment
	cfg.IndexIntervalBytes = 4096
	l, err := Open(b.TempDir(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := batchOfSize(1 << 10)
	cb := &semCallback{sem: make(chan struct{}, 64)}
	for l.NumSegments() < 1000 {
		for i := 0; i < 64; i++ {
			cb.sem <- struct{}{}
			l.Append(batch, cb)
		}
		for i := 0; i < 64; i++ {
			cb.sem <- struct{}{}
		}
		for i := 0; i < 64; i++ {
			<-cb.sem
		}
	}
	hw := l.HighWatermark()
	segments := l.NumSegments()
	rng := rand.New(rand.NewSource(1))
	offs := make([]int64, 4096)
	for i := range offs {
		offs[i] = rng.Int63n(hw)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := l.Read(offs[i&4095], 64<<10)
		if err != nil || r.Len == 0 {
			b.Fatal(err)
		}
		r.Release()
	}
	b.ReportMetric(float64(segments), "segments")
}

func TestAppendSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l, err := Open(t.TempDir(), DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	batch := batchOfSize(16 << 10)
	cb := &waitCallback{done: make(chan AppendResult, 1)}
	step := func() {
		if err := l.Append(batch, cb); err != nil {
			t.Fatal(err)
		}
		<-cb.done
	}
	for i := 0; i < 100; i++ {
		step()
	}
	if a := testing.AllocsPerRun(500, step); a > 0.05 {
		t.Fatalf("%.2f allocations per append in steady state", a)
	}
	var _ = fmt.Sprint
}

func runtimeGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }

// benchInflightBytes bounds accepted-but-unacknowledged bytes in
// BenchmarkAppend, like a broker's per-loop in-flight bound; it also keeps
// the working set cache-sized, as the raw twin's single buffer is.
var benchInflightBytes = envInt("LOG_BENCH_INFLIGHT", 1<<20)

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}
