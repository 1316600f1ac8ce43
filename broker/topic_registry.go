package broker

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/metrics"
	"github.com/ringbroker/ringbroker/storage"
)

// The registry is the broker's topic and partition table and its durable
// metadata. Topic names, ids, partition counts, each partition's log dir and
// each topic's config overrides are stored in metadataFile in every log dir,
// rewritten atomically (temp file, fsync, rename, fsync dir) on every change
// with a generation one higher: a crash leaves the old table or the new one,
// never a mix, and the start reads the newest copy it finds, so losing or
// reordering any log dir loses no topic. Each partition directory also
// names its topic id (partition.metadata, as in Kafka), so a partition is
// found in whatever dir it is, and a topic survives the loss of every copy
// of the table (topic_registry_startup.go says how a start reconciles them).
//
// Concurrency: Registry.mu guards the maps and every Topic's Partitions slice
// and Configs (replaced, never mutated in place, so a reader holding a
// *Topic snapshot of them stays consistent). Lookups on the request path take
// the read lock only. Creating or deleting a topic holds the write lock while
// logs open or close: admin operations are rare and serialised.

// metadataFile holds the topic table (JSON, ours: Kafka keeps this in its
// KRaft metadata log, which we do not have).
const metadataFile = "ringbroker-topics.json"

// Topic is one topic. Fields are read-only after publication except through
// the registry, which swaps whole slices/maps under its lock.
type Topic struct {
	Name string
	ID   [16]byte
	// Configs are the topic's overrides (Kafka topic keys), not defaults.
	Configs    map[string]string
	Partitions []*Partition
	settings   topicSettings
	// metrics are the topic's byte counters once resolved (Broker.topicMetrics).
	metrics atomic.Pointer[metrics.TopicMetrics]
	// regMu is the registry's lock, which guards Configs, settings and
	// Partitions swaps.
	regMu *sync.RWMutex
}

// Partition is one partition of a topic and its log. In a cluster a
// partition this node holds no replica of is remote: Log is nil and dir is
// remoteDir (Registry.Partition does not return it).
type Partition struct {
	Topic *Topic
	Index int32
	Log   *storage.Log
	dir   int // index into the registry's log dirs, or remoteDir
	// Cluster mode (cluster.go): the leader epoch the image gives the
	// partition and whether another node leads it. Zero values: the single
	// node leads every partition at epoch 0.
	leaderEpoch atomic.Int32
	notLeader   atomic.Bool
	// lead is the leader's replication state (isr_state.go,
	// replication.go); unused on a single node.
	lead isrState
	// fromLeader is the high watermark the replica fetcher last had from
	// the leader, for consumer reads on this follower (fetch_preferred.go).
	fromLeader leaderHW
}

// remoteDir is the log dir index of a remote partition, in memory and in
// the topic table's partition_dirs.
const remoteDir = -2

// Local reports whether this node holds the partition's log.
func (p *Partition) Local() bool { return p.Log != nil }

// RegistryOptions configure OpenRegistry.
type RegistryOptions struct {
	LogDirs []string
	// Config is the broker's configuration: the defaults of topic keys
	// (their server.properties synonyms), the broker-level log settings
	// (Config.StorageConfig), the segment.bytes floor CreateTopics and
	// AlterConfigs enforce (log.segment.bytes.min), and what DescribeConfigs
	// reports. nil means config.Default(). Read-only once the registry opens.
	Config *config.Config
	NewIO  func() (storage.IO, error)
	// FS does every file operation of the log dirs (nil = storage.OSFS);
	// tests pass a storage.FaultIO.
	FS     storage.FS
	Logger *zap.Logger
	// Stats receives every log's write and fdatasync measurements (the
	// daemon passes its metrics registry); nil records nothing.
	Stats storage.Stats

	// NodeID is checked against (and written to) every log dir's
	// meta.properties before anything else in the dir is read.
	NodeID int32
	// ClusterID, when set (cluster.id), is the cluster id a fresh log dir
	// gets; a log dir holding another one refuses the start.
	ClusterID string

	// Replicated: cluster mode. Every log dir keeps Kafka's
	// replication-offset-checkpoint (storage/hw_checkpoint.go): logs open
	// in replicated mode from their checkpointed high watermark, and
	// StartMaintenance rewrites the file every
	// HighWatermarkCheckpointInterval (replica.high.watermark.checkpoint.interval.ms;
	// zero: Kafka's 5 s); Close writes it too.
	Replicated                      bool
	HighWatermarkCheckpointInterval time.Duration

	// Clock drives the maintenance loop (StartMaintenance: retention and
	// checkpoints); nil is the wall clock. The logs' own writer timers
	// (linger, flush.ms) keep the wall clock.
	Clock clock.Clock
}

