package broker

// Startup: how OpenRegistry turns what is on disk into the topic table
// without ever destroying what it cannot account for.
//
//  1. Lock every log dir (<dir>/.lock, flock, held until Close) before
//     reading anything in it: a second broker on the same dirs stops here.
//  2. Check every dir's meta.properties: another node.id, or two dirs of
//     different clusters, refuse the start. Nothing has been written yet.
//  3. Plan, reading only: the newest copy of the topic table (every log dir
//     holds one; the highest generation wins), every <topic>-<N> directory
//     of every dir and its partition.metadata (the topic id it belongs to).
//     A partition is found wherever its directory is, whatever dir index
//     the table recorded (log.dirs reordered), and a topic whose table entry
//     is gone (every copy lost) is rebuilt from its directories' topic ids.
//     A partition found in two dirs refuses the start.
//  4. Act: write meta.properties where missing, open the managers, open
//     every partition; then set unaccounted directories aside as
//     <name>.<hex>-stray (renamed, never deleted), finish deletions the
//     table recorded (tombstones: a directory whose topic id a
//     DeleteTopics removed; and the directories of a CreateTopics or
//     CreatePartitions the table records as unfinished, and
//     <topic>-<N>.<hex>-delete directories whose removal a stop
//     interrupted), write
//     partition.metadata where missing, and
//     write the table to every dir if any copy is missing or stale.
//
// A partition that cannot be opened (EACCES, EMFILE, a directory where a
// segment file should be) fails the start: the logs that did open are
// closed, nothing is deleted, and the error names the partition. (Kafka
// takes such a log dir offline and serves the rest; we refuse instead:
// every handler would need an offline-partition answer.)

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/storage"
)

// partitionMetadataFile names the topic a partition directory belongs to,
// in Kafka's format ("version: 0\ntopic_id: <base64url uuid>\n"); the
// directory name gives the topic name and partition.
const partitionMetadataFile = "partition.metadata"

// straySuffix ends the name a directory nothing accounts for is renamed to
// (Kafka KRaft's "-stray"): <name>.<32 hex>-stray, which no longer parses as
// a partition directory.
const straySuffix = "-stray"

// maxTombstones bounds the deleted-topic ids the table remembers. A
// forgotten tombstone costs nothing but disk: a leftover directory of that
// topic is then set aside as stray instead of removed.
const maxTombstones = 10000

