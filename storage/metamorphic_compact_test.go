package storage

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// Compaction in TestMetamorphic (metamorphic_test.go). One seed in three
// runs every (config, backend) log with cleanup.policy=compact,delete and
// a keyed workload (a dozen keys, tombstones, some keyless records, every
// codec), and adds a Clean operation (Cleaner.CleanLog on every run).
//
// What a clean removes depends on the segment layout (groups, the active
// segment's base, the recovery point), so the runs legitimately differ
// below the cleaned point, as they do for retention. Each run is checked
// against the rules with the model instead (metaCompactCheck, the
// properties of cleanModel.check):
//
//   - every batch read is a model batch at its offset, byte for byte, or,
//     wholly below the run's cleaned point, a rewrite of one: same base
//     and last offset, producer, epoch and sequence, and records that are
//     a subset of its records, in order, with the same offsets, keys,
//     values, headers and timestamps;
//   - offsets are missing only below the run's cleaned point;
//   - each key's latest record (from the log start on) is there, a
//     tombstone only until delete.retention.ms after it was written;
//   - below the cleaned point, no record superseded by another record
//     below it, and no keyless record.
//
// The cross-run comparisons that still hold are kept: the high watermark
// and log start after every operation that reports them, every append's
// offsets, reads at or above the highest cleaned point of all runs (the
// first batch returned, against the model too), ListOffsets for the
// earliest and latest offsets. Reads below that point, ListOffsets by
// timestamp, and the max timestamp are checked per run against the model
// only.

// metaCompactEvery: seeds divisible by it are compacted (no draw from the
// seed's generator, so the other seeds replay as before).
const metaCompactEvery = 3

// metaCompactKeys is the keyspace: small, so keys are overwritten often.
const metaCompactKeys = 12

func (h *metaHarness) compactConfig() {
	h.compact = h.seed%metaCompactEvery == 0
	if !h.compact {
		return
	}
	h.base.Compact = true
	h.base.DeleteRetentionMs = 1000 * (2 + h.seed%20)
	h.cleaner = NewCleaner(CleanerConfig{Clock: h.clk, IOBufferBytes: 4096 + int(h.seed%5)*8192}, nil)
}

// newKeyedBatches is newBatches for a compacted log: 1 to 3 keyed batches.
func (h *metaHarness) newKeyedBatches() ([][]byte, []byte) {
	n := 1 + h.rng.Intn(3)
	var parts [][]byte
	var all []byte
	now := h.clk.Now().UnixMilli()
	codecs := []int8{codec.None, codec.Gzip, codec.Snappy, codec.LZ4, codec.Zstd}
	for i := 0; i < n; i++ {
		ts := now - 2000 + h.rng.Int63n(2500)
		if h.rng.Intn(5) == 0 {
			ts = now - h.rng.Int63n(40*60*1000)
		}
		recs := make([]wrec, 1+h.rng.Intn(5))
		for j := range recs {
			r := &recs[j]
			r.ts = ts + int64(h.rng.Intn(3))
			r.headers = h.rng.Intn(2)
			if h.rng.Intn(25) > 0 {
				r.key = []byte(fmt.Sprintf("k%d", h.rng.Intn(metaCompactKeys)))
			}
			if h.rng.Intn(6) > 0 {
				size := 10 + h.rng.Intn(300)
				if h.rng.Intn(20) == 0 {
					size = 3000 + h.rng.Intn(2000)
				}
				r.value = bytes.Repeat([]byte{byte('a' + h.rng.Intn(26))}, size)
			}
		}
		pid, seq := int64(-1), int32(0)
		if h.rng.Intn(4) == 0 {
			pid = 5000 + int64(h.rng.Intn(2))
			seq = h.seqs[pid]
			h.seqs[pid] += int32(len(recs))
		}
		b := cleanTestBatch(recs, ts, codecs[h.rng.Intn(len(codecs))], pid, seq)
		parts = append(parts, b)
		all = append(all, b...)
	}
	return parts, all
}

