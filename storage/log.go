package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringbroker/ringbroker/invariants"
)

// Errors returned by Log methods (besides ErrCorruptBatch/ErrInvalidBatch).
var (
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("log: closed")
	// ErrBacklog: more than append.pending.max.bytes are accepted but not yet
	// written; nothing was queued and the caller may retry later (the broker's
	// produce worker retries until the request's timeout).
	ErrBacklog = errors.New("log: append backlog full")
	// ErrOffsetOutOfRange: the offset is below the log start offset or above
	// the high watermark (Kafka OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrLogFailed wraps the error that left the log unusable (a write failed
	// and the torn bytes could not be truncated away). Kafka would take the
	// log dir offline.
	ErrLogFailed = errors.New("log: failed")
)

// Clock is injected time. The writer reads it for linger, flush.ms,
// segment.ms and LogAppendTime; tests pass a fake one.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Stats receives a log's write and fdatasync measurements (the broker's
// metrics registry implements it). Its methods are called on the writer
// goroutine and on rolled-segment flushers, so they must be cheap and safe
// from any goroutine.
type Stats interface {
	// AppendWrite records one group write of bytes holding batches record
	// batches.
	AppendWrite(bytes, batches int)
	// Fsync records one fdatasync of a segment file that took d (on the
	// io_uring backend a write linked to its fdatasync is timed as one).
	Fsync(d time.Duration)
}

// Options are what the opener (normally Manager) knows beyond Config.
type Options struct {
	IO    IO    // nil = NewPortableIO()
	FS    FS    // every other file operation; nil = OSFS
	Clock Clock // nil = wall clock
	Logf  func(format string, args ...any)
	Stats Stats // nil = not recorded
	// Warnf reports what recovery did to data: a segment truncated, later
	// segments deleted, indexes rebuilt (Kafka logs these at WARN; the
	// broker passes its WARN level). nil = Logf.
	Warnf          func(format string, args ...any)
	RecoveryPoint  int64 // from recovery-point-offset-checkpoint; segments at/after it are scanned
	LogStartOffset int64 // from log-start-offset-checkpoint
	CleanShutdown  bool  // clean-shutdown marker present: skip the recovery scan
	// CleanerOffset is where the cleaner's last round stopped (from
	// cleaner-offset-checkpoint): the first dirty offset. 0 = none.
	CleanerOffset int64
	Topic         string
	Partition     int32
	// Replicated opens the log in replicated mode (hw.go) with the high
	// watermark HighWatermark (from replication-offset-checkpoint; 0 when
	// it had no entry), clamped to [log start, log end] (hw_checkpoint.go).
	Replicated    bool
	HighWatermark int64

	// dirState is the Manager's log dir state (logdir_failure.go); nil
	// for a log opened on its own.
	dirState *dirState
}

