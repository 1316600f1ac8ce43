package storage

// The operations of TestMetamorphic (metamorphic_test.go): each one runs on
// every run in turn, compares what they observed, and checks the model.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"sort"
	"strings"
	"syscall"
	"time"
)

// newBatches makes one Append's worth of batches (1 to 3) with timestamps
// around the clock, sometimes far behind it, and returns them with the
// bytes to append.
func (h *metaHarness) newBatches() ([][]byte, []byte) {
	if h.compact {
		return h.newKeyedBatches()
	}
	n := 1 + h.rng.Intn(3)
	var parts [][]byte
	var all []byte
	now := h.clk.Now().UnixMilli()
	for i := 0; i < n; i++ {
		ts := now - 2000 + h.rng.Int63n(2500)
		if h.rng.Intn(5) == 0 {
			ts = now - h.rng.Int63n(40*60*1000) // late: out of timestamp order
		}
		size := 10 + h.rng.Intn(600)
		if h.rng.Intn(20) == 0 {
			size = 3000 + h.rng.Intn(3000) // larger than the small segments
		}
		b := makeBatch(1+h.rng.Intn(5), size, ts, byte(h.rng.Intn(256)))
		parts = append(parts, b)
		all = append(all, b...)
	}
	return parts, all
}

// appendOp issues 1 to 4 Appends without waiting (they may share a group
// write), then waits for every callback.
func (h *metaHarness) appendOp() {
	calls := 1 + h.rng.Intn(4)
	var parts [][][]byte
	var payloads [][]byte
	corrupt := -1
	for i := 0; i < calls; i++ {
		p, all := h.newBatches()
		parts, payloads = append(parts, p), append(payloads, all)
	}
	if h.rng.Intn(30) == 0 {
		corrupt = h.rng.Intn(calls)
		b := append([]byte(nil), payloads[corrupt]...)
		b[len(b)-1] ^= 0x5a // inside the last batch's CRC coverage
		payloads[corrupt] = b
	}
	sizes := make([]int, calls)
	for i, p := range payloads {
		sizes[i] = len(p)
	}
	h.begin("append %d calls, bytes %v (corrupt call %d)", calls, sizes, corrupt)
	obs := make([]string, len(h.runs))
	var first []AppendResult // run 0's, synchronous errors folded in
	for ri, r := range h.runs {
		res, errs := h.appendAll(r, payloads)
		var sb strings.Builder
		for i := range payloads {
			if errs[i] != nil {
				fmt.Fprintf(&sb, "[append: %s] ", metaErrClass(errs[i]))
				continue
			}
			x := res[i]
			fmt.Fprintf(&sb, "[%d..%d lso=%d ts=%d %s] ", x.BaseOffset, x.LastOffset, x.LogStartOffset, x.LogAppendTime, metaErrClass(x.Err))
		}
		obs[ri] = sb.String()
		if ri == 0 {
			first = res
			for i := range errs {
				if errs[i] != nil {
					first[i].Err = errs[i]
				}
			}
		}
	}
	h.agree(obs)
	// The model: offsets in call order, the corrupt call refused whole.
	for i, x := range first {
		if i == corrupt {
			if !errors.Is(x.Err, ErrCorruptBatch) {
				h.fail("corrupt append: %v, want ErrCorruptBatch", x.Err)
			}
			continue
		}
		if x.Err != nil || x.BaseOffset != h.hw {
			h.fail("append %d: %+v, want base offset %d", i, x, h.hw)
		}
		h.addToModel(parts[i])
		if x.LastOffset != h.hw-1 || x.LogStartOffset != h.lso {
			h.fail("append %d: %+v, want last offset %d, log start %d", i, x, h.hw-1, h.lso)
		}
	}
}

func (h *metaHarness) addToModel(parts [][]byte) {
	for _, b := range parts {
		hd := metaHeader(b)
		h.batches = append(h.batches, metaBatch{base: h.hw, last: h.hw + int64(hd.lastOffsetDelta), maxTs: hd.maxTs, raw: b, at: h.clk.Now()})
		h.hw += int64(hd.lastOffsetDelta) + 1
	}
}

