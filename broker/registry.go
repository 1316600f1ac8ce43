package broker

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/log"
)

// The registry is the broker's topic and partition table and its durable
// metadata. Topic names, ids, partition counts, each partition's log dir and
// each topic's config overrides are stored in metadataFile in the first log
// dir, rewritten atomically (temp file, fsync, rename, fsync dir) on every
// change: a crash leaves the old table or the new one, never a mix.
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
	// regMu is the registry's lock, which guards Configs, settings and
	// Partitions swaps.
	regMu *sync.RWMutex
}

// Partition is one partition of a topic and its log.
type Partition struct {
	Topic *Topic
	Index int32
	Log   *log.Log
	dir   int // index into the registry's log dirs
}

// RegistryOptions configure OpenRegistry.
type RegistryOptions struct {
	LogDirs []string
	// Defaults are the broker-level log settings (log.BrokerConfig).
	Defaults log.Config
	// BrokerTopicDefaults are the broker keys that default topic keys the log
	// package does not own (message.max.bytes, compression.type,
	// log.cleanup.policy) in their topic-key names.
	BrokerTopicDefaults map[string]string
	NewIO               func() (log.IO, error)
	Logger              *zap.Logger
}

// Registry is the topic table.
type Registry struct {
	opts RegistryOptions
	log  *zap.Logger
	mgrs []*log.Manager

	mu     sync.RWMutex
	topics map[string]*Topic
	byID   map[[16]byte]*Topic
	// writeMu serialises metadata changes (and their file writes) without
	// blocking readers while logs open.
	writeMu sync.Mutex
}