func encodePartitionMetadata(id [16]byte) []byte {
	return []byte("version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(id[:]) + "\n")
}

// errMalformedPartitionMetadata: the file was read but holds no topic id
// (torn or foreign). Any other error is the disk's.
var errMalformedPartitionMetadata = errors.New("not a version 0 partition.metadata with a topic id")

// readPartitionMetadata returns the topic id in dir/partition.metadata;
// found is false when the file does not exist.
func readPartitionMetadata(fs storage.FS, dir string) (id [16]byte, found bool, err error) {
	path := filepath.Join(dir, partitionMetadataFile)
	data, err := fs.ReadFile(path)
	if os.IsNotExist(err) {
		return id, false, nil
	}
	if err != nil {
		return id, false, err
	}
	var version, topicID string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "version":
			version = strings.TrimSpace(v)
		case "topic_id":
			topicID = strings.TrimSpace(v)
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(topicID)
	if version != "0" || err != nil || len(raw) != 16 {
		return id, false, fmt.Errorf("%s: %w", path, errMalformedPartitionMetadata)
	}
	copy(id[:], raw)
	return id, true, nil
}

// partitionDirName is <topic>-<partition>.
func partitionDirName(topic string, partition int32) string {
	return topic + "-" + strconv.Itoa(int(partition))
}

// parsePartitionDirName splits <topic>-<N> (N in canonical decimal form).
func parsePartitionDirName(name string) (topic string, partition int32, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != name[i+1:] {
		return "", 0, false
	}
	return name[:i], int32(p), true
}

// foundDir is one <topic>-<N> directory found in a log dir.
type foundDir struct {
	dir       int // log dir index
	name      string
	topic     string
	partition int32
	id        [16]byte
	hasID     bool // partition.metadata read
}

func (f foundDir) path(logDirs []string) string { return filepath.Join(logDirs[f.dir], f.name) }

// plannedTopic is a topic as startup will open it.
type plannedTopic struct {
	st        storedTopic
	dirs      []int  // log dir of each partition; -1 until found
	hasMeta   []bool // partition.metadata already names this topic
	recovered bool   // rebuilt from partition.metadata: no table entry
	missing   []bool // no directory found: recreated empty (resolveMissing)
}

// resolveMissing gives each partition no directory was found for a log dir
// to be recreated in: the one the table recorded if it still exists, else
// round-robin.
func (p *startupPlan) resolveMissing(logDirs int) {
	for _, pt := range p.topics {
		pt.missing = make([]bool, len(pt.dirs))
		for i, d := range pt.dirs {
			if d >= 0 || d == remoteDir {
				continue
			}
			d = i % logDirs
			if !pt.recovered && pt.st.PartitionDirs[i] >= 0 && pt.st.PartitionDirs[i] < logDirs {
				d = pt.st.PartitionDirs[i]
			}
			pt.dirs[i], pt.missing[i] = d, true
		}
	}
}

// startupPlan is what planStartup decided, before anything is written.
type startupPlan struct {
	generation uint64
	topics     []*plannedTopic
	tombstones []storedTombstone
	strays     []foundDir
	deletes    []foundDir // directories of topics a DeleteTopics removed
	// persist: some copy of the table is missing or stale, or the table
	// changes (partitions moved, topics recovered, tombstones done).
	persist bool
}

// checkIdentity reads every dir's meta.properties (writing nothing) and
// returns the cluster id they agree on ("" if none has one) and which dirs
// lack the file.
func checkIdentity(fs storage.FS, dirs []string, nodeID int32) (clusterID string, missing []int, err error) {
	from := ""
	for i, dir := range dirs {
		id, found, err := readMeta(dir, nodeID)
		if err != nil {
			return "", nil, err
		}
		if !found {
			missing = append(missing, i)
			continue
		}
		if clusterID != "" && id != clusterID {
			return "", nil, fmt.Errorf("log dirs belong to different clusters: %s has cluster.id %s, %s has %s", from, clusterID, dir, id)
		}
		clusterID, from = id, dir
	}
	return clusterID, missing, nil
}

// readTableCopies reads the topic table in every log dir and returns the
// newest (highest generation) and, per dir, whether its copy is that one.
// An unreadable copy is ignored with a warning when another is readable;
// when none is, the start is refused (we cannot tell what it held).
func (r *Registry) readTableCopies() (newest storedMetadata, current []bool, found bool, err error) {
	type copyOf struct {
		st  storedMetadata
		raw []byte
	}
	copies := make([]*copyOf, len(r.opts.LogDirs))
	var bad []error
	best := -1
	for i, dir := range r.opts.LogDirs {
		path := filepath.Join(dir, metadataFile)
		raw, err := r.opts.FS.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		var st storedMetadata
		if err == nil {
			err = jsonUnmarshal(raw, &st)
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", path, err))
			continue
		}
		copies[i] = &copyOf{st, raw}
		if best < 0 || st.Generation > copies[best].st.Generation {
			best = i
		}
	}
	if best < 0 {
		if len(bad) > 0 {
			return newest, nil, false, fmt.Errorf("no readable copy of the topic table: %w", errors.Join(bad...))
		}
		return newest, make([]bool, len(r.opts.LogDirs)), false, nil
	}
	for _, e := range bad {
		r.log.Warn("ignoring an unreadable copy of the topic table (another copy is readable)", zap.Error(e))
	}
	current = make([]bool, len(r.opts.LogDirs))
	for i, c := range copies {
		current[i] = c != nil && c.st.Generation == copies[best].st.Generation && bytes.Equal(c.raw, copies[best].raw)
	}
	if copies[best].st.Generation > 0 || len(r.opts.LogDirs) > 1 {
		r.log.Info("topic table", zap.String("from", r.opts.LogDirs[best]), zap.Uint64("generation", copies[best].st.Generation))
	}
	return copies[best].st, current, true, nil
}

// scanPartitionDirs lists every <topic>-<N> directory of every log dir
// with its partition.metadata. It writes nothing.
func (r *Registry) scanPartitionDirs() ([]foundDir, error) {
	var out []foundDir
	for i, dir := range r.opts.LogDirs {
		ents, err := r.opts.FS.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("log dir %s: %w", dir, err)
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			if storage.IsDeletedPartitionDir(e.Name()) {
				// A removal a stop interrupted (the rename to
				// -delete was the decision; see storage.DeleteSuffix).
				r.deleted = append(r.deleted, filepath.Join(dir, e.Name()))
				continue
			}
			topic, p, ok := parsePartitionDirName(e.Name())
			if !ok || topic == clusterMetadataTopic {
				// The metadata quorum's log (package quorum) is not a
				// topic: never a stray to set aside.
				continue
			}
			f := foundDir{dir: i, name: e.Name(), topic: topic, partition: p}
			var err error
			f.id, f.hasID, err = readPartitionMetadata(r.opts.FS, filepath.Join(dir, e.Name()))
			if err != nil && !errors.Is(err, errMalformedPartitionMetadata) {
				// A file we cannot read may name another topic id: taken
				// by its name alone the directory could be adopted by a
				// topic it does not belong to. Refuse (nothing written yet).
				return nil, fmt.Errorf("log dir %s: reading partition.metadata: %w", dir, err)
			}
			if err != nil {
				r.log.Warn("unreadable partition.metadata; the directory is identified by its name only", zap.Error(err))
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// planStartup decides, reading only, which directory serves each
// partition, what is stray and what is a finished deletion.
func (r *Registry) planStartup() (*startupPlan, error) {
	stored, current, haveTable, err := r.readTableCopies()
	if err != nil {
		return nil, err
	}
	found, err := r.scanPartitionDirs()
	if err != nil {
		return nil, err
	}
	plan := &startupPlan{generation: stored.Generation}
	for _, ok := range current {
		if !ok && haveTable {
			plan.persist = true
		}
	}
	known := map[string]*plannedTopic{}
	knownIDs := map[[16]byte]bool{}
	for _, st := range stored.Topics {
		n := len(st.PartitionDirs)
		pt := &plannedTopic{st: st, dirs: make([]int, n), hasMeta: make([]bool, n)}
		for i := range pt.dirs {
			pt.dirs[i] = -1
			if st.PartitionDirs[i] == remoteDir {
				pt.dirs[i] = remoteDir // a cluster partition held by other nodes
			}
		}
		known[st.Name] = pt
		knownIDs[st.ID] = true
		plan.topics = append(plan.topics, pt)
	}
	tombstoned := map[[16]byte]bool{}
	for _, ts := range stored.Deleted {
		tombstoned[ts.ID] = true
	}
	recovered := map[string]*plannedTopic{}
	place := func(pt *plannedTopic, f foundDir) error {
		if prev := pt.dirs[f.partition]; prev >= 0 {
			return fmt.Errorf("partition %s-%d is in two log dirs, %s and %s: refusing to choose; move one aside",
				f.topic, f.partition, r.opts.LogDirs[prev], r.opts.LogDirs[f.dir])
		}
		pt.dirs[f.partition] = f.dir
		pt.hasMeta[f.partition] = f.hasID
		return nil
	}
	for _, f := range found {
		pt := known[f.topic]
		switch {
		case pt != nil && (!f.hasID || f.id == pt.st.ID) && int(f.partition) < len(pt.dirs) && pt.dirs[f.partition] != remoteDir:
			if err := place(pt, f); err != nil {
				return nil, err
			}
		case f.hasID && tombstoned[f.id]:
			plan.deletes = append(plan.deletes, f)
		case unfinishedCreate(stored.Creating, f):
			plan.deletes = append(plan.deletes, f)
			plan.persist = true
		case pt == nil && f.hasID && !knownIDs[f.id] && ValidateTopicName(f.topic) == nil:
			// Every copy of the table lost this topic: rebuild it from
			// its directories.
			rt := recovered[f.topic]
			if rt == nil {
				rt = &plannedTopic{st: storedTopic{Name: f.topic, ID: f.id}, recovered: true}
				recovered[f.topic] = rt
			} else if rt.st.ID != f.id {
				return nil, fmt.Errorf("directories of topic %s carry two topic ids (%s in %s): refusing to choose; move the wrong ones aside",
					f.topic, base64.RawURLEncoding.EncodeToString(f.id[:]), f.path(r.opts.LogDirs))
			}
			for int(f.partition) >= len(rt.dirs) {
				rt.dirs = append(rt.dirs, -1)
				rt.hasMeta = append(rt.hasMeta, false)
			}
			if err := place(rt, f); err != nil {
				return nil, err
			}
		default:
			plan.strays = append(plan.strays, f)
		}
	}
	names := make([]string, 0, len(recovered))
	for name := range recovered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		plan.topics = append(plan.topics, recovered[name])
		plan.persist = true
	}
	// Tombstones whose directories are all gone are done; the rest stay
	// until their removal succeeds.
	pending := map[[16]byte]bool{}
	for _, f := range plan.deletes {
		pending[f.id] = true
	}
	if len(stored.Creating) > 0 {
		plan.persist = true // the table stops recording them
	}
	for _, ts := range stored.Deleted {
		if pending[ts.ID] {
			plan.tombstones = append(plan.tombstones, ts)
		} else {
			plan.persist = true
		}
	}
	for _, pt := range plan.topics {
		for i, d := range pt.dirs {
			if pt.recovered || d != pt.st.PartitionDirs[i] {
				plan.persist = true
			}
		}
	}
	return plan, nil
}

// unfinishedCreate reports whether f was made by a create the table
// recorded as in progress when the broker stopped: the create's topic name,
// a partition it was creating, and its topic id or none yet (the crash came
// before partition.metadata was written; the create refused to start when
// any of its directories existed, so one without an id is its own).
func unfinishedCreate(creating []storedCreate, f foundDir) bool {
	for _, c := range creating {
		if c.Name == f.topic && f.partition >= c.First && (!f.hasID || f.id == c.ID) {
			return true
		}
	}
	return false
}

// applyStartup carries out a plan: topics opened, then strays set aside
// and recorded deletions finished. REQUIRES: managers open.
func (r *Registry) applyStartup(plan *startupPlan) error {
	r.tombstones = plan.tombstones
	r.generation = plan.generation
	// A partition recreated empty must not open a stray that has its
	// name: set those strays aside first (the only writes before the
	// opens).
	plan.resolveMissing(len(r.mgrs))
	recreate := map[string]bool{}
	for _, pt := range plan.topics {
		for i, d := range pt.missing {
			if d {
				recreate[filepath.Join(r.opts.LogDirs[pt.dirs[i]], partitionDirName(pt.st.Name, int32(i)))] = true
			}
		}
	}
	if err := r.setAsideStrays(plan.strays, recreate); err != nil {
		return err
	}
	var needMeta []*Partition
	for _, pt := range plan.topics {
		st := pt.st
		t := &Topic{Name: st.Name, ID: st.ID, Configs: st.Configs, regMu: &r.mu}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		var err error
		if t.settings, err = r.resolveSettings(t.Configs); err != nil {
			return fmt.Errorf("topic %s: %w", t.Name, err)
		}
		if pt.recovered {
			r.log.Error("topic rebuilt from its partition directories: no copy of the topic table listed it; its config overrides are lost (defaults apply)",
				zap.String("topic", t.Name), zap.Int("partitions", len(pt.dirs)))
		}
		for i, missing := range pt.missing {
			if missing {
				r.log.Error("partition directory missing from every log dir (a replaced or unmounted disk?); recreating it empty",
					zap.String("topic", t.Name), zap.Int("partition", i), zap.String("dir", r.opts.LogDirs[pt.dirs[i]]))
			}
		}
		if t.Partitions, err = r.openPartitions(t, 0, pt.dirs, false); err != nil {
			return err
		}
		for i, p := range t.Partitions {
			if !pt.hasMeta[i] && p.Local() {
				needMeta = append(needMeta, p)
			}
		}
		r.topics[t.Name] = t
		r.byID[t.ID] = t
	}
	// Every partition is open: only now set strays aside and finish
	// recorded deletions, so that a start refused above has renamed and
	// removed nothing.
	if err := r.setAsideStrays(plan.strays, nil); err != nil {
		return err
	}
	for _, path := range r.deleted {
		r.log.Info("removing a partition directory whose removal a stop interrupted", zap.String("dir", path))
		if err := r.opts.FS.RemoveAll(path); err != nil {
			r.log.Warn("cannot remove a partition directory renamed for removal; will retry at the next start", zap.String("dir", path), zap.Error(err))
		}
	}
	r.deleted = nil
	for _, f := range plan.deletes {
		path := f.path(r.opts.LogDirs)
		r.log.Info("removing a partition directory the topic table accounts for as deleted or as an unfinished create", zap.String("dir", path))
		if err := r.opts.FS.RemoveAll(path); err != nil {
			r.log.Warn("cannot remove a deleted topic's partition directory; will retry at the next start", zap.String("dir", path), zap.Error(err))
		}
	}
	if err := r.writePartitionMetadata(needMeta); err != nil {
		return err
	}
	if plan.persist {
		return r.persistLocked()
	}
	return nil
}

// setAsideStrays renames each stray directory (only those whose path is in
// only, if only is not nil) to <name>.<32 hex>-stray.
func (r *Registry) setAsideStrays(strays []foundDir, only map[string]bool) error {
	for _, f := range strays {
		if only != nil && !only[f.path(r.opts.LogDirs)] {
			continue
		}
		if _, err := r.opts.FS.Lstat(f.path(r.opts.LogDirs)); os.IsNotExist(err) {
			continue // set aside already
		}
		var suffix [16]byte
		if _, err := rand.Read(suffix[:]); err != nil {
			return err
		}
		from := f.path(r.opts.LogDirs)
		to := from + "." + hex.EncodeToString(suffix[:]) + straySuffix
		if err := r.opts.FS.Rename(from, to); err != nil {
			return fmt.Errorf("setting aside %s, which no topic accounts for: %w", from, err)
		}
		r.log.Warn("a directory no topic accounts for was set aside (renamed, nothing deleted); move it back under its old name only with a topic table that lists it",
			zap.String("dir", from), zap.String("renamed_to", to), zap.Bool("has_topic_id", f.hasID))
	}
	return nil
}

// partitionPath is the directory of p.
func (r *Registry) partitionPath(p *Partition) string {
	return filepath.Join(r.opts.LogDirs[p.dir], partitionDirName(p.Topic.Name, p.Index))
}

// writePartitionMetadata writes partition.metadata into each partition's
// directory, several at a time (writeMetadataFile).
func (r *Registry) writePartitionMetadata(parts []*Partition) error {
	errs := make([]error, len(parts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(len(parts), partitionMetadataParallelism); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(parts) {
					return
				}
				p := parts[i]
				if !p.Local() {
					continue
				}
				path := filepath.Join(r.partitionPath(p), partitionMetadataFile)
				if err := r.writeFile(path, encodePartitionMetadata(p.Topic.ID)); err != nil {
					errs[i] = fmt.Errorf("writing %s: %w", path, err)
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeMetadataFile writes the topic table crash-safely
// (storage.WriteFileAtomic: two fsyncs) and partition.metadata atomically but
// without fsync: a create is acknowledged by the table, and a
// partition.metadata lost or torn in a crash only means the next start
// identifies that directory by the table and its name, and writes the file
// again. (Fsyncing it doubled the fsyncs of creating a partition.)
func (r *Registry) writeMetadataFile(path string, data []byte) error {
	fs := r.opts.FS
	if filepath.Base(path) != partitionMetadataFile {
		return storage.WriteFileAtomic(fs, path, data)
	}
	tmp := path + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = fs.WriteAt(f, data, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return fs.Rename(tmp, path)
}

// partitionMetadataParallelism bounds concurrent partition.metadata writes
// (fsync bound, like storage.OpenLogs).
const partitionMetadataParallelism = 8

// lockLogDirs takes every log dir's lock. REQUIRES: nothing read yet.
func (r *Registry) lockLogDirs() error {
	seen := map[string]string{}
	for _, dir := range r.opts.LogDirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		if prev, ok := seen[abs]; ok {
			return fmt.Errorf("log.dirs lists %s twice (as %q and %q)", abs, prev, dir)
		}
		seen[abs] = dir
	}
	for _, dir := range r.opts.LogDirs {
		l, err := storage.LockDir(r.opts.FS, dir)
		if err != nil {
			return err
		}
		r.locks = append(r.locks, l)
	}
	return nil
}

// releaseLocks drops the log dir locks.
func (r *Registry) releaseLocks() {
	for _, l := range r.locks {
		l.Release()
	}
	r.locks = nil
}
