package controller

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// maxPartitionsPerTopic bounds one topic, as the broker's own registry
// does; maxPartitionsPerRequest bounds the records one CreateTopics or
// CreatePartitions emits (topics past it fail with INVALID_PARTITIONS).
const (
	maxPartitionsPerTopic   = 100000
	maxPartitionsPerRequest = 200000
)

// CreateTopics answers CreateTopics (key 19). Per topic, in Kafka's order
// of checks:
//   - a name given twice in the request: INVALID_REQUEST; a name outside
//     Kafka's rules: INVALID_TOPIC_EXCEPTION; an existing topic:
//     TOPIC_ALREADY_EXISTS; a name that differs from an existing one only
//     by '.' against '_': INVALID_TOPIC_EXCEPTION;
//   - a null, unknown or invalid config: INVALID_CONFIG;
//   - a replica assignment together with a partition count or a
//     replication factor: INVALID_REQUEST; an assignment whose
//     partitions are not 0..n-1, whose replica lists differ in length,
//     are empty, repeat a broker or name an unregistered one, or whose
//     replicas are all inactive: INVALID_REPLICA_ASSIGNMENT;
//   - replication factor -1 is default.replication.factor, 0 or below -1
//     INVALID_REPLICATION_FACTOR; partitions -1 is num.partitions, 0 or
//     below -1 (or above 100,000) INVALID_PARTITIONS; a replication
//     factor above the active brokers INVALID_REPLICATION_FACTOR;
//   - validate_only: every check, no records, zero topic id.
//
// Records: TopicRecord, a PartitionRecord per partition (ISR the active
// replicas, leader the first of them; placed partitions have every
// replica active) and a ConfigRecord per config given, in name order.
//
// Differences from Kafka: no create.topic.policy; the response carries no
// configs (v5+): the broker that forwarded the request describes them
// with its own defaults.
func (c *Controller) CreateTopics(img metadata.Image, req *kmsg.CreateTopicsRequest) (*kmsg.CreateTopicsResponse, []metadata.Record) {
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.Version = req.Version
	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	b := newBatch(img)
	answered := map[string]bool{}
	for i := range req.Topics {
		t := &req.Topics[i]
		if count[t.Topic] > 1 {
			if !answered[t.Topic] {
				answered[t.Topic] = true
				resp.Topics = append(resp.Topics, createTopicError(t.Topic, kerr.InvalidRequest.Code, errMsg("duplicate topic name %s in the request", t.Topic)))
			}
			continue
		}
		resp.Topics = append(resp.Topics, c.createTopic(b, t, req.Version, req.ValidateOnly))
	}
	return resp, b.done()
}

func createTopicError(topic string, code int16, msg *string) kmsg.CreateTopicsResponseTopic {
	t := kmsg.NewCreateTopicsResponseTopic()
	t.Topic, t.ErrorCode, t.ErrorMessage = topic, code, msg
	return t
}