// Registry is the topic table.
type Registry struct {
	opts RegistryOptions
	cfg  *config.Config // opts.Config, never nil
	log  *zap.Logger
	mgrs []*storage.Manager
	// dirs is mgrs as opened, never changed afterwards (Close clears
	// mgrs): SetBrokerEpoch reads it from any goroutine without a lock.
	dirs []*storage.Manager

	mu     sync.RWMutex
	topics map[string]*Topic
	byID   map[[16]byte]*Topic
	// writeMu serialises metadata changes (and their file writes) without
	// blocking readers while logs open.
	writeMu sync.Mutex
	// generation of the last table written; tombstones are the ids of
	// deleted topics whose directories may remain. Both guarded by writeMu.
	generation uint64
	tombstones []storedTombstone
	// creating is the create in progress (at most one: writeMu).
	creating []storedCreate
	// deleted are -delete directories the start found (startup only).
	deleted []string
	// locks hold every log dir's .lock from the start until Close.
	locks     []*storage.DirLock
	clusterID string
	// clusterManaged: the cluster metadata drives this registry
	// (topic_registry_cluster.go); the single-node mutations refuse.
	clusterManaged atomic.Bool
	// writeFile writes small metadata files (writeMetadataFile; tests
	// inject failures).
	writeFile func(path string, data []byte) error

	// cleaner compacts the logs of every log dir whose cleanup.policy
	// includes compact: made by OpenRegistry when log.cleaner.enable and
	// log.cleaner.threads > 0 (nil otherwise), started by StartMaintenance,
	// closed by Close before the managers (a clean in progress is
	// abandoned, never half applied, and no log closes under it).
	cleaner *storage.Cleaner
	// cleanerMu guards cleanerStarted and cleanerClosed: Start and Close
	// each run at most once, and never Start after Close.
	cleanerMu                     sync.Mutex
	cleanerStarted, cleanerClosed bool

	// dirFailures records the log dirs an I/O error took offline
	// (log_dir_failure.go).
	dirFailures logDirFailures
}

// OpenRegistry locks every log dir, checks its identity, reconciles the
// topic table with the partition directories found, and opens every
// partition log, recovering them as needed. A failed start deletes nothing
// (topic_registry_startup.go).
func OpenRegistry(opts RegistryOptions) (reg *Registry, err error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if len(opts.LogDirs) == 0 {
		return nil, errors.New("registry: no log dirs")
	}
	if opts.Config == nil {
		opts.Config = config.Default()
	}
	if opts.FS == nil {
		opts.FS = storage.DefaultFS
	}
	r := &Registry{opts: opts, cfg: opts.Config, log: opts.Logger, topics: map[string]*Topic{}, byID: map[[16]byte]*Topic{}}
	r.writeFile = r.writeMetadataFile
	r.dirFailures.init()
	defer func() {
		if err != nil {
			r.closeManagers()
			r.releaseLocks()
		}
	}()
	if err := r.lockLogDirs(); err != nil {
		return nil, err
	}
	clusterID, missingMeta, err := checkIdentity(opts.FS, opts.LogDirs, opts.NodeID)
	if err != nil {
		return nil, err
	}
	if opts.ClusterID != "" && clusterID != "" && clusterID != opts.ClusterID {
		return nil, fmt.Errorf("the log dirs belong to cluster %s, not cluster.id=%s: refusing to start (nothing was changed)", clusterID, opts.ClusterID)
	}
	if clusterID == "" {
		clusterID = opts.ClusterID
	}
	plan, err := r.planStartup()
	if err != nil {
		return nil, err
	}
	// Everything that can refuse the start without opening a log has run:
	// from here on the start writes.
	if clusterID == "" {
		if clusterID, err = newClusterID(); err != nil {
			return nil, err
		}
	}
	for _, i := range missingMeta {
		if err := writeMeta(opts.FS, opts.LogDirs[i], clusterID, opts.NodeID); err != nil {
			return nil, fmt.Errorf("log dir %s: %w", opts.LogDirs[i], err)
		}
	}
	r.clusterID = clusterID
	logf := func(format string, args ...any) { r.log.Info(fmt.Sprintf(format, args...)) }
	warnf := func(format string, args ...any) { r.log.Warn(fmt.Sprintf(format, args...)) }
	newIO := opts.NewIO
	if newIO == nil && r.cfg.LogIOBackend == "uring" {
		newIO = uringLogIO(r.log)
	}
	for i, dir := range opts.LogDirs {
		m, err := storage.OpenManager(dir, storage.ManagerOptions{Defaults: r.cfg.StorageConfig(), NewIO: newIO, FS: opts.FS, Logf: logf, Warnf: warnf, Stats: opts.Stats, Replicated: opts.Replicated,
			OnLogDirFailure: r.onLogDirFailure(i)})
		if err != nil {
			return nil, fmt.Errorf("log dir %s: %w", dir, err)
		}
		// Kafka's two lines: whether this start trusts the logs as closed
		// or scans them.
		if m.HadCleanShutdown() {
			r.log.Info("skipping recovery: clean shutdown file found", zap.String("log_dir", dir))
		} else {
			r.log.Info("recovering logs: no clean shutdown file found", zap.String("log_dir", dir))
		}
		r.mgrs = append(r.mgrs, m)
	}
	r.dirs = slices.Clone(r.mgrs)
	if err := r.applyStartup(plan); err != nil {
		return nil, err
	}
	if r.cfg.LogCleanerEnable && r.cfg.LogCleanerThreads > 0 {
		cc := r.cfg.CleanerConfig()
		cleanerLog := r.log.Named("cleaner")
		cc.Logf = func(format string, args ...any) { cleanerLog.Info(fmt.Sprintf(format, args...)) }
		r.cleaner = storage.NewCleaner(cc, slices.Clone(r.mgrs))
	}
	return r, nil
}