// appendAll appends payloads in order without waiting in between and
// returns each call's result (or its synchronous error).
func (h *metaHarness) appendAll(r *metaRun, payloads [][]byte) ([]AppendResult, []error) {
	res := make([]AppendResult, len(payloads))
	errs := make([]error, len(payloads))
	done := make(chan int, len(payloads))
	pending := 0
	for i, p := range payloads {
		i := i
		if errs[i] = r.l.Append(p, AppendFunc(func(x AppendResult) { res[i] = x; done <- i })); errs[i] == nil {
			pending++
		}
	}
	deadline := time.After(metaFailSafe)
	for ; pending > 0; pending-- {
		select {
		case <-done:
		case <-deadline:
			h.fail("%s: append callbacks missing after %v", r.name, metaFailSafe)
		}
	}
	return res, errs
}

// metaFailSafe bounds every wait; an operation normally takes
// milliseconds, so reaching it means a hang, not a slow machine.
const metaFailSafe = 30 * time.Second

type metaHdr struct {
	base            int64
	length          int
	lastOffsetDelta int32
	maxTs           int64
}

// metaHeader reads the batch header fields the test needs (its own reader,
// so the test does not depend on the package's batch code it checks).
func metaHeader(b []byte) metaHdr {
	return metaHdr{
		base:            int64(binary.BigEndian.Uint64(b[0:])),
		length:          int(binary.BigEndian.Uint32(b[8:])) + 12,
		lastOffsetDelta: int32(binary.BigEndian.Uint32(b[23:])),
		maxTs:           int64(binary.BigEndian.Uint64(b[35:])),
	}
}

// metaCRCOK checks a whole batch's CRC32C (bytes 17..21 over 21..).
func metaCRCOK(b []byte) bool {
	return crc32.Checksum(b[21:], metaCRCTable) == binary.BigEndian.Uint32(b[17:])
}

var metaCRCTable = crc32.MakeTable(crc32.Castagnoli)

// modelAt returns the index of the model batch holding offset, or -1.
func (h *metaHarness) modelAt(offset int64) int {
	i := sort.Search(len(h.batches), func(i int) bool { return h.batches[i].last >= offset })
	if i == len(h.batches) || h.batches[i].base > offset {
		return -1
	}
	return i
}

// checkStored compares a batch read back with the model batch at its
// offset: same offsets, same bytes from the magic byte on (the log writes
// only baseOffset and partitionLeaderEpoch, in front of it).
func (h *metaHarness) checkStored(r *metaRun, b []byte) (metaHdr, error) {
	hd := metaHeader(b)
	if !metaCRCOK(b) {
		return hd, fmt.Errorf("batch at %d: CRC mismatch", hd.base)
	}
	i := h.modelAt(hd.base)
	if i < 0 || h.batches[i].base != hd.base {
		return hd, fmt.Errorf("batch at %d: no model batch starts there", hd.base)
	}
	want := h.batches[i]
	if hd.base+int64(hd.lastOffsetDelta) != want.last || !bytes.Equal(b[16:], want.raw[16:]) {
		if h.compact {
			return hd, h.checkRewritten(r, b, i)
		}
		return hd, fmt.Errorf("batch at %d: differs from what was appended at that offset", hd.base)
	}
	return hd, nil
}

