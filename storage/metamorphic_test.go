package storage

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetamorphic runs seeded random sequences of operations (Append,
// Read, ListOffset by timestamp/earliest/latest/max, Roll, Retention by
// size and time, DeleteRecords, Checkpoint, Close/Reopen, PowerLoss, a
// failing write; on compacted seeds a keyed workload and Clean, see
// metamorphic_compact_test.go) in lockstep against one log per (config, backend) pair:
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
		seeds = append(seeds[:0], metamorphicRegressions...)
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
			if h.compact {
				t.Logf("compacted: %d rounds replaced %d segments, kept %d of %d records read (all runs)",
					h.cleaned.Rounds, h.cleaned.Segments, h.cleaned.RecordsWritten, h.cleaned.RecordsRead)
			}
		})
	}
}

const metaDefaultOps = 100

// metamorphicRegressions are seeds that once failed, run before the random
// ones every time (each with what it found).
var metamorphicRegressions = []int64{
	// A compacted run whose cleaner removed the last batches of a segment
	// (366 and 367) while the next segment was still empty: the harness
	// took the empty read below the high watermark for a lost batch.
	880484547,
}

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
//
// withFS: the fault IO is also every log's FS (compacted seeds: the
// cleaner writes, fsyncs and renames through the FS, and a power loss must
// know what of that was made durable). scratch: where the fault IO keeps
// removed entries until their removal is durable.
func newMetaBackend(kind string, withFS bool, scratch string) (*metaBackend, error) {
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
	fio.SetScratchDir(scratch)
	if kind == "fault" {
		fio.SetShortWrites(700) // groups and large batches take several writes
	}
	return &metaBackend{
		// One FaultIO across reopens: it remembers what was synced per file.
		install: func(o *ManagerOptions) {
			o.NewIO = func() (IO, error) { return fio, nil }
			if withFS {
				o.FS = fio
			}
		},
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
	// cleanedMax is the highest first dirty offset a clean of this run
	// reached (metamorphic_compact_test.go): below it the run may differ
	// from the model as a clean allows.
	cleanedMax int64
}

// metaBatch is one batch of the model: as appended (baseOffset 0), where
// it landed, its max timestamp.
type metaBatch struct {
	base, last int64
	maxTs      int64
	raw        []byte
	at         time.Time // when it was appended (tombstones' delete.retention.ms)
	recs       []fuzzRec // its records, decoded on demand (compacted seeds)
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

	// compacted seeds (metamorphic_compact_test.go)
	compact bool
	cleaner *Cleaner
	seqs    map[int64]int32
	cleaned CleanStats // summed over runs and cleans
}

func newMetaHarness(t *testing.T, seed int64) *metaHarness {
	h := &metaHarness{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), clk: newFakeClock()}
	h.epoch = h.clk.Now()
	h.base = DefaultConfig()
	h.base.SegmentMs = 10 * 60 * 1000 // the Roll operation advances the clock past it
	h.base.RetentionMs = []int64{-1, 5 * 60 * 1000, 30 * 60 * 1000}[h.rng.Intn(3)]
	h.base.RetentionBytes = []int64{-1, 4 << 10, 20 << 10, 60 << 10}[h.rng.Intn(4)]
	h.seqs = map[int64]int32{}
	h.compactConfig()
	root := t.TempDir()
	for _, mc := range metaConfigs(h.base) {
		for _, kind := range metaBackendKinds {
			if !*metamorphicAll && !metaPairs[mc.name+"/"+kind] {
				continue
			}
			be, err := newMetaBackend(kind, h.compact, t.TempDir())
			if err != nil {
				if kind == "uring" {
					t.Logf("io_uring backend not tested: %v", err)
					continue
				}
				t.Fatal(err)
			}
			r := &metaRun{name: mc.name + "/" + kind, cfg: mc.cfg, be: be, dir: filepath.Join(root, mc.name+"-"+kind)}
			h.runs = append(h.runs, r)
			// The data dir exists before the broker starts (durably: it is
			// not the fault FS's to lose in a power loss).
			if err := os.MkdirAll(r.dir, 0o755); err != nil {
				t.Fatal(err)
			}
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
	h.t.Fatalf("metamorphic seed %d, op %d (%s): %s\nretention.ms=%d retention.bytes=%d compact=%v; last operations:\n  %s\nreplay: %s",
		h.seed, h.opIndex, h.opDesc, fmt.Sprintf(format, args...), h.base.RetentionMs, h.base.RetentionBytes, h.compact,
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
	if h.compact {
		ops = append(ops, op{8, h.cleanOp})
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

func metaErrClass(err error) string {
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
