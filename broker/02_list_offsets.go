package broker

// ListOffsets (key 2), versions 1-8.
//
// Behaviour, per partition:
//   - -2 (earliest) and -4 (earliest local, v8; we have no tiered storage):
//     the log start offset, timestamp -1.
//   - -1 (latest): the high watermark; with isolation_level 1
//     (read_committed), the last stable offset
//     (produce_txn.go; the partition's producer state is loaded first, on
//     its produce worker, while the request waits on a goroutine; a failed
//     load answers KAFKA_STORAGE_ERROR). Timestamp -1.
//   - -3 (max timestamp, v7+): the first record carrying the largest
//     timestamp and that timestamp (as Kafka 3.8+, offsetOfMaxTimestamp);
//     offset -1 and timestamp -1 on an empty log.
//   - any other timestamp: the first record at or after the log start
//     whose timestamp is >= it, and its timestamp: storage.ListOffset finds the
//     batch through the .timeindex, list_offsets_exact.go reads it back
//     (decompressing) and walks its records; offset -1 and timestamp -1
//     when there is none (Kafka's UNKNOWN_OFFSET), or, read_committed, when it is at or past the last stable offset
//     (Kafka's lastFetchableOffset; -3 too).
//   - unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; a partition
//     named twice: INVALID_REQUEST; current_leader_epoch (v4+) above ours
//     (always 0): UNKNOWN_LEADER_EPOCH, below it (but not -1):
//     FENCED_LEADER_EPOCH. Found offsets carry leader epoch 0, v4+.
//
// Threads: earliest/latest are in-memory and answered on the ring thread;
// a request with a real timestamp or -3 preads (and may decompress) a
// batch, so it is answered from a goroutine.
//
// Differences from Apache Kafka: OFFSET_NOT_AVAILABLE never occurs (no
// leader changes).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// timestampEarliestLocal is ListOffsets' -4 (KIP-405).
const timestampEarliestLocal = -4

func init() {
	register(decoded(kmsg.ListOffsets, 1, 8, copying, (*Broker).serveListOffsets))
}

func (b *Broker) serveListOffsets(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.ListOffsetsRequest) {
	hdr.ClientID = nil // aliases the frame
	slow := false
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			if readsBatch(p.Timestamp) || b.committedLatest(r, p.Timestamp) || b.committedLookup(r, p.Timestamp) {
				slow = true
			}
		}
	}
	if slow {
		go b.answerListOffsets(req, hdr, r)
		return
	}
	b.answerListOffsets(req, hdr, r)
}

func (b *Broker) answerListOffsets(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.ListOffsetsRequest) {
	resp := kmsg.ListOffsetsResponse{Version: hdr.APIVersion}
	seen := partitionCounts{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			seen.add(t.Topic, p.Partition)
		}
	}
	for _, t := range r.Topics {
		rt := kmsg.ListOffsetsResponseTopic{Topic: t.Topic}
		described := b.authorize(req, acl.OpDescribe, acl.ResourceTopic, t.Topic) // authz.go
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			if !described {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if seen.repeated(t.Topic, p.Partition) {
				rp.ErrorCode = kerr.InvalidRequest.Code
			} else {
				b.listOffset(&rp, t.Topic, p, b.committedLatest(r, p.Timestamp), b.committedLookup(r, p.Timestamp))
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.replyMsg(req, &hdr, &resp)
}

// committedLatest: a latest (-1) lookup answered with the LSO.
func (b *Broker) committedLatest(r *kmsg.ListOffsetsRequest, ts int64) bool {
	return r.IsolationLevel == 1 && ts == storage.TimestampLatest
}

// committedLookup: a timestamp (or -3) lookup whose answer must be below
// the LSO.
func (b *Broker) committedLookup(r *kmsg.ListOffsetsRequest, ts int64) bool {
	return r.IsolationLevel == 1 && readsBatch(ts)
}

// listOffset answers one partition. stable: answer latest with the last
// stable offset; belowStable: answer a lookup only below it. Both may wait
// for a load (REQUIRES: not a ring thread).
func (b *Broker) listOffset(rp *kmsg.ListOffsetsResponseTopicPartition, topic string, p kmsg.ListOffsetsRequestTopicPartition, stable, belowStable bool) {
	part, code := b.servedPartition(topic, p.Partition)
	if part == nil {
		rp.ErrorCode = code
		return
	}
	if code := checkPartitionEpoch(part, p.CurrentLeaderEpoch); code != 0 {
		rp.ErrorCode = code
		return
	}
	if part.Log.DirOffline() { // its log dir failed (log_dir_failure.go)
		rp.ErrorCode = kerr.KafkaStorageError.Code
		return
	}
	if stable {
		ps := b.produce.part(part)
		loaded := make(chan error, 1)
		ps.ensureLoaded(func(err error) { loaded <- err })
		if err := <-loaded; err != nil {
			rp.ErrorCode = kerr.KafkaStorageError.Code
			return
		}
		rp.Offset, rp.Timestamp, rp.LeaderEpoch = ps.lastStableOffset(), -1, part.leaderEpoch.Load()
		return
	}
	ts := p.Timestamp
	if ts == timestampEarliestLocal {
		ts = storage.TimestampEarliest
	}
	off, at, found := part.Log.ListOffset(ts)
	if !found {
		return // offset -1, timestamp -1, leader epoch -1
	}
	if readsBatch(ts) {
		if off, at, found = exactListOffset(part.Log, ts, off, at); !found {
			return // offset -1, timestamp -1, leader epoch -1
		}
	}
	if belowStable {
		ps := b.produce.part(part)
		loaded := make(chan error, 1)
		ps.ensureLoaded(func(err error) { loaded <- err })
		if err := <-loaded; err != nil {
			rp.ErrorCode = kerr.KafkaStorageError.Code
			return
		}
		if off >= ps.lastStableOffset() {
			return // not fetchable read_committed: offset -1, timestamp -1
		}
	}
	rp.Offset, rp.Timestamp, rp.LeaderEpoch = off, at, part.leaderEpoch.Load()
}

// partitionCounts counts how often a request names each partition: Kafka
// answers INVALID_REQUEST for every occurrence of a partition named twice
// (ListOffsets, DeleteRecords).
type partitionCounts map[storage.TopicPartition]int

func (c partitionCounts) add(topic string, partition int32) {
	c[storage.TopicPartition{Topic: topic, Partition: partition}]++
}

func (c partitionCounts) repeated(topic string, partition int32) bool {
	return c[storage.TopicPartition{Topic: topic, Partition: partition}] > 1
}
