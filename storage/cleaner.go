package storage

import (
	"errors"
	"math"
	"sync"
	"time"
)

// Cleaner compacts the logs with cleanup.policy=compact of its managers:
// Threads goroutines (never a ring thread) each pick the dirtiest log and
// clean it one round at a time (cleaner_log.go). See doc.go, "Compaction".
//
// Picking (Kafka's LogCleanerManager.grabFilthiestCompactedLog): among
// compacted logs not being cleaned by another thread, those whose dirty
// ratio (dirty bytes / (clean + dirty bytes)) is above
// min.cleanable.dirty.ratio, or whose first dirty record is older than
// max.compaction.lag.ms; the highest ratio first. With none, a thread
// sleeps log.cleaner.backoff.ms (Close wakes it).
type Cleaner struct {
	cfg      CleanerConfig
	managers []*Manager
	clock    Clock
	logf     func(string, ...any)
	ioBuf    int
	mapBytes int64 // per thread

	mu         sync.Mutex
	stats      CleanerStats
	inProgress map[*Log]bool
	// idleUntil: logs whose last round found nothing to do although their
	// dirty bytes said otherwise (a dirty section of gaps), left alone for
	// a backoff so a thread does not spin on them.
	idleUntil map[*Log]time.Time
	stop      chan struct{}
	closed    bool
	threads   sync.WaitGroup

	throttleMu    sync.Mutex
	throttleStart time.Time
	throttleBytes float64
}

// CleanerStats are the cleaner's cumulative figures (metrics).
type CleanerStats struct {
	BytesRead    int64     // bytes of segments read by cleaning passes (not the key map scan)
	BytesWritten int64     // bytes of cleaned segments written
	Rounds       int64     // cleaning rounds completed
	LastCleanEnd time.Time // zero before the first round
	// LastRecopyRatio is BytesWritten/BytesRead of the last round (Kafka's
	// cleaner-recopy-percent / 100).
	LastRecopyRatio float64
	// MaxDirtyRatio is the largest dirty ratio of a compacted log at the
	// last look (Kafka's max-dirty-percent / 100).
	MaxDirtyRatio float64
	// MaxBufferUtilization is the fullest a key map got in the last round
	// (Kafka's max-buffer-utilization-percent / 100).
	MaxBufferUtilization float64
	// Errors counts rounds that failed (logged); the log is retried after
	// the backoff.
	Errors int64
}

// CleanStats describe one CleanLog call (or one round).
type CleanStats struct {
	BytesRead, BytesWritten     int64
	RecordsRead, RecordsWritten int64
	Segments                    int // segments replaced
	Rounds                      int
	FirstDirty, EndOffset       int64
}

// NewCleaner makes a cleaner over the open logs of managers. Start starts
// its threads; CleanLog cleans one log on the caller's goroutine.
func NewCleaner(cfg CleanerConfig, managers []*Manager) *Cleaner {
	d := DefaultCleanerConfig()
	if cfg.Threads <= 0 {
		cfg.Threads = d.Threads
	}
	if cfg.DedupeBufferBytes <= 0 {
		cfg.DedupeBufferBytes = d.DedupeBufferBytes
	}
	if cfg.IOBufferBytes <= 0 {
		cfg.IOBufferBytes = d.IOBufferBytes
	}
	if cfg.LoadFactor <= 0 || cfg.LoadFactor > 0.95 {
		cfg.LoadFactor = min(max(cfg.LoadFactor, d.LoadFactor), 0.95)
	}
	if cfg.MaxIOBytesPerSecond <= 0 {
		cfg.MaxIOBytesPerSecond = d.MaxIOBytesPerSecond
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = d.Backoff
	}
	if cfg.ProducerIDExpirationMs <= 0 {
		cfg.ProducerIDExpirationMs = d.ProducerIDExpirationMs
	}
	c := &Cleaner{cfg: cfg, managers: managers, clock: cfg.Clock, logf: cfg.Logf,
		ioBuf: max(cfg.IOBufferBytes/2, 4096), mapBytes: max(cfg.DedupeBufferBytes/int64(cfg.Threads), 1<<16),
		inProgress: map[*Log]bool{}, idleUntil: map[*Log]time.Time{}, stop: make(chan struct{})}
	if c.clock == nil {
		c.clock = wallClock{}
	}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	return c
}

// cleanerThread is one thread's reusable state: its key map and buffers.
type cleanerThread struct {
	c       *Cleaner
	keys    *offsetMap
	rd      segReader
	wbuf    []byte
	scratch filterScratch
	stats   struct{ mapBytes int64 }
	// removedMarkers: offsets of the markers the group being written
	// dropped (cleaner_txn.go), whose txnindex entries are not carried.
	removedMarkers map[int64]bool
}

