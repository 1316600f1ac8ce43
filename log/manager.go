package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Defaults is the broker-level Config (see BrokerConfig); OpenLog's
	// per-topic Config is normally TopicConfig(Defaults, topicProps).
	Defaults Config
	// NewIO makes the IO backend of each log (nil = NewPortableIO). Use
	// NewUringIO to put each log's writes on its own io_uring.
	NewIO func() (IO, error)
	Clock Clock
	Logf  func(format string, args ...any)
}

// Manager owns one log.dir: the partition logs under it, the two checkpoint
// files and the clean-shutdown marker. Its methods are safe for concurrent
// use.
type Manager struct {
	dir  string
	opts ManagerOptions
	// what the dir said at open
	clean          bool
	recoveryPoints map[TopicPartition]int64
	logStarts      map[TopicPartition]int64

	mu   sync.Mutex
	logs map[TopicPartition]*Log
}

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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Manager{dir: dir, opts: opts, logs: map[TopicPartition]*Log{}}
	var err error
	if m.recoveryPoints, err = ReadCheckpoint(filepath.Join(dir, RecoveryPointCheckpointFile)); err != nil {
		opts.Logf("log dir %s: ignoring unreadable checkpoint: %v", dir, err)
		m.recoveryPoints = map[TopicPartition]int64{}
	}
	if m.logStarts, err = ReadCheckpoint(filepath.Join(dir, LogStartOffsetCheckpointFile)); err != nil {
		opts.Logf("log dir %s: ignoring unreadable checkpoint: %v", dir, err)
		m.logStarts = map[TopicPartition]int64{}
	}
	marker := filepath.Join(dir, CleanShutdownFile)
	if _, err := os.Stat(marker); err == nil {
		m.clean = true
		if err := os.Remove(marker); err != nil {
			return nil, err
		}
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Dir is the log dir.
func (m *Manager) Dir() string { return m.dir }

// HadCleanShutdown reports whether the marker was present at open.
func (m *Manager) HadCleanShutdown() bool { return m.clean }

// Existing lists the partitions that have a directory under the log dir
// (<topic>-<partition>), for the broker to reopen at startup.
func (m *Manager) Existing() ([]TopicPartition, error) {
	ents, err := os.ReadDir(m.dir)
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
// already open partition returns the same *Log.
func (m *Manager) OpenLog(topic string, partition int32, cfg Config) (*Log, error) {
	if topic == "" || strings.ContainsAny(topic, "/\x00") || topic == "." || topic == ".." {
		return nil, fmt.Errorf("log: invalid topic name %q", topic)
	}
	tp := TopicPartition{topic, partition}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.logs[tp]; ok {
		return l, nil
	}
	var io IO
	if m.opts.NewIO != nil {
		var err error
		if io, err = m.opts.NewIO(); err != nil {
			return nil, err
		}
	}
	l, err := Open(filepath.Join(m.dir, fmt.Sprintf("%s-%d", topic, partition)), cfg, Options{
		IO: io, Clock: m.opts.Clock, Logf: m.opts.Logf,
		RecoveryPoint: m.recoveryPoints[tp], LogStartOffset: m.logStarts[tp],
		CleanShutdown: m.clean, Topic: topic, Partition: partition,
	})
	if err != nil {
		if io != nil {
			io.Close()
		}
		return nil, err
	}
	m.logs[tp] = l
	return l, nil
}

// Log returns an open log, or nil.
func (m *Manager) Log(topic string, partition int32) *Log {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs[TopicPartition{topic, partition}]
}

// DeleteLog closes the partition's log and removes its directory.
func (m *Manager) DeleteLog(topic string, partition int32) error {
	tp := TopicPartition{topic, partition}
	m.mu.Lock()
	l := m.logs[tp]
	delete(m.logs, tp)
	delete(m.recoveryPoints, tp)
	delete(m.logStarts, tp)
	m.mu.Unlock()
	if l != nil {
		l.Close()
	}
	return os.RemoveAll(filepath.Join(m.dir, fmt.Sprintf("%s-%d", topic, partition)))
}

// Checkpoint writes both checkpoint files from the open logs (Kafka does
// this every log.flush.offset.checkpoint.interval.ms and
// log.flush.start.offset.checkpoint.interval.ms; the broker schedules it).
func (m *Manager) Checkpoint() error {
	m.mu.Lock()
	rp, ls := m.checkpointMapsLocked(m.logs)
	m.mu.Unlock()
	return errors.Join(
		WriteCheckpoint(filepath.Join(m.dir, RecoveryPointCheckpointFile), rp),
		WriteCheckpoint(filepath.Join(m.dir, LogStartOffsetCheckpointFile), ls))
}

// Close closes every log (writing out and fdatasyncing what they accepted),
// writes the checkpoints and, only if all of that succeeded, the
// clean-shutdown marker.
func (m *Manager) Close() error {
	m.mu.Lock()
	logs := m.logs
	m.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.mu.Lock()
	rp, ls := m.checkpointMapsLocked(logs)
	m.logs = map[TopicPartition]*Log{}
	m.mu.Unlock()
	errs = append(errs,
		WriteCheckpoint(filepath.Join(m.dir, RecoveryPointCheckpointFile), rp),
		WriteCheckpoint(filepath.Join(m.dir, LogStartOffsetCheckpointFile), ls))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(m.dir, CleanShutdownFile))
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(m.dir)
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