// readOp reads at an offset around the log's range and compares the first
// batch returned across runs; the rest is checked against the model.
func (h *metaHarness) readOp() {
	var off int64
	switch k := h.rng.Intn(10); {
	case k < 3:
		off = h.lso - 2 + h.rng.Int63n(h.hw-h.lso+5)
	case k < 5:
		off = h.lso
	case k < 7:
		off = h.hw
	default:
		if h.hw > h.lso {
			off = h.lso + h.rng.Int63n(h.hw-h.lso)
		}
	}
	maxBytes := h.rng.Intn(8000)
	h.begin("read %d max %d", off, maxBytes)
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		reg, err := r.l.Read(off, maxBytes)
		if err != nil || reg.Len == 0 {
			obs[ri] = fmt.Sprintf("%s empty base=%d", metaErrClass(err), reg.BaseOffset)
			reg.Release()
			continue
		}
		buf := make([]byte, reg.Len)
		_, rerr := reg.File.ReadAt(buf, reg.Pos)
		reg.Release()
		if rerr != nil {
			h.fail("%s: pread of region: %v", r.name, rerr)
		}
		var firstHd metaHdr
		for p, n := 0, 0; p < len(buf); n++ {
			if len(buf)-p < batchHeaderSize {
				h.fail("%s: region ends in a torn header", r.name)
			}
			hd, err := h.checkStored(r, buf[p:p+metaHeader(buf[p:]).length])
			if err != nil {
				h.fail("%s: %v", r.name, err)
			}
			if n == 0 {
				firstHd = hd
				// (Compacted: the batch holding off may be gone, cleaned
				// away below the run's cleaned point; the next one comes.)
				hole := h.compact && hd.base > off && hd.base <= r.cleanedMax
				if hd.base > off && !hole || hd.base+int64(hd.lastOffsetDelta) < off {
					h.fail("%s: first batch [%d, %d] does not hold offset %d", r.name, hd.base, hd.base+int64(hd.lastOffsetDelta), off)
				}
			} else if p+hd.length > maxBytes {
				h.fail("%s: %d bytes returned past maxBytes %d", r.name, p+hd.length, maxBytes)
			}
			p += hd.length
		}
		if reg.BaseOffset != firstHd.base {
			h.fail("%s: region base offset %d, first batch at %d", r.name, reg.BaseOffset, firstHd.base)
		}
		obs[ri] = fmt.Sprintf("ok first=%d..%d", firstHd.base, firstHd.base+int64(firstHd.lastOffsetDelta))
	}
	if h.compact && off >= h.lso && off < h.highestCleaned() {
		return // below a cleaned point: each run checked against the model above
	}
	h.agree(obs)
	// The model: below the log start or above the high watermark is out of
	// range, the high watermark itself is empty.
	want := "ok empty base=-1"
	switch {
	case off < h.lso || off > h.hw:
		want = "out-of-range empty base=-1"
	case off < h.hw:
		b := h.batches[h.modelAt(off)]
		want = fmt.Sprintf("ok first=%d..%d", b.base, b.last)
	}
	if obs[0] != want {
		h.fail("read %d: %s, want %s (log start %d, high watermark %d)", off, obs[0], want, h.lso, h.hw)
	}
}

// scan reads every batch from the log start to the high watermark in every
// run and checks it against the model.
func (h *metaHarness) scan() {
	if h.opDesc != "final scan" {
		h.begin("scan")
	}
	for _, r := range h.runs {
		if err := h.scanRun(r, r.l.LogStartOffset(), r.l.HighWatermark()); err != nil {
			h.fail("%s: %v", r.name, err)
		}
		if h.compact {
			if err := h.compactCheck(r); err != nil {
				h.fail("%s: %v", r.name, err)
			}
		}
	}
}

// scanRun checks that run r holds exactly the model's batches covering
// [from, to).
func (h *metaHarness) scanRun(r *metaRun, from, to int64) error {
	off := from
	for off < to {
		reg, err := r.l.Read(off, 64<<10)
		if err != nil {
			return fmt.Errorf("scan read at %d (to %d): %v", off, to, err)
		}
		if reg.Len == 0 {
			reg.Release()
			// (Compacted: the cleaner may have removed every record from
			// off up to the high watermark, e.g. keyless ones at the end
			// of the cleaned range just below a fresh active segment;
			// Kafka's read answers empty there too.)
			if h.compact && to <= r.cleanedMax {
				return nil
			}
			return fmt.Errorf("scan read at %d: empty below the high watermark %d", off, to)
		}
		buf := make([]byte, reg.Len)
		_, rerr := reg.File.ReadAt(buf, reg.Pos)
		reg.Release()
		if rerr != nil {
			return rerr
		}
		for p := 0; p < len(buf); {
			hd, err := h.checkStored(r, buf[p:p+metaHeader(buf[p:]).length])
			if err != nil {
				return err
			}
			if last := hd.base + int64(hd.lastOffsetDelta); last < off {
				return fmt.Errorf("batch [%d, %d] read again at %d", hd.base, last, off)
			} else if hd.base > off && !(h.compact && hd.base <= r.cleanedMax) {
				return fmt.Errorf("hole: offset %d missing, next batch at %d", off, hd.base)
			}
			off = hd.base + int64(hd.lastOffsetDelta) + 1
			p += hd.length
		}
	}
	if off != to {
		return fmt.Errorf("scan ended at %d, high watermark %d", off, to)
	}
	return nil
}