func (c *Controller) createTopic(b *batch, t *kmsg.CreateTopicsRequestTopic, version int16, validateOnly bool) kmsg.CreateTopicsResponseTopic {
	fail := func(code int16, format string, args ...any) kmsg.CreateTopicsResponseTopic {
		return createTopicError(t.Topic, code, errMsg(format, args...))
	}
	img := b.image()
	if msg := invalidTopicName(t.Topic); msg != "" {
		return fail(kerr.InvalidTopicException.Code, "%s", msg)
	}
	if _, ok := img.TopicByName(t.Topic); ok {
		return fail(kerr.TopicAlreadyExists.Code, "topic %s already exists", t.Topic)
	}
	if other := collidingTopic(img, t.Topic); other != "" {
		return fail(kerr.InvalidTopicException.Code, "topic '%s' collides with existing topic: %s", t.Topic, other)
	}
	// Configs before partitions, as Kafka checks them.
	configs := map[string]string{}
	for _, cf := range t.Configs {
		if cf.Value == nil {
			return fail(kerr.InvalidConfig.Code, "null value not supported for topic config %s", cf.Name)
		}
		configs[cf.Name] = *cf.Value
	}
	if _, err := c.topicCfg.TopicSettings(configs); err != nil {
		return fail(kerr.InvalidConfig.Code, "%v", err)
	}
	var assignment [][]int32
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return fail(kerr.InvalidRequest.Code, "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time")
		}
		if len(t.ReplicaAssignment) > maxPartitionsPerTopic {
			return fail(kerr.InvalidPartitions.Code, "%d partitions is more than %d", len(t.ReplicaAssignment), maxPartitionsPerTopic)
		}
		if b.newPartitions+len(t.ReplicaAssignment) > maxPartitionsPerRequest {
			return fail(kerr.InvalidPartitions.Code, "the request creates more than %d partitions", maxPartitionsPerRequest)
		}
		assignment = make([][]int32, len(t.ReplicaAssignment))
		for _, a := range t.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(assignment) || assignment[a.Partition] != nil {
				return fail(kerr.InvalidReplicaAssignment.Code, "partitions should be a consecutive 0-based integer sequence")
			}
			if msg := c.invalidReplicas(img, a.Replicas); msg != "" {
				return fail(kerr.InvalidReplicaAssignment.Code, "partition %d: %s", a.Partition, msg)
			}
			if len(a.Replicas) != len(t.ReplicaAssignment[0].Replicas) {
				return fail(kerr.InvalidReplicaAssignment.Code, "all partitions in the manual partition assignment must have the same replication factor")
			}
			assignment[a.Partition] = slices.Clone(a.Replicas)
		}
	} else {
		partitions, rf := t.NumPartitions, t.ReplicationFactor
		if partitions == -1 {
			partitions = c.cfg.DefaultPartitions
		}
		if rf == -1 {
			rf = c.cfg.DefaultReplicationFactor
		}
		if rf <= 0 {
			return fail(kerr.InvalidReplicationFactor.Code, "replication factor must be larger than 0, or -1 to use the default value")
		}
		if partitions <= 0 || partitions > maxPartitionsPerTopic {
			return fail(kerr.InvalidPartitions.Code, "number of partitions was set to an invalid value (%d)", partitions)
		}
		if b.newPartitions+int(partitions) > maxPartitionsPerRequest {
			return fail(kerr.InvalidPartitions.Code, "the request creates more than %d partitions", maxPartitionsPerRequest)
		}
		pl := c.placerFor(b)
		pl.forTopic(nil)
		if int(rf) > len(pl.order) {
			return fail(kerr.InvalidReplicationFactor.Code, "unable to replicate the partition %d time(s): the target replication factor of %d cannot be reached because only %d broker(s) are registered and unfenced", rf, rf, len(pl.order))
		}
		assignment = make([][]int32, partitions)
		for i := range assignment {
			assignment[i] = pl.place(int(rf))
		}
	}
	out := kmsg.NewCreateTopicsResponseTopic()
	out.Topic = t.Topic
	out.NumPartitions, out.ReplicationFactor = int32(len(assignment)), int16(len(assignment[0]))
	if version >= 5 {
		// v5+ answers carry the topic's configs, as DescribeConfigs would
		// show them. Never null: the Java admin client dereferences them
		// whenever NumPartitions is set.
		out.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
		for _, e := range c.topicCfg.DescribeTopic(configs) {
			out.Configs = append(out.Configs, kmsg.CreateTopicsResponseTopicConfig{
				Name: e.Name, Value: e.Value, ReadOnly: e.ReadOnly, Source: int8(e.Source),
			})
		}
	}
	if validateOnly {
		return out
	}
	id := c.newTopicID(img)
	out.TopicID = id
	b.add(&metadata.TopicRecord{Name: t.Topic, TopicID: id})
	c.addPartitions(b, id, 0, assignment)
	for _, name := range sortedKeys(configs) {
		v := configs[name]
		b.add(&metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: t.Topic, Name: name, Value: &v})
	}
	return out
}

// addPartitions adds PartitionRecords for partitions first.. of topic id.
func (c *Controller) addPartitions(b *batch, id metadata.UUID, first int32, assignment [][]int32) {
	img := b.image()
	b.newPartitions += len(assignment)
	for i, replicas := range assignment {
		isr := slices.DeleteFunc(slices.Clone(replicas), func(r int32) bool { return !c.active(img, r) })
		b.add(&metadata.PartitionRecord{PartitionID: first + int32(i), TopicID: id, Replicas: replicas,
			ISR: isr, Leader: isr[0]})
	}
}

