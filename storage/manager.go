package storage

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Defaults is the broker-level Config (the daemon's comes from
	// config.Config.StorageConfig); OpenLog's per-topic Config is normally
	// config.Config.TopicSettings(overrides).Log. Zero means DefaultConfig.
	Defaults Config
	// NewIO makes the IO backend of each log (nil = NewPortableIO). Use
	// NewUringIO to put each log's writes on its own io_uring.
	NewIO func() (IO, error)
	// FS does every other file operation of the dir and its logs
	// (nil = OSFS).
	FS    FS
	Clock Clock
	Logf  func(format string, args ...any)
	Stats Stats // given to every log (nil = not recorded)
	// Warnf reports recovery that changed or dropped data, and unreadable
	// checkpoints (which force a full recovery scan): Kafka's WARN.
	// nil = Logf.
	Warnf func(format string, args ...any)
	// Replicated: the dir's partitions are replicated (cluster mode). The
	// high-watermark checkpoint (hw_checkpoint.go) is read at open and
	// written by CheckpointHighWatermarks and Close, and every log opens
	// in replicated mode from its checkpointed high watermark.
	Replicated bool
	// OnLogDirFailure, when set, is told of each I/O error of any log of
	// the dir (logdir_failure.go) until the dir is offline, and returns
	// whether the error takes it offline. It is called on the log's writer
	// or flusher goroutine: it must not block or touch the dir's logs (do
	// the reaction on a goroutine of its own). nil: a log's write error
	// stays that log's caller's business and the dir stays online.
	OnLogDirFailure func(dir string, cause error) bool
}

// Manager owns one log.dir: the partition logs under it, the two checkpoint
// files and the clean-shutdown marker. Its methods are safe for concurrent
// use.
//
// Concurrency: mu guards only map bookkeeping and is never held across
// file I/O, so opens of different partitions run in parallel (creating a
// topic of 1,000 partitions is 1,000 log.Opens, each a mkdir and several
// file creations). A partition being opened or deleted is marked in busy;
// anyone else who wants that partition (OpenLog, DeleteLog) waits on its
// channel and then looks again, so one partition is never opened twice or
// opened while its directory is being removed. Close sets closed, waits
// until nothing is busy, then closes the logs: no open can slip in after
// the snapshot and outlive the clean-shutdown marker.
type Manager struct {
	dir  string
	opts ManagerOptions
	// what the dir said at open; read-only afterwards
	clean bool
	// previousBrokerEpoch is the broker epoch the clean-shutdown marker
	// held (-1: none, an empty marker, or no marker).
	previousBrokerEpoch int64
	// brokerEpoch is what Close writes in the marker (-1: none yet).
	brokerEpoch atomic.Int64

	mu sync.Mutex
	// recoveryPoints and logStarts start as the checkpoint files' contents
	// and follow the open logs at each checkpoint.
	recoveryPoints map[TopicPartition]int64
	logStarts      map[TopicPartition]int64
	cleanerOffsets map[TopicPartition]int64 // cleaner-offset-checkpoint, likewise
	highWatermarks map[TopicPartition]int64 // replication-offset-checkpoint (Replicated only), likewise
	logs           map[TopicPartition]*Log
	busy           map[TopicPartition]chan struct{} // closed when the open/delete finishes
	closed         bool
	// openFailed: some OpenLog failed. Close then writes the clean-shutdown
	// marker only if the dir had one at open: a partition that was never
	// opened was never recovered, and a marker would let the next start
	// trust its unrecovered tail.
	openFailed bool
	// closeTotal and closeDone count the logs Close is closing and has
	// closed, for progress reports during a long shutdown.
	closeTotal, closeDone atomic.Int64
	// cleanerCkMu serializes writes of cleaner-offset-checkpoint (cleaner
	// threads, Checkpoint, Close).
	cleanerCkMu sync.Mutex
	// hwCkMu serializes writes of replication-offset-checkpoint.
	hwCkMu sync.Mutex
	// dirState is the dir's online/offline state, shared with its logs.
	dirState *dirState
}

// CloseProgress reports how many logs a running (or finished) Close has
// closed out of how many. Safe from any goroutine.
func (m *Manager) CloseProgress() (closed, total int64) {
	return m.closeDone.Load(), m.closeTotal.Load()
}

// ErrManagerClosed is returned by OpenLog after Manager.Close.
var ErrManagerClosed = errors.New("log: manager closed")