// Log is one partition's log. See doc.go for the API and concurrency rules.
type Log struct {
	dir       string
	topic     string
	partition int32
	cfg       Config
	pol       policy
	io        IO
	fs        FS
	clock     Clock
	logf      func(string, ...any)
	stats     Stats // nil: not recorded
	// busySinceNs is when the writer started the action it is performing
	// (a group write, a periodic fdatasync), 0 while it is parked; for
	// Stalled (liveness.go). Written by the writer, read by anyone.
	busySinceNs atomic.Int64
	warnf       func(string, ...any) // recovery that changed or dropped data
	// dirState is the log dir's online/offline state (logdir_failure.go;
	// nil without a Manager): an offline dir's log refuses appends and
	// reads with ErrLogDirOffline.
	dirState *dirState
	// traceStartNs, traceWroteNs and traceSyncedNs: when the current
	// group's write began and when it and its fdatasync returned
	// (internal/reqtrace stamps, 0 when not traced or not synced); writer
	// goroutine only, handed to callbacks in AppendResult.
	traceStartNs, traceWroteNs, traceSyncedNs int64

	// mu guards the fields below it. Lock order: mu is a leaf; callbacks and
	// waiters are always invoked after it is released.
	mu       sync.RWMutex
	segments []*segment // sorted by base offset; the last is active
	logStart int64
	// end is the log end offset as readers see it: offsets below it are
	// written (completed). hw is the high watermark, what consumers may
	// read: equal to end in local mode, set by SetHighWatermark in
	// replicated mode (hw.go). logStart <= hw <= end <= nextOffset.
	end           int64
	hw            int64
	replicated    bool     // SetHighWatermark was called: completed writes no longer move hw
	endWaiters    []Waiter // woken when end advances (AddEndWaiter)
	recoveryPoint int64    // offsets below it are on disk (fdatasync'd)
	leaderEpoch   int32
	head, tail    *appendReq // FIFO of accepted, not yet grouped appends
	pendingBytes  int64
	writerState   writerState
	closing       bool
	closed        bool
	failed        error
	waiters       []Waiter
	hwChan        chan struct{}
	firstDirty    int64 // the cleaner's: offsets below it were cleaned (cleaner_log.go)
	idleRoll      bool  // the writer should roll the active segment if still idle (retention.go)

	// The cleaner's (cleaner*.go). cleaning is held by the thread cleaning
	// this log; Close sets cleanAbort and waits for it. swapMu is held
	// while segments are replaced or removed (cleaner swaps, retention,
	// DeleteRecords), so a cleaner swap never races an unlink by name.
	cleaning   sync.Mutex
	cleanAbort atomic.Bool
	swapMu     sync.Mutex
	// swapUnfinished (guarded by swapMu), when set, finishes a committed
	// cleaner swap whose later steps failed (cleaner_swap.go); no other
	// swap may start before it succeeds.
	swapUnfinished func() error

	// stableOffset bounds cleaning (Log.SetStableOffset, cleaner_txn.go);
	// atomic, not under mu: it is called without the lock.
	stableOffset atomic.Pointer[func() int64]

	// writer goroutine only
	nextOffset    int64 // log end offset: next offset to assign
	unflushedMsgs int64
	lastFlushNs   int64
	group         []*appendReq
	iov           [][]byte
	tsSoFar       int64 // active segment's max timestamp so far (index rule)
	tsOffSoFar    int64
	wake          chan struct{}
	timer         *time.Timer
	stopped       chan struct{}
	crash         bool           // test hook: stop without flushing
	bgFlushes     sync.WaitGroup // the background flusher of rolled segments
	rolledMu      sync.Mutex     // guards rolled, flusherOn, flusherDone
	rolled        []*segment     // rolled segments waiting for their background flush
	flusherOn     bool
	flusherDone   chan struct{} // closed when the running flusher finds its queue empty
	firing        []Waiter

	// truncReq is a TruncateTo waiting for the writer (guarded by mu);
	// truncating counts TruncateTo calls in progress, which abort and
	// pause the cleaner (truncate.go).
	truncReq   *truncateReq
	truncating atomic.Int32
	// staleRecoveryPoint is the highest recovery point this log had before
	// a truncation lowered it: a checkpoint may still hold it, so rolls
	// below it sync the closed segment first (truncate.go). Writer only.
	staleRecoveryPoint int64

	// The leader-epoch cache (log_epoch.go): entries guarded by mu;
	// epochFileMu serializes the changes written to its file.
	epochs      epochCache
	epochFileMu sync.Mutex
	// epochFileStale (guarded by epochFileMu): the last write of the file
	// failed, so it may not hold the entries.
	epochFileStale bool
	// recoveredFrom is the base of the first segment load scanned
	// (math.MaxInt64: none). Opener only.
	recoveredFrom int64

	// dirSyncMu serializes directory fsyncs (writer and background
	// flushers) and guards parentDirUnsynced. Taken after l.mu, if at all
	// (nothing is called under it). See durableNames.
	dirSyncMu         sync.Mutex
	parentDirUnsynced bool // l.dir was created by this Open; its entry in the log dir is not yet durable

	// inlineOffUntilNs: no inline append before this time (clock ns): an
	// inline write stalled (inlineStalled, append_inline.go). It is the
	// log dir's (dirState), shared by every log of a Manager, or the log's
	// own when it was opened alone.
	inlineOffUntilNs *atomic.Int64
}

type writerState uint8

