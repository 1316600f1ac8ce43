package storage

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// A model of what was written to a compacted log, and the checks the
// issue asks of the cleaner, run after every clean and every reopen.

type wrec struct {
	offset   int64
	key      []byte // nil: keyless
	value    []byte // nil: tombstone
	ts       int64
	headers  int
	pid      int64
	writtenT time.Time
}

type cleanModel struct {
	t       testing.TB
	recs    []wrec // by offset
	byOff   map[int64]int
	lastPid map[int64][2]int64  // pid -> base, last offset of its last batch
	lastAt  map[int64]time.Time // pid -> when it wrote its last batch
}

// producerActive: pid wrote its last batch less than the cleaner's default
// producer.id.expiration.ms before now (a second's margin: the batch's
// max timestamp, which the cleaner goes by, is a few ms later), so the
// cleaner must keep that batch.
func (m *cleanModel) producerActive(pid int64, now time.Time) bool {
	exp := time.Duration(DefaultCleanerConfig().ProducerIDExpirationMs) * time.Millisecond
	return now.Sub(m.lastAt[pid]) < exp-time.Second
}

func newCleanModel(t testing.TB) *cleanModel {
	return &cleanModel{t: t, byOff: map[int64]int{}, lastPid: map[int64][2]int64{}, lastAt: map[int64]time.Time{}}
}

// cleanTestBatch builds a v2 batch of recs (offset deltas 0..n-1) with
// codec cd, producer pid (-1 none) and base sequence seq.
func cleanTestBatch(recs []wrec, ts int64, cd int8, pid int64, seq int32) []byte {
	var raw []byte
	maxTs := ts
	for i, r := range recs {
		kr := &kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: r.ts - ts, Key: r.key, Value: r.value}
		for h := 0; h < r.headers; h++ {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: fmt.Sprintf("h%d", h), Value: []byte{byte(h)}})
		}
		raw = proto.AppendRecord(raw, kr)
		maxTs = max(maxTs, r.ts)
	}
	body, err := codec.Compress(cd, raw, nil)
	if err != nil {
		panic(err)
	}
	epoch := int16(-1)
	if pid >= 0 {
		epoch = 0
	} else {
		seq = -1
	}
	return proto.AppendRecordBatch(nil, &kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Attributes: int16(cd), LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: ts, MaxTimestamp: maxTs,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(len(recs)), Records: body,
	})
}

func (m *cleanModel) appended(res AppendResult, recs []wrec, pid int64, now time.Time) {
	for i := range recs {
		r := recs[i]
		r.offset = res.BaseOffset + int64(i)
		r.pid = pid
		r.writtenT = now
		m.byOff[r.offset] = len(m.recs)
		m.recs = append(m.recs, r)
	}
	if pid >= 0 {
		m.lastPid[pid] = [2]int64{res.BaseOffset, res.LastOffset}
		m.lastAt[pid] = now
	}
}

// readRecs reads the whole log: every record with its offset, and every
// batch's (base, last) offsets.
type readRec struct {
	offset  int64
	key     []byte
	value   []byte
	ts      int64
	headers int32
}

func readLogRecords(t testing.TB, l *Log) ([]readRec, map[[2]int64]bool) {
	t.Helper()
	var out []readRec
	batches := map[[2]int64]bool{}
	prevBatchEnd := int64(-1)
	for _, b := range readAll(t, l, l.LogStartOffset()) {
		rb, _, err := proto.ParseRecordBatch(b.raw)
		if err != nil {
			t.Fatalf("batch at %d: %v", b.info.baseOffset, err)
		}
		if rb.BaseOffset() <= prevBatchEnd {
			t.Fatalf("batch at %d not after the previous batch ending at %d", rb.BaseOffset(), prevBatchEnd)
		}
		prevBatchEnd = rb.LastOffset()
		batches[[2]int64{rb.BaseOffset(), rb.LastOffset()}] = true
		raw := rb.Records()
		if rb.Codec() != codec.None {
			if raw, err = codec.Decompress(rb.Codec(), raw, nil, codec.MaxDecompressedBytes); err != nil {
				t.Fatalf("batch at %d: %v", rb.BaseOffset(), err)
			}
		}
		it := proto.NewRecordIter(raw, rb.RecordCount())
		var r proto.Record
		for it.Next(&r) {
			off := rb.BaseOffset() + int64(r.OffsetDelta)
			if off > rb.LastOffset() {
				t.Fatalf("record at %d past its batch's last offset %d", off, rb.LastOffset())
			}
			out = append(out, readRec{offset: off, key: r.Key, value: r.Value, ts: rb.BaseTimestamp() + r.TimestampDelta, headers: r.HeaderCount})
		}
		if err := it.Err(); err != nil {
			t.Fatalf("batch at %d: %v", rb.BaseOffset(), err)
		}
	}
	return out, batches
}

