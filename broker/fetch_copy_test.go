package broker

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/storage"
)

// preadLog counts the preads of segment (.log) files of exactly want bytes:
// how a fetch that copies its records reads them.
type preadLog struct {
	storage.FS
	mu   sync.Mutex
	want int
	n    int
}

func (f *preadLog) Pread(file *os.File, b []byte, off int64) (int, error) {
	if strings.HasSuffix(file.Name(), ".log") {
		f.mu.Lock()
		if len(b) == f.want {
			f.n++
		}
		f.mu.Unlock()
	}
	return f.FS.Pread(file, b, off)
}

func (f *preadLog) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// A fetch woken from its long poll copies a small region into its answer
// (fetch.copy.max.bytes; pread on its own goroutine) instead of splicing it,
// and the client gets the same records; with the key at 0 it splices as
// before.
func TestFetchWokenCopiesSmallRegion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		for _, copyMax := range []int{64 << 10, 0} {
			batch := makeBatch([]byte("wake up"), []byte("and copy"))
			fs := &preadLog{FS: storage.DefaultFS, want: len(batch)}
			clk := clock.NewManual(time.Now())
			preads := copyMax > 0 // the woken fetch preads on its goroutine
			tb := startTestBroker(t, backend, func(o *Options, ro *RegistryOptions) {
				o.Clock = clk
				o.FetchCopyMaxBytes = copyMax
				ro.FS = fs
				if o.FetchWakeOnLoop && backend == "uring" {
					preads = false // woken on the loop: the page cache only (ReadCached)
				}
			})
			topic, err := tb.Reg.CreateTopic("poll", 1, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			done := longPoll(tb, topic, 10000)
			if err := clk.WaitTimers(1, 10*time.Second); err != nil { // parked
				t.Fatal(err)
			}
			appendSync(t, topic.Partitions[0], batch)
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			p := r.resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 2 || len(p.RecordBatches) != len(batch) {
				t.Fatalf("copy max %d: partition error %d hw %d, %d record bytes (want %d)", copyMax, p.ErrorCode, p.HighWatermark, len(p.RecordBatches), len(batch))
			}
			// The log stamped the base offset (0 here) and the leader epoch:
			// the records themselves are the appended bytes.
			if !bytes.Equal(p.RecordBatches[61:], batch[61:]) {
				t.Fatalf("copy max %d: records differ from the appended batch", copyMax)
			}
			copied := fs.count() > 0
			if copied != preads {
				t.Fatalf("copy max %d: region read with pread = %v", copyMax, copied)
			}
			tb.stop()
		}
	})
}

// A fetch answered at once copies a small region the page cache holds
// (storage.Region.ReadCached on the ring thread) or splices it: either way
// the client gets the records, at every offset.
func TestFetchAtOnceSmallRegion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		for _, copyMax := range []int{64 << 10, 0} {
			tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.FetchCopyMaxBytes = copyMax })
			topic, err := tb.Reg.CreateTopic("now", 1, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			batch := makeBatch([]byte("already"), []byte("there"))
			appendSync(t, topic.Partitions[0], batch)
			r := <-longPoll(tb, topic, 10000) // min_bytes 1: answered at once
			if r.err != nil {
				t.Fatal(r.err)
			}
			p := r.resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 2 || !bytes.Equal(p.RecordBatches[61:], batch[61:]) {
				t.Fatalf("copy max %d: error %d hw %d, %d record bytes", copyMax, p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
			}
			tb.stop()
		}
	})
}