const (
	writerIdle      writerState = iota // parked, nothing timed
	writerLingering                    // parked with a timer for queued data (append.linger.max.ms)
	writerFlushWait                    // parked, nothing queued, timer for the next flush.ms fdatasync
	writerBusy                         // running (deciding or in I/O)
	// writerInline: an appender holds the writer role (append.inline,
	// append_inline.go). The writer goroutine does nothing until it hands
	// the role back; nothing else wakes it or sets another state meanwhile.
	writerInline
)

// Append wakes a parked writer when its new batch changes what the writer
// would decide: always from writerIdle and writerFlushWait (there was
// nothing queued, so the batch is due now or starts a linger), and from
// writerLingering only once the queue reaches append.batch.max.bytes (the
// timer already stands for the oldest queued batch's age). Keeping
// writerFlushWait apart from writerLingering is what stops a produce from
// waiting out flush.ms behind the periodic-flush timer.

// Open opens (creating if needed) the partition log in dir, recovering it
// unless opts.CleanShutdown, and starts its writer goroutine.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	fs := fsOrDefault(opts.FS)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Index entries hold u32 positions: a segment cannot exceed 2 GiB
	// (Kafka's segment.bytes is an int for the same reason).
	cfg.SegmentBytes = min(cfg.SegmentBytes, math.MaxInt32)
	l := &Log{
		dir: dir, topic: opts.Topic, partition: opts.Partition,
		cfg: cfg, pol: newPolicy(&cfg), io: opts.IO, fs: fs, clock: opts.Clock, logf: opts.Logf, stats: opts.Stats, warnf: opts.Warnf, dirState: opts.dirState,
		leaderEpoch: -1, wake: make(chan struct{}, 1), stopped: make(chan struct{}),
		tsSoFar: -1, tsOffSoFar: -1, recoveredFrom: math.MaxInt64,
	}
	if l.dirState != nil {
		l.inlineOffUntilNs = &l.dirState.inlineOffUntilNs
	} else {
		l.inlineOffUntilNs = new(atomic.Int64)
	}
	if l.io == nil {
		l.io = newDefaultIO()
	}
	if l.clock == nil {
		l.clock = wallClock{}
	}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	if l.warnf == nil {
		l.warnf = l.logf
	}
	err := l.load(opts)
	if err == nil {
		err = l.loadEpochs(l.recoveredFrom)
	}
	if err != nil {
		for _, s := range l.segments {
			s.closeFiles()
		}
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l.lastFlushNs = l.clock.Now().UnixNano()
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	go l.run()
	return l, nil
}

