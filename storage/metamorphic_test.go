package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetamorphic runs seeded random sequences of operations (Append,
// Read, ListOffset by timestamp/earliest/latest/max, Roll, Retention by
// size and time, DeleteRecords, Checkpoint, Close/Reopen, PowerLoss, a
// failing write) in lockstep against one log per (config, backend) pair:
// segment sizes from a few batches to a megabyte, sparse and dense index
// intervals, indexes small enough to force rolls, and flush policies from
// "never" to every message; the portable, io_uring (where available) and
// a short-writing fault backend. Segment layout, group commit and flush
// policy are implementation choices no client can see, so for the same
// seed every run must observe the same thing, and that is compared after
// each operation. A model of the log (every batch appended, the log start
// offset, the high watermark) additionally checks what every run agrees
// on: offsets, bytes read back, ListOffsets answers.
//
// Three operations have outcomes that legitimately depend on the config,
// and the comparison is built around them:
//
//   - Retention deletes whole segments, so where the log start lands
//     depends on the segment layout. Each run's result is checked against
//     the rules (every deleted batch was older than retention.ms, or what
//     remains is still at least retention.bytes), then all runs are
//     brought to the furthest log start with DeleteRecords.
//   - PowerLoss drops what was not fdatasync'd, which depends on the flush
//     policy. Each run must keep at least its recovery point (everything a
//     log claims is on disk) and, with flush.messages=1, every
//     acknowledged batch; what it kept must be a clean prefix of the model.
//     The lost tail is then appended again (it must get the same offsets)
//     and the log start restored, as a producer retrying and an admin
//     repeating a DeleteRecords would.
//   - A Read returns whole batches from one segment, so how many batches
//     come back depends on the layout: runs are compared on the first
//     batch (always the one holding the offset), and everything returned
//     is checked against the model.
//
// A failure names the seed, the operation and the runs that disagree, and
// prints the command that replays it:
//
//	go test -count=1 -run 'TestMetamorphic$' ./storage/ -seed=N
//
// make test runs a few random seeds; make metamorphic runs many.
func TestMetamorphic(t *testing.T) {
	seeds := []int64{*metamorphicSeed}
	if *metamorphicSeed == 0 {
		base := time.Now().UnixNano() % 1_000_000_000
		seeds = seeds[:0]
		for i := 0; i < *metamorphicSeeds; i++ {
			seeds = append(seeds, base+int64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			h := newMetaHarness(t, seed)
			defer h.closeAll()
			for i := 0; i < *metamorphicOps; i++ {
				h.step(i)
			}
			h.opIndex, h.opDesc = *metamorphicOps, "final scan"
			h.scan()
		})
	}
}

const metaDefaultOps = 100

var (
	metamorphicSeed  = flag.Int64("seed", 0, "TestMetamorphic: replay this seed only (as a failure prints it)")
	metamorphicSeeds = flag.Int("metamorphic.seeds", 3, "TestMetamorphic: how many random seeds to run (make metamorphic runs many)")
	metamorphicOps   = flag.Int("metamorphic.ops", metaDefaultOps, "TestMetamorphic: operations per seed")
	metamorphicAll   = flag.Bool("metamorphic.all", false, "TestMetamorphic: every config with every backend (default: a covering subset)")
)

// metaBackend is the metamorphic test's one adapter to the storage IO
// seam and its fault injection: how a log gets its backend, how a power
// loss drops what was not fdatasync'd, how writes are made to fail. When
// that seam changes, only newMetaBackend changes.
type metaBackend struct {
	install    func(*ManagerOptions)      // give the manager's logs this backend
	powerLoss  func(rng *rand.Rand) error // drop what was not fdatasync'd (rng: torn tails)
	failWrites func(err error)            // every write fails with err (nil: heal)
	close      func() error
}

// newMetaBackend makes a backend of kind portable, uring or fault (the
// portable backend with every write cut short). Each is wrapped in the
// fault IO, the one that can simulate a power loss; with no fault set it
// only passes through and records what was synced.
func newMetaBackend(kind string) (*metaBackend, error) {
	var inner IO
	switch kind {
	case "portable", "fault":
		inner = NewPortableIO()
	case "uring":
		var err error
		if inner, err = NewUringIO(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown backend %q", kind)
	}
	fio := NewFaultIO(inner)
	if kind == "fault" {
		fio.SetShortWrites(700) // groups and large batches take several writes
	}
	return &metaBackend{
		// One FaultIO across reopens: it remembers what was synced per file.
		install:    func(o *ManagerOptions) { o.NewIO = func() (IO, error) { return fio, nil } },
		powerLoss:  fio.PowerLoss,
		failWrites: fio.SetWriteError,
		close:      inner.Close,
	}, nil
}

// metaConfigs are the configurations every seed runs against; retention
// and segment.ms come from the seed (they shape what is observable).
func metaConfigs(base Config) []struct {
	name string
	cfg  Config
} {
	big := base // Kafka's index defaults, segments that rarely roll, no flush
	big.SegmentBytes = 1 << 20

	small := base // a few batches per segment, every batch indexed, tiny indexes, flush each message
	small.SegmentBytes = 2048
	small.IndexIntervalBytes = 0
	small.IndexMaxBytes = 96 // 12 offset entries, 8 time entries: index-full rolls
	small.FlushMessages = 1
	small.AppendBatchMaxBytes = 1024

	mid := base
	mid.SegmentBytes = 6000
	mid.IndexIntervalBytes = 300
	mid.IndexMaxBytes = 4096
	mid.FlushMessages = 7

	timed := base // flush.ms on the fake clock
	timed.SegmentBytes = 16 << 10
	timed.IndexIntervalBytes = 1000
	timed.FlushMs = 1000

	return []struct {
		name string
		cfg  Config
	}{{"big", big}, {"small-sync", small}, {"mid-flush7", mid}, {"flush-1s", timed}}
}

var metaBackendKinds = []string{"portable", "uring", "fault"}

// metaPairs is the default subset of (config, backend) runs: every config
// and every backend, each backend beside another one under the same
// config, at about half the cost of all twelve (fdatasync dominates).
var metaPairs = map[string]bool{
	"big/portable": true, "big/uring": true,
	"small-sync/fault": true, "small-sync/uring": true,
	"mid-flush7/portable": true, "mid-flush7/uring": true,
	"flush-1s/fault": true,
}

// metaRun is one (config, backend) log.
type metaRun struct {
	name string
	cfg  Config
	be   *metaBackend
	dir  string
	m    *Manager
	l    *Log
}

// metaBatch is one batch of the model: as appended (baseOffset 0), where
// it landed, its max timestamp.
type metaBatch struct {
	base, last int64
	maxTs      int64
	raw        []byte
}

type metaHarness struct {
	t     *testing.T
	seed  int64
	rng   *rand.Rand
	clk   *fakeClock
	base  Config
	runs  []*metaRun
	epoch time.Time

	// the model
	batches    []metaBatch // every batch in offset order (none is ever lost for good)
	lso, hw    int64
	durableLSO int64 // log start offset as of the last checkpoint or clean close

	opIndex int
	opDesc  string
	history []string
}

func newMetaHarness(t *testing.T, seed int64) *metaHarness {
	h := &metaHarness{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), clk: newFakeClock()}
	h.epoch = h.clk.Now()
	h.base = DefaultConfig()
	h.base.SegmentMs = 10 * 60 * 1000 // the Roll operation advances the clock past it
	h.base.RetentionMs = []int64{-1, 5 * 60 * 1000, 30 * 60 * 1000}[h.rng.Intn(3)]
	h.base.RetentionBytes = []int64{-1, 4 << 10, 20 << 10, 60 << 10}[h.rng.Intn(4)]
	root := t.TempDir()
	for _, mc := range metaConfigs(h.base) {
		for _, kind := range metaBackendKinds {
			if !*metamorphicAll && !metaPairs[mc.name+"/"+kind] {
				continue
			}
			be, err := newMetaBackend(kind)
			if err != nil {
				if kind == "uring" {
					t.Logf("io_uring backend not tested: %v", err)
					continue
				}
				t.Fatal(err)
			}
			r := &metaRun{name: mc.name + "/" + kind, cfg: mc.cfg, be: be, dir: filepath.Join(root, mc.name+"-"+kind)}
			h.runs = append(h.runs, r)
			if err := h.open(r); err != nil {
				t.Fatalf("%s: open: %v", r.name, err)
			}
		}
	}
	return h
}

func (h *metaHarness) open(r *metaRun) error {
	opts := ManagerOptions{Defaults: r.cfg, Clock: h.clk}
	r.be.install(&opts)
	m, err := OpenManager(r.dir, opts)
	if err != nil {
		return err
	}
	l, err := m.OpenLog("t", 0, r.cfg)
	if err != nil {
		m.Close()
		return err
	}
	r.m, r.l = m, l
	return nil
}

func (h *metaHarness) closeAll() {
	for _, r := range h.runs {
		if r.m != nil {
			r.m.Close()
		}
		r.be.close()
	}
}

// fail stops the test with the seed, the operation, the recent history
// and the replay command.
func (h *metaHarness) fail(format string, args ...any) {
	h.t.Helper()
	start := max(0, len(h.history)-15)
	h.t.Fatalf("metamorphic seed %d, op %d (%s): %s\nretention.ms=%d retention.bytes=%d; last operations:\n  %s\nreplay: %s",
		h.seed, h.opIndex, h.opDesc, fmt.Sprintf(format, args...), h.base.RetentionMs, h.base.RetentionBytes,
		strings.Join(h.history[start:], "\n  "), metaReplay(h.seed))
}

// metaReplay is the command that runs seed again with the same flags (the
// operations depend on them: retention converges over the runs there are).
func metaReplay(seed int64) string {
	cmd := fmt.Sprintf("go test -count=1 -run 'TestMetamorphic$' ./storage/ -seed=%d", seed)
	if *metamorphicOps != metaDefaultOps {
		cmd += fmt.Sprintf(" -metamorphic.ops=%d", *metamorphicOps)
	}
	if *metamorphicAll {
		cmd += " -metamorphic.all"
	}
	return cmd
}

// agree fails unless every run observed the same as the first.
func (h *metaHarness) agree(obs []string) {
	h.t.Helper()
	for i := 1; i < len(obs); i++ {
		if obs[i] != obs[0] {
			h.fail("runs disagree:\n  %s: %s\n  %s: %s", h.runs[0].name, obs[0], h.runs[i].name, obs[i])
		}
	}
}

// step picks and runs one operation.
func (h *metaHarness) step(i int) {
	h.opIndex = i
	type op struct {
		weight int
		run    func()
	}
	ops := []op{
		{34, h.appendOp},
		{14, h.readOp},
		{12, h.listOffsetOp},
		{3, h.scan},
		{7, h.tickOp},
		{4, h.rollOp},
		{5, h.retentionOp},
		{6, h.deleteRecordsOp},
		{3, h.checkpointOp},
		{4, h.reopenOp},
		{5, h.powerLossOp},
		{3, h.writeFaultOp},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := h.rng.Intn(total)
	for _, o := range ops {
		if n < o.weight {
			o.run()
			return
		}
		n -= o.weight
	}
}

func (h *metaHarness) begin(format string, args ...any) {
	h.opDesc = fmt.Sprintf(format, args...)
	h.history = append(h.history, fmt.Sprintf("#%d %s", h.opIndex, h.opDesc))
}

func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrCorruptBatch):
		return "corrupt"
	case errors.Is(err, ErrInvalidBatch):
		return "invalid"
	case errors.Is(err, ErrOffsetOutOfRange):
		return "out-of-range"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, syscall.EIO):
		return "EIO"
	}
	return "error: " + err.Error()
}

