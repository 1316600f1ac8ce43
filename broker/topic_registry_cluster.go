package broker

import (
	"fmt"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"

	"go.uber.org/zap"
)

// Cluster mode (issue 15): the metadata log is the source of truth for
// topics, and the registry follows it. The node's metadata listener calls
// SyncTopic for every topic a delta touches and RemoveTopic for every topic
// a RemoveTopic record removes; the registry opens logs only for the
// partitions this node holds a replica of (the others are remote: Log nil,
// remoteDir in the table) and keeps its own table, so a start opens the
// same logs before the metadata log is replayed.

// clusterMetadataTopic is the metadata quorum's log directory's topic
// name (__cluster_metadata-0, as in Kafka).
const clusterMetadataTopic = "__cluster_metadata"

// SyncTopic makes the registry's topic name match the cluster's: topic id
// id, len(local) partitions of which this node holds those with local[i],
// and config overrides configs. It creates the topic, adds partitions,
// opens logs for partitions that became local and applies changed
// configs. It never deletes: a topic of that name with another id (deleted
// and created again while this node was away) is refused with an error and
// its logs are kept, for the operator to set aside.
func (r *Registry) SyncTopic(name string, id [16]byte, local []bool, configs map[string]string) error {
	if configs == nil {
		configs = map[string]string{}
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	t := r.Topic(name)
	if t != nil && t.ID != id {
		return fmt.Errorf("topic %s: the cluster metadata has topic id %x, this node's logs belong to id %x; keeping them and not serving the topic here (move its directories aside to let the new topic in)", name, id, t.ID)
	}
	if t == nil {
		settings, err := r.resolveSettings(configs)
		if err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		t = &Topic{Name: name, ID: id, Configs: configs, settings: settings, regMu: &r.mu}
		if t.Partitions, err = r.createPartitionLogs(t, 0, r.clusterDirs(0, local)); err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		r.mu.Lock()
		r.topics[name] = t
		r.byID[id] = t
		r.mu.Unlock()
		if err := r.persistLocked(); err != nil {
			// The logs stay: the next start finds them as strays and
			// sets them aside, the delta is applied again after replay.
			r.mu.Lock()
			delete(r.topics, name)
			delete(r.byID, id)
			r.mu.Unlock()
			r.closeLocal(t.Partitions)
			return fmt.Errorf("topic %s: persisting the topic table: %w", name, err)
		}
		r.log.Info("topic created from the cluster metadata", zap.String("topic", name), zap.Int("partitions", len(local)), zap.Int("local", countTrue(local)))
		return nil
	}
	r.mu.RLock()
	parts := t.Partitions
	oldConfigs := t.Configs
	r.mu.RUnlock()
	changed := false
	next := append([]*Partition(nil), parts...)
	// Partitions that became local (a reassignment moved a replica here).
	for i := 0; i < len(parts) && i < len(local); i++ {
		if local[i] && !parts[i].Local() {
			p, err := r.createPartitionLogs(t, int32(i), r.clusterDirs(int32(i), []bool{true}))
			if err != nil {
				return fmt.Errorf("topic %s: %w", name, err)
			}
			next[i] = p[0]
			changed = true
		} else if !local[i] && parts[i].Local() {
			// The replica moved away and RemoveReplicas (called first)
			// failed to drop it: it stays, serving nothing new since
			// Metadata names the replicas elsewhere.
			r.log.Warn("partition no longer assigned to this node; keeping its log", zap.String("topic", name), zap.Int("partition", i))
		}
	}
	if len(local) > len(parts) {
		added, err := r.createPartitionLogs(t, int32(len(parts)), r.clusterDirs(int32(len(parts)), local[len(parts):]))
		if err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		next = append(next, added...)
		changed = true
	}
	cfgChanged := !maps.Equal(oldConfigs, configs)
	if !changed && !cfgChanged {
		return nil
	}
	settings := t.settings
	if cfgChanged {
		var err error
		if settings, err = r.resolveSettings(configs); err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
	}
	r.mu.Lock()
	oldParts, oldSettings := t.Partitions, t.settings
	t.Partitions, t.Configs, t.settings = next, configs, settings
	r.mu.Unlock()
	if err := r.persistLocked(); err != nil {
		r.mu.Lock()
		t.Partitions, t.Configs, t.settings = oldParts, oldConfigs, oldSettings
		r.mu.Unlock()
		r.unpersistLocked(err)
		return fmt.Errorf("topic %s: persisting the topic table: %w", name, err)
	}
	if cfgChanged {
		for _, p := range next {
			if p.Local() {
				if err := p.Log.SetConfig(settings.log); err != nil {
					r.log.Warn("topic config not fully applied to an open log", zap.String("topic", name), zap.Int32("partition", p.Index), zap.Error(err))
				}
			}
		}
	}
	return nil
}

// RemoveTopic deletes topic name if it has topic id id: the cluster
// metadata removed it (a RemoveTopic record, DeleteTopics' durable
// decision). Another id or no such topic: nothing to do.
func (r *Registry) RemoveTopic(name string, id [16]byte) error {
	t := r.Topic(name)
	if t == nil || t.ID != id {
		return nil
	}
	return r.deleteTopic(name)
}

// RemoveReplicas stops holding the partitions leaving of topic name (topic
// id id) here: the cluster metadata no longer lists this node among their
// replicas (a reassignment completed or was cancelled; in KRaft the
// replicas include those being added and removed, so this is the durable
// end of the move). The table is persisted with them remote first; then,
// live (setAside false: Kafka's ReplicaManager.applyDelta stopping them
// with deletion), their logs are deleted as DeleteTopics deletes them
// (deleteLocalLogs); on the first image after a start (setAside true: the
// node was away while the move completed) they are set aside as
// <dir>.<hex>-stray and kept, as Kafka's LogManager does with a log
// isStrayKraftReplica finds at startup. A crash between the two steps
// leaves a directory the table no longer claims: the next start sets it
// aside as stray, never deletes it. Another topic id, a partition not
// local, or a failed persist: nothing is removed.
func (r *Registry) RemoveReplicas(name string, id [16]byte, leaving []int32, setAside bool) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	t := r.Topic(name)
	if t == nil || t.ID != id {
		return nil
	}
	r.mu.RLock()
	parts := t.Partitions
	r.mu.RUnlock()
	next := append([]*Partition(nil), parts...)
	var gone []*Partition
	for _, i := range leaving {
		if i < 0 || int(i) >= len(parts) || !parts[i].Local() {
			continue
		}
		gone = append(gone, parts[i])
		next[i] = &Partition{Topic: t, Index: i, dir: remoteDir}
		next[i].notLeader.Store(true)
	}
	if len(gone) == 0 {
		return nil
	}
	r.mu.Lock()
	t.Partitions = next
	r.mu.Unlock()
	if err := r.persistLocked(); err != nil {
		r.mu.Lock()
		t.Partitions = parts
		r.mu.Unlock()
		r.unpersistLocked(err)
		return fmt.Errorf("topic %s: persisting the topic table: %w", name, err)
	}
	if !setAside {
		r.deleteLocalLogs(name, gone)
		for _, p := range gone {
			r.log.Info("replica deleted: the cluster metadata no longer assigns it to this node", zap.String("topic", name), zap.Int32("partition", p.Index))
		}
		return nil
	}
	for _, p := range gone {
		to, err := r.mgrs[p.dir].SetAsideLog(name, p.Index, straySuffix)
		if err != nil {
			r.log.Warn("setting aside a replica no longer assigned to this node", zap.String("topic", name), zap.Int32("partition", p.Index), zap.Error(err))
			continue
		}
		r.log.Warn("replica no longer assigned to this node (reassigned while it was away) set aside as stray: renamed, nothing deleted",
			zap.String("topic", name), zap.Int32("partition", p.Index), zap.String("renamed_to", to))
	}
	return nil
}