// load discovers segments, recovers, and sets offsets. Runs before the
// writer goroutine exists, so it touches writer-owned state freely.
func (l *Log) load(opts Options) error {
	l.firstDirty = opts.CleanerOffset
	if err := l.finishCleanerSwaps(); err != nil {
		return err
	}
	ents, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".log") {
			b, err := strconv.ParseInt(strings.TrimSuffix(name, ".log"), 10, 64)
			if err == nil && b >= 0 {
				bases = append(bases, b)
			}
		}
	}
	// Indexes without a log file are leftovers of an interrupted delete.
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		if ext == ".index" || ext == ".timeindex" || ext == ".txnindex" {
			if _, err := l.fs.Stat(filepath.Join(l.dir, strings.TrimSuffix(name, ext)+".log")); os.IsNotExist(err) {
				l.fs.Remove(filepath.Join(l.dir, name))
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	now := l.clock.Now().UnixNano()
	// The first segment to scan after a crash: the one containing the
	// recovery point (Kafka recovers from there on).
	scanFrom := len(bases)
	if !opts.CleanShutdown {
		scanFrom = 0
		for i, b := range bases {
			if b <= opts.RecoveryPoint {
				scanFrom = i
			}
		}
	}
	var buf []byte
	for i, b := range bases {
		last := i == len(bases)-1
		_, e1 := l.fs.Stat(segmentName(l.dir, b, ".index"))
		_, e2 := l.fs.Stat(segmentName(l.dir, b, ".timeindex"))
		missingIndex := e1 != nil || e2 != nil
		s, err := l.openSegment(b, last, now)
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
		size, err := fileSize(s.f)
		if err != nil {
			return err
		}
		recover := i >= scanFrom
		// An empty segment has no index files until its first write (see
		// index): nothing to rebuild.
		if !recover && (missingIndex && size > 0 || !(s.idx.saneOffsets(size) && s.tidx.saneTimes())) {
			l.warnf("log %s: segment %d: index missing or failed sanity check, rebuilding", l.dir, b)
			recover = true
		}
		if recover {
			l.recoveredFrom = min(l.recoveredFrom, b)
			var res scanResult
			res, s.maxTs, s.maxTsOffset, buf = s.rebuildIndexes(l.cfg.IndexIntervalBytes, buf)
			if res.readErr != nil {
				// Unreadable is not torn: truncating here would delete
				// this segment's tail and every later segment.
				return fmt.Errorf("recovering segment %d: %w", b, res.readErr)
			}
			s.next = res.nextOffset
			if res.stopReason != nil && res.validBytes < size {
				l.warnf("log %s: segment %d: truncated at byte %d of %d (offset %d): %v", l.dir, b, res.validBytes, size, res.nextOffset, res.stopReason)
				if err := l.fs.Truncate(s.f, res.validBytes); err != nil {
					return fmt.Errorf("truncate %s: %w", s.path, err)
				}
				size = res.validBytes
				// Everything after a torn segment is unreachable: delete it.
				for _, nb := range bases[i+1:] {
					l.warnf("log %s: deleting segment %d after truncation point", l.dir, nb)
					for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
						l.fs.Remove(segmentName(l.dir, nb, ext))
					}
				}
				bases = bases[:i+1]
				if !last {
					// This segment becomes the active one: reopen its indexes writable.
					s.closeFiles()
					l.segments = l.segments[:i]
					if s, err = l.reopenActive(b, now); err != nil {
						return err
					}
					s.next, s.maxTs, s.maxTsOffset = res.nextOffset, -1, -1
					res, s.maxTs, s.maxTsOffset, buf = s.rebuildIndexes(l.cfg.IndexIntervalBytes, buf)
					l.segments = append(l.segments, s)
					if res.readErr != nil {
						return fmt.Errorf("recovering segment %d: %w", b, res.readErr)
					}
				}
			}
		} else {
			s.next = s.nextOffsetFromIndex(size)
			s.maxTs, s.maxTsOffset = -1, -1
			if ts, ok := s.tidx.lastTime(); ok {
				_, rel := s.tidx.timeEntry(s.tidx.entries() - 1)
				s.maxTs, s.maxTsOffset = ts, s.base+int64(rel)
			}
			if last {
				// Tail past the last index entry: index it (Kafka does the same
				// on a clean open by scanning from the last entry).
				s.maxTs, s.maxTsOffset = l.indexTail(s, size)
			}
		}
		s.size.Store(size)
		if len(l.segments) > i { // still in the list (not cut by truncation)
			if i > 0 && s.base < l.segments[i-1].next {
				return fmt.Errorf("segment %d overlaps previous segment ending at %d", s.base, l.segments[i-1].next)
			}
		}
		if len(bases) == i+1 {
			break
		}
	}
	fresh := len(l.segments) == 0
	if fresh {
		s, err := createSegment(l.fs, l.dir, opts.LogStartOffset, &l.cfg, now)
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
	}
	for _, s := range l.segments {
		s.syncedTo = s.next // clean, or synced below after recovery
	}
	act := l.active()
	act.bytesSinceIndex = int(act.size.Load()) // conservative: next entry soon
	if n := act.idx.entries(); n > 0 {
		_, p := act.idx.offsetEntry(n - 1)
		act.bytesSinceIndex = int(act.size.Load() - int64(p))
	}
	l.tsSoFar, l.tsOffSoFar = act.maxTs, act.maxTsOffset
	l.nextOffset = act.next
	l.end = act.next
	l.hw = l.end
	l.logStart = max(opts.LogStartOffset, l.segments[0].base)
	if l.logStart > l.end {
		l.logStart = l.end
	}
	if opts.Replicated {
		l.replicated = true
		l.hw = restoredHighWatermark(opts.HighWatermark, l.logStart, l.end)
	}
	if !opts.CleanShutdown {
		l.dropTxnEntriesPast(l.nextOffset) // markers cut by recovery (txnindex.go)
	}
	// Clean: everything is on disk. Otherwise it is made so below before
	// load returns (nobody reads it before then).
	l.recoveryPoint = l.nextOffset
	if invariants.Enabled {
		l.checkSegmentOrder()
		l.checkOffsetsLocked()
	}
	if fresh {
		// Nothing to make durable yet: the new segment's names (and l.dir's
		// own entry) are fsync'd before its first data fdatasync counts
		// (durableNames).
		l.parentDirUnsynced = true
		return nil
	}
	for _, s := range l.segments {
		s.namesDurable.Store(true) // found on disk; l.dir is synced below when that matters
	}
	if opts.CleanShutdown {
		// Nothing changed that recovery depends on. (Index files
		// recreated or leftovers removed above need no fsync: a lost
		// change is redone at the next open, which, the marker being
		// consumed, is a recovering one.)
		return nil
	}
	// What we recovered may be only in the page cache (process crash):
	// make it, and the directory after truncations and deletions, durable
	// before claiming it as the recovery point.
	for _, s := range l.segments[min(scanFrom, len(l.segments)-1):] {
		if err := l.io.Datasync(s.f); err != nil {
			return err
		}
	}
	return l.fs.SyncDir(l.dir)
}