// check verifies the log against the model. cleanedTo: offsets below it
// have been through a clean (the first dirty offset). now: the clock.
func (m *cleanModel) check(l *Log, cleanedTo int64, now time.Time, deleteRetention time.Duration, when string) {
	t := m.t
	t.Helper()
	got, batches := readLogRecords(t, l)
	present := map[int64]bool{}
	prev := int64(-1)
	for _, r := range got {
		if r.offset <= prev {
			t.Fatalf("%s: record at %d after %d: out of order", when, r.offset, prev)
		}
		prev = r.offset
		i, ok := m.byOff[r.offset]
		if !ok {
			t.Fatalf("%s: record at %d was never written", when, r.offset)
		}
		w := m.recs[i]
		if !bytes.Equal(r.key, w.key) || !bytes.Equal(r.value, w.value) || (r.key == nil) != (w.key == nil) || (r.value == nil) != (w.value == nil) || r.ts != w.ts || int(r.headers) != w.headers {
			t.Fatalf("%s: record at %d is not what was written there (key %q value %q ts %d, wrote key %q value %q ts %d)", when, r.offset, r.key, r.value, r.ts, w.key, w.value, w.ts)
		}
		present[r.offset] = true
	}
	// Each key's latest record is present (a tombstone only until its
	// delete horizon); below the cleaned point no older value of a key,
	// and no keyless record, remains.
	latest := map[string]int64{}
	for _, w := range m.recs {
		if w.key != nil {
			latest[string(w.key)] = w.offset
		}
	}
	lastBelow := map[string]int64{}
	for _, w := range m.recs {
		if w.key != nil && w.offset < cleanedTo {
			lastBelow[string(w.key)] = w.offset
		}
	}
	for _, w := range m.recs {
		switch {
		case w.offset >= cleanedTo:
			if !present[w.offset] {
				t.Fatalf("%s: record at %d, above the cleaned point %d, is gone", when, w.offset, cleanedTo)
			}
		case w.key == nil:
			if present[w.offset] {
				t.Fatalf("%s: keyless record at %d survived cleaning", when, w.offset)
			}
		case latest[string(w.key)] == w.offset && w.value != nil:
			if !present[w.offset] {
				t.Fatalf("%s: latest value of key %q (offset %d) is gone", when, w.key, w.offset)
			}
		case latest[string(w.key)] == w.offset:
			if !present[w.offset] && now.Sub(w.writtenT) < deleteRetention {
				t.Fatalf("%s: tombstone of key %q (offset %d) removed %v after it was written, before delete.retention.ms %v", when, w.key, w.offset, now.Sub(w.writtenT), deleteRetention)
			}
		case lastBelow[string(w.key)] != w.offset:
			if present[w.offset] {
				t.Fatalf("%s: superseded record of key %q at %d survived below the cleaned point %d", when, w.key, w.offset, cleanedTo)
			}
		}
	}
	for pid, b := range m.lastPid {
		if !batches[b] && m.producerActive(pid, now) {
			t.Fatalf("%s: the last batch of producer %d [%d, %d] is gone", when, pid, b[0], b[1])
		}
	}
}