// newTopicID returns a fresh topic id no topic has.
func (c *Controller) newTopicID(img metadata.Image) metadata.UUID {
	for {
		id := c.cfg.NewUUID()
		if _, taken := img.TopicByID(id); id != (metadata.UUID{}) && !taken {
			return id
		}
	}
}

// invalidReplicas says what is wrong with a manual replica list (empty,
// a broker twice, an unregistered broker, none active), "" if nothing.
func (c *Controller) invalidReplicas(img metadata.Image, replicas []int32) string {
	if len(replicas) == 0 {
		return "no replicas"
	}
	anyActive := false
	for i, r := range replicas {
		if slices.Contains(replicas[:i], r) {
			return fmt.Sprintf("broker %d is listed twice", r)
		}
		if _, ok := img.Broker(r); !ok {
			return fmt.Sprintf("broker %d is not registered", r)
		}
		anyActive = anyActive || c.active(img, r)
	}
	if !anyActive {
		return fmt.Sprintf("all brokers of %v are fenced or in controlled shutdown", replicas)
	}
	return ""
}

// invalidTopicName applies Kafka's rules (1-249 characters of
// [a-zA-Z0-9._-], not "." or ".."); it returns what is wrong, or "".
func invalidTopicName(name string) string {
	switch {
	case name == "":
		return "topic name is empty"
	case name == "." || name == "..":
		return fmt.Sprintf("topic name cannot be %q", name)
	case len(name) > 249:
		return "topic name is longer than 249 characters"
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return fmt.Sprintf("topic name %q has a character outside [a-zA-Z0-9._-]", name)
		}
	}
	return ""
}