// Cleaner is the log cleaner over every log dir, or nil when
// log.cleaner.enable=false or log.cleaner.threads=0. StartMaintenance
// starts its threads; Close closes it.
func (r *Registry) Cleaner() *storage.Cleaner { return r.cleaner }

// startCleaner starts the cleaner's threads once, unless it is closed.
func (r *Registry) startCleaner() {
	r.cleanerMu.Lock()
	defer r.cleanerMu.Unlock()
	if r.cleaner == nil || r.cleanerStarted || r.cleanerClosed {
		return
	}
	r.cleanerStarted = true
	r.cleaner.Start()
	r.log.Info("log cleaner started", zap.Int("threads", r.cfg.LogCleanerThreads))
}

// closeCleaner closes the cleaner once (its threads stop; a clean in
// progress is abandoned). REQUIRES: the managers still open.
func (r *Registry) closeCleaner() {
	r.cleanerMu.Lock()
	defer r.cleanerMu.Unlock()
	if r.cleaner == nil || r.cleanerClosed {
		return
	}
	r.cleanerClosed = true
	r.cleaner.Close()
}

// ClusterID is the cluster id every log dir's meta.properties holds.
func (r *Registry) ClusterID() string { return r.clusterID }

// openPartitions opens partitions first, first+1, ... of t, partition
// first+i in log dir dirs[i], several at a time per dir (storage.OpenLogs: a
// fresh open is dominated by inode creation). With create (through
// createPartitionLogs: no directory existed) each gets its
// partition.metadata, and on error every directory this call created is
// removed again; without it (startup) an error deletes nothing. On error
// the logs that opened are closed or removed and nothing is returned.
func (r *Registry) openPartitions(t *Topic, first int32, dirs []int, create bool) ([]*Partition, error) {
	out := make([]*Partition, len(dirs))
	paths := make([]string, len(dirs))
	for i, d := range dirs {
		if d != remoteDir {
			paths[i] = filepath.Join(r.opts.LogDirs[d], partitionDirName(t.Name, first+int32(i)))
		}
	}
	byDir := make(map[int][]int32)
	for i, d := range dirs {
		if d == remoteDir {
			out[i] = &Partition{Topic: t, Index: first + int32(i), dir: remoteDir}
			continue
		}
		byDir[d] = append(byDir[d], first+int32(i))
	}
	var firstErr error
	for d, indexes := range byDir {
		logs, err := r.mgrs[d].OpenLogs(t.Name, indexes, t.settings.log)
		for k, l := range logs {
			if l == nil {
				continue
			}
			l.SetLeaderEpoch(0) // one broker, leader since the topic exists: Metadata says epoch 0
			out[indexes[k]-first] = &Partition{Topic: t, Index: indexes[k], Log: l, dir: d}
			// In a cluster only the image makes this node a leader
			// (ManagedByCluster).
			out[indexes[k]-first].notLeader.Store(r.clusterManaged.Load())
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("open %s: %w", t.Name, err)
		}
	}
	if firstErr == nil && create {
		firstErr = r.writePartitionMetadata(out)
	}
	if firstErr == nil {
		return out, nil
	}
	if !create {
		// Found, not ours: never delete. The failed start closes the
		// managers, which closes the logs that did open.
		r.log.Error("partition logs cannot be opened; refusing to start (nothing was deleted)", zap.String("topic", t.Name), zap.Error(firstErr))
		return nil, firstErr
	}
	// Close every log that did open before removing anything: the open
	// may have failed for want of descriptors (EMFILE), and removing a
	// directory needs some (os.RemoveAll opens it), which only the
	// closed logs give back. Removing in index order while later logs
	// were still open left a failed partition's directory behind.
	for _, p := range out {
		if p != nil && p.Local() {
			p.Log.Close()
		}
	}
	for i, p := range out {
		// Ours: created by this call (checked absent before), whether its
		// open finished or failed half-way.
		if dirs[i] == remoteDir {
			continue
		}
		if p != nil {
			r.mgrs[p.dir].DeleteLog(t.Name, p.Index)
		} else if err := r.opts.FS.RemoveAll(paths[i]); err != nil {
			r.log.Warn("removing a partition directory this failed create made", zap.String("dir", paths[i]), zap.Error(err))
		}
	}
	return nil, firstErr
}