// OpenManager opens (creating) log dir dir. It reads the checkpoints and
// consumes the clean-shutdown marker: it is deleted at once so that a crash
// from now on is detected as unclean at the next start.
func OpenManager(dir string, opts ManagerOptions) (*Manager, error) {
	if opts.Defaults == (Config{}) {
		opts.Defaults = DefaultConfig()
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Warnf == nil {
		opts.Warnf = opts.Logf
	}
	opts.FS = fsOrDefault(opts.FS)
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Manager{dir: dir, opts: opts, logs: map[TopicPartition]*Log{}, busy: map[TopicPartition]chan struct{}{},
		dirState: &dirState{dir: dir, notify: opts.OnLogDirFailure}}
	var err error
	if m.recoveryPoints, err = m.readCheckpoint(RecoveryPointCheckpointFile); err != nil {
		return nil, err
	}
	if m.logStarts, err = m.readCheckpoint(LogStartOffsetCheckpointFile); err != nil {
		return nil, err
	}
	if m.cleanerOffsets, err = m.readCheckpoint(CleanerOffsetCheckpointFile); err != nil {
		return nil, err
	}
	m.highWatermarks = map[TopicPartition]int64{}
	if opts.Replicated {
		if m.highWatermarks, err = m.readCheckpoint(ReplicationOffsetCheckpointFile); err != nil {
			return nil, err
		}
	}
	m.previousBrokerEpoch = -1
	m.brokerEpoch.Store(-1)
	marker := filepath.Join(dir, CleanShutdownFile)
	if _, err := opts.FS.Stat(marker); err == nil {
		m.clean = true
		if data, err := opts.FS.ReadFile(marker); err == nil {
			m.previousBrokerEpoch = parseCleanShutdownEpoch(data)
		}
		if err := opts.FS.Remove(marker); err != nil {
			return nil, err
		}
		if err := opts.FS.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readCheckpoint reads one checkpoint file of the dir at open. Malformed
// content is ignored with a warning (a full recovery scan, log start
// offsets from the segments), but an I/O error fails the open: ignoring
// it would also forget every DeleteRecords above a segment's base, and
// the next start, with the file readable, would not see the difference.
func (m *Manager) readCheckpoint(name string) (map[TopicPartition]int64, error) {
	path := filepath.Join(m.dir, name)
	data, err := m.opts.FS.ReadFile(path)
	if os.IsNotExist(err) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	cp, err := parseCheckpoint(path, data)
	if err != nil {
		m.opts.Warnf("log dir %s: ignoring unreadable checkpoint: %v", m.dir, err)
		return map[TopicPartition]int64{}, nil
	}
	return cp, nil
}

// Dir is the log dir.
func (m *Manager) Dir() string { return m.dir }

// HadCleanShutdown reports whether the marker was present at open.
func (m *Manager) HadCleanShutdown() bool { return m.clean }

// PreviousBrokerEpoch is the broker epoch the clean-shutdown marker held
// at open (Kafka's CleanShutdownFileHandler), or -1: no marker (the last
// run did not shut down cleanly), or one written outside a cluster.
func (m *Manager) PreviousBrokerEpoch() int64 { return m.previousBrokerEpoch }

// SetBrokerEpoch sets the broker epoch Close writes into the
// clean-shutdown marker: the epoch of this run's registration, which the
// next run sends the controller to prove it shut down cleanly. Safe from
// any goroutine.
func (m *Manager) SetBrokerEpoch(epoch int64) { m.brokerEpoch.Store(epoch) }

// The clean-shutdown marker is empty (a single node, or a broker never
// registered) or Kafka's JSON: {"version":0,"brokerEpoch":N}.
type cleanShutdownContent struct {
	Version     int   `json:"version"`
	BrokerEpoch int64 `json:"brokerEpoch"`
}

// parseCleanShutdownEpoch returns the marker's broker epoch, or -1.
func parseCleanShutdownEpoch(data []byte) int64 {
	c := cleanShutdownContent{BrokerEpoch: -1}
	if len(data) == 0 || json.Unmarshal(data, &c) != nil || c.BrokerEpoch < 0 {
		return -1
	}
	return c.BrokerEpoch
}

// Existing lists the partitions that have a directory under the log dir
// (<topic>-<partition>), for the broker to reopen at startup.
func (m *Manager) Existing() ([]TopicPartition, error) {
	ents, err := m.opts.FS.ReadDir(m.dir)
	if err != nil {
		return nil, err
	}
	var out []TopicPartition
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		i := strings.LastIndexByte(e.Name(), '-')
		if i <= 0 {
			continue
		}
		p, err := strconv.ParseInt(e.Name()[i+1:], 10, 32)
		if err != nil || p < 0 {
			continue
		}
		out = append(out, TopicPartition{e.Name()[:i], int32(p)})
	}
	return out, nil
}

// OpenLog opens or creates <dir>/<topic>-<partition>/ with cfg. Opening an
// already open partition returns the same *Log. Opens of different
// partitions run concurrently; a second OpenLog of a partition being opened
// waits for the first and returns its *Log (or, if that open failed,
// tries again itself).
func (m *Manager) OpenLog(topic string, partition int32, cfg Config) (*Log, error) {
	if topic == "" || strings.ContainsAny(topic, "/\x00") || topic == "." || topic == ".." {
		return nil, fmt.Errorf("log: invalid topic name %q", topic)
	}
	tp := TopicPartition{topic, partition}
	if m.dirState.isOffline() {
		return nil, m.dirState.offlineErr()
	}
	m.mu.Lock()
	for {
		if m.closed {
			m.mu.Unlock()
			return nil, ErrManagerClosed
		}
		if l, ok := m.logs[tp]; ok {
			m.mu.Unlock()
			return l, nil
		}
		if !m.waitNotBusyLocked(tp) {
			break
		}
	}
	done := make(chan struct{})
	m.busy[tp] = done
	opts := Options{
		Clock: m.opts.Clock, Logf: m.opts.Logf, Stats: m.opts.Stats, Warnf: m.opts.Warnf,
		RecoveryPoint: m.recoveryPoints[tp], LogStartOffset: m.logStarts[tp],
		CleanerOffset: m.cleanerOffsets[tp], CleanShutdown: m.clean, Topic: topic, Partition: partition,
		Replicated: m.opts.Replicated, HighWatermark: m.highWatermarks[tp],
	}
	m.mu.Unlock()

	l, err := m.open(tp, cfg, opts)

	m.mu.Lock()
	delete(m.busy, tp)
	if err == nil {
		m.logs[tp] = l
	} else {
		m.openFailed = true
	}
	m.mu.Unlock()
	close(done)
	return l, err
}

// open makes the IO backend and opens the log. REQUIRES: tp marked busy by
// the caller; m.mu not held.
func (m *Manager) open(tp TopicPartition, cfg Config, opts Options) (*Log, error) {
	opts.FS = m.opts.FS
	opts.dirState = m.dirState
	if m.opts.NewIO != nil {
		var err error
		if opts.IO, err = m.opts.NewIO(); err != nil {
			return nil, err
		}
	}
	l, err := Open(filepath.Join(m.dir, fmt.Sprintf("%s-%d", tp.Topic, tp.Partition)), cfg, opts)
	if err != nil {
		if opts.IO != nil {
			opts.IO.Close()
		}
		return nil, err
	}
	return l, nil
}

// waitNotBusyLocked waits, with m.mu released meanwhile, until tp is not
// being opened or deleted. It returns false at once if tp was not busy,
// true after a wait (the caller must look at the maps again).
// REQUIRES: m.mu held; held again on return.
func (m *Manager) waitNotBusyLocked(tp TopicPartition) bool {
	done, ok := m.busy[tp]
	if !ok {
		return false
	}
	m.mu.Unlock()
	<-done
	m.mu.Lock()
	return true
}

// OpenLogs opens partitions of topic with cfg, several at a time (what
// CreateTopics and startup want: file creation dominates a fresh open and
// overlaps well across partitions). logs[i] is the log of partitions[i],
// nil where that open failed; err joins the failures.
func (m *Manager) OpenLogs(topic string, partitions []int32, cfg Config) (logs []*Log, err error) {
	logs = make([]*Log, len(partitions))
	errs := make([]error, len(partitions))
	workers := min(len(partitions), openLogsParallelism)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(partitions) {
					return
				}
				logs[i], errs[i] = m.OpenLog(topic, partitions[i], cfg)
			}
		}()
	}
	wg.Wait()
	return logs, errors.Join(errs...)
}