// durableNames makes s's directory entries durable (fsync of l.dir, and
// the first time also of the log dir holding l.dir when this Open created
// it) before an fdatasync of s may count towards an acknowledgement or the
// recovery point. Kafka does the same in LocalLog.flush: the directory is
// flushed only when segments newer than the recovery point are flushed,
// not when files are created. So creating a partition or rolling a segment
// costs no directory fsync; a log that never flushes data (the default
// policy) never pays one on its append path, and an empty segment whose
// name is lost in a power failure loses nothing: load recreates it.
// Safe from the writer and the background flushers at once.
func (l *Log) durableNames(s *segment) error {
	if s.namesDurable.Load() {
		return nil
	}
	l.dirSyncMu.Lock()
	defer l.dirSyncMu.Unlock()
	if s.namesDurable.Load() {
		return nil
	}
	if l.parentDirUnsynced {
		if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
			return err
		}
		l.parentDirUnsynced = false
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	s.namesDurable.Store(true)
	return nil
}

// openSegment opens an existing segment; the last one gets writable,
// preallocated indexes.
func (l *Log) openSegment(base int64, active bool, now int64) (*segment, error) {
	if active {
		return l.reopenActive(base, now)
	}
	p := segmentName(l.dir, base, ".log")
	f, err := l.fs.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s := &segment{fs: l.fs, base: base, path: p, f: f, next: base, syncedTo: base, maxTs: -1, maxTsOffset: -1, createdNs: now}
	s.refs.Store(1)
	if err := s.openIndexes(false, 0, 0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (l *Log) reopenActive(base int64, now int64) (*segment, error) {
	p := segmentName(l.dir, base, ".log")
	f, err := l.fs.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	s := &segment{fs: l.fs, base: base, path: p, f: f, next: base, syncedTo: base, maxTs: -1, maxTsOffset: -1, createdNs: now}
	s.refs.Store(1)
	// Keep the entries the trimmed (clean) files hold; a crashed, still
	// preallocated file is rebuilt by recovery anyway.
	oi, ti := fileEntries(l.fs, s.indexPath(), offsetEntrySize), fileEntries(l.fs, s.timeIndexPath(), timeEntrySize)
	if err := s.openIndexes(true, l.cfg.IndexMaxBytes, oi, ti); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func fileEntries(fs FS, path string, entrySize int) int64 {
	fi, err := fs.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size() / int64(entrySize)
}

// indexTail scans the active segment from its last index entry to the end
// (clean open) to learn the segment's max timestamp, which the time index
// only records at its sparse entries.
func (l *Log) indexTail(s *segment, size int64) (int64, int64) {
	maxTs, maxTsOff := s.maxTs, s.maxTsOffset
	pos := int64(0)
	if n := s.idx.entries(); n > 0 {
		_, p := s.idx.offsetEntry(n - 1)
		pos = int64(p)
	}
	h := new([batchHeaderSize]byte)
	for {
		bi, ok := s.readHeader(pos, size, h)
		if !ok {
			return maxTs, maxTsOff
		}
		if bi.maxTimestamp > maxTs {
			maxTs, maxTsOff = bi.maxTimestamp, bi.lastOffset()
		}
		pos += int64(bi.length)
	}
}

func fileSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// active returns the active segment. REQUIRES: mu held, or writer goroutine.
func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// FS is the filesystem the log's files go through; files kept beside a
// partition's segments (the broker's producer snapshots) use it too.
func (l *Log) FS() FS { return l.fs }

// Topic and Partition identify the log (as given in Options).
func (l *Log) Topic() string { return l.topic }

// Partition returns the partition number given in Options.
func (l *Log) Partition() int32 { return l.partition }

// SetLeaderEpoch sets the partitionLeaderEpoch stamped into batches grouped
// from now on.
func (l *Log) SetLeaderEpoch(epoch int32) {
	l.mu.Lock()
	l.leaderEpoch = epoch
	l.mu.Unlock()
}

// HighWatermark is the offset consumers may read up to: the offset after
// the last completed write in local mode, the replicated high watermark
// after SetHighWatermark (hw.go).
func (l *Log) HighWatermark() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hw
}

// LogStartOffset is the first offset still readable.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart
}

// FirstDirtyOffset is where the cleaner's next round starts (what
// cleaner-offset-checkpoint records).
func (l *Log) FirstDirtyOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.firstDirty
}

