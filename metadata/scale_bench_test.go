package metadata

import (
	"fmt"
	"runtime"
	"testing"
)

// Metadata scale (issue 15): an image of scaleTopics topics of
// scalePartitions partitions, each on three of three brokers. These
// benchmarks measure and report; none asserts a time. Run them once each:
//
//	go test -run '^$' -bench Scale -benchtime 1x ./metadata/
const (
	scaleTopics     = 10_000
	scalePartitions = 10
	scaleBrokers    = 3
)

// scaleRecords returns the records of the scale image: the brokers, then
// each topic followed by its partitions, leaders spread round robin.
func scaleRecords() []Record {
	recs := make([]Record, 0, scaleBrokers+scaleTopics*(1+scalePartitions))
	for id := range int32(scaleBrokers) {
		recs = append(recs, &RegisterBrokerRecord{Ver: 1, BrokerID: id, IncarnationID: UUID{15: byte(id + 1)}, BrokerEpoch: int64(id),
			Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(9092 + id)}}})
	}
	for i := range scaleTopics {
		id := scaleTopicID(i)
		recs = append(recs, &TopicRecord{Name: fmt.Sprintf("topic-%05d", i), TopicID: id})
		for p := range int32(scalePartitions) {
			lead := (int32(i) + p) % scaleBrokers
			replicas := []int32{lead, (lead + 1) % scaleBrokers, (lead + 2) % scaleBrokers}
			recs = append(recs, &PartitionRecord{PartitionID: p, TopicID: id, Replicas: replicas,
				ISR: replicas, Leader: lead, LeaderEpoch: 0, PartitionEpoch: 0})
		}
	}
	return recs
}

func scaleTopicID(i int) UUID {
	return UUID{0: 0xff, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}
}

// scaleImage builds the scale image.
func scaleImage(b *testing.B) Image {
	b.Helper()
	im, _, err := Image{}.ApplyAll(scaleRecords())
	if err != nil {
		b.Fatal(err)
	}
	return im
}

const scalePartitionsTotal = scaleTopics * scalePartitions

// BenchmarkScaleBuild builds the image from its records with ApplyAll,
// as a node replaying its metadata log in one batch does.
func BenchmarkScaleBuild(b *testing.B) {
	recs := scaleRecords()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := (Image{}).ApplyAll(recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/scalePartitionsTotal, "ns/partition")
}

// BenchmarkScaleSnapshotRoundTrip is the raft snapshot path: Records,
// EncodeBatch on the leader, DecodeBatch and ApplyAll on the follower.
func BenchmarkScaleSnapshotRoundTrip(b *testing.B) {
	im := scaleImage(b)
	b.ReportAllocs()
	b.ResetTimer()
	var size int
	for range b.N {
		data := EncodeBatch(nil, im.Records())
		size = len(data)
		recs, err := DecodeBatch(data)
		if err != nil {
			b.Fatal(err)
		}
		next, _, err := Image{}.ApplyAll(recs)
		if err != nil {
			b.Fatal(err)
		}
		if next.topics.len() != scaleTopics {
			b.Fatalf("%d topics after the round trip", next.topics.len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/scalePartitionsTotal, "ns/partition")
	b.ReportMetric(float64(size), "snapshot-bytes")
	b.ReportMetric(float64(size)/scalePartitionsTotal, "snapshot-B/partition")
}

// BenchmarkScaleHeap reports the live heap the image holds per partition
// (topics, names and brokers included): HeapAlloc after a GC with the
// image reachable, less HeapAlloc after a GC before it was built.
func BenchmarkScaleHeap(b *testing.B) {
	recs := scaleRecords()
	var perPartition float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		im, _, err := Image{}.ApplyAll(recs)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(im)
		perPartition = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / scalePartitionsTotal
	}
	b.ReportMetric(perPartition, "B/partition")
}

// BenchmarkScaleApplyPartitionChange is one more Apply of a single
// PartitionChangeRecord (an ISR shrink) on the scale image: the copy on
// write cost a committed AlterPartition pays.
func BenchmarkScaleApplyPartitionChange(b *testing.B) {
	im := scaleImage(b)
	rec := &PartitionChangeRecord{PartitionID: 3, TopicID: scaleTopicID(scaleTopics / 2), ISR: []int32{0, 1},
		Leader: NoLeaderChange, LeaderRecoveryState: NoRecoveryStateChange}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := im.Apply(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleApplyTopic is one more Apply of a single TopicRecord on
// the scale image.
func BenchmarkScaleApplyTopic(b *testing.B) {
	im := scaleImage(b)
	rec := &TopicRecord{Name: "one-more", TopicID: UUID{0: 0xee}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := im.Apply(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleApplyNewTopic is the batch a CreateTopics of one topic of
// scalePartitions partitions commits: ApplyAll of its TopicRecord and
// PartitionRecords on the scale image.
func BenchmarkScaleApplyNewTopic(b *testing.B) {
	im := scaleImage(b)
	id := UUID{0: 0xee}
	recs := []Record{&TopicRecord{Name: "one-more", TopicID: id}}
	for p := range int32(scalePartitions) {
		recs = append(recs, &PartitionRecord{PartitionID: p, TopicID: id, Replicas: []int32{0, 1, 2}, ISR: []int32{0, 1, 2}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := im.ApplyAll(recs); err != nil {
			b.Fatal(err)
		}
	}
}