// createPartitionLogs creates partitions first.. of t (first+i in log dir
// dirs[i]) for CreateTopics and CreatePartitions:
//
//  1. refuse if any of their directories exists (a stray someone put back,
//     a deletion that failed: not ours to take over or remove);
//  2. record the intent in the topic table (creating: name, id, first), so
//     that a crash from here on leaves directories the next start knows
//     were ours and removes, instead of setting them aside or adopting a
//     half-made topic;
//  3. open them (openPartitions with create: on failure it removes every
//     directory it made) and drop the intent again; the caller's persist
//     of the new table (or the failure path below) writes that.
//
// REQUIRES: writeMu held.
func (r *Registry) createPartitionLogs(t *Topic, first int32, dirs []int) ([]*Partition, error) {
	for i, d := range dirs {
		if d == remoteDir {
			continue
		}
		path := filepath.Join(r.opts.LogDirs[d], partitionDirName(t.Name, first+int32(i)))
		if _, err := r.opts.FS.Lstat(path); err == nil {
			return nil, fmt.Errorf("%s already exists and no topic owns it; move it aside", path)
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	r.creating = append(r.creating, storedCreate{Name: t.Name, ID: t.ID, First: first})
	if err := r.persistLocked(); err != nil {
		r.creating = r.creating[:len(r.creating)-1]
		r.unpersistLocked(err)
		return nil, fmt.Errorf("recording the create in the topic table: %w", err)
	}
	parts, err := r.openPartitions(t, first, dirs, true)
	r.creating = r.creating[:len(r.creating)-1]
	if err != nil {
		if perr := r.persistLocked(); perr != nil {
			r.log.Warn("clearing a failed create from the topic table (the next start clears it)", zap.Error(perr))
		}
		return nil, err
	}
	return parts, nil
}

// spreadDirs assigns partitions first..first+n-1 to log dirs round-robin
// (skipping offline ones: log_dir_failure.go).
func (r *Registry) spreadDirs(first, n int32) []int {
	dirs := make([]int, n)
	for i := range dirs {
		dirs[i] = r.onlineDir(int(first + int32(i)))
	}
	return dirs
}

// Topic returns the named topic or nil.
func (r *Registry) Topic(name string) *Topic {
	r.mu.RLock()
	t := r.topics[name]
	r.mu.RUnlock()
	return t
}

// TopicByID returns the topic with id or nil.
func (r *Registry) TopicByID(id [16]byte) *Topic {
	r.mu.RLock()
	t := r.byID[id]
	r.mu.RUnlock()
	return t
}

// Partition returns a topic's partition, or nil when there is no such
// partition or it is remote (this node holds no log of it).
func (r *Registry) Partition(topic string, index int32) *Partition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.topics[topic]
	if t == nil || index < 0 || int(index) >= len(t.Partitions) || !t.Partitions[index].Local() {
		return nil
	}
	return t.Partitions[index]
}

// Topics returns every topic, sorted by name.
func (r *Registry) Topics() []*Topic {
	r.mu.RLock()
	out := make([]*Topic, 0, len(r.topics))
	for _, t := range r.topics {
		out = append(out, t)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LogDirs returns the configured log dirs.
func (r *Registry) LogDirs() []string { return r.opts.LogDirs }

// errRegistryClosed answers a create that arrives after Close (a
// background creation, e.g. the group coordinator's __consumer_offsets,
// racing with shutdown): the log dirs are closed.
var errRegistryClosed = fmt.Errorf("%w: the broker is shutting down", kerr.KafkaStorageError)

// CreateTopic creates a topic with partitions partitions and configs
// overrides. Errors are *kerr.Error values where Kafka has a code:
// INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS,
// INVALID_CONFIG. With validateOnly nothing is created.
func (r *Registry) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	if r.clusterManaged.Load() {
		return nil, errClusterManaged
	}
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if partitions <= 0 {
		return nil, fmt.Errorf("%w: partitions must be > 0, got %d", kerr.InvalidPartitions, partitions)
	}
	if partitions > maxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: at most %d partitions per topic", kerr.InvalidPartitions, maxPartitionsPerTopic)
	}
	if configs == nil {
		configs = map[string]string{}
	}
	settings, err := r.resolveClientSettings(configs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if len(r.mgrs) == 0 {
		return nil, errRegistryClosed
	}
	if r.Topic(name) != nil {
		return nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, name)
	}
	if collides := r.collidingTopic(name); collides != "" {
		return nil, fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are interchangeable in metric names)", kerr.InvalidTopicException, name, collides)
	}
	if validateOnly {
		return nil, nil
	}
	t := &Topic{Name: name, Configs: configs, settings: settings, regMu: &r.mu}
	if _, err := rand.Read(t.ID[:]); err != nil {
		return nil, err
	}
	if t.Partitions, err = r.createPartitionLogs(t, 0, r.spreadDirs(0, partitions)); err != nil {
		return nil, fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	r.mu.Lock()
	r.topics[name] = t
	r.byID[t.ID] = t
	r.mu.Unlock()
	if err := r.persistLocked(); err != nil {
		r.mu.Lock()
		delete(r.topics, name)
		delete(r.byID, t.ID)
		r.mu.Unlock()
		r.unpersistLocked(err)
		for _, p := range t.Partitions {
			if p.Local() {
				r.mgrs[p.dir].DeleteLog(name, p.Index)
			}
		}
		return nil, fmt.Errorf("%w: persisting topic metadata: %v", kerr.KafkaStorageError, err)
	}
	r.log.Info("topic created", zap.String("topic", name), zap.Int32("partitions", partitions), zap.Any("configs", configs))
	return t, nil
}

// collidingTopic returns an existing topic whose name equals name once '.'
// and '_' are identified (Kafka refuses such pairs), or "".
func (r *Registry) collidingTopic(name string) string {
	norm := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if c == '.' {
				b[i] = '_'
			}
		}
		return string(b)
	}
	n := norm(name)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for other := range r.topics {
		if other != name && norm(other) == n {
			return other
		}
	}
	return ""
}