// listOffsetOp asks ListOffset for a special or a real timestamp.
func (h *metaHarness) listOffsetOp() {
	var ts int64
	switch k := h.rng.Intn(10); {
	case k == 0:
		ts = TimestampLatest
	case k == 1:
		ts = TimestampEarliest
	case k < 4:
		ts = TimestampMax
	case k < 7 && len(h.batches) > 0:
		ts = h.batches[h.rng.Intn(len(h.batches))].maxTs + int64(h.rng.Intn(3)) - 1
	default:
		ts = h.clk.Now().UnixMilli() - h.rng.Int63n(45*60*1000)
	}
	h.begin("list offset %d", ts)
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		off, bts, found := r.l.ListOffset(ts)
		obs[ri] = fmt.Sprintf("offset=%d ts=%d found=%v", off, bts, found)
		if h.compact && found && (off < h.lso || off > h.hw) {
			h.fail("%s: list offset %d: %s outside [%d, %d]", r.name, ts, obs[ri], h.lso, h.hw)
		}
	}
	if h.compact && ts != TimestampLatest && ts != TimestampEarliest {
		return // which batches carry a timestamp depends on what each run's cleans removed
	}
	h.agree(obs)
	if want := h.modelListOffset(ts); obs[0] != want {
		h.fail("list offset %d: %s, want %s (log start %d, high watermark %d)", ts, obs[0], want, h.lso, h.hw)
	}
}

// modelListOffset is Kafka's ListOffsets answer over the batches from the
// log start on, at batch granularity (see Log.ListOffset): for a
// timestamp, the first batch whose max timestamp reaches it (its base
// offset, or the log start when that is inside it); for the max, the first
// batch carrying the largest timestamp (its last offset).
func (h *metaHarness) modelListOffset(ts int64) string {
	switch ts {
	case TimestampLatest:
		return fmt.Sprintf("offset=%d ts=-1 found=true", h.hw)
	case TimestampEarliest:
		return fmt.Sprintf("offset=%d ts=-1 found=true", h.lso)
	}
	var best *metaBatch
	for i := range h.batches {
		b := &h.batches[i]
		if b.last < h.lso {
			continue
		}
		if ts == TimestampMax {
			if best == nil || b.maxTs > best.maxTs {
				best = b
			}
			continue
		}
		if b.maxTs >= ts {
			return fmt.Sprintf("offset=%d ts=%d found=true", max(b.base, h.lso), b.maxTs)
		}
	}
	if best != nil {
		return fmt.Sprintf("offset=%d ts=%d found=true", best.last, best.maxTs)
	}
	return "offset=-1 ts=-1 found=false"
}

// tickOp lets up to 3 s pass (flush.ms, timestamps).
func (h *metaHarness) tickOp() {
	d := time.Duration(h.rng.Intn(3000)) * time.Millisecond
	h.begin("tick %v", d)
	h.clk.Advance(d)
}

// rollOp ages the active segments past segment.ms: the next append rolls.
func (h *metaHarness) rollOp() {
	h.begin("roll (clock past segment.ms)")
	h.clk.Advance(time.Duration(max(h.base.SegmentMs, h.base.TimeRollMinMs)+1) * time.Millisecond)
}

// retentionOp enforces retention at a time up to 40 minutes ahead of the
// clock, checks each run's deletions against the rules, then brings every
// run to the furthest log start.
func (h *metaHarness) retentionOp() {
	now := h.clk.Now().Add(time.Duration(h.rng.Int63n(40*60*1000)) * time.Millisecond)
	h.begin("retention at +%v", now.Sub(h.clk.Now()))
	obs := make([]string, len(h.runs))
	target := h.lso
	for ri, r := range h.runs {
		var held map[int64]int64
		if h.compact {
			held = h.heldBatches(r)
		}
		_, err := r.l.EnforceRetention(now)
		obs[ri] = metaErrClass(err)
		lso := r.l.LogStartOffset()
		if err := h.checkRetention(lso, now.UnixMilli(), held); err != nil {
			h.fail("%s: %v", r.name, err)
		}
		target = max(target, lso)
	}
	h.agree(obs)
	h.converge(target)
}

