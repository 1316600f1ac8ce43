package storage

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/codec"
)

// Crash, power loss and I/O errors at every step of a clean (issue 17).
//
// A seeded keyed workload (every codec, several producers, tombstones,
// keyless records) is written to a compacted log over a FaultIO with
// flush.messages=1 (every acknowledged record is durable, so anything the
// check misses afterwards was lost by the cleaner, not by the flush
// policy), cleaned once, then written to some more. A healthy CleanLog of
// that log is run once with a counting fault to enumerate its mutating
// filesystem steps: creating and writing X.log.cleaned and its indexes,
// their fsync and msyncs, the .cleaned -> .swap rename and the directory
// fsync that commits it, the removals of the old segments' files, the
// index renames, the final .swap -> .log rename and the fsyncs between,
// for every group the round rewrites. Then, for every step k, in a fresh
// copy of the scenario:
//
//   - fail: step k fails once (EIO). CleanLog fails (or, past the commit
//     point, succeeds with the disk finished at the next open); the log
//     keeps serving, nothing is lost, a later clean succeeds, a reopen
//     finds the same.
//   - kill: the disk freezes at step k (every later mutating call fails)
//     and the process dies (SIGKILL: the page cache survives). The log
//     reopens (recovery), nothing is lost, a later clean succeeds.
//   - freeze+powerloss, fail+powerloss: as kill and fail, then the power
//     goes: unsynced data and unsynced directory entries are dropped (a
//     random prefix of the directory changes survives, torn tails).
//
// After each: the log opens (a crash the protocol covers never fails a
// start), every record read is what was written at its offset, in order,
// every key's latest value is there (a tombstone until delete.retention.ms
// after it was written), every record from the round's first uncleanable
// offset on is there, nothing superseded below the previous round's
// cleaned point came back, and each active producer's last batch is there.
//
// The unflushed variant runs the two power-loss modes on the same workload
// with no flush policy. Acknowledged records may then be lost, as on Kafka,
// so the model is what survived the power loss: every record below the
// recovery point from before the crash, and every batch still present. A
// rolled segment whose fdatasync failed can lose its tail while the next
// segment's head survives: the log keeps that gap (recovery deletes nothing
// that survived), and the cleaner must lose nothing of the survivors.
//
// Replay a failure with the command it prints:
//
//	go test -count=1 -run 'TestCleanerCrashSteps$' ./storage/ -cleancrash.seed=N -cleancrash.all
//
// By default one seed runs, every 4th step (every 10th with -short; twice
// as sparse unflushed) in one of the modes, both rotating with the seed, so that make test stays
// short and successive runs cover every step; -cleancrash.all runs every
// mode at every step and -cleancrash.seeds=N more seeds (make
// cleaner-crash runs both).

var (
	cleanCrashSeed  = flag.Int64("cleancrash.seed", 0, "TestCleanerCrashSteps: replay this seed only")
	cleanCrashSeeds = flag.Int("cleancrash.seeds", 1, "TestCleanerCrashSteps: how many random seeds")
	cleanCrashAll   = flag.Bool("cleancrash.all", false, "TestCleanerCrashSteps: every mode at every step (default: every 4th step in one mode, rotating; -short: every 10th)")
)

// cleanCrashScenario is one copy of the scenario: the log, its model, and
// what the check needs.
type cleanCrashScenario struct {
	dir       string
	f         *FaultIO
	cfg       Config
	clk       *fakeClock
	l         *Log
	m         *cleanModel
	cleanedTo int64 // the first dirty offset before the clean under test
	keptFrom  int64 // the active segment's base: nothing from here on is cleaned
	seqs      map[int64]int32
	rng       *rand.Rand
	dr        time.Duration
	// unflushed: no flush policy, and every fdatasync of the log's data
	// fails until the clean (rolled segments stay unsynced): a power loss
	// may take any record at or above the recovery point, and the check
	// is against the model cut at the recovered high watermark.
	unflushed bool
	calls     []cleanCrashCall
}

// cleanCrashCall is one acknowledged append, to rebuild the model of a
// prefix of the log.
type cleanCrashCall struct {
	res  AppendResult
	recs []wrec
	pid  int64
	at   time.Time
}