// DeleteTopic removes a topic and its data. The metadata is persisted first,
// with the topic's id as a tombstone, so a crash part-way leaves directories
// whose partition.metadata names a deleted topic, and the next start
// finishes their removal.
func (r *Registry) DeleteTopic(name string) error {
	if r.clusterManaged.Load() {
		return errClusterManaged
	}
	return r.deleteTopic(name)
}

func (r *Registry) deleteTopic(name string) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	t := r.Topic(name)
	if t == nil {
		return fmt.Errorf("%w: %q", kerr.UnknownTopicOrPartition, name)
	}
	r.mu.Lock()
	delete(r.topics, name)
	delete(r.byID, t.ID)
	r.mu.Unlock()
	oldTombstones := r.tombstones
	r.tombstones = append(r.tombstones[:len(r.tombstones):len(r.tombstones)], storedTombstone{Name: name, ID: t.ID})
	if n := len(r.tombstones); n > maxTombstones {
		r.tombstones = r.tombstones[n-maxTombstones:]
	}
	if err := r.persistLocked(); err != nil {
		deleted := r.tombstones
		r.tombstones = oldTombstones
		r.mu.Lock()
		r.topics[name] = t
		r.byID[t.ID] = t
		r.mu.Unlock()
		if !r.unpersistLocked(err) {
			// The table on disk may say deleted and we cannot say
			// otherwise: serve the topic no more (a record acknowledged
			// now would be deleted by the next start), but keep its
			// logs; the next start removes them if the table it reads
			// says deleted, and serves them if not.
			r.tombstones = deleted
			r.mu.Lock()
			delete(r.topics, name)
			delete(r.byID, t.ID)
			r.mu.Unlock()
			r.log.Error("topic deletion may or may not have been recorded; the topic is no longer served, and the next start finishes or undoes the deletion", zap.String("topic", name), zap.Error(err))
		}
		return fmt.Errorf("%w: persisting topic metadata: %v", kerr.KafkaStorageError, err)
	}
	r.deleteLocalLogs(name, t.Partitions)
	r.log.Info("topic deleted", zap.String("topic", name))
	return nil
}

