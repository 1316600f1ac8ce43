package broker

// Log dir failure: Kafka's ReplicaManager.handleLogDirFailure and
// LogManager.handleLogDirFailure, ringbroker's way.
//
// The first I/O error of any log of a log dir (storage/logdir_failure.go
// says which errors count: ENOSPC, EIO and every other errno, fault
// injected or not) takes that dir offline:
//
//   - its partitions stop being served here: produce, fetch (consumer and
//     follower), ListOffsets answer KAFKA_STORAGE_ERROR (retriable: the
//     clients refresh metadata and find the new leader), follower fetchers
//     of its partitions stop, no new partition is placed on it, and no
//     checkpoint or clean-shutdown marker is written to it again;
//   - one ERROR line names the dir, the error and what the operator
//     does; while the broker keeps running with the dir offline a WARN
//     reminder follows at most every offlineReminderEvery;
//   - metrics: ringbroker_log_dirs_offline (Kafka's
//     OfflineLogDirectoryCount) and ringbroker_log_dir_offline{dir}
//     (Kafka's LogDirectoryOffline);
//   - with log.dir.offline.on.full.disk=false, ENOSPC (and EDQUOT) leaves
//     the dir online: the failed write is cut off the log and answered
//     KAFKA_STORAGE_ERROR, writes resume once space returns, and a WARN
//     says so at most every fullDiskWarnEvery (for a single node that
//     should ride out a full disk; Kafka has no such switch);
//   - the broker stops (Stop closes; the daemon runs its normal shutdown,
//     which in cluster mode is a controlled shutdown: the controller moves
//     every leadership to an in-sync replica before the broker leaves)
//     when no log dir is online any more (Kafka halts then), or, in
//     cluster mode, on any failed dir: Kafka tells the controller of a
//     single failed dir through BrokerHeartbeat's OfflineLogDirs and the
//     directory ids of its replica assignments, which ringbroker's
//     metadata does not record yet, so stopping is the only way here to
//     get the dir's leaderships moved (Kafka without directory ids halts
//     too).
//
// Nothing is deleted or rewritten: the dir's files stay exactly as the
// failure left them (its logs are closed without a flush), and a restart
// after the operator freed space or replaced the disk recovers the dir as
// after any unclean stop.

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// offlineReminderEvery bounds the WARN reminder of offline log dirs while
// the broker keeps serving the others.
const offlineReminderEvery = time.Minute

// logDirFailures is the registry's record of failed log dirs.
type logDirFailures struct {
	mu      sync.Mutex
	offline map[int]error // dir index -> the error that took it offline
	// stop is closed when the broker must stop (stopWhy says why).
	stop     chan struct{}
	stopOnce sync.Once
	stopWhy  error
	// reminder runs while a dir is offline and the broker serves on;
	// closed stops it (Registry.Close).
	reminderOnce sync.Once
	closed       chan struct{}
	closeOnce    sync.Once
	// fullWarned and fullSuppressed rate-limit the WARN of a full dir kept
	// online (log.dir.offline.on.full.disk=false), per dir index.
	fullWarned     map[int]time.Time
	fullSuppressed map[int]int
}

func (f *logDirFailures) init() {
	f.offline = map[int]error{}
	f.fullWarned, f.fullSuppressed = map[int]time.Time{}, map[int]int{}
	f.stop = make(chan struct{})
	f.closed = make(chan struct{})
}

// logDirFailed is storage.ManagerOptions.OnLogDirFailure: dir index i
// failed with cause. Runs on a goroutine of its own, once per dir.
func (r *Registry) logDirFailed(i int, cause error) {
	f := &r.dirFailures
	dir := r.opts.LogDirs[i]
	f.mu.Lock()
	if _, ok := f.offline[i]; ok {
		f.mu.Unlock()
		return
	}
	f.offline[i] = cause
	online := len(r.opts.LogDirs) - len(f.offline)
	f.mu.Unlock()
	parts := r.dirPartitionCount(i)
	r.log.Error("log dir offline: an I/O error on it stopped every partition in it on this broker (clients get KAFKA_STORAGE_ERROR); "+
		"nothing in it is deleted or changed. "+failureHint(cause)+", then restart the broker: the start recovers the dir",
		zap.String("log_dir", dir), zap.Error(cause), zap.Int("partitions", parts), zap.Int("log_dirs_online", online))
	var why error
	switch {
	case online == 0:
		why = fmt.Errorf("every log dir is offline (%s: %v): the broker stops; restart it once the disk is fixed or has room", dir, cause)
	case r.opts.Replicated:
		why = fmt.Errorf("log dir %s is offline (%v): in cluster mode the broker stops so that the controller moves its leaderships "+
			"(directory failure reporting is not implemented); restart it once the disk is fixed or has room", dir, cause)
	}
	if why != nil {
		f.stopOnce.Do(func() {
			f.stopWhy = why
			close(f.stop)
		})
		return
	}
	f.reminderOnce.Do(func() { go r.remindOffline() })
}

// failureHint is what the operator does about cause.
func failureHint(cause error) string {
	switch {
	case errors.Is(cause, syscall.ENOSPC), errors.Is(cause, syscall.EDQUOT):
		return "The disk (or quota) is full: free space on it (old segments of other data, a larger volume; retention.ms / retention.bytes keep it from refilling)"
	case errors.Is(cause, syscall.EROFS):
		return "The filesystem is read-only (often remounted so after an error: see the kernel log, dmesg): repair it and mount it read-write"
	case errors.Is(cause, syscall.EIO):
		return "The disk reported an I/O error: check the kernel log (dmesg) and the disk's health, replace it if it is failing"
	}
	return "Check the disk and the error"
}

