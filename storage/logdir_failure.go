package storage

// Log dir failure (Kafka's LogDirFailureChannel and
// LogManager.handleLogDirFailure).
//
// In Kafka any IOException on a log dir's files takes the whole dir
// offline: its partitions stop being served on this broker (clients get
// KAFKA_STORAGE_ERROR), the controller is told so their leadership moves
// to an in-sync replica, and a broker with no online log dir left halts.
// We do the same, with the I/O errors Go reports as errno values. Which
// errors count is IsLogDirFailure; whether one takes the dir offline is
// the dir's owner's answer (ManagerOptions.OnLogDirFailure; the broker
// says yes to all but ENOSPC/EDQUOT under log.dir.offline.on.full.disk=
// false); without an owner nothing goes offline.
//
//   - ENOSPC (a full disk), EIO, EROFS, EDQUOT and every other errno on a
//     log's write path (group write, fdatasync, segment roll, index and
//     leader-epoch files, directory fsync) count, as Kafka's IOException
//     does. ENOSPC included: a write that hit a full
//     disk may have left torn bytes (the log cuts them off, but the next
//     roll, index msync or checkpoint can fail anywhere), and a leader
//     that keeps answering errors keeps its leadership away from in-sync
//     followers that could serve. The operator frees space and restarts
//     the broker, which recovers the dir like any unclean stop.
//   - EINTR and EAGAIN are retried by the I/O layer and never count.
//   - A log that is already failed (ErrLogFailed: it could not undo a
//     torn write) counts: its dir holds a log we cannot trust.
//   - Errors that are not I/O (ErrClosed, ErrBacklog, ErrCorruptBatch,
//     ErrInvalidBatch, ErrReplicaOffset: bad input or a log going away)
//     never count.
//   - Fault-injected errors (FaultIO, the faultinject build) are
//     os.PathError values over the same errnos, so they take the same path:
//     that is what the fault tests exercise.
//
// Taking a dir offline never deletes, truncates or rewrites anything:
// the offline dir's logs refuse appends and reads (ErrLogDirOffline), and
// Manager.Close leaves its files exactly as they are (no flush, no
// checkpoint, no clean-shutdown marker), as Kafka's halt does, so the
// next start recovers the dir from its segments.

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrLogDirOffline is returned by a log whose dir was taken offline after
// an I/O error (Manager.LogDirFailure); the broker answers
// KAFKA_STORAGE_ERROR.
var ErrLogDirOffline = errors.New("log: log dir offline after an I/O error")

// IsLogDirFailure reports whether err, from a log's write path, is an I/O
// error that takes its log dir offline (see the file comment).
func IsLogDirFailure(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, ErrLogDirOffline), // already offline
		errors.Is(err, ErrClosed), errors.Is(err, ErrBacklog),
		errors.Is(err, ErrCorruptBatch), errors.Is(err, ErrInvalidBatch),
		errors.Is(err, ErrReplicaOffset):
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno != syscall.EINTR && errno != syscall.EAGAIN && errno != 0
	}
	if errors.Is(err, ErrLogFailed) {
		return true
	}
	// A file operation that failed without an errno (a short write the
	// backend gave up on, io.ErrShortWrite wrapped in a PathError).
	var pe *os.PathError
	return errors.As(err, &pe)
}

// dirState is one log dir's online/offline state, shared by the Manager
// and every log it opened.
type dirState struct {
	offline atomic.Bool
	once    sync.Once
	cause   atomic.Pointer[error]
	// notify is ManagerOptions.OnLogDirFailure (nil: none).
	notify func(dir string, cause error) bool
	dir    string

	// inlineOffUntilNs: no log of the dir writes inline (append.inline)
	// before this time (clock ns), because one of them saw an inline write
	// stall (append_inline.go). Dirty-page throttling is the disk's state,
	// not one partition's: the next log's write would stall the same
	// thread too.
	inlineOffUntilNs atomic.Int64
}

// fail takes the dir offline (once). A log's error (fromLog) counts only
// when the owner asked to be told (ManagerOptions.OnLogDirFailure) and
// says so: without an owner a failed write is the caller's business
// alone, as it was before log dir failure existed (the storage tests of
// write errors rely on it).
func (d *dirState) fail(cause error, fromLog bool) {
	if d.offline.Load() {
		return
	}
	if fromLog && (d.notify == nil || !d.notify(d.dir, cause)) {
		return
	}
	d.once.Do(func() {
		d.cause.Store(&cause)
		d.offline.Store(true)
	})
}

// isOffline reports whether the dir is offline; nil-safe (a log opened
// without a Manager has no dir state).
func (d *dirState) isOffline() bool { return d != nil && d.offline.Load() }

// offlineErr is ErrLogDirOffline with the cause.
func (d *dirState) offlineErr() error {
	if p := d.cause.Load(); p != nil {
		return &dirOfflineError{cause: *p}
	}
	return ErrLogDirOffline
}

type dirOfflineError struct{ cause error }

func (e *dirOfflineError) Error() string { return ErrLogDirOffline.Error() + ": " + e.cause.Error() }
func (e *dirOfflineError) Is(target error) bool {
	return target == ErrLogDirOffline
}

// ioFailed is called with every error of the log's write path (group
// writes, fdatasyncs, rolls, background flushes): an I/O error takes the
// log's dir offline. Any goroutine.
func (l *Log) ioFailed(err error) {
	if l.dirState != nil && IsLogDirFailure(err) {
		l.dirState.fail(err, true)
	}
}

// DirOffline reports whether the log's dir was taken offline.
func (l *Log) DirOffline() bool { return l.dirState.isOffline() }

// LogDirFailure takes the dir offline because of cause, as a failed write
// of one of its logs does (the broker calls it for I/O errors it sees
// outside the logs, such as a checkpoint write). Idempotent.
func (m *Manager) LogDirFailure(cause error) { m.dirState.fail(cause, false) }

// Offline reports whether the dir was taken offline, and why.
func (m *Manager) Offline() (bool, error) {
	if !m.dirState.isOffline() {
		return false, nil
	}
	p := m.dirState.cause.Load()
	if p == nil {
		return true, ErrLogDirOffline
	}
	return true, *p
}

// closeOffline is Close of an offline dir: every log's files are closed
// without a flush, an index trim or any write (Kafka halts instead), no
// checkpoint is written and no clean-shutdown marker, so the next start
// recovers the dir from its segments and nothing written before the
// failure is touched. Appends still queued are dropped without their
// callbacks: the broker stops serving the dir's partitions first.
func (m *Manager) closeOffline(logs map[TopicPartition]*Log) error {
	m.closeTotal.Store(int64(len(logs)))
	for _, l := range logs {
		l.crashClose()
		m.closeDone.Add(1)
	}
	m.mu.Lock()
	m.logs = map[TopicPartition]*Log{}
	m.mu.Unlock()
	_, cause := m.Offline()
	return &dirOfflineError{cause: cause}
}