// deleteLocalLogs removes the logs of the local partitions among parts
// (storage.Manager.DeleteLog: renamed to -delete, then removed). REQUIRES:
// the table that no longer lists them as local is persisted, so a crash
// part-way leaves directories the next start accounts for (a -delete
// directory it finishes removing, or one no topic claims, set aside).
func (r *Registry) deleteLocalLogs(name string, parts []*Partition) {
	for _, p := range parts {
		if !p.Local() {
			continue
		}
		if err := r.mgrs[p.dir].DeleteLog(name, p.Index); err != nil {
			r.log.Warn("deleting partition log", zap.String("topic", name), zap.Int32("partition", p.Index), zap.Error(err))
		}
	}
}

// CreatePartitions grows a topic to total partitions.
func (r *Registry) CreatePartitions(name string, total int32, validateOnly bool) error {
	if r.clusterManaged.Load() {
		return errClusterManaged
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	t := r.Topic(name)
	if t == nil {
		return fmt.Errorf("%w: %q", kerr.UnknownTopicOrPartition, name)
	}
	have := int32(len(t.Partitions))
	switch {
	case total < have:
		return fmt.Errorf("%w: topic has %d partitions; cannot reduce to %d", kerr.InvalidPartitions, have, total)
	case total == have:
		return fmt.Errorf("%w: topic already has %d partitions", kerr.InvalidPartitions, have)
	case total > maxPartitionsPerTopic:
		return fmt.Errorf("%w: at most %d partitions per topic", kerr.InvalidPartitions, maxPartitionsPerTopic)
	}
	if validateOnly {
		return nil
	}
	if len(r.mgrs) == 0 {
		return errRegistryClosed
	}
	added, err := r.createPartitionLogs(t, have, r.spreadDirs(have, total-have))
	if err != nil {
		return fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	parts := append(append([]*Partition(nil), t.Partitions...), added...)
	r.mu.Lock()
	old := t.Partitions
	t.Partitions = parts
	r.mu.Unlock()
	if err := r.persistLocked(); err != nil {
		r.mu.Lock()
		t.Partitions = old
		r.mu.Unlock()
		r.unpersistLocked(err)
		for _, p := range added {
			if p.Local() {
				r.mgrs[p.dir].DeleteLog(name, p.Index)
			}
		}
		return fmt.Errorf("%w: persisting topic metadata: %v", kerr.KafkaStorageError, err)
	}
	return nil
}

// SetTopicConfigs replaces a topic's overrides with configs (already
// merged by the caller for incremental alters), after validating them.
func (r *Registry) SetTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
	if r.clusterManaged.Load() {
		return errClusterManaged
	}
	settings, err := r.resolveClientSettings(configs)
	if err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	t := r.Topic(name)
	if t == nil {
		return fmt.Errorf("%w: %q", kerr.UnknownTopicOrPartition, name)
	}
	if validateOnly {
		return nil
	}
	r.mu.Lock()
	oldConfigs, oldSettings := t.Configs, t.settings
	t.Configs, t.settings = configs, settings
	r.mu.Unlock()
	if err := r.persistLocked(); err != nil {
		r.mu.Lock()
		t.Configs, t.settings = oldConfigs, oldSettings
		r.mu.Unlock()
		r.unpersistLocked(err)
		return fmt.Errorf("%w: persisting topic metadata: %v", kerr.KafkaStorageError, err)
	}
	// Settings the broker applies itself (max.message.bytes,
	// compression.type) take effect at once; the open logs get theirs
	// (retention, segment, flush, timestamp type, index) through
	// Log.SetConfig, which may wait briefly for a busy writer.
	r.mu.RLock()
	parts := t.Partitions
	r.mu.RUnlock()
	for _, p := range parts {
		if !p.Local() {
			continue
		}
		if err := p.Log.SetConfig(settings.log); err != nil {
			r.log.Warn("topic config not fully applied to an open log", zap.String("topic", name), zap.Int32("partition", p.Index), zap.Error(err))
		}
	}
	return nil
}

// Settings returns the topic's resolved settings.
func (t *Topic) Settings() topicSettings {
	t.regMu.RLock()
	defer t.regMu.RUnlock()
	return t.settings
}

// ConfigOverrides returns the topic's config overrides (do not modify).
func (t *Topic) ConfigOverrides() map[string]string {
	t.regMu.RLock()
	defer t.regMu.RUnlock()
	return t.Configs
}

// PreviousBrokerEpoch is the broker epoch of the last run if every log dir
// had a clean-shutdown marker holding the same one (Kafka's
// readBrokerEpochFromCleanShutdownFiles), else -1. A registration sends it
// so that the controller keeps this broker in the partitions' eligible
// leader replicas: its logs hold what it acknowledged.
func (r *Registry) PreviousBrokerEpoch() int64 {
	epoch := int64(-1)
	for i, m := range r.dirs {
		e := m.PreviousBrokerEpoch()
		if e < 0 || i > 0 && e != epoch {
			return -1
		}
		epoch = e
	}
	return epoch
}

// SetBrokerEpoch sets the broker epoch every log dir's clean-shutdown
// marker records at Close (see PreviousBrokerEpoch). Safe from any
// goroutine.
func (r *Registry) SetBrokerEpoch(epoch int64) {
	for _, m := range r.dirs {
		m.SetBrokerEpoch(epoch)
	}
}

// Close closes every log and writes checkpoints and clean-shutdown markers.
func (r *Registry) Close() error {
	return r.CloseReporting(0, nil)
}

// CloseReporting is Close that calls report(closed, total) every interval
// while logs are still closing (a shutdown flushing many partitions behind
// a busy disk can take minutes), and once at the end. interval <= 0 or a
// nil report: no reports.
func (r *Registry) CloseReporting(interval time.Duration, report func(closed, total int64)) error {
	r.closeDirFailures()
	// The cleaner first: it reads and swaps segments of logs the managers
	// are about to close.
	r.closeCleaner()
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	mgrs := r.mgrs
	progress := func() (closed, total int64) {
		for _, m := range mgrs {
			c, t := m.CloseProgress()
			closed, total = closed+c, total+t
		}
		return closed, total
	}
	done := make(chan error, 1)
	go func() { done <- r.closeManagers() }()
	var tick <-chan time.Time
	if interval > 0 && report != nil {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-done:
			if tick != nil {
				report(progress())
			}
			r.releaseLocks()
			return err
		case <-tick:
			report(progress())
		}
	}
}