// checkRetention checks a retention that moved the log start from h.lso
// to lso: each batch it deleted was past retention.ms, or at least
// retention.bytes follow it. (Segments go oldest first, each by either
// rule; one goes by size when the segments after it hold retention.bytes,
// and those are among the batches after each of its own.) held, for a
// compacted run: the batches it held before (base -> max timestamp as
// stored: a rewritten batch's is its kept records'); one it no longer
// held is no constraint. (The model's sizes bound the run's from above, so
// the size rule stays a valid check.)
func (h *metaHarness) checkRetention(lso, nowMs int64, held map[int64]int64) error {
	if lso < h.lso || lso > h.hw {
		return fmt.Errorf("retention moved the log start from %d to %d (high watermark %d)", h.lso, lso, h.hw)
	}
	if lso == h.lso {
		return nil
	}
	if h.modelAt(lso) >= 0 && h.batches[h.modelAt(lso)].base != lso {
		return fmt.Errorf("retention moved the log start to %d, inside a batch", lso)
	}
	var after int64 // bytes of the batches after batches[i], walking back
	for i := len(h.batches) - 1; i >= 0; i-- {
		b := h.batches[i]
		maxTs, ok := b.maxTs, true
		if held != nil {
			maxTs, ok = held[b.base]
		}
		if b.last >= h.lso && b.base < lso && ok {
			byTime := h.base.RetentionMs >= 0 && nowMs-maxTs > h.base.RetentionMs
			bySize := h.base.RetentionBytes >= 0 && after >= h.base.RetentionBytes
			if !byTime && !bySize {
				return fmt.Errorf("retention deleted batch [%d, %d] (timestamp %d, %d ms before now) with %d bytes after it: neither rule allows it",
					b.base, b.last, b.maxTs, nowMs-b.maxTs, after)
			}
		}
		after += int64(len(b.raw))
	}
	return nil
}

// converge brings every run's log start to target with DeleteRecords
// (a no-op where it is there already) and compares the result.
func (h *metaHarness) converge(target int64) {
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		lso, err := r.l.DeleteRecords(target)
		obs[ri] = fmt.Sprintf("lso=%d %s hw=%d", lso, metaErrClass(err), r.l.HighWatermark())
	}
	h.agree(obs)
	h.lso = target
	if want := fmt.Sprintf("lso=%d ok hw=%d", h.lso, h.hw); obs[0] != want {
		h.fail("after converging: %s, want %s", obs[0], want)
	}
}

// deleteRecordsOp moves the log start (-1: to the high watermark), with
// some offsets out of range.
func (h *metaHarness) deleteRecordsOp() {
	var off int64
	switch k := h.rng.Intn(10); {
	case k < 2:
		off = -1
	case k < 3:
		off = []int64{-2, h.hw + 1 + h.rng.Int63n(5)}[h.rng.Intn(2)]
	default:
		off = max(0, h.lso-3+h.rng.Int63n(h.hw-h.lso+4))
	}
	h.begin("delete records to %d", off)
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		lso, err := r.l.DeleteRecords(off)
		obs[ri] = fmt.Sprintf("lso=%d %s", lso, metaErrClass(err))
	}
	h.agree(obs)
	want := "lso=0 out-of-range"
	if off >= -1 && off <= h.hw {
		to := off
		if off == -1 {
			to = h.hw
		}
		h.lso = max(h.lso, to)
		want = fmt.Sprintf("lso=%d ok", h.lso)
	}
	if obs[0] != want {
		h.fail("delete records to %d: %s, want %s", off, obs[0], want)
	}
}

// checkpointOp writes the manager's checkpoints.
func (h *metaHarness) checkpointOp() {
	h.begin("checkpoint")
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		obs[ri] = metaErrClass(r.m.Checkpoint())
	}
	h.agree(obs)
	h.durableLSO = h.lso
}

// reopenOp closes each manager cleanly and opens it again: nothing may
// change.
func (h *metaHarness) reopenOp() {
	h.begin("close and reopen")
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		cerr := r.m.Close()
		r.m, r.l = nil, nil
		if err := h.open(r); err != nil {
			h.fail("%s: reopen: %v", r.name, err)
		}
		obs[ri] = fmt.Sprintf("close=%s hw=%d lso=%d", metaErrClass(cerr), r.l.HighWatermark(), r.l.LogStartOffset())
	}
	h.agree(obs)
	h.durableLSO = h.lso
	if want := fmt.Sprintf("close=ok hw=%d lso=%d", h.hw, h.lso); obs[0] != want {
		h.fail("after a clean reopen: %s, want %s", obs[0], want)
	}
}