// closeLogs closes logs several at a time: a clean close fdatasyncs, trims
// and msyncs each log's active segment, and one after another that made a
// stop with 1,000 written partitions take over 10 s.
func closeLogs(logs map[TopicPartition]*Log, done *atomic.Int64) []error {
	all := make([]*Log, 0, len(logs))
	for _, l := range logs {
		all = append(all, l)
	}
	errs := make([]error, len(all))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(len(all), openLogsParallelism); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(all) {
					return
				}
				errs[i] = all[i].Close()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return errs
}

// openLogsParallelism bounds OpenLogs' concurrent opens. Opens are I/O
// bound (inode creation, directory fsync on recovery), not CPU bound, so a
// few per core help; beyond that they only queue in the filesystem
// journal. BenchmarkManagerOpen1000 measures it.
const openLogsParallelism = 8

// Log returns an open log, or nil.
func (m *Manager) Log(topic string, partition int32) *Log {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs[TopicPartition{topic, partition}]
}

// DeleteLog closes the partition's log and removes its directory (renamed
// aside first: removePartitionDir). It waits
// for an open of the same partition in progress, and an OpenLog of the
// partition meanwhile waits for the removal to finish (then creates it
// anew).
func (m *Manager) DeleteLog(topic string, partition int32) error {
	_, err := m.dropLog(topic, partition, func(dir string) (string, error) {
		return "", removePartitionDir(m.opts.FS, dir)
	})
	return err
}