// OpenRegistry opens every log dir and every partition log named in the
// metadata file, recovering them as needed.
func OpenRegistry(opts RegistryOptions) (*Registry, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if len(opts.LogDirs) == 0 {
		return nil, errors.New("registry: no log dirs")
	}
	r := &Registry{opts: opts, log: opts.Logger, topics: map[string]*Topic{}, byID: map[[16]byte]*Topic{}}
	logf := func(format string, args ...any) { r.log.Info(fmt.Sprintf(format, args...)) }
	warnf := func(format string, args ...any) { r.log.Warn(fmt.Sprintf(format, args...)) }
	for _, dir := range opts.LogDirs {
		m, err := log.OpenManager(dir, log.ManagerOptions{Defaults: opts.Defaults, NewIO: opts.NewIO, Logf: logf, Warnf: warnf})
		if err != nil {
			r.closeManagers()
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
	stored, err := readMetadata(filepath.Join(opts.LogDirs[0], metadataFile))
	if err != nil {
		r.closeManagers()
		return nil, err
	}
	for _, st := range stored.Topics {
		t := &Topic{Name: st.Name, ID: st.ID, Configs: st.Configs, regMu: &r.mu}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		if t.settings, err = r.resolveSettings(t.Configs); err != nil {
			r.closeManagers()
			return nil, fmt.Errorf("topic %s: %w", t.Name, err)
		}
		dirs := append([]int(nil), st.PartitionDirs...)
		for i, dir := range dirs {
			if dir < 0 || dir >= len(r.mgrs) {
				dirs[i] = 0
			}
		}
		if t.Partitions, err = r.openPartitions(t, 0, dirs); err != nil {
			r.closeManagers()
			return nil, err
		}
		r.topics[t.Name] = t
		r.byID[t.ID] = t
	}
	r.removeOrphans()
	return r, nil
}

// openPartitions opens partitions first, first+1, ... of t, partition
// first+i in log dir dirs[i], several at a time per dir (log.OpenLogs: a
// fresh open is dominated by inode creation). On error the partitions it
// opened are deleted again and nothing is returned.
func (r *Registry) openPartitions(t *Topic, first int32, dirs []int) ([]*Partition, error) {
	out := make([]*Partition, len(dirs))
	byDir := make(map[int][]int32)
	for i, d := range dirs {
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
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("open %s: %w", t.Name, err)
		}
	}
	if firstErr != nil {
		for _, p := range out {
			if p != nil {
				r.mgrs[p.dir].DeleteLog(t.Name, p.Index)
			}
		}
		return nil, firstErr
	}
	return out, nil
}

// spreadDirs assigns partitions first..first+n-1 to log dirs round-robin.
func (r *Registry) spreadDirs(first, n int32) []int {
	dirs := make([]int, n)
	for i := range dirs {
		dirs[i] = int(first+int32(i)) % len(r.mgrs)
	}
	return dirs
}

// removeOrphans deletes partition dirs no topic owns: what a crash between
// "metadata says deleted" and "dirs removed" leaves behind.
func (r *Registry) removeOrphans() {
	for _, m := range r.mgrs {
		existing, err := m.Existing()
		if err != nil {
			continue
		}
		for _, tp := range existing {
			t := r.topics[tp.Topic]
			if t != nil && int(tp.Partition) < len(t.Partitions) {
				continue
			}
			r.log.Warn("removing partition dir of a deleted topic", zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition), zap.String("dir", m.Dir()))
			if err := m.DeleteLog(tp.Topic, tp.Partition); err != nil {
				r.log.Warn("cannot remove orphan partition dir", zap.Error(err))
			}
		}
	}
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

// Partition returns a topic's partition or nil.
func (r *Registry) Partition(topic string, index int32) *Partition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.topics[topic]
	if t == nil || index < 0 || int(index) >= len(t.Partitions) {
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

// CreateTopic creates a topic with partitions partitions and configs
// overrides. Errors are *kerr.Error values where Kafka has a code:
// INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS,
// INVALID_CONFIG. With validateOnly nothing is created.
func (r *Registry) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
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
	settings, err := r.resolveSettings(configs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
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
	if t.Partitions, err = r.openPartitions(t, 0, r.spreadDirs(0, partitions)); err != nil {
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
		for _, p := range t.Partitions {
			r.mgrs[p.dir].DeleteLog(name, p.Index)
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
// so a crash part-way leaves orphan dirs that the next start removes.
func (r *Registry) DeleteTopic(name string) error {
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
	if err := r.persistLocked(); err != nil {
		r.mu.Lock()
		r.topics[name] = t
		r.byID[t.ID] = t
		r.mu.Unlock()
		return fmt.Errorf("%w: persisting topic metadata: %v", kerr.KafkaStorageError, err)
	}
	for _, p := range t.Partitions {
		if err := r.mgrs[p.dir].DeleteLog(name, p.Index); err != nil {
			r.log.Warn("deleting partition log", zap.String("topic", name), zap.Int32("partition", p.Index), zap.Error(err))
		}
	}
	r.log.Info("topic deleted", zap.String("topic", name))
	return nil
}

// CreatePartitions grows a topic to total partitions.
func (r *Registry) CreatePartitions(name string, total int32, validateOnly bool) error {
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
	added, err := r.openPartitions(t, have, r.spreadDirs(have, total-have))
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
		return fmt.Errorf("%w: persisting topic metadata: %v", kerr.KafkaStorageError, err)
	}
	return nil
}

// SetTopicConfigs replaces a topic's overrides with configs (already
// merged by the caller for incremental alters), after validating them.
func (r *Registry) SetTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
	settings, err := r.resolveSettings(configs)
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

// Close closes every log and writes checkpoints and clean-shutdown markers.
func (r *Registry) Close() error {
	return r.CloseReporting(0, nil)
}

// CloseReporting is Close that calls report(closed, total) every interval
// while logs are still closing (a shutdown flushing many partitions behind
// a busy disk can take minutes), and once at the end. interval <= 0 or a
// nil report: no reports.
func (r *Registry) CloseReporting(interval time.Duration, report func(closed, total int64)) error {
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
	Version int           `json:"version"`
	Topics  []storedTopic `json:"topics"`
}

type storedTopic struct {
	Name          string            `json:"name"`
	ID            [16]byte          `json:"id"`
	PartitionDirs []int             `json:"partition_dirs"` // log dir index of each partition
	Configs       map[string]string `json:"configs,omitempty"`
}

// persistLocked writes the topic table. REQUIRES: writeMu held.
func (r *Registry) persistLocked() error {
	st := storedMetadata{Version: 1}
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
	return writeFileAtomic(filepath.Join(r.opts.LogDirs[0], metadataFile), data)
}

func readMetadata(path string) (storedMetadata, error) {
	var st storedMetadata
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

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
