package metadata

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/ringbroker/ringbroker/quota"
)

// Broker is a registered broker in an Image.
type Broker struct {
	ID                   int32
	IncarnationID        UUID
	Epoch                int64
	Endpoints            []Endpoint
	Rack                 string
	Fenced               bool
	InControlledShutdown bool
}

// Partition is one partition's replica state in an Image.
type Partition struct {
	Replicas         []int32
	ISR              []int32
	RemovingReplicas []int32
	AddingReplicas   []int32
	Leader           int32
	// LeaderRecoveryState is 1 while a leader elected uncleanly recovers.
	LeaderRecoveryState int8
	LeaderEpoch         int32
	PartitionEpoch      int32
	// ELR is KIP-966's eligible leader replicas: replicas that left the
	// ISR while it was below min.insync.replicas and so hold every record
	// the ISR acknowledged. When the ISR is empty the controller may
	// elect one of them cleanly. Nil when empty.
	ELR []int32
	// LastKnownELR is the replicas that were in the ISR or the ELR when
	// the ISR shrank below min.insync.replicas and have since left the
	// ELR (an unclean shutdown): the last replicas known to have had the
	// data, for an operator choosing an unclean election. Nil when empty.
	LastKnownELR []int32
}

// Topic is a topic in an Image. Its Partitions map belongs to the image:
// callers must not modify it.
type Topic struct {
	Name       string
	ID         UUID
	Partitions map[int32]Partition
}

// ConfigResource names what a config set belongs to.
type ConfigResource struct {
	Type int8 // ResourceTopic or ResourceBroker
	Name string
}

// PartitionRef names one partition of a topic by id.
type PartitionRef struct {
	TopicID   UUID
	Partition int32
}

// Delta is what one applied record changed, for the broker to react to
// (open or close partition logs, become leader or follower).
type Delta struct {
	AddedTopics       []UUID
	RemovedTopics     []Topic // as they were, with their partitions
	AddedPartitions   []PartitionRef
	ChangedPartitions []PartitionRef
	ChangedBrokers    []int32
	ChangedConfigs    []ConfigResource
	ChangedFeatures   []string
	// ChangedScram and ChangedACLs: a SCRAM credential or an ACL was
	// added or removed (security_records.go).
	ChangedScram bool
	ChangedACLs  bool
	// ChangedQuotas: a client quota changed (Image.Quotas).
	ChangedQuotas bool
}

// Image is an immutable view of the cluster metadata: Apply returns a new
// Image and leaves the receiver as it was, so a reader holding an Image
// never sees it change. The zero Image is empty.
//
// Apply copies what it changes (copy on write): the small maps whole, the
// topics and their names one shard of a shardMap at a time, and a topic's
// partitions map; ApplyAll copies each once per batch.
type Image struct {
	brokers        map[int32]Broker
	topics         shardMap[UUID, *Topic]
	names          shardMap[string, UUID]
	configs        map[ConfigResource]map[string]string
	features       map[string]int16
	producerIDsEnd int64
	scram          map[ScramKey]UserScramCredentialRecord // security_records.go
	acls           map[UUID]AccessControlEntryRecord
	// quotas are the client quota configs (ClientQuotaRecords): an
	// immutable quota.Set, so it needs no copy on write here.
	quotas quota.Set
}

// Quotas returns the client quota configs.
func (im Image) Quotas() quota.Set { return im.quotas }

// Broker returns the broker with id.
func (im Image) Broker(id int32) (Broker, bool) {
	b, ok := im.brokers[id]
	return b, ok
}