// SetAsideLog closes the partition's log and renames its directory to
// <topic>-<partition>.<32 hex><suffix>, keeping every file (Kafka KRaft's
// "-stray" for a replica the metadata no longer assigns to this broker
// when it starts). It returns the new path ("" when the directory did not
// exist). Waits and bookkeeping as DeleteLog.
func (m *Manager) SetAsideLog(topic string, partition int32, suffix string) (string, error) {
	return m.dropLog(topic, partition, func(dir string) (string, error) {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return "", err
		}
		to := dir + "." + hex.EncodeToString(id[:]) + suffix
		if err := m.opts.FS.Rename(dir, to); err != nil {
			if os.IsNotExist(err) {
				return "", nil
			}
			return "", err
		}
		return to, nil
	})
}

// dropLog forgets the partition (its open log closed, its checkpoint
// entries dropped) and then hands its directory to dispose, with the
// partition marked busy meanwhile: DeleteLog and SetAsideLog.
func (m *Manager) dropLog(topic string, partition int32, dispose func(dir string) (string, error)) (string, error) {
	if m.dirState.isOffline() {
		// Nothing leaves an offline dir (Kafka deletes an offline
		// replica's files once its dir is back, at the next start).
		return "", m.dirState.offlineErr()
	}
	tp := TopicPartition{topic, partition}
	m.mu.Lock()
	for m.waitNotBusyLocked(tp) {
	}
	l := m.logs[tp]
	delete(m.logs, tp)
	delete(m.recoveryPoints, tp)
	delete(m.logStarts, tp)
	delete(m.cleanerOffsets, tp)
	delete(m.highWatermarks, tp)
	done := make(chan struct{})
	m.busy[tp] = done
	m.mu.Unlock()
	if l != nil {
		l.Close()
	}
	to, err := dispose(filepath.Join(m.dir, fmt.Sprintf("%s-%d", topic, partition)))
	m.mu.Lock()
	delete(m.busy, tp)
	m.mu.Unlock()
	close(done)
	return to, err
}

// DeleteSuffix ends the name a partition directory is renamed to before
// its removal (Kafka's "-delete"): <topic>-<partition>.<32 hex>-delete. A
// crash part-way through the removal leaves a directory by that name,
// which no longer parses as a partition and which the next start removes
// (IsDeletedPartitionDir), instead of a partition directory with some of
// its files gone.
const DeleteSuffix = "-delete"

// removePartitionDir renames dir aside under DeleteSuffix, then removes it.
func removePartitionDir(fs FS, dir string) error {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	aside := dir + "." + hex.EncodeToString(id[:]) + DeleteSuffix
	if err := fs.Rename(dir, aside); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	return fs.RemoveAll(aside)
}

// IsDeletedPartitionDir reports whether name is a partition directory
// renamed for removal: <topic>-<partition>.<32 hex>-delete.
func IsDeletedPartitionDir(name string) bool {
	rest, ok := strings.CutSuffix(name, DeleteSuffix)
	if !ok || len(rest) < 34 || rest[len(rest)-33] != '.' {
		return false
	}
	if _, err := hex.DecodeString(rest[len(rest)-32:]); err != nil {
		return false
	}
	base := rest[:len(rest)-33]
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return false
	}
	p, err := strconv.ParseInt(base[i+1:], 10, 32)
	return err == nil && p >= 0 && strconv.FormatInt(p, 10) == base[i+1:]
}

// Checkpoint writes both checkpoint files from the open logs. The broker
// calls it every log.flush.offset.checkpoint.interval.ms for both files
// (Kafka has a second key, log.flush.start.offset.checkpoint.interval.ms,
// for the log-start-offset file; ringbroker does not take it).
func (m *Manager) Checkpoint() error {
	if m.dirState.isOffline() {
		return nil // an offline dir is left as it is (logdir_failure.go)
	}
	m.mu.Lock()
	rp, ls := m.checkpointMapsLocked(m.logs)
	m.mu.Unlock()
	return errors.Join(
		WriteCheckpoint(m.opts.FS, filepath.Join(m.dir, RecoveryPointCheckpointFile), rp),
		WriteCheckpoint(m.opts.FS, filepath.Join(m.dir, LogStartOffsetCheckpointFile), ls),
		m.writeCleanerCheckpoint())
}