// closedOffline logs that Close left dir as the failure left it.
func (r *Registry) closedOffline(dir string) {
	r.log.Warn("offline log dir closed without a flush, checkpoint or clean-shutdown marker: the next start recovers it from its segments",
		zap.String("log_dir", dir))
}

// dirPartitionCount counts dir i's partitions; their logs already
// refuse appends and reads (storage: ErrLogDirOffline). Returns how many.
func (r *Registry) dirPartitionCount(i int) int {
	n := 0
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, t := range r.topics {
		for _, p := range t.Partitions {
			if p.dir == i && p.Log != nil {
				n++
			}
		}
	}
	return n
}

// remindOffline logs the offline dirs every offlineReminderEvery until
// the registry closes.
func (r *Registry) remindOffline() {
	t := time.NewTicker(offlineReminderEvery)
	defer t.Stop()
	for {
		select {
		case <-r.dirFailures.closed:
			return
		case <-t.C:
			r.log.Warn("log dirs still offline: their partitions answer KAFKA_STORAGE_ERROR until the broker restarts with the disk fixed",
				zap.Strings("log_dirs", r.OfflineLogDirs()))
		}
	}
}

// OfflineLogDirs returns the log dirs taken offline by an I/O error, in
// log.dirs order.
func (r *Registry) OfflineLogDirs() []string {
	f := &r.dirFailures
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.offline))
	for i := range f.offline {
		out = append(out, r.opts.LogDirs[i])
	}
	slices.Sort(out)
	return out
}

// LogDirOnline reports, for each log dir in log.dirs order, whether it is
// online (the metrics read it at scrape time).
func (r *Registry) LogDirOnline() (dirs []string, online []bool) {
	f := &r.dirFailures
	f.mu.Lock()
	defer f.mu.Unlock()
	online = make([]bool, len(r.opts.LogDirs))
	for i := range online {
		_, off := f.offline[i]
		online[i] = !off
	}
	return slices.Clone(r.opts.LogDirs), online
}

// StopForLogDirFailure is closed when a log dir failure means the broker
// must stop (every dir offline, or any in cluster mode); StopReason then
// says why. The daemon runs its normal shutdown and exits non-zero.
func (r *Registry) StopForLogDirFailure() <-chan struct{} { return r.dirFailures.stop }

// StopReason is why StopForLogDirFailure closed (nil before).
func (r *Registry) StopReason() error {
	select {
	case <-r.dirFailures.stop:
		return r.dirFailures.stopWhy
	default:
		return nil
	}
}

// dirOffline reports whether log dir index i is offline.
func (r *Registry) dirOffline(i int) bool {
	if i < 0 || i >= len(r.dirs) {
		return false
	}
	off, _ := r.dirs[i].Offline()
	return off
}

// closeDirFailures stops the reminder (Registry.Close).
func (r *Registry) closeDirFailures() {
	r.dirFailures.closeOnce.Do(func() { close(r.dirFailures.closed) })
}

// onLogDirFailure makes dir index i's storage.ManagerOptions.OnLogDirFailure:
// every I/O error takes the dir offline, except ENOSPC / EDQUOT with
// log.dir.offline.on.full.disk=false. Runs on a log's writer goroutine:
// the reaction runs on a goroutine of its own.
func (r *Registry) onLogDirFailure(i int) func(string, error) bool {
	return func(_ string, cause error) bool {
		if !r.cfg.LogDirOfflineOnFullDisk && (errors.Is(cause, syscall.ENOSPC) || errors.Is(cause, syscall.EDQUOT)) {
			r.fullDiskKeptOnline(i, cause)
			return false
		}
		go r.logDirFailed(i, cause)
		return true
	}
}

// fullDiskWarnEvery bounds the WARN of a full log dir kept online.
const fullDiskWarnEvery = 30 * time.Second

// fullDiskKeptOnline logs, at most every fullDiskWarnEvery per dir, that
// dir index i is full and stays online (log.dir.offline.on.full.disk=false).
func (r *Registry) fullDiskKeptOnline(i int, cause error) {
	f := &r.dirFailures
	now := time.Now()
	f.mu.Lock()
	last, suppressed := f.fullWarned[i], f.fullSuppressed[i]
	if !last.IsZero() && now.Sub(last) < fullDiskWarnEvery {
		f.fullSuppressed[i]++
		f.mu.Unlock()
		return
	}
	f.fullWarned[i], f.fullSuppressed[i] = now, 0
	f.mu.Unlock()
	r.log.Warn("log dir full: writes to its partitions fail with KAFKA_STORAGE_ERROR until space returns; it stays online because "+
		"log.dir.offline.on.full.disk=false (Kafka would take it offline). Free space on it",
		zap.String("log_dir", r.opts.LogDirs[i]), zap.Error(cause), zap.Int("errors_since_last_line", suppressed))
}

// onlineDir is log dir k (mod their count), or the next online one after
// it: a new partition is never placed on an offline dir. With every dir
// offline it is k's, whose open then fails (ErrLogDirOffline).
func (r *Registry) onlineDir(k int) int {
	n := len(r.mgrs)
	for j := 0; j < n; j++ {
		if d := (k + j) % n; !r.dirOffline(d) {
			return d
		}
	}
	return k % n
}