// newBatches makes one Append's worth of batches (1 to 3) with timestamps
// around the clock, sometimes far behind it, and returns them with the
// bytes to append.
func (h *metaHarness) newBatches() ([][]byte, []byte) {
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
				fmt.Fprintf(&sb, "[append: %s] ", errClass(errs[i]))
				continue
			}
			x := res[i]
			fmt.Fprintf(&sb, "[%d..%d lso=%d ts=%d %s] ", x.BaseOffset, x.LastOffset, x.LogStartOffset, x.LogAppendTime, errClass(x.Err))
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
		h.batches = append(h.batches, metaBatch{base: h.hw, last: h.hw + int64(hd.lastOffsetDelta), maxTs: hd.maxTs, raw: b})
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
			obs[ri] = fmt.Sprintf("%s empty base=%d", errClass(err), reg.BaseOffset)
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
				if hd.base > off || hd.base+int64(hd.lastOffsetDelta) < off {
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
			} else if hd.base > off {
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
		_, err := r.l.EnforceRetention(now)
		obs[ri] = errClass(err)
		lso := r.l.LogStartOffset()
		if err := h.checkRetention(lso, now.UnixMilli()); err != nil {
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
// and those are among the batches after each of its own.)
func (h *metaHarness) checkRetention(lso, nowMs int64) error {
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
		if b.last >= h.lso && b.base < lso {
			byTime := h.base.RetentionMs >= 0 && nowMs-b.maxTs > h.base.RetentionMs
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
		obs[ri] = fmt.Sprintf("lso=%d %s hw=%d", lso, errClass(err), r.l.HighWatermark())
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
		obs[ri] = fmt.Sprintf("lso=%d %s", lso, errClass(err))
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
		obs[ri] = errClass(r.m.Checkpoint())
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
		obs[ri] = fmt.Sprintf("close=%s hw=%d lso=%d", errClass(cerr), r.l.HighWatermark(), r.l.LogStartOffset())
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
		switch {
		case hw < rp || hw > h.hw:
			h.fail("%s: recovered high watermark %d outside [recovery point %d, high watermark %d]", r.name, hw, rp, h.hw)
		case r.cfg.FlushMessages == 1 && hw != h.hw:
			h.fail("%s: flush.messages=1 lost acknowledged batches: recovered to %d of %d", r.name, hw, h.hw)
		case hw < h.hw && h.batches[h.modelAt(hw)].base != hw:
			h.fail("%s: recovered high watermark %d is inside a batch", r.name, hw)
		case lso > h.lso || lso < min(h.durableLSO, hw):
			h.fail("%s: recovered log start %d outside [min(checkpointed %d, hw %d), %d]", r.name, lso, h.durableLSO, hw, h.lso)
		}
		if err := h.scanRun(r, lso, hw); err != nil {
			h.fail("%s: after recovery: %v", r.name, err)
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
		obs[ri] = fmt.Sprintf("%s base=%d hw=%d", errClass(errors.Join(errs[0], res[0].Err)), res[0].BaseOffset, r.l.HighWatermark())
	}
	h.agree(obs)
	if want := fmt.Sprintf("EIO base=-1 hw=%d", h.hw); obs[0] != want {
		h.fail("failing write: %s, want %s", obs[0], want)
	}
}