func (c *Cleaner) newThread() *cleanerThread {
	t := &cleanerThread{c: c, keys: newOffsetMap(c.mapBytes, c.cfg.LoadFactor)}
	t.rd.buf = make([]byte, c.ioBuf)
	t.rd.throttle = c.throttle
	t.wbuf = make([]byte, 0, c.ioBuf+64<<10)
	return t
}

// Start starts the cleaner threads.
func (c *Cleaner) Start() {
	for i := 0; i < c.cfg.Threads; i++ {
		c.threads.Add(1)
		go c.run()
	}
}

// Close stops the threads and waits for them; a round in progress stops at
// its next batch and leaves nothing half applied.
func (c *Cleaner) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.mu.Unlock()
	c.threads.Wait()
}

// Stats returns the cumulative figures; MaxDirtyRatio is computed now.
func (c *Cleaner) Stats() CleanerStats {
	now := c.clock.Now().UnixMilli()
	maxRatio := 0.0
	for _, m := range c.managers {
		for _, l := range m.openLogs() {
			if cl, ok := l.snapshotForClean(now, false); ok {
				maxRatio = max(maxRatio, cl.ratio())
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.MaxDirtyRatio = maxRatio
	return st
}

func (c *Cleaner) run() {
	defer c.threads.Done()
	t := c.newThread()
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		l, m := c.grab()
		if l == nil {
			select {
			case <-c.stop:
				return
			case <-time.After(c.cfg.Backoff):
			}
			continue
		}
		st, err := t.clean(l, true)
		c.release(l)
		if err == nil && st.Rounds == 0 {
			c.mu.Lock()
			c.idleUntil[l] = c.clock.Now().Add(c.cfg.Backoff)
			c.mu.Unlock()
		}
		if err != nil && !errors.Is(err, errCleanAborted) {
			c.logf("log cleaner: %s: %v (retrying after %v)", l.dir, err, c.cfg.Backoff)
			c.mu.Lock()
			c.stats.Errors++
			c.mu.Unlock()
			select {
			case <-c.stop:
				return
			case <-time.After(c.cfg.Backoff):
			}
			continue
		}
		if st.Rounds > 0 && m != nil {
			if err := m.writeCleanerCheckpoint(); err != nil {
				c.logf("log cleaner: writing %s: %v", CleanerOffsetCheckpointFile, err)
			}
		}
	}
}

// grab picks the dirtiest cleanable log and marks it in progress.
func (c *Cleaner) grab() (*Log, *Manager) {
	nowT := c.clock.Now()
	now := nowT.UnixMilli()
	var best *Log
	var bestM *Manager
	bestRatio := -1.0
	for _, m := range c.managers {
		for _, l := range m.openLogs() {
			c.mu.Lock()
			busy := c.inProgress[l]
			if until, ok := c.idleUntil[l]; ok && !nowT.Before(until) {
				delete(c.idleUntil, l)
			} else if ok {
				busy = true
			}
			c.mu.Unlock()
			if busy {
				continue
			}
			cl, ok := l.snapshotForClean(now, false)
			if !ok || cl.dirtyBytes == 0 {
				continue
			}
			r := cl.ratio()
			if overdue := cl.mustClean(now); overdue {
				r = math.Max(r, 1) // overdue first
			} else if r <= cl.cfg.MinCleanableDirtyRatio {
				continue
			}
			if r > bestRatio {
				best, bestM, bestRatio = l, m, r
			}
		}
	}
	if best == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inProgress[best] {
		return nil, nil
	}
	c.inProgress[best] = true
	return best, bestM
}

func (c *Cleaner) release(l *Log) {
	c.mu.Lock()
	delete(c.inProgress, l)
	c.mu.Unlock()
}

// CleanLog cleans l now, round after round, until nothing below its first
// uncleanable offset is dirty (tests, benchmarks, tools). It ignores
// min.cleanable.dirty.ratio; min.compaction.lag.ms still applies. It first
// waits for the segments rolled so far to be flushed, so they are below
// the recovery point and cleanable.
func (c *Cleaner) CleanLog(l *Log) (CleanStats, error) {
	l.waitRolledFlushed()
	c.mu.Lock()
	for c.inProgress[l] {
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
	}
	c.inProgress[l] = true
	c.mu.Unlock()
	defer c.release(l)
	return c.newThread().clean(l, false)
}

// aborted: the cleaner or the log is shutting down, or a TruncateTo of
// the log is waiting for the round to stop (truncate.go).
func (c *Cleaner) aborted(l *Log) bool {
	select {
	case <-c.stop:
		return true
	default:
	}
	return l.cleanAbort.Load() || l.truncating.Load() > 0
}

// clean runs rounds on l until its dirty section is clean; once: one round
// (a thread then picks the dirtiest log again).
func (t *cleanerThread) clean(l *Log, once bool) (CleanStats, error) {
	var total CleanStats
	if !l.cleaning.TryLock() {
		return total, errCleanAborted // being closed, or cleaned by another Cleaner
	}
	defer l.cleaning.Unlock()
	t.rd.abort = func() bool { return t.c.aborted(l) }
	for i := 0; ; i++ {
		st, more, err := t.round(l)
		total.BytesRead += st.BytesRead
		total.BytesWritten += st.BytesWritten
		total.RecordsRead += st.RecordsRead
		total.RecordsWritten += st.RecordsWritten
		total.Segments += st.Segments
		if i == 0 {
			total.FirstDirty = st.FirstDirty
		}
		if st.EndOffset > 0 {
			total.EndOffset = st.EndOffset
			total.Rounds++
		}
		if err != nil || !more || once {
			return total, err
		}
	}
}

// round is one cleaning round (cleaner_log.go); more: dirty records remain
// below the first uncleanable offset.
func (t *cleanerThread) round(l *Log) (st CleanStats, more bool, err error) {
	start := t.c.clock.Now()
	nowMs := start.UnixMilli()
	cl, ok := l.snapshotForClean(nowMs, true)
	if !ok {
		return st, false, nil
	}
	defer cl.unpin()
	if cl.firstDirty >= cl.uncleanable {
		return st, false, nil
	}
	cl.aborted = l.AbortedTxns(cl.logStart, cl.uncleanable)
	st.FirstDirty = cl.firstDirty
	lastOf := producerTails{}
	end, err := t.buildKeyMap(&cl, lastOf)
	if err != nil {
		return st, false, err
	}
	if end <= cl.firstDirty {
		return st, false, nil
	}
	t.producerTails(&cl, end, lastOf)
	lastOf.expire(nowMs, t.c.cfg.ProducerIDExpirationMs)
	rules := &cleanRules{keys: t.keys, endOffset: end, nowMs: nowMs, deleteRetentionMs: cl.cfg.DeleteRetentionMs}
	if gs := groups(&cl, end); len(gs) > 0 {
		rules.txn = newTxnCleanState(abortedFrom(cl.aborted, gs[0][0].base))
	}
	for _, g := range groups(&cl, end) {
		if err := t.cleanGroup(l, &cl, g, rules, lastOf, &st); err != nil {
			return st, false, err
		}
	}
	l.mu.Lock()
	if l.firstDirty < end {
		l.firstDirty = end
	}
	l.mu.Unlock()
	st.EndOffset = end
	c := t.c
	c.mu.Lock()
	c.stats.BytesRead += st.BytesRead
	c.stats.BytesWritten += st.BytesWritten
	c.stats.Rounds++
	c.stats.LastCleanEnd = c.clock.Now()
	if st.BytesRead > 0 {
		c.stats.LastRecopyRatio = float64(st.BytesWritten) / float64(st.BytesRead)
	}
	c.stats.MaxBufferUtilization = t.keys.utilization()
	c.mu.Unlock()
	c.logf("log cleaner: %s: cleaned offsets [%d, %d): %d segments, %d of %d bytes kept (%d of %d records) in %v",
		l.dir, cl.firstDirty, end, st.Segments, st.BytesWritten, st.BytesRead, st.RecordsWritten, st.RecordsRead, c.clock.Now().Sub(start).Round(time.Millisecond))
	return st, end < cl.uncleanable, nil
}

// throttle sleeps as needed to keep the cleaner's reads plus writes under
// log.cleaner.io.max.bytes.per.second (Kafka's Throttler: measured over
// windows of at least 100 ms).
func (c *Cleaner) throttle(n int64) {
	rate := c.cfg.MaxIOBytesPerSecond
	if rate >= math.MaxFloat64/2 || n <= 0 {
		return
	}
	c.throttleMu.Lock()
	now := time.Now()
	if c.throttleStart.IsZero() || now.Sub(c.throttleStart) > time.Second {
		c.throttleStart, c.throttleBytes = now, 0
	}
	c.throttleBytes += float64(n)
	elapsed := now.Sub(c.throttleStart)
	want := time.Duration(c.throttleBytes / rate * float64(time.Second))
	c.throttleMu.Unlock()
	if d := want - elapsed; d > 0 && elapsed >= 0 {
		select {
		case <-c.stop:
		case <-time.After(min(d, 5*time.Second)):
		}
	}
}