// cleanWorkload writes a seeded random keyed workload to a compacted log,
// cleaning, advancing time and reopening at random points, checking the
// model after each step.
func cleanWorkload(t *testing.T, seed int64, opts Options, steps int) {
	rng := rand.New(rand.NewSource(seed))
	clk := newFakeClock()
	cfg := testConfig()
	cfg.SegmentBytes = int64(1024 + rng.Intn(8192))
	cfg.Compact = true
	cfg.NoDeleteRetention = true
	cfg.DeleteRetentionMs = int64(1000 * (1 + rng.Intn(60)))
	cfg.TimeRollMinMs = 0
	dr := time.Duration(cfg.DeleteRetentionMs) * time.Millisecond
	dir := t.TempDir()
	opts.Clock = clk
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	cleaner := NewCleaner(CleanerConfig{DedupeBufferBytes: int64(mapEntrySize * (16 + rng.Intn(400))), Clock: clk, IOBufferBytes: 4096 + rng.Intn(1<<16)}, nil)
	m := newCleanModel(t)
	keys := 5 + rng.Intn(60)
	seqs := map[int64]int32{}
	codecs := []int8{codec.None, codec.Gzip, codec.Snappy, codec.LZ4, codec.Zstd}
	cleanedTo := int64(0)
	for step := 0; step < steps; step++ {
		switch op := rng.Intn(20); {
		case op < 15:
			n := 1 + rng.Intn(8)
			recs := make([]wrec, n)
			ts := clk.Now().UnixMilli()
			for i := range recs {
				r := &recs[i]
				r.ts = ts + int64(rng.Intn(5))
				r.headers = rng.Intn(3)
				if rng.Intn(30) > 0 {
					r.key = []byte(fmt.Sprintf("key-%d", rng.Intn(keys)))
				}
				if rng.Intn(6) > 0 {
					r.value = []byte(fmt.Sprintf("v%d-%d-%s", step, i, bytes.Repeat([]byte{'x'}, rng.Intn(200))))
				}
			}
			pid := int64(-1)
			if rng.Intn(3) == 0 {
				pid = int64(1000 + rng.Intn(3))
			}
			b := cleanTestBatch(recs, ts, codecs[rng.Intn(len(codecs))], pid, seqs[pid])
			if pid >= 0 {
				seqs[pid] += int32(n)
			}
			res := syncAppend(t, l, b)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			m.appended(res, recs, pid, clk.Now())
		case op < 17:
			clk.Advance(time.Duration(rng.Intn(int(cfg.DeleteRetentionMs))) * time.Millisecond)
		case op < 19:
			st, err := cleaner.CleanLog(l)
			if err != nil {
				t.Fatalf("seed %d step %d: clean: %v", seed, step, err)
			}
			if st.Rounds > 0 {
				cleanedTo = l.FirstDirtyOffset()
			}
			m.check(l, cleanedTo, clk.Now(), dr, fmt.Sprintf("seed %d step %d after clean", seed, step))
		default:
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			opts.CleanerOffset = cleanedTo
			opts.CleanShutdown = true
			opts.RecoveryPoint = l.RecoveryPoint()
			if l, err = Open(dir, cfg, opts); err != nil {
				t.Fatalf("seed %d step %d: reopen: %v", seed, step, err)
			}
			m.check(l, cleanedTo, clk.Now(), dr, fmt.Sprintf("seed %d step %d after reopen", seed, step))
		}
	}
	// Tombstones disappear once delete.retention.ms has passed: two
	// cleans apart by more than it (the first sets the horizon).
	if _, err := cleaner.CleanLog(l); err != nil {
		t.Fatal(err)
	}
	horizonSetBelow := l.FirstDirtyOffset()
	clk.Advance(dr + time.Second)
	for i := 0; i < 2; i++ {
		res := syncAppend(t, l, cleanTestBatch([]wrec{{key: []byte("filler"), value: []byte("x"), ts: clk.Now().UnixMilli()}}, clk.Now().UnixMilli(), codec.None, -1, 0))
		m.appended(res, []wrec{{key: []byte("filler"), value: []byte("x"), ts: clk.Now().UnixMilli()}}, -1, clk.Now())
		clk.Advance(time.Duration(cfg.SegmentMs+1) * time.Millisecond) // the next append rolls
		if _, err := cleaner.CleanLog(l); err != nil {
			t.Fatal(err)
		}
	}
	cleanedTo = l.FirstDirtyOffset()
	m.check(l, cleanedTo, clk.Now(), dr, fmt.Sprintf("seed %d final", seed))
	got, _ := readLogRecords(t, l)
	t.Logf("seed %d: %d records written, %d remain; %d segments, %d bytes; cleaned to %d of %d",
		seed, len(m.recs), len(got), l.NumSegments(), l.Size(), cleanedTo, l.HighWatermark())
	for _, r := range got {
		if r.value == nil && r.offset < horizonSetBelow {
			t.Fatalf("seed %d: tombstone at %d still there more than delete.retention.ms (%v) after the clean that first saw it", seed, r.offset, dr)
		}
	}
}