func newCleanCrashScenario(t *testing.T, seed int64, unflushed bool) *cleanCrashScenario {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	sc := &cleanCrashScenario{dir: t.TempDir(), f: NewFaultIO(nil), clk: newFakeClock(), m: newCleanModel(t), seqs: map[int64]int32{}, rng: rng}
	sc.f.SetScratchDir(t.TempDir())
	cfg := testConfig()
	cfg.SegmentBytes = int64(900 + rng.Intn(1200))
	cfg.IndexIntervalBytes = []int{0, 128, 4096}[rng.Intn(3)]
	cfg.Compact = true
	cfg.NoDeleteRetention = true
	cfg.DeleteRetentionMs = 60_000
	cfg.TimeRollMinMs = 0
	cfg.FlushMessages = 1
	sc.unflushed = unflushed
	if unflushed {
		cfg.FlushMessages = math.MaxInt64
	}
	sc.cfg = cfg
	sc.dr = time.Duration(cfg.DeleteRetentionMs) * time.Millisecond
	l, err := Open(sc.dir, cfg, sc.opts(0, false, 0))
	if err != nil {
		t.Fatal(err)
	}
	sc.l = l
	keys := 4 + rng.Intn(10)
	for i := 0; i < 25; i++ {
		sc.appendRandom(t, keys, i)
	}
	cl := sc.cleaner()
	if _, err := cl.CleanLog(l); err != nil {
		t.Fatalf("first clean: %v", err)
	}
	sc.cleanedTo = l.FirstDirtyOffset()
	sc.clk.Advance(time.Duration(rng.Intn(20_000)) * time.Millisecond)
	for i := 0; i < 25; i++ {
		if unflushed && i == 15 {
			l.waitRolledFlushed()
			sc.f.SetSyncError(syscall.EIO) // from here the rolled segments' background fdatasyncs fail
		}
		sc.appendRandom(t, keys, 100+i)
	}
	// Roll so the last appends are cleanable too, and leave the active
	// segment with a record (the round must stop below it).
	sc.clk.Advance(time.Duration(cfg.SegmentMs+1) * time.Millisecond)
	sc.appendRandom(t, keys, 200)
	l.bgFlushes.Wait() // no background flush left: the steps are the clean's
	sc.f.SetSyncError(nil)
	l.mu.RLock()
	sc.keptFrom = l.active().base
	l.mu.RUnlock()
	sc.m.check(l, sc.cleanedTo, sc.clk.Now(), sc.dr, "before the clean under test")
	return sc
}

func (sc *cleanCrashScenario) opts(rp int64, clean bool, cleanerOffset int64) Options {
	return Options{FS: sc.f, IO: sc.f, Clock: sc.clk, RecoveryPoint: rp, CleanShutdown: clean, CleanerOffset: cleanerOffset}
}

func (sc *cleanCrashScenario) cleaner() *Cleaner {
	return NewCleaner(CleanerConfig{Clock: sc.clk, IOBufferBytes: 4096, DedupeBufferBytes: 1 << 20}, nil)
}

// appendRandom appends one random keyed batch (tag makes its values unique).
func (sc *cleanCrashScenario) appendRandom(t *testing.T, keys, tag int) {
	t.Helper()
	rng := sc.rng
	n := 1 + rng.Intn(4)
	recs := make([]wrec, n)
	ts := sc.clk.Now().UnixMilli()
	for i := range recs {
		r := &recs[i]
		r.ts = ts + int64(rng.Intn(5))
		r.headers = rng.Intn(2)
		if rng.Intn(15) > 0 {
			r.key = []byte(fmt.Sprintf("key-%d", rng.Intn(keys)))
		}
		if rng.Intn(5) > 0 {
			r.value = []byte(fmt.Sprintf("v%d-%d-%s", tag, i, strings.Repeat("x", rng.Intn(80))))
		}
	}
	pid := int64(-1)
	if rng.Intn(3) == 0 {
		pid = int64(7000 + rng.Intn(2))
	}
	codecs := []int8{codec.None, codec.Gzip, codec.Snappy, codec.LZ4, codec.Zstd}
	b := cleanTestBatch(recs, ts, codecs[rng.Intn(len(codecs))], pid, sc.seqs[pid])
	if pid >= 0 {
		sc.seqs[pid] += int32(n)
	}
	res := syncAppend(t, sc.l, b)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	sc.m.appended(res, recs, pid, sc.clk.Now())
	sc.calls = append(sc.calls, cleanCrashCall{res, recs, pid, sc.clk.Now()})
}