// closeManagers closes every log dir at once: each is its own disk, and
// flushing them one after another added their shutdown times up.
// REQUIRES: writeMu held.
func (r *Registry) closeManagers() error {
	errs := make([]error, len(r.mgrs))
	var wg sync.WaitGroup
	for i, m := range r.mgrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Close()
			if errors.Is(errs[i], storage.ErrLogDirOffline) {
				r.closedOffline(m.Dir())
				errs[i] = nil
			}
		}()
	}
	wg.Wait()
	r.mgrs = nil
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// storedMetadata is the JSON form of metadataFile.
type storedMetadata struct {
	Version int `json:"version"`
	// Generation grows by one with every write; the start takes the copy
	// with the highest (0 in files older than copies in every dir).
	Generation uint64        `json:"generation"`
	Topics     []storedTopic `json:"topics"`
	// Deleted are topics whose deletion was recorded; a directory naming
	// one of their ids is removed at the next start.
	Deleted []storedTombstone `json:"deleted,omitempty"`
	// Creating are creates in progress: directories of that topic id (or
	// without partition.metadata) from partition First on are removed at
	// the next start, which means the create never finished.
	Creating []storedCreate `json:"creating,omitempty"`
}

type storedCreate struct {
	Name  string   `json:"name"`
	ID    [16]byte `json:"id"`
	First int32    `json:"first"`
}