// Brokers returns every registered broker, by id.
func (im Image) Brokers() []Broker {
	out := slices.Collect(maps.Values(im.brokers))
	slices.SortFunc(out, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// TopicByID returns the topic with id.
func (im Image) TopicByID(id UUID) (*Topic, bool) {
	return im.topics.get(id)
}

// TopicByName returns the topic named name.
func (im Image) TopicByName(name string) (*Topic, bool) {
	id, ok := im.names.get(name)
	if !ok {
		return nil, false
	}
	return im.topics.get(id)
}

// Topics returns every topic, by name.
func (im Image) Topics() []*Topic {
	out := im.topics.values()
	slices.SortFunc(out, func(a, b *Topic) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Configs returns a copy of the configs set on a resource.
func (im Image) Configs(res ConfigResource) map[string]string {
	return maps.Clone(im.configs[res])
}

// FeatureLevel returns a feature's finalized level.
func (im Image) FeatureLevel(name string) (int16, bool) {
	l, ok := im.features[name]
	return l, ok
}

// ProducerIDsEnd is the end of the last producer id block handed out.
func (im Image) ProducerIDsEnd() int64 { return im.producerIDsEnd }

// clone returns m copied, ready to change (a nil m gives an empty map).
func clone[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	maps.Copy(out, m)
	return out
}

// Apply returns the image with rec applied and what changed. A record
// inconsistent with the image (a partition of an unknown topic, a topic
// name or id that exists, a fence of an unknown broker or epoch) is an
// error and the image is returned unchanged.
func (im Image) Apply(rec Record) (Image, Delta, error) {
	next := im
	d, err := next.apply(rec, &owned{})
	if err != nil {
		return im, Delta{}, err
	}
	return next, d, nil
}

// ApplyAll applies recs in order, as Apply would one at a time, and
// returns the image after the last and each record's delta; it copies
// each map it changes once for the whole batch rather than once per
// record, which is what replaying a log or a snapshot wants. A record
// the image refuses fails the whole batch: the error names its index and
// the receiver is returned unchanged.
func (im Image) ApplyAll(recs []Record) (Image, []Delta, error) {
	next := im
	o := &owned{}
	deltas := make([]Delta, 0, len(recs))
	for i, rec := range recs {
		d, err := next.apply(rec, o)
		if err != nil {
			return im, nil, fmt.Errorf("record %d: %w", i, err)
		}
		deltas = append(deltas, d)
	}
	return next, deltas, nil
}

// owned records which of an image's maps apply has already copied in
// this batch (and may so change in place): the receiver's own maps are
// never changed.
type owned struct {
	brokers, configs, features bool
	scram, acls                bool
	topics, names              shardOwner
	topic                      map[UUID]bool
	config                     map[ConfigResource]bool
}

// own copies *m unless done says this batch did already.
func own[K comparable, V any](m *map[K]V, done *bool) {
	if !*done {
		*m = clone(*m)
		*done = true
	}
}

// apply applies rec to im in place, copying through o; a refused record
// leaves im as it was.
func (im *Image) apply(rec Record, o *owned) (Delta, error) {
	var d Delta
	switch r := rec.(type) {
	case *RegisterBrokerRecord:
		own(&im.brokers, &o.brokers)
		im.brokers[r.BrokerID] = Broker{ID: r.BrokerID, IncarnationID: r.IncarnationID, Epoch: r.BrokerEpoch,
			Endpoints: slices.Clone(r.Endpoints), Rack: r.Rack, Fenced: r.Fenced, InControlledShutdown: r.InControlledShutdown}
		d.ChangedBrokers = []int32{r.BrokerID}
	case *UnregisterBrokerRecord:
		if _, err := im.brokerAt(r.BrokerID, r.BrokerEpoch); err != nil {
			return Delta{}, err
		}
		own(&im.brokers, &o.brokers)
		delete(im.brokers, r.BrokerID)
		d.ChangedBrokers = []int32{r.BrokerID}
	case *FenceBrokerRecord, *UnfenceBrokerRecord:
		id, epoch, fenced := brokerFencing(r)
		b, err := im.brokerAt(id, epoch)
		if err != nil {
			return Delta{}, err
		}
		b.Fenced = fenced
		own(&im.brokers, &o.brokers)
		im.brokers[id] = b
		d.ChangedBrokers = []int32{id}
	case *TopicRecord:
		if r.Name == "" || r.TopicID == (UUID{}) {
			return Delta{}, fmt.Errorf("metadata: topic record with an empty name or zero id")
		}
		if _, ok := im.names.get(r.Name); ok {
			return Delta{}, fmt.Errorf("metadata: topic %q exists", r.Name)
		}
		if _, ok := im.topics.get(r.TopicID); ok {
			return Delta{}, fmt.Errorf("metadata: topic id %x exists", r.TopicID)
		}
		im.topics.set(&o.topics, r.TopicID, &Topic{Name: r.Name, ID: r.TopicID, Partitions: map[int32]Partition{}})
		o.ownTopic(r.TopicID)
		im.names.set(&o.names, r.Name, r.TopicID)
		d.AddedTopics = []UUID{r.TopicID}
	case *RemoveTopicRecord:
		t, ok := im.topics.get(r.TopicID)
		if !ok {
			return Delta{}, fmt.Errorf("metadata: remove of unknown topic id %x", r.TopicID)
		}
		im.topics.delete(&o.topics, r.TopicID)
		im.names.delete(&o.names, t.Name)
		res := ConfigResource{Type: ResourceTopic, Name: t.Name}
		if _, ok := im.configs[res]; ok {
			own(&im.configs, &o.configs)
			delete(im.configs, res)
			d.ChangedConfigs = []ConfigResource{res}
		}
		d.RemovedTopics = []Topic{*t}
	case *PartitionRecord:
		t, ok := im.topics.get(r.TopicID)
		if !ok {
			return Delta{}, fmt.Errorf("metadata: partition %d of unknown topic id %x", r.PartitionID, r.TopicID)
		}
		if r.PartitionID < 0 || len(r.Replicas) == 0 {
			return Delta{}, fmt.Errorf("metadata: partition %d of %q: bad id or no replicas", r.PartitionID, t.Name)
		}
		if r.Leader != NoLeader && !slices.Contains(r.Replicas, r.Leader) {
			return Delta{}, fmt.Errorf("metadata: partition %d of %q: leader %d not a replica", r.PartitionID, t.Name, r.Leader)
		}
		ref := PartitionRef{TopicID: r.TopicID, Partition: r.PartitionID}
		if _, ok := t.Partitions[r.PartitionID]; ok {
			d.ChangedPartitions = []PartitionRef{ref}
		} else {
			d.AddedPartitions = []PartitionRef{ref}
		}
		im.setPartition(o, t, r.PartitionID, Partition{Replicas: slices.Clone(r.Replicas), ISR: slices.Clone(r.ISR),
			RemovingReplicas: nilIfEmpty(r.RemovingReplicas), AddingReplicas: nilIfEmpty(r.AddingReplicas),
			Leader: r.Leader, LeaderRecoveryState: r.LeaderRecoveryState, LeaderEpoch: r.LeaderEpoch,
			PartitionEpoch: r.PartitionEpoch, ELR: nilIfEmpty(r.EligibleLeaderReplicas), LastKnownELR: nilIfEmpty(r.LastKnownELR)})
	case *PartitionChangeRecord:
		t, ok := im.topics.get(r.TopicID)
		if !ok {
			return Delta{}, fmt.Errorf("metadata: change of partition %d of unknown topic id %x", r.PartitionID, r.TopicID)
		}
		p, ok := t.Partitions[r.PartitionID]
		if !ok {
			return Delta{}, fmt.Errorf("metadata: change of unknown partition %d of %q", r.PartitionID, t.Name)
		}
		if r.Replicas != nil {
			if len(r.Replicas) == 0 {
				return Delta{}, fmt.Errorf("metadata: change of partition %d of %q to no replicas", r.PartitionID, t.Name)
			}
			p.Replicas = slices.Clone(r.Replicas)
		}
		if r.ISR != nil {
			p.ISR = slices.Clone(r.ISR)
		}
		if r.RemovingReplicas != nil {
			p.RemovingReplicas = nilIfEmpty(r.RemovingReplicas)
		}
		if r.AddingReplicas != nil {
			p.AddingReplicas = nilIfEmpty(r.AddingReplicas)
		}
		if r.LeaderRecoveryState != NoRecoveryStateChange {
			p.LeaderRecoveryState = r.LeaderRecoveryState
		}
		if r.EligibleLeaderReplicas != nil {
			p.ELR = nilIfEmpty(r.EligibleLeaderReplicas)
		}
		if r.LastKnownELR != nil {
			p.LastKnownELR = nilIfEmpty(r.LastKnownELR)
		}
		if r.Leader == NoLeaderChange && p.Leader != NoLeader && !slices.Contains(p.Replicas, p.Leader) {
			return Delta{}, fmt.Errorf("metadata: partition %d of %q: leader %d no longer a replica", r.PartitionID, t.Name, p.Leader)
		}
		if r.Leader != NoLeaderChange {
			if r.Leader != NoLeader && !slices.Contains(p.Replicas, r.Leader) {
				return Delta{}, fmt.Errorf("metadata: partition %d of %q: leader %d not a replica", r.PartitionID, t.Name, r.Leader)
			}
			p.Leader = r.Leader
			p.LeaderEpoch++
		}
		p.PartitionEpoch++
		im.setPartition(o, t, r.PartitionID, p)
		d.ChangedPartitions = []PartitionRef{{TopicID: r.TopicID, Partition: r.PartitionID}}
	case *ConfigRecord:
		res := ConfigResource{Type: r.ResourceType, Name: r.ResourceName}
		switch r.ResourceType {
		case ResourceTopic:
			if _, ok := im.names.get(r.ResourceName); !ok {
				return Delta{}, fmt.Errorf("metadata: config of unknown topic %q", r.ResourceName)
			}
		case ResourceBroker: // "" is the cluster default
		default:
			return Delta{}, fmt.Errorf("metadata: config of unsupported resource type %d", r.ResourceType)
		}
		set := im.configs[res]
		if !o.config[res] || set == nil {
			set = clone(set)
			if o.config == nil {
				o.config = map[ConfigResource]bool{}
			}
			o.config[res] = true
		}
		if r.Value == nil {
			delete(set, r.Name)
		} else {
			set[r.Name] = *r.Value
		}
		own(&im.configs, &o.configs)
		if len(set) == 0 {
			delete(im.configs, res)
		} else {
			im.configs[res] = set
		}
		d.ChangedConfigs = []ConfigResource{res}
	case *FeatureLevelRecord:
		own(&im.features, &o.features)
		im.features[r.Name] = r.FeatureLevel
		d.ChangedFeatures = []string{r.Name}
	case *ClientQuotaRecord:
		c, err := r.QuotaChange()
		if err != nil {
			return Delta{}, fmt.Errorf("metadata: client quota record: %w", err)
		}
		im.quotas = im.quotas.Apply(c)
		d.ChangedQuotas = true
	case *ProducerIDsRecord:
		if r.ProducerIDsEnd <= im.producerIDsEnd {
			return Delta{}, fmt.Errorf("metadata: producer id block end %d not past %d", r.ProducerIDsEnd, im.producerIDsEnd)
		}
		im.producerIDsEnd = r.ProducerIDsEnd
	case *UserScramCredentialRecord, *RemoveUserScramCredentialRecord, *AccessControlEntryRecord, *RemoveAccessControlEntryRecord:
		if err := im.applySecurity(rec, o, &d); err != nil { // security_records.go
			return Delta{}, err
		}
	default:
		return Delta{}, fmt.Errorf("metadata: cannot apply %T", rec)
	}
	return d, nil
}

func nilIfEmpty(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func brokerFencing(rec Record) (id int32, epoch int64, fenced bool) {
	if r, ok := rec.(*FenceBrokerRecord); ok {
		return r.ID, r.Epoch, true
	}
	r := rec.(*UnfenceBrokerRecord)
	return r.ID, r.Epoch, false
}

// brokerAt returns broker id if it is registered at epoch.
func (im Image) brokerAt(id int32, epoch int64) (Broker, error) {
	b, ok := im.brokers[id]
	if !ok {
		return Broker{}, fmt.Errorf("metadata: unknown broker %d", id)
	}
	if b.Epoch != epoch {
		return Broker{}, fmt.Errorf("metadata: broker %d is at epoch %d, not %d", id, b.Epoch, epoch)
	}
	return b, nil
}

// setPartition sets partition id of topic t to p, copying t first unless
// this batch did already.
func (im *Image) setPartition(o *owned, t *Topic, id int32, p Partition) {
	if !o.topic[t.ID] {
		t = &Topic{Name: t.Name, ID: t.ID, Partitions: clone(t.Partitions)}
		im.topics.set(&o.topics, t.ID, t)
		o.ownTopic(t.ID)
	}
	t.Partitions[id] = p
}

func (o *owned) ownTopic(id UUID) {
	if o.topic == nil {
		o.topic = map[UUID]bool{}
	}
	o.topic[id] = true
}