// survivors is the model of the acknowledged appends that survived a
// power loss in the unflushed scenario: every append below rp (the
// recovery point before the crash: durable) and each append at or above it
// whose batch is still in the log. Nothing at or above rp was cleaned (the
// cleaner stops at the recovery point), so such a batch survived whole or
// not at all. The survivors need not be a prefix: each unsynced segment
// loses its own tail, so a rolled segment whose fdatasync failed can lose
// its last batches while the next segment keeps its first ones (a gap, as
// on Kafka: recovery keeps what survived rather than delete it).
func (sc *cleanCrashScenario) survivors(t *testing.T, l *Log, rp int64) ([]cleanCrashCall, *cleanModel) {
	t.Helper()
	_, present := readLogRecords(t, l)
	m := newCleanModel(t)
	var calls []cleanCrashCall
	for _, c := range sc.calls {
		if c.res.LastOffset < rp || present[[2]int64{c.res.BaseOffset, c.res.LastOffset}] {
			calls = append(calls, c)
			m.appended(c.res, c.recs, c.pid, c.at)
		}
	}
	return calls, m
}

// lost cuts the model down to the survivors of a power loss (unflushed
// scenario); rp is the recovery point before it.
func (sc *cleanCrashScenario) lost(t *testing.T, l *Log, rp int64) {
	sc.calls, sc.m = sc.survivors(t, l, rp)
	hw := l.HighWatermark()
	sc.cleanedTo, sc.keptFrom = min(sc.cleanedTo, hw), min(sc.keptFrom, hw)
}

// checkLoose is the check after an interrupted or failed clean: what
// cleanModel.check asks, except that records between the previous cleaned
// point and keptFrom may or may not have been cleaned. rp: the recovery
// point before the crash (everything below it must have survived); with
// the flush policy of the flushed scenario, that is everything.
func (sc *cleanCrashScenario) checkLoose(t *testing.T, l *Log, rp int64, when string) {
	t.Helper()
	hw, want := l.HighWatermark(), sc.m.recs[len(sc.m.recs)-1].offset+1
	if !sc.unflushed {
		checkCompacted(t, sc.m, l, sc.cleanedTo, sc.keptFrom, sc.clk.Now(), sc.dr, when)
		if hw != want {
			t.Fatalf("%s: high watermark %d, want %d (every append was acknowledged with flush.messages=1)", when, hw, want)
		}
		return
	}
	if hw < rp || hw > want {
		t.Fatalf("%s: high watermark %d outside [recovery point %d, %d]", when, hw, rp, want)
	}
	// Each key's latest value among the survivors must be there: the
	// cleaner removed nothing on the strength of a record that was not
	// durable yet.
	_, m := sc.survivors(t, l, rp)
	checkCompacted(t, m, l, min(sc.cleanedTo, hw), min(sc.keptFrom, hw), sc.clk.Now(), sc.dr, when)
}

// checkCompacted is cleanModel.check with the cleaned range loosened:
// records at or after keptFrom must all be there; below cleanedTo nothing
// superseded (nor keyless) may be; in between, anything the cleaner may
// have removed may be gone. Everything read must be what was written at its
// offset, in order; each key's latest value (tombstone: until
// deleteRetention after it was written) and each active producer's last batch
// must be there.
func checkCompacted(t testing.TB, m *cleanModel, l *Log, cleanedTo, keptFrom int64, now time.Time, deleteRetention time.Duration, when string) {
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
	latest := map[string]int64{}
	lastBelow := map[string]int64{}
	for _, w := range m.recs {
		if w.key != nil {
			latest[string(w.key)] = w.offset
			if w.offset < cleanedTo {
				lastBelow[string(w.key)] = w.offset
			}
		}
	}
	for _, w := range m.recs {
		switch {
		case w.offset >= keptFrom:
			if !present[w.offset] {
				t.Fatalf("%s: record at %d, at or above the first uncleanable offset %d, is gone", when, w.offset, keptFrom)
			}
		case w.key != nil && latest[string(w.key)] == w.offset && w.value != nil:
			if !present[w.offset] {
				t.Fatalf("%s: latest value of key %q (offset %d) is gone", when, w.key, w.offset)
			}
		case w.key != nil && latest[string(w.key)] == w.offset:
			if !present[w.offset] && now.Sub(w.writtenT) < deleteRetention {
				t.Fatalf("%s: tombstone of key %q (offset %d) removed %v after it was written, before delete.retention.ms %v", when, w.key, w.offset, now.Sub(w.writtenT), deleteRetention)
			}
		case w.offset >= cleanedTo:
			// in the round's range: either way
		case w.key == nil:
			if present[w.offset] {
				t.Fatalf("%s: keyless record at %d survived cleaning below %d", when, w.offset, cleanedTo)
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

// noCleanerLeftovers fails if dir holds a .cleaned or .swap file.
func noCleanerLeftovers(t testing.TB, dir, when string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), cleanedSuffix) || strings.HasSuffix(e.Name(), swapSuffix) {
			t.Fatalf("%s: %s left in the log dir", when, e.Name())
		}
	}
}

func cleanCrashSeedList() []int64 {
	if *cleanCrashSeed != 0 {
		return []int64{*cleanCrashSeed}
	}
	n := *cleanCrashSeeds
	base := time.Now().UnixNano() % 1_000_000_000
	out := make([]int64, n)
	for i := range out {
		out[i] = base + int64(i)
	}
	return out
}

var cleanCrashModes = []string{"fail", "kill", "freeze+powerloss", "fail+powerloss"}

func TestCleanerCrashSteps(t *testing.T) {
	for _, seed := range cleanCrashSeedList() {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			replay := fmt.Sprintf("go test -count=1 -run 'TestCleanerCrashSteps$' ./storage/ -cleancrash.seed=%d -cleancrash.all", seed)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("replay: %s", replay)
				}
			})
			for _, unflushed := range []bool{false, true} {
				name := "flushed"
				if unflushed {
					name = "unflushed"
				}
				t.Run(name, func(t *testing.T) { cleanCrashSteps(t, seed, unflushed) })
			}
		})
	}
}