func TestCleanerProperty(t *testing.T) {
	seeds := 12
	if testing.Short() || raceEnabled {
		seeds = 3 // the race detector slows the model checks ~20x
	}
	for s := 0; s < seeds; s++ {
		seed := int64(s + 1)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { cleanWorkload(t, seed, Options{}, 300) })
	}
}

// An idle compacted log's active segment rolls once it is older than
// segment.ms (at the retention check), so its records become cleanable.
func TestCleanerIdleRoll(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.Compact, cfg.NoDeleteRetention = true, true
	cfg.SegmentMs, cfg.TimeRollMinMs = 60_000, 60_000
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 10; i++ {
		recs := []wrec{{key: []byte("k"), value: []byte(fmt.Sprint(i)), ts: clk.Now().UnixMilli()}}
		syncAppend(t, l, cleanTestBatch(recs, clk.Now().UnixMilli(), codec.None, -1, 0))
	}
	c := NewCleaner(CleanerConfig{Clock: clk}, nil)
	if st, _ := c.CleanLog(l); st.Rounds != 0 {
		t.Fatalf("cleaned the active segment: %+v", st)
	}
	if _, err := l.EnforceRetention(clk.Now()); err != nil || l.NumSegments() != 1 {
		t.Fatalf("rolled a young segment: %v, %d segments", err, l.NumSegments())
	}
	clk.Advance(61 * time.Second)
	if _, err := l.EnforceRetention(clk.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.NumSegments() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("idle segment not rolled: %d segments", l.NumSegments())
		}
		time.Sleep(time.Millisecond)
	}
	st, err := c.CleanLog(l)
	if err != nil || st.RecordsRead != 10 || st.RecordsWritten != 1 {
		t.Fatalf("clean after the idle roll: %+v, %v", st, err)
	}
	got, _ := readLogRecords(t, l)
	if len(got) != 1 || string(got[0].value) != "9" || got[0].offset != 9 {
		t.Fatalf("after clean: %+v", got)
	}
}