// metaRecs decodes a batch's records (offsets relative to its base).
func metaRecs(b []byte) ([]fuzzRec, error) {
	rb, _, err := proto.ParseRecordBatch(b)
	if err != nil {
		return nil, err
	}
	raw := rb.Records()
	if rb.Codec() != codec.None {
		if raw, err = codec.Decompress(rb.Codec(), raw, nil, codec.MaxDecompressedBytes); err != nil {
			return nil, err
		}
	}
	var out []fuzzRec
	it := proto.NewRecordIter(raw, rb.RecordCount())
	var r proto.Record
	for it.Next(&r) {
		out = append(out, fuzzRec{r.OffsetDelta, append([]byte(nil), r.Key...), append([]byte(nil), r.Value...), r.Key == nil, r.Value == nil,
			append([]byte(nil), r.Headers...), rb.BaseTimestamp() + r.TimestampDelta})
	}
	return out, it.Err()
}

// modelRecs returns (and caches) the records of model batch i.
func (h *metaHarness) modelRecs(i int) []fuzzRec {
	b := &h.batches[i]
	if b.recs == nil {
		recs, err := metaRecs(b.raw)
		if err != nil {
			h.fail("model batch at %d: %v", b.base, err)
		}
		b.recs = recs
	}
	return b.recs
}

// checkRewritten checks a batch read from run r that differs from the
// model batch at its offset: it must be a rewrite by the cleaner, wholly
// below the run's cleaned point.
func (h *metaHarness) checkRewritten(r *metaRun, b []byte, i int) error {
	want := h.batches[i]
	hd := metaHeader(b)
	if want.last >= r.cleanedMax {
		return fmt.Errorf("batch at %d: differs from what was appended at that offset, and is not below the cleaned point %d", hd.base, r.cleanedMax)
	}
	got, _, err := proto.ParseRecordBatch(b)
	if err != nil {
		return fmt.Errorf("batch at %d: %v", hd.base, err)
	}
	orig, _, _ := proto.ParseRecordBatch(want.raw)
	if hd.base+int64(hd.lastOffsetDelta) != want.last || got.ProducerID() != orig.ProducerID() ||
		got.ProducerEpoch() != orig.ProducerEpoch() || got.BaseSequence() != orig.BaseSequence() {
		return fmt.Errorf("batch at %d: a rewrite that changed the header (last offset %d, want %d)", hd.base, hd.base+int64(hd.lastOffsetDelta), want.last)
	}
	recs, err := metaRecs(b)
	if err != nil {
		return fmt.Errorf("rewritten batch at %d: %v", hd.base, err)
	}
	all := h.modelRecs(i)
	j := 0
	for _, rec := range recs {
		for j < len(all) && !all[j].same(rec) {
			j++
		}
		if j == len(all) {
			return fmt.Errorf("rewritten batch at %d: record at %d is not what was written there (or out of order)", hd.base, hd.base+int64(rec.offsetDelta))
		}
		j++
	}
	return nil
}

// cleanOp cleans every run, checks each against the rules and compares
// what still must agree.
func (h *metaHarness) cleanOp() {
	h.begin("clean")
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		st, err := h.cleaner.CleanLog(r.l)
		h.cleaned.RecordsRead += st.RecordsRead
		h.cleaned.RecordsWritten += st.RecordsWritten
		h.cleaned.Segments += st.Segments
		h.cleaned.Rounds += st.Rounds
		r.cleanedMax = max(r.cleanedMax, r.l.FirstDirtyOffset())
		obs[ri] = fmt.Sprintf("%s hw=%d lso=%d", metaErrClass(err), r.l.HighWatermark(), r.l.LogStartOffset())
		if err := h.compactCheck(r); err != nil {
			h.fail("%s: after clean: %v", r.name, err)
		}
	}
	h.agree(obs)
	if want := fmt.Sprintf("ok hw=%d lso=%d", h.hw, h.lso); obs[0] != want {
		h.fail("clean: %s, want %s", obs[0], want)
	}
}

// highestCleaned is the highest cleaned point of all runs: reads from it
// on must agree.
func (h *metaHarness) highestCleaned() int64 {
	var hc int64
	for _, r := range h.runs {
		hc = max(hc, r.cleanedMax)
	}
	return hc
}