func cleanCrashSteps(t *testing.T, seed int64, unflushed bool) {
	// Count the clean's steps on a healthy copy; the clean must remove
	// something (else there is nothing to crash).
	sc := newCleanCrashScenario(t, seed, unflushed)
	count := sc.f.Inject(Fault{Op: OpMutating, Skip: 1 << 30})
	renames := sc.f.Inject(Fault{Op: OpRename, Skip: 1 << 30})
	st, err := sc.cleaner().CleanLog(sc.l)
	if err != nil {
		t.Fatal(err)
	}
	steps := count.Matched()
	sc.f.Clear()
	if st.Segments < 2 || renames.Matched() < 3 || st.RecordsWritten >= st.RecordsRead {
		t.Fatalf("the clean under test is too small to crash in: %+v, %d steps, %d renames", st, steps, renames.Matched())
	}
	sc.m.check(sc.l, sc.l.FirstDirtyOffset(), sc.clk.Now(), sc.dr, "healthy clean")
	sc.l.Close()
	t.Logf("seed %d: the clean has %d mutating steps (%d renames), %d segments in %d rounds, %d of %d records kept",
		seed, steps, renames.Matched(), st.Segments, st.Rounds, st.RecordsWritten, st.RecordsRead)
	modes := cleanCrashModes
	if unflushed {
		modes = []string{"freeze+powerloss", "fail+powerloss"} // what differs from the flushed case
	}
	for k := 0; k < steps; k++ {
		for mi, mode := range modes {
			// By default every 4th step (which ones rotates with the seed)
			// in one mode (rotating); -short every 10th; -cleancrash.all
			// every mode at every step (make cleaner-crash).
			every := int64(4)
			if testing.Short() {
				every = 10
			}
			if unflushed {
				every *= 2 // its rounds are slower; make cleaner-crash runs all
			}
			if !*cleanCrashAll && ((int64(k+mi)+seed)%int64(len(modes)) != 0 || (int64(k)+seed)%every != 0) {
				continue
			}
			t.Run(fmt.Sprintf("step=%d/%s", k, mode), func(t *testing.T) {
				cleanCrashRound(t, seed, unflushed, k, mode)
			})
		}
	}
}

