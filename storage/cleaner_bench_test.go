package storage

import (
	"fmt"
	"math/rand"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// compactionBenchEnv gates the compaction benchmarks: each writes hundreds
// of MB and runs for tens of seconds, too long for make bench-micro's
// `-bench .`; make bench-compaction sets it (and -benchtime 1x).
const compactionBenchEnv = "RINGBROKER_BENCH_COMPACTION"

func skipUnlessCompactionBench(b *testing.B) {
	if os.Getenv(compactionBenchEnv) == "" {
		b.Skipf("set %s=1 (make bench-compaction)", compactionBenchEnv)
	}
}

// Cleaner workload: keyed records of cleanerBenchValueBytes, each of
// cleanerBenchKeys keys written cleanerBenchOverwrites times in random
// order, cleanerBenchBatchRecords records a batch, the batches' codecs
// cycling through none, gzip, snappy, lz4 and zstd (a log written by
// producers with different settings). Values are half random, half a
// repeated pattern, so a codec has something but not everything to save.
const (
	cleanerBenchKeys         = 10_000
	cleanerBenchOverwrites   = 10
	cleanerBenchValueBytes   = 1 << 10
	cleanerBenchBatchRecords = 10
	cleanerBenchSegmentBytes = 16 << 20
)

var cleanerBenchCodecs = []int8{codec.None, codec.Gzip, codec.Snappy, codec.LZ4, codec.Zstd}

// BenchmarkCleaner measures the cleaner's throughput on one log: each
// iteration writes a fresh log (untimed) and cleans it with CleanLog.
// MB/s is segment bytes read by the cleaning passes per second of
// cleaning (b.SetBytes); written-MB/s the cleaned segments written; the
// key-map scan reads the dirty section once more and is inside the time,
// not in the bytes. The active segment (the last, partly filled one of
// cleanerBenchSegmentBytes) is never cleaned, so about three quarters of
// the log is.
//
//	RINGBROKER_BENCH_COMPACTION=1 go test ./storage -run '^$' -bench Cleaner -benchtime 1x
func BenchmarkCleaner(b *testing.B) {
	skipUnlessCompactionBench(b)
	cfg := DefaultConfig()
	cfg.SegmentBytes = cleanerBenchSegmentBytes
	cfg.Compact, cfg.NoDeleteRetention = true, true
	var st CleanStats
	var cleaning time.Duration
	var logBytes int64
	b.ReportAllocs()
	b.StopTimer()
	for i := range b.N {
		l, err := Open(b.TempDir(), cfg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		appendAllBench(b, l, cleanerBenchBatches(int64(i)))
		logBytes = l.Size()
		c := NewCleaner(DefaultCleanerConfig(), nil)
		start := time.Now()
		b.StartTimer()
		s, err := c.CleanLog(l)
		b.StopTimer()
		cleaning += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		st.BytesRead += s.BytesRead
		st.BytesWritten += s.BytesWritten
		st.RecordsRead += s.RecordsRead
		st.RecordsWritten += s.RecordsWritten
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(st.BytesRead / int64(b.N))
	b.ReportMetric(float64(st.BytesRead)/cleaning.Seconds()/1e6, "read-MB/s")
	b.ReportMetric(float64(st.BytesWritten)/cleaning.Seconds()/1e6, "written-MB/s")
	b.ReportMetric(float64(st.RecordsRead)/cleaning.Seconds(), "records-read/s")
	b.ReportMetric(float64(st.BytesWritten)/float64(st.BytesRead), "recopy-ratio")
	b.ReportMetric(float64(logBytes), "log-bytes")
}

// cleanerBenchBatches returns the workload's batches, in append order.
func cleanerBenchBatches(seed int64) [][]byte {
	rng := rand.New(rand.NewSource(seed))
	order := make([]int, 0, cleanerBenchKeys*cleanerBenchOverwrites)
	for range cleanerBenchOverwrites {
		order = append(order, rng.Perm(cleanerBenchKeys)...)
	}
	var batches [][]byte
	ts := time.Now().UnixMilli()
	for i := 0; i < len(order); i += cleanerBenchBatchRecords {
		end := min(i+cleanerBenchBatchRecords, len(order))
		var raw []byte
		for j, k := range order[i:end] {
			value := make([]byte, cleanerBenchValueBytes)
			rng.Read(value[:cleanerBenchValueBytes/2])
			for v := cleanerBenchValueBytes / 2; v < len(value); v++ {
				value[v] = byte(v % 7)
			}
			raw = proto.AppendRecord(raw, &kmsg.Record{OffsetDelta: int32(j), Key: fmt.Appendf(nil, "key-%06d", k), Value: value})
		}
		cd := cleanerBenchCodecs[(i/cleanerBenchBatchRecords)%len(cleanerBenchCodecs)]
		body, err := codec.Compress(cd, raw, nil)
		if err != nil {
			panic(err)
		}
		batches = append(batches, proto.AppendRecordBatch(nil, &kmsg.RecordBatch{
			PartitionLeaderEpoch: -1, Attributes: int16(cd), LastOffsetDelta: int32(end - i - 1), FirstTimestamp: ts, MaxTimestamp: ts,
			ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(end - i), Records: body,
		}))
	}
	return batches
}

// appendAllBench appends batches in order, a bounded number in flight,
// and waits for every completion.
func appendAllBench(b *testing.B, l *Log, batches [][]byte) {
	const inflightMax = 256
	sem := make(chan struct{}, inflightMax)
	var mu sync.Mutex
	var failed error
	cb := AppendFunc(func(r AppendResult) {
		if r.Err != nil {
			mu.Lock()
			failed = r.Err
			mu.Unlock()
		}
		<-sem
	})
	for _, batch := range batches {
		sem <- struct{}{}
		if err := l.Append(batch, cb); err != nil {
			b.Fatal(err)
		}
	}
	for range inflightMax {
		sem <- struct{}{}
	}
	if failed != nil {
		b.Fatal(failed)
	}
}
