// Package metadata holds the cluster metadata records of issue 15, modelled
// on Kafka's KRaft metadata records (apache/kafka
// metadata/src/main/resources/common/metadata/*.json) so that a later move
// to Kafka's own quorum protocol is a transport change: broker registration,
// fencing, topics with UUID ids, partitions with replicas, ISR, leader and
// epochs, configs, producer id blocks and feature levels.
//
// Records are framed as Kafka frames them in __cluster_metadata (its
// MetadataRecordSerde): an unsigned varint frame version (1), an unsigned
// varint api key, an unsigned varint record version, then the record body
// in the flexible encoding (compact lengths, tagged fields). Decode is
// bounded: no count is trusted past the bytes that could hold it, and
// malformed input is an error, never a panic.
//
// Image is the immutable metadata a node has replayed: brokers, topics by
// name and by id, partitions, configs, feature levels and the producer id
// block end. Image.Apply returns the next image and a Delta of what the
// record changed (topics and partitions added, changed or removed, brokers,
// configs), and refuses a record inconsistent with the image (a partition
// of an unknown topic id, a fence at a stale broker epoch) with an error.
//
// Nothing uses this package yet: issue 15 wires it to the raft log (every
// node replays the records into an immutable metadata image and reacts to
// each delta) and to the controller that proposes them.
package metadata