// cleanCrashRound runs one (step, mode) of TestCleanerCrashSteps.
func cleanCrashRound(t *testing.T, seed int64, unflushed bool, k int, mode string) {
	sc := newCleanCrashScenario(t, seed, unflushed)
	l := sc.l
	defer func() {
		if sc.l != nil {
			sc.l.Close()
		}
	}()
	failCount := 1
	if mode == "kill" || mode == "freeze+powerloss" {
		failCount = 0 // every later mutating call fails: the machine stopped
	}
	in := sc.f.Inject(Fault{Op: OpMutating, Skip: k, Count: failCount, Err: syscall.EIO})
	_, cerr := sc.cleaner().CleanLog(l)
	if in.Failed() == 0 {
		t.Fatalf("step %d was never reached (the clean is not deterministic?)", k)
	}
	t.Logf("clean with step %d failing: %v", k, cerr)
	if cerr != nil && !errorsIsInjected(cerr) {
		t.Fatalf("the clean failed with %v, not with the injected error", cerr)
	}
	rp := l.RecoveryPoint()
	crashRP := rp
	switch mode {
	case "fail":
		sc.f.Clear()
		sc.checkLoose(t, l, rp, "after the failed clean, live")
		// The log keeps taking appends and a later clean succeeds.
		sc.appendRandom(t, 6, 300)
	case "kill", "freeze+powerloss", "fail+powerloss":
		l.crashClose()
		sc.l = nil
		sc.f.Clear()
		if mode != "kill" {
			if err := sc.f.PowerLoss(rand.New(rand.NewSource(seed*31 + int64(k)))); err != nil {
				t.Fatal(err)
			}
		}
		// Half the rounds trust the recovery point (segments below it are
		// not rescanned), half recover from 0.
		if (seed+int64(k))%2 == 0 {
			rp = 0
		}
		var err error
		if l, err = Open(sc.dir, sc.cfg, sc.opts(rp, false, sc.cleanedTo)); err != nil {
			t.Fatalf("reopen after a %s at step %d: %v", mode, k, err)
		}
		sc.l = l
		noCleanerLeftovers(t, sc.dir, "after recovery")
		sc.checkLoose(t, l, crashRP, "after recovery")
		if sc.unflushed {
			sc.lost(t, l, crashRP)
		}
	}
	st, err := sc.cleaner().CleanLog(l)
	if err != nil {
		t.Fatalf("clean after the fault: %v", err)
	}
	if mode != "fail" {
		// (A failed step past the commit point leaves its files for the
		// next open to finish.)
		noCleanerLeftovers(t, sc.dir, "after the next clean")
	}
	cleanedTo := l.FirstDirtyOffset()
	want := sc.keptFrom
	if sc.unflushed {
		// The power loss may have cut the log inside an earlier segment,
		// now the active one; and the cleaner stops at the recovery point
		// (nothing not yet durable is cleaned), which recovery may have
		// left below the log end.
		l.mu.RLock()
		want = min(want, l.active().base)
		l.mu.RUnlock()
		want = min(want, l.RecoveryPoint())
	}
	if cleanedTo < want {
		// The round ends after the last record it mapped: short of want
		// only across a gap (the power loss's, or records an earlier
		// clean removed): no batch in the log in between.
		_, present := readLogRecords(t, l)
		for b := range present {
			if b[1] >= cleanedTo && b[0] < want {
				t.Fatalf("the clean after the fault stopped at %d, below %d, short of the batch [%d, %d] (%+v)", cleanedTo, want, b[0], b[1], st)
			}
		}
	}
	// If the round stopped at a gap, the interrupted clean may have
	// removed superseded records up to want already: loose in between.
	check := func(when string) {
		if cleanedTo < want {
			checkCompacted(t, sc.m, l, cleanedTo, want, sc.clk.Now(), sc.dr, when)
		} else {
			sc.m.check(l, cleanedTo, sc.clk.Now(), sc.dr, when)
		}
	}
	check("after the next clean")
	// And once more from disk.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sc.l = nil
	if l, err = Open(sc.dir, sc.cfg, sc.opts(0, false, cleanedTo)); err != nil {
		t.Fatalf("reopen after the next clean: %v", err)
	}
	sc.l = l
	noCleanerLeftovers(t, sc.dir, "after the next clean, reopened")
	check("after the next clean, reopened")
}

// errorsIsInjected reports whether err came from an injected fault.
func errorsIsInjected(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Op, "injected") || errors.Is(err, syscall.EIO)
}

// The SIGKILL test: a child process (this test binary re-executed, running
// TestCleanerSIGKILLChild) opens a copy of the scenario's log and cleans
// it; the parent kills it at a random moment (before, during or after the
// clean), reopens the log (recovery) and checks it as after a crash above,
// then cleans it to the end and checks again. Seeded:
// -cleancrash.seed=N replays; -cleancrash.kills=N rounds.

var cleanCrashKills = flag.Int("cleancrash.kills", 12, "TestCleanerSIGKILL: rounds (-short: 4)")