func TestCleanFilterEdges(t *testing.T) {
	keys := newOffsetMap(1<<16, 0.9)
	keys.put([]byte("a"), 5)
	rules := &cleanRules{keys: keys, endOffset: 6, nowMs: 1000, deleteRetentionMs: math.MaxInt64}
	var s filterScratch
	mk := func(base int64, recs ...wrec) proto.RecordBatch {
		b := cleanTestBatch(recs, 100, codec.None, 7, 0)
		rb, _, err := proto.ParseRecordBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		rb.SetBaseOffset(base)
		return rb
	}
	// A superseded record: dropped, or kept as an empty batch when asked.
	old := mk(0, wrec{key: []byte("a"), value: []byte("x"), ts: 100})
	if _, v, _, _ := rules.filter(old, false, &s, nil); v != verdictDrop {
		t.Fatalf("superseded batch: verdict %d", v)
	}
	out, v, _, _ := rules.filter(old, true, &s, nil)
	if v != verdictEmpty {
		t.Fatalf("superseded last batch: verdict %d", v)
	}
	empty, _, err := proto.ParseRecordBatch(out)
	if err != nil || !empty.CheckCRC() || empty.RecordCount() != 0 || empty.BaseOffset() != 0 || empty.LastOffset() != 0 || empty.ProducerID() != 7 || empty.BaseTimestamp() != -1 {
		t.Fatalf("empty batch: %v crc %v count %d base %d last %d pid %d ts %d", err, empty.CheckCRC(), empty.RecordCount(), empty.BaseOffset(), empty.LastOffset(), empty.ProducerID(), empty.BaseTimestamp())
	}
	// An empty batch a previous round kept goes unless asked to stay.
	if _, v, _, _ := rules.filter(empty, false, &s, nil); v != verdictDrop {
		t.Fatalf("old empty batch: verdict %d", v)
	}
	if _, v, _, _ := rules.filter(empty, true, &s, nil); v != verdictOriginal {
		t.Fatalf("old empty batch kept: verdict %d", v)
	}
	// A tombstone with delete.retention.ms = Long.MAX_VALUE: a horizon
	// that saturates instead of wrapping into the past.
	tomb := mk(5, wrec{key: []byte("a"), ts: 100})
	out, v, _, _ = rules.filter(tomb, false, &s, nil)
	nb, _, err := proto.ParseRecordBatch(out)
	if v != verdictRewritten || err != nil || nb.Attributes()&attrDeleteHorizon == 0 || nb.BaseTimestamp() != math.MaxInt64 || !nb.CheckCRC() {
		t.Fatalf("tombstone: verdict %d, %v, horizon %d", v, err, nb.BaseTimestamp())
	}
	if _, v, _, _ := rules.filter(nb, false, &s, nil); v != verdictOriginal {
		t.Fatalf("tombstone before its horizon: verdict %d", v)
	}
}

// The cleaner's threads pick compacted logs of their managers by dirty
// ratio and leave the others alone; Close stops them.
func TestCleanerThreads(t *testing.T) {
	m, err := OpenManager(t.TempDir(), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	cfg.TimeRollMinMs = 0
	compacted := cfg
	compacted.Compact, compacted.NoDeleteRetention, compacted.MinCleanableDirtyRatio = true, true, 0.1
	lc, err := m.OpenLog("compacted", 0, compacted)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := m.OpenLog("plain", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		recs := []wrec{{key: []byte(fmt.Sprint(i % 4)), value: bytes.Repeat([]byte{'v'}, 50), ts: 1}}
		b := cleanTestBatch(recs, 1, codec.None, -1, 0)
		syncAppend(t, lc, b)
		syncAppend(t, ld, b)
	}
	sizeC, sizeD := lc.Size(), ld.Size()
	c := NewCleaner(CleanerConfig{Threads: 2, Backoff: 10 * time.Millisecond}, []*Manager{m})
	c.Start()
	deadline := time.Now().Add(20 * time.Second)
	for c.Stats().Rounds == 0 || lc.Size() >= sizeC/4 {
		if time.Now().After(deadline) {
			t.Fatalf("compacted log not cleaned: %d of %d bytes, stats %+v", lc.Size(), sizeC, c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	if ld.Size() != sizeD {
		t.Fatalf("a delete-policy log was touched: %d -> %d bytes", sizeD, ld.Size())
	}
	st := c.Stats()
	if st.BytesRead == 0 || st.BytesWritten == 0 || st.BytesWritten >= st.BytesRead || st.LastCleanEnd.IsZero() {
		t.Fatalf("stats: %+v", st)
	}
	if err := m.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	cp, err := ReadCheckpoint(OSFS{}, filepath.Join(m.Dir(), CleanerOffsetCheckpointFile))
	if err != nil || cp[TopicPartition{"compacted", 0}] != lc.FirstDirtyOffset() || lc.FirstDirtyOffset() == 0 {
		t.Fatalf("cleaner-offset-checkpoint: %v %v, first dirty %d", cp, err, lc.FirstDirtyOffset())
	}
}