type storedTopic struct {
	Name          string            `json:"name"`
	ID            [16]byte          `json:"id"`
	PartitionDirs []int             `json:"partition_dirs"` // log dir index of each partition
	Configs       map[string]string `json:"configs,omitempty"`
}

type storedTombstone struct {
	Name string   `json:"name"`
	ID   [16]byte `json:"id"`
}

// persistLocked writes the topic table, one generation newer, to every log
// dir. It succeeds when at least one copy was written: a full or failing
// dir keeps its older copy (a WARN says so), which the next start outranks
// by generation, so one bad disk does not stop CreateTopics on the others.
// When every copy fails the caller rolls the change back. REQUIRES:
// writeMu held.
func (r *Registry) persistLocked() error {
	r.generation++
	st := storedMetadata{Version: 1, Generation: r.generation, Deleted: r.tombstones, Creating: r.creating}
	for _, t := range r.Topics() {
		s := storedTopic{Name: t.Name, ID: t.ID, Configs: t.Configs}
		for _, p := range t.Partitions {
			s.PartitionDirs = append(s.PartitionDirs, p.dir)
		}
		st.Topics = append(st.Topics, s)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	var errs, offline []error
	for i, dir := range r.opts.LogDirs {
		if r.dirOffline(i) {
			// A failed dir is left as it is (log_dir_failure.go): it keeps
			// its older copy, which a start reconciles like any stale one.
			offline = append(offline, fmt.Errorf("log dir %s: %w", dir, storage.ErrLogDirOffline))
			continue
		}
		if err := r.writeFile(filepath.Join(dir, metadataFile), data); err != nil {
			errs = append(errs, fmt.Errorf("log dir %s: %w", dir, err))
		}
	}
	if len(errs)+len(offline) == len(r.opts.LogDirs) {
		return errors.Join(append(errs, offline...)...)
	}
	for _, err := range errs {
		r.log.Warn("a copy of the topic table could not be written; that log dir keeps an older one", zap.Uint64("generation", r.generation), zap.Error(err))
	}
	return nil
}

// unpersistLocked is called after persistLocked failed with err, once the
// caller has rolled its change back in memory, and reports whether the
// table on disk is now known to be the rolled-back one. A copy whose write
// failed may still hold the change: storage.WriteFileAtomic fails after
// its rename when the directory fsync fails (storage.ErrNotDurable), and
// that copy, the newest generation, would win at the next start, which
// would then apply a change the client was told failed (a DeleteTopic
// reported failed, then records acknowledged to that topic, then a
// restart deleting them all). Writing the rolled-back table, one
// generation newer, outranks it. When that fails too the caller must leave
// memory in a state that is safe whichever table the next start reads.
// REQUIRES: writeMu held.
func (r *Registry) unpersistLocked(err error) bool {
	if !errors.Is(err, storage.ErrNotDurable) {
		return true // no copy was replaced
	}
	if err := r.persistLocked(); err != nil {
		r.log.Error("the topic table on disk may hold a change that failed; the next topic change rewrites it", zap.Error(err))
		return false
	}
	return true
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// maxPartitionsPerTopic bounds one topic (and one request's work).
const maxPartitionsPerTopic = 100000

// ValidateTopicName applies Kafka's rules: 1-249 characters of
// [a-zA-Z0-9._-], and not "." or "..". A valid name can never escape the log
// dir (no '/', no NUL, not a dot path).
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: topic name is empty", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name cannot be %q", kerr.InvalidTopicException, name)
	case len(name) > 249:
		return fmt.Errorf("%w: topic name is longer than 249 characters", kerr.InvalidTopicException)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: topic name %q has a character outside [a-zA-Z0-9._-]", kerr.InvalidTopicException, name)
		}
	}
	return nil
}

// uringLogIO makes each log's IO an io_uring of its own (log.io.backend=uring):
// one WRITEV, and a linked FSYNC when the flush policy asks, per group. A
// log whose ring cannot be set up (no io_uring, RLIMIT_MEMLOCK, descriptors)
// writes with pwritev instead; the first such failure is logged once.
func uringLogIO(log *zap.Logger) func() (storage.IO, error) {
	var once sync.Once
	return func() (storage.IO, error) {
		io, err := storage.NewUringIO()
		if err != nil {
			once.Do(func() {
				log.Warn("log.io.backend=uring: a partition's ring could not be set up; such partitions write with pwritev", zap.Error(err))
			})
			return storage.NewPortableIO(), nil
		}
		return io, nil
	}
}