// powerLossOp crashes every run (the writer stops, nothing is flushed or
// closed cleanly), drops what was not fdatasync'd (torn tails included),
// recovers, checks what survived, then re-appends what was lost and
// restores the log start so the runs agree again.
func (h *metaHarness) powerLossOp() {
	h.begin("power loss")
	for ri, r := range h.runs {
		r.l.crashClose()
		rp := r.l.RecoveryPoint() // final: the background flushes have finished
		r.m, r.l = nil, nil       // abandoned, as by a crash: no checkpoint, no marker
		if err := r.be.powerLoss(rand.New(rand.NewSource(h.seed*7919 + int64(h.opIndex)*131 + int64(ri)))); err != nil {
			h.fail("%s: power loss: %v", r.name, err)
		}
		if err := h.open(r); err != nil {
			h.fail("%s: recovery: %v", r.name, err)
		}
		hw, lso := r.l.HighWatermark(), r.l.LogStartOffset()
		// An empty log (hw == lso) may start inside a batch: every
		// unsynced segment was lost but the log-start-offset checkpoint
		// kept a log start DeleteRecords put inside one (Kafka's loader
		// then starts the log at the checkpointed offset too).
		emptyInBatch := false
		if i := h.modelAt(hw); hw == lso && i >= 0 && hw < h.hw {
			emptyInBatch = h.batches[i].base != hw
		}
		switch {
		case hw < rp || hw > h.hw:
			h.fail("%s: recovered high watermark %d outside [recovery point %d, high watermark %d]", r.name, hw, rp, h.hw)
		case r.cfg.FlushMessages == 1 && hw != h.hw:
			h.fail("%s: flush.messages=1 lost acknowledged batches: recovered to %d of %d", r.name, hw, h.hw)
		case hw < h.hw && !emptyInBatch && h.batches[h.modelAt(hw)].base != hw:
			h.fail("%s: recovered high watermark %d is inside a batch", r.name, hw)
		case lso > h.lso || lso < min(h.durableLSO, hw):
			h.fail("%s: recovered log start %d outside [min(checkpointed %d, hw %d), %d]", r.name, lso, h.durableLSO, hw, h.lso)
		}
		if err := h.scanRun(r, lso, hw); err != nil {
			h.fail("%s: after recovery: %v", r.name, err)
		}
		if emptyInBatch {
			// That batch, sent again, lands at its base offset only once
			// the empty log starts there: what Kafka's follower does on
			// UnexpectedAppendOffsetException (converge restores the log
			// start below).
			base := h.batches[h.modelAt(hw)].base
			if err := r.l.TruncateFullyAndStartAt(base); err != nil {
				h.fail("%s: empty log at %d inside a batch: start at its base %d: %v", r.name, hw, base, err)
			}
			hw = base
		}
		// Append what was lost again: it must land at the same offsets.
		var lost [][]byte
		for _, b := range h.batches {
			if b.base >= hw {
				lost = append(lost, b.raw)
			}
		}
		res, errs := h.appendAll(r, lost)
		for i := range lost {
			want := h.batches[len(h.batches)-len(lost)+i].base
			if errs[i] != nil || res[i].Err != nil || res[i].BaseOffset != want {
				h.fail("%s: re-append after power loss: %v %+v, want base offset %d", r.name, errs[i], res[i], want)
			}
		}
	}
	h.converge(h.lso)
}

// writeFaultOp makes one Append's write fail with EIO: the append fails,
// the log stays as it was and the next append reuses the offsets.
func (h *metaHarness) writeFaultOp() {
	_, payload := h.newBatches()
	h.begin("append with failing write (%d bytes)", len(payload))
	obs := make([]string, len(h.runs))
	for ri, r := range h.runs {
		r.be.failWrites(syscall.EIO)
		res, errs := h.appendAll(r, [][]byte{payload})
		r.be.failWrites(nil)
		obs[ri] = fmt.Sprintf("%s base=%d hw=%d", metaErrClass(errors.Join(errs[0], res[0].Err)), res[0].BaseOffset, r.l.HighWatermark())
	}
	h.agree(obs)
	if want := fmt.Sprintf("EIO base=-1 hw=%d", h.hw); obs[0] != want {
		h.fail("failing write: %s, want %s", obs[0], want)
	}
}