// compactCheck reads run r from its log start to its high watermark and
// checks it against the model (see the top of this file).
func (h *metaHarness) compactCheck(r *metaRun) error {
	lso, hw := r.l.LogStartOffset(), r.l.HighWatermark()
	if err := h.scanRun(r, lso, hw); err != nil {
		return err
	}
	present := map[int64]bool{}
	off := lso
	for off < hw {
		reg, err := r.l.Read(off, 64<<10)
		if err == nil && reg.Len == 0 && hw <= r.cleanedMax {
			reg.Release()
			break // cleaned away up to the high watermark (see scanRun)
		}
		if err != nil || reg.Len == 0 {
			reg.Release()
			return fmt.Errorf("read at %d: %v (empty: %v)", off, err, reg.Len == 0)
		}
		buf := make([]byte, reg.Len)
		_, rerr := reg.File.ReadAt(buf, reg.Pos)
		reg.Release()
		if rerr != nil {
			return rerr
		}
		for p := 0; p < len(buf); {
			hd := metaHeader(buf[p:])
			recs, err := metaRecs(buf[p : p+hd.length])
			if err != nil {
				return fmt.Errorf("batch at %d: %v", hd.base, err)
			}
			for _, rec := range recs {
				present[hd.base+int64(rec.offsetDelta)] = true
			}
			off = hd.base + int64(hd.lastOffsetDelta) + 1
			p += hd.length
		}
	}
	type at struct {
		off int64
		rec fuzzRec
		t   time.Time
	}
	var recs []at
	latest := map[string]int64{}
	lastBelow := map[string]int64{}
	for i := range h.batches {
		b := h.batches[i]
		for _, rec := range h.modelRecs(i) {
			o := b.base + int64(rec.offsetDelta)
			recs = append(recs, at{o, rec, b.at})
			if !rec.keyNil {
				latest[string(rec.key)] = o
				if o < r.cleanedMax {
					lastBelow[string(rec.key)] = o
				}
			}
		}
	}
	dr := time.Duration(h.base.DeleteRetentionMs) * time.Millisecond
	now := h.clk.Now()
	for _, x := range recs {
		if x.off < lso || x.off >= hw {
			continue
		}
		k := string(x.rec.key)
		switch {
		case x.off >= r.cleanedMax:
			if !present[x.off] {
				return fmt.Errorf("record at %d, above the cleaned point %d, is gone", x.off, r.cleanedMax)
			}
		case x.rec.keyNil:
			if present[x.off] {
				return fmt.Errorf("keyless record at %d survived below the cleaned point %d", x.off, r.cleanedMax)
			}
		case latest[k] == x.off && !x.rec.valNil:
			if !present[x.off] {
				return fmt.Errorf("latest value of key %q (offset %d) is gone", k, x.off)
			}
		case latest[k] == x.off:
			if !present[x.off] && now.Sub(x.t) < dr {
				return fmt.Errorf("tombstone of key %q (offset %d) removed %v after it was written, before delete.retention.ms %v", k, x.off, now.Sub(x.t), dr)
			}
		case lastBelow[k] != x.off:
			if present[x.off] {
				return fmt.Errorf("superseded record of key %q at %d survived below the cleaned point %d", k, x.off, r.cleanedMax)
			}
		}
	}
	return nil
}

// heldBatches returns the batches run r holds from its log start on: base
// offset -> max timestamp as stored. A compacted log may hold nothing from
// some offset below the high watermark on: the cleaner removed the last
// batches of a segment whose successor is still empty (the same gap a
// reader finds; checkCompaction checks that what went could go).
func (h *metaHarness) heldBatches(r *metaRun) map[int64]int64 {
	out := map[int64]int64{}
	off, hw := r.l.LogStartOffset(), r.l.HighWatermark()
	for off < hw {
		reg, err := r.l.Read(off, 64<<10)
		if err != nil {
			reg.Release()
			h.fail("%s: read at %d: %v", r.name, off, err)
		}
		if reg.Len == 0 {
			reg.Release()
			break
		}
		buf := make([]byte, reg.Len)
		_, rerr := reg.File.ReadAt(buf, reg.Pos)
		reg.Release()
		if rerr != nil {
			h.fail("%s: %v", r.name, rerr)
		}
		for p := 0; p < len(buf); {
			hd := metaHeader(buf[p:])
			out[hd.base] = hd.maxTs
			off = hd.base + int64(hd.lastOffsetDelta) + 1
			p += hd.length
		}
	}
	return out
}