// RecoveryPoint is the offset below which everything has been fdatasync'd.
func (l *Log) RecoveryPoint() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.recoveryPoint
}

// Size is the total bytes of completed writes across segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segments {
		n += s.size.Load()
	}
	return n
}

// NumSegments returns the number of segments.
func (l *Log) NumSegments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segments)
}

// Close writes everything accepted, fdatasyncs, trims the active segment's
// indexes and closes files. Appends accepted before Close complete normally.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		<-l.stopped
		return nil
	}
	l.closing = true
	l.mu.Unlock()
	l.cleanAbort.Store(true)
	l.signal()
	<-l.stopped
	l.bgFlushes.Wait()
	l.cleaning.Lock() // a cleaning round stops at its next batch
	defer l.cleaning.Unlock()
	return l.closeFiles(false)
}

// crashClose is a test hook simulating a process crash: the writer stops
// after its current I/O, queued appends are dropped without callbacks, and
// files are closed without flush, trim or clean marker.
func (l *Log) crashClose() {
	l.mu.Lock()
	l.crash = true
	l.closing = true
	l.mu.Unlock()
	l.cleanAbort.Store(true)
	l.signal()
	<-l.stopped
	l.bgFlushes.Wait()
	l.cleaning.Lock()
	defer l.cleaning.Unlock()
	l.closeFiles(true)
}

func (l *Log) closeFiles(crash bool) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	// The writer and the background flushes have stopped, so the active
	// segment's files need no lock for the final sync — and must not hold
	// it: Append callers (the network loops) take l.mu to learn the log is
	// closing, and would wait behind the disk.
	l.mu.RLock()
	act, failed := l.active(), l.failed
	unsynced := act.syncedTo < act.next
	l.mu.RUnlock()
	synced := false
	if !crash && failed == nil {
		// Nothing unsynced (an idle or empty log): skip the fdatasync and
		// the directory fsync, which a restart of thousands of idle
		// partitions would otherwise pay each.
		if unsynced {
			if err := l.durableNames(act); err != nil {
				keep(err)
			} else if err := l.datasync(act.f); err != nil {
				keep(err)
			} else {
				synced = true
			}
		} else if !act.namesDurable.Load() {
			// A log created by this Open and never flushed: its
			// directory entries are not durable yet, and the next clean
			// open takes what it finds as durable (load), so a later
			// fdatasync would count towards the recovery point with
			// l.dir itself still liable to vanish in a power loss.
			keep(l.durableNames(act))
		}
		keep(act.syncIndexes())
		keep(act.trimIndexes())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if synced {
		act.syncedTo = act.next
		l.updateRecoveryPointLocked()
	}
	for _, s := range l.segments {
		s.release()
	}
	keep(l.io.Close())
	return first
}

func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