// errClusterManaged: a single-node topic change asked of a registry the
// cluster metadata drives (a bug: such requests go to the controller).
var errClusterManaged = fmt.Errorf("%w: topics of a cluster change only through the controller", kerr.NotController)

// ManagedByCluster makes the cluster metadata the only source of topic
// changes: from now on CreateTopic, DeleteTopic, CreatePartitions and
// SetTopicConfigs refuse, and only SyncTopic and RemoveTopic change topics.
// Every partition, those opened at start from the topic table and those
// opened later, starts as not led here (notLeader): only the image makes
// this node a leader (Broker.syncTopic). A node restarted after a SIGKILL
// would otherwise take produces into the partitions it used to lead, at
// the old epoch, until its first image: acknowledged, then truncated away.
// REQUIRES: called before the broker serves (broker.New).
func (r *Registry) ManagedByCluster() {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.clusterManaged.Store(true)
	for _, t := range r.Topics() {
		r.mu.RLock()
		parts := t.Partitions
		r.mu.RUnlock()
		for _, p := range parts {
			p.notLeader.Store(true)
		}
	}
}

// clusterDirs gives partitions first.. the log dir each local one is
// created in (round-robin) and remoteDir for the others.
func (r *Registry) clusterDirs(first int32, local []bool) []int {
	dirs := make([]int, len(local))
	for i, l := range local {
		dirs[i] = remoteDir
		if l {
			dirs[i] = r.onlineDir(int(first + int32(i)))
		}
	}
	return dirs
}

// closeLocal closes the logs of parts that are open.
func (r *Registry) closeLocal(parts []*Partition) {
	for _, p := range parts {
		if p.Local() {
			p.Log.Close()
		}
	}
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// HasPartition reports whether topic has partition index, held here or
// (in a cluster) by another node: what committed offsets may name.
func (r *Registry) HasPartition(topic string, index int32) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.topics[topic]
	return t != nil && index >= 0 && int(index) < len(t.Partitions)
}