// collidingTopic returns an existing topic whose name differs from name
// only by '.' against '_' (Kafka refuses those: the two would share metric
// names), or "".
func collidingTopic(img metadata.Image, name string) string {
	if !strings.ContainsAny(name, "._") {
		return ""
	}
	norm := strings.ReplaceAll(name, ".", "_")
	for _, t := range img.Topics() {
		if t.Name != name && strings.ReplaceAll(t.Name, ".", "_") == norm {
			return t.Name
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DeleteTopics answers DeleteTopics (key 20): by name (v0-5, and v6+
// entries with a name) or by id (v6+ entries with a null name). Unknown
// names: UNKNOWN_TOPIC_OR_PARTITION; unknown ids: UNKNOWN_TOPIC_ID; an
// entry with both a name and an id, or a topic named twice:
// INVALID_REQUEST. A RemoveTopicRecord per topic (the image drops its
// configs with it).
func (c *Controller) DeleteTopics(img metadata.Image, req *kmsg.DeleteTopicsRequest) (*kmsg.DeleteTopicsResponse, []metadata.Record) {
	resp := kmsg.NewPtrDeleteTopicsResponse()
	resp.Version = req.Version
	b := newBatch(img)
	entries := req.Topics
	for _, n := range req.TopicNames {
		entries = append(entries, kmsg.DeleteTopicsRequestTopic{Topic: &n})
	}
	deleted := map[metadata.UUID]bool{}
	for _, e := range entries {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = e.Topic, e.TopicID
		cur := b.image()
		var t *metadata.Topic
		var ok bool
		if e.Topic != nil && e.TopicID != (metadata.UUID{}) {
			rt.ErrorCode, rt.ErrorMessage = kerr.InvalidRequest.Code, errMsg("you may not specify both topic name and topic id")
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		if e.Topic != nil {
			if t, ok = cur.TopicByName(*e.Topic); !ok {
				rt.ErrorCode, rt.ErrorMessage = kerr.UnknownTopicOrPartition.Code, errMsg("unknown topic %s", *e.Topic)
			}
		} else if t, ok = cur.TopicByID(e.TopicID); !ok {
			rt.ErrorCode, rt.ErrorMessage = kerr.UnknownTopicID.Code, errMsg("unknown topic id %x", e.TopicID)
		}
		if !ok {
			if id, was := deletedID(img, e); was && deleted[id] {
				rt.ErrorCode, rt.ErrorMessage = kerr.InvalidRequest.Code, errMsg("topic given twice in the request")
			}
		}
		if ok {
			name := t.Name
			rt.Topic, rt.TopicID = &name, t.ID
			deleted[t.ID] = true
			b.add(&metadata.RemoveTopicRecord{TopicID: t.ID})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, b.done()
}

// deletedID returns the id entry e names in img, the image before the
// request.
func deletedID(img metadata.Image, e kmsg.DeleteTopicsRequestTopic) (metadata.UUID, bool) {
	if e.Topic != nil {
		t, ok := img.TopicByName(*e.Topic)
		if !ok {
			return metadata.UUID{}, false
		}
		return t.ID, true
	}
	_, ok := img.TopicByID(e.TopicID)
	return e.TopicID, ok
}

// CreatePartitions answers CreatePartitions (key 37): an unknown topic is
// UNKNOWN_TOPIC_OR_PARTITION; a count not above the current one (or above
// 100,000) INVALID_PARTITIONS; an assignment whose length is not the
// number of new partitions, or whose lists are invalid as in
// CreateTopics, INVALID_REPLICA_ASSIGNMENT. New partitions take the
// replication factor of partition 0 and are placed as CreateTopics
// places them.
func (c *Controller) CreatePartitions(img metadata.Image, req *kmsg.CreatePartitionsRequest) (*kmsg.CreatePartitionsResponse, []metadata.Record) {
	resp := kmsg.NewPtrCreatePartitionsResponse()
	resp.Version = req.Version
	b := newBatch(img)
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		rt.ErrorCode, rt.ErrorMessage = c.createPartitions(b, &t, req.ValidateOnly)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, b.done()
}

func (c *Controller) createPartitions(b *batch, req *kmsg.CreatePartitionsRequestTopic, validateOnly bool) (int16, *string) {
	img := b.image()
	t, ok := img.TopicByName(req.Topic)
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, errMsg("unknown topic %s", req.Topic)
	}
	have := int32(len(t.Partitions))
	switch {
	case req.Count < have:
		return kerr.InvalidPartitions.Code, errMsg("topic currently has %d partitions, which is higher than the requested %d", have, req.Count)
	case req.Count == have:
		return kerr.InvalidPartitions.Code, errMsg("topic already has %d partitions", have)
	case req.Count > maxPartitionsPerTopic:
		return kerr.InvalidPartitions.Code, errMsg("%d partitions is more than %d", req.Count, maxPartitionsPerTopic)
	}
	if b.newPartitions+int(req.Count-have) > maxPartitionsPerRequest {
		return kerr.InvalidPartitions.Code, errMsg("the request creates more than %d partitions", maxPartitionsPerRequest)
	}
	// The replication factor is partition 0's, without the replicas a
	// reassignment in progress is removing.
	rf := len(t.Partitions[0].Replicas) - len(t.Partitions[0].RemovingReplicas)
	if rf == 0 { // a topic without partitions
		rf = int(c.cfg.DefaultReplicationFactor)
	}
	var assignment [][]int32
	if req.Assignment != nil {
		if int32(len(req.Assignment)) != req.Count-have {
			return kerr.InvalidReplicaAssignment.Code, errMsg("attempted to add %d additional partitions, but only %d assignments were specified", req.Count-have, len(req.Assignment))
		}
		for i, a := range req.Assignment {
			if msg := c.invalidReplicas(img, a.Replicas); msg != "" {
				return kerr.InvalidReplicaAssignment.Code, errMsg("partition %d: %s", have+int32(i), msg)
			}
			if len(a.Replicas) != rf {
				return kerr.InvalidReplicaAssignment.Code, errMsg("partition %d: replication factor %d, the topic's is %d", have+int32(i), len(a.Replicas), rf)
			}
			assignment = append(assignment, slices.Clone(a.Replicas))
		}
	} else {
		pl := c.placerFor(b)
		pl.forTopic(t)
		if rf > len(pl.order) {
			return kerr.InvalidReplicationFactor.Code, errMsg("unable to replicate the partition %d time(s): only %d broker(s) are registered and unfenced", rf, len(pl.order))
		}
		for range req.Count - have {
			assignment = append(assignment, pl.place(rf))
		}
	}
	if !validateOnly {
		c.addPartitions(b, t.ID, have, assignment)
	}
	return 0, nil
}