// openLogs returns the open logs (the cleaner's view).
func (m *Manager) openLogs() []*Log {
	if m.dirState.isOffline() {
		return nil // the cleaner leaves an offline dir as it is
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Log, 0, len(m.logs))
	for _, l := range m.logs {
		out = append(out, l)
	}
	return out
}

// writeCleanerCheckpoint writes cleaner-offset-checkpoint: the open logs'
// first dirty offsets over what the file held at open. Written only when
// some partition has one (a dir that never saw compaction gets no file).
func (m *Manager) writeCleanerCheckpoint() error {
	m.cleanerCkMu.Lock()
	defer m.cleanerCkMu.Unlock()
	m.mu.Lock()
	for tp, l := range m.logs {
		if o := l.FirstDirtyOffset(); o > 0 {
			m.cleanerOffsets[tp] = o
		}
	}
	if len(m.cleanerOffsets) == 0 {
		m.mu.Unlock()
		return nil
	}
	cp := make(map[TopicPartition]int64, len(m.cleanerOffsets))
	for tp, o := range m.cleanerOffsets {
		cp[tp] = o
	}
	m.mu.Unlock()
	return WriteCheckpoint(m.opts.FS, filepath.Join(m.dir, CleanerOffsetCheckpointFile), cp)
}

// Close closes every log (writing out and fdatasyncing what they accepted),
// writes the checkpoints and, only if all of that succeeded (and no
// partition of a dir that was not clean at open failed to open), the
// clean-shutdown marker.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	for len(m.busy) > 0 { // let opens and deletes in progress finish
		for tp := range m.busy {
			m.waitNotBusyLocked(tp)
			break
		}
	}
	logs := m.logs
	m.mu.Unlock()
	if m.dirState.isOffline() {
		return m.closeOffline(logs)
	}
	m.closeTotal.Store(int64(len(logs)))
	errs := closeLogs(logs, &m.closeDone)
	m.mu.Lock()
	rp, ls := m.checkpointMapsLocked(logs)
	for tp, l := range logs {
		if o := l.FirstDirtyOffset(); o > 0 {
			m.cleanerOffsets[tp] = o
		}
	}
	var hws map[TopicPartition]int64
	if m.opts.Replicated {
		hws = m.highWatermarksLocked(logs)
	}
	m.logs = map[TopicPartition]*Log{}
	markClean := m.clean || !m.openFailed
	m.mu.Unlock()
	errs = append(errs,
		WriteCheckpoint(m.opts.FS, filepath.Join(m.dir, RecoveryPointCheckpointFile), rp),
		WriteCheckpoint(m.opts.FS, filepath.Join(m.dir, LogStartOffsetCheckpointFile), ls),
		m.writeCleanerCheckpoint())
	if hws != nil {
		m.hwCkMu.Lock()
		errs = append(errs, m.writeHighWatermarks(hws))
		m.hwCkMu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !markClean {
		return nil
	}
	f, err := m.opts.FS.OpenFile(filepath.Join(m.dir, CleanShutdownFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	if epoch := m.brokerEpoch.Load(); epoch >= 0 {
		data, _ := json.Marshal(cleanShutdownContent{BrokerEpoch: epoch}) // cannot fail
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return m.opts.FS.SyncDir(m.dir)
}

// checkpointMapsLocked merges the open logs' offsets over what the files
// held at open, so partitions not opened in this run keep their entries.
// REQUIRES: m.mu held.
func (m *Manager) checkpointMapsLocked(logs map[TopicPartition]*Log) (rp, ls map[TopicPartition]int64) {
	rp = make(map[TopicPartition]int64, len(m.recoveryPoints)+len(logs))
	ls = make(map[TopicPartition]int64, len(m.logStarts)+len(logs))
	for tp, o := range m.recoveryPoints {
		rp[tp] = o
	}
	for tp, o := range m.logStarts {
		ls[tp] = o
	}
	for tp, l := range logs {
		rp[tp], ls[tp] = l.RecoveryPoint(), l.LogStartOffset()
		m.recoveryPoints[tp], m.logStarts[tp] = rp[tp], ls[tp]
	}
	return rp, ls
}