const (
	envCleanChildDir = "CLEANER_CRASH_CHILD_DIR"
	envCleanChildCfg = "CLEANER_CRASH_CHILD_CFG"
)

func TestCleanerSIGKILLChild(t *testing.T) {
	dir := os.Getenv(envCleanChildDir)
	if dir == "" {
		t.Skip("cleaner crash child: only runs re-executed by TestCleanerSIGKILL")
	}
	var segBytes, interval, retention, nowMs int64
	if _, err := fmt.Sscanf(os.Getenv(envCleanChildCfg), "%d %d %d %d", &segBytes, &interval, &retention, &nowMs); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	cfg := testConfig()
	cfg.SegmentBytes, cfg.IndexIntervalBytes = segBytes, int(interval)
	cfg.Compact, cfg.NoDeleteRetention, cfg.DeleteRetentionMs, cfg.TimeRollMinMs, cfg.FlushMessages = true, true, retention, 0, 1
	clk := newFakeClock()
	clk.t = time.UnixMilli(nowMs)
	l, err := Open(dir, cfg, Options{Clock: clk, CleanShutdown: true})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	if _, err := NewCleaner(CleanerConfig{Clock: clk, IOBufferBytes: 4096}, nil).CleanLog(l); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	fmt.Println("cleaned")
	os.Exit(0)
}

func TestCleanerSIGKILL(t *testing.T) {
	seed := cleanCrashSeedList()[0]
	rounds := *cleanCrashKills
	if testing.Short() {
		rounds = min(rounds, 4)
	}
	t.Logf("seed %d (replay: go test -count=1 -run 'TestCleanerSIGKILL$' ./storage/ -cleancrash.seed=%d)", seed, seed)
	sc := newCleanCrashScenario(t, seed, false)
	if err := sc.l.Close(); err != nil {
		t.Fatal(err)
	}
	sc.l = nil
	rng := rand.New(rand.NewSource(seed))
	cfgEnv := fmt.Sprintf("%d %d %d %d", sc.cfg.SegmentBytes, sc.cfg.IndexIntervalBytes, sc.cfg.DeleteRetentionMs, sc.clk.Now().UnixMilli())
	killedMid := 0
	for round := 0; round < rounds; round++ {
		dir := t.TempDir()
		copyDir(t, sc.dir, dir)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCleanerSIGKILLChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCleanChildDir+"="+dir, envCleanChildCfg+"="+cfgEnv)
		var out, errOut bytes.Buffer
		cmd.Stderr = &errOut // written by exec's goroutine until Wait
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// One round in four is killed while the child starts; the others
		// 0 to 4 ms after it is ready, which is before, inside or after
		// its clean (a few ms). The outcome must not depend on which.
		if rng.Intn(4) > 0 {
			deadline := time.After(time.Minute)
		wait:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						break wait
					}
					out.WriteString(l + "\n")
					if l == "ready" {
						break wait
					}
				case <-deadline:
					t.Fatalf("round %d: the child was not ready after a minute", round)
				}
			}
		}
		time.Sleep(time.Duration(rng.Intn(4000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		for l := range lines {
			out.WriteString(l + "\n")
		}
		cmd.Wait()
		out.Write(errOut.Bytes())
		if strings.Contains(out.String(), "error") {
			t.Fatalf("round %d: child: %s", round, out.String())
		}
		if strings.Contains(out.String(), "ready") && !strings.Contains(out.String(), "cleaned") {
			killedMid++
		}
		l, err := Open(dir, sc.cfg, Options{Clock: sc.clk, CleanerOffset: sc.cleanedTo})
		if err != nil {
			t.Fatalf("round %d (seed %d): reopen after SIGKILL: %v", round, seed, err)
		}
		noCleanerLeftovers(t, dir, "after recovery")
		checkCompacted(t, sc.m, l, sc.cleanedTo, sc.keptFrom, sc.clk.Now(), sc.dr, fmt.Sprintf("round %d (seed %d) after SIGKILL", round, seed))
		if _, err := NewCleaner(CleanerConfig{Clock: sc.clk}, nil).CleanLog(l); err != nil {
			t.Fatalf("round %d: clean after recovery: %v", round, err)
		}
		sc.m.check(l, l.FirstDirtyOffset(), sc.clk.Now(), sc.dr, fmt.Sprintf("round %d (seed %d) after the next clean", round, seed))
		l.Close()
	}
	t.Logf("%d rounds, %d killed between the child's open and the end of its clean", rounds, killedMid)
}
