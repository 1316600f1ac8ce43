package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func strp(s string) *string { return &s }

var (
	topicA = UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	incA   = UUID{0xaa, 0xbb}
)

// samples holds at least one value of every record type, and every
// version and null/empty distinction the encoding keeps.
func samples() []Record {
	return []Record{
		&RegisterBrokerRecord{BrokerID: 1, IncarnationID: incA, BrokerEpoch: 7,
			Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092, SecurityProtocol: 0}},
			Features:  []BrokerFeature{{Name: "metadata.version", MinSupportedVersion: 1, MaxSupportedVersion: 20}},
			Rack:      "r1", Fenced: true},
		&RegisterBrokerRecord{Ver: 1, BrokerID: 2, InControlledShutdown: true},
		&RegisterBrokerRecord{Ver: 2, BrokerID: 3, IsMigratingZkBroker: true, Endpoints: []Endpoint{{Port: 65535}}},
		&RegisterBrokerRecord{Ver: 3, BrokerID: 4, LogDirs: []UUID{{1}, {2}}, Fenced: true},
		&RegisterBrokerRecord{Ver: 3, BrokerID: 5},
		&UnregisterBrokerRecord{BrokerID: 1, BrokerEpoch: 9},
		&TopicRecord{Name: "orders", TopicID: topicA},
		&PartitionRecord{PartitionID: 0, TopicID: topicA, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2},
			Leader: 1, LeaderEpoch: 4, PartitionEpoch: 6},
		&PartitionRecord{PartitionID: 1, TopicID: topicA, Replicas: []int32{1}, ISR: []int32{1},
			AddingReplicas: []int32{2}, Leader: NoLeader, LeaderRecoveryState: 1, LeaderEpoch: -1, PartitionEpoch: -1},
		&PartitionRecord{Ver: 1, PartitionID: 2, TopicID: topicA, Replicas: []int32{1, 2}, ISR: []int32{1},
			Leader: 1, Directories: []UUID{{7}, {8}}},
		&PartitionRecord{Ver: 2, PartitionID: 3, TopicID: topicA, Replicas: []int32{1, 2}, ISR: []int32{1},
			Leader: 1, Directories: []UUID{{7}, {8}}, EligibleLeaderReplicas: []int32{2}, LastKnownELR: []int32{}},
		&PartitionRecord{Ver: 2, PartitionID: 4, TopicID: topicA, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: strp("1000")},
		&ConfigRecord{ResourceType: ResourceBroker, ResourceName: "", Name: "log.retention.ms", Value: strp("")},
		&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "orders", Name: "retention.ms"},
		&PartitionChangeRecord{PartitionID: 2, TopicID: topicA, Leader: NoLeaderChange, LeaderRecoveryState: NoRecoveryStateChange},
		&PartitionChangeRecord{PartitionID: 2, TopicID: topicA, ISR: []int32{3}, Leader: 3, LeaderRecoveryState: NoRecoveryStateChange},
		&PartitionChangeRecord{PartitionID: 2, TopicID: topicA, ISR: []int32{}, Leader: NoLeader, Replicas: []int32{1, 2},
			RemovingReplicas: []int32{}, AddingReplicas: []int32{2}, LeaderRecoveryState: 0},
		&PartitionChangeRecord{Ver: 2, PartitionID: 2, TopicID: topicA, ISR: []int32{}, Leader: NoLeader,
			LeaderRecoveryState: NoRecoveryStateChange, EligibleLeaderReplicas: []int32{1, 3}, LastKnownELR: []int32{}},
		&PartitionChangeRecord{Ver: 2, PartitionID: 2, TopicID: topicA, Leader: NoLeaderChange,
			LeaderRecoveryState: NoRecoveryStateChange, LastKnownELR: []int32{4}},
		&FenceBrokerRecord{ID: 1, Epoch: 7},
		&UnfenceBrokerRecord{ID: 1, Epoch: 7},
		&RemoveTopicRecord{TopicID: topicA},
		&FeatureLevelRecord{Name: "metadata.version", FeatureLevel: 20},
		&ProducerIDsRecord{BrokerID: 1, BrokerEpoch: 7, ProducerIDsEnd: 2000},
		&ClientQuotaRecord{Entity: []QuotaEntityData{{Type: "user", Name: strp("alice")}, {Type: "client-id"}},
			QuotaKey: "producer_byte_rate", Value: 1024},
		&ClientQuotaRecord{Entity: []QuotaEntityData{{Type: "client-id", Name: strp("c")}}, QuotaKey: "request_percentage", Remove: true},
	}
}

func TestRoundTrip(t *testing.T) {
	seen := map[APIKey]bool{}
	for _, rec := range samples() {
		seen[rec.Key()] = true
		b := Encode(nil, rec)
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%T %+v: %v", rec, rec, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, rec)
		}
		// Every proper prefix is an error, never a panic.
		for i := range b {
			if _, err := Decode(b[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%T prefix %d/%d: err %v", rec, i, len(b), err)
			}
		}
		if _, err := Decode(append(b, 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T with a trailing byte: err %v", rec, err)
		}
	}
	for _, k := range []APIKey{KeyRegisterBroker, KeyUnregisterBroker, KeyTopic, KeyPartition, KeyConfig,
		KeyPartitionChange, KeyFenceBroker, KeyUnfenceBroker, KeyRemoveTopic, KeyFeatureLevel, KeyProducerIDs, KeyClientQuota} {
		if !seen[k] {
			t.Errorf("no sample for api key %d", k)
		}
	}
}

// TestKafkaBytes pins the framing and one body byte for byte against the
// layout of Kafka's generated TopicRecord (flexible v0): frame version 1,
// api key 2, version 0, compact string, uuid, empty tags.
func TestKafkaBytes(t *testing.T) {
	got := Encode(nil, &TopicRecord{Name: "ab", TopicID: topicA})
	want := append([]byte{1, 2, 0, 3, 'a', 'b'}, topicA[:]...)
	want = append(want, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	// PartitionChangeRecord: tags sorted, each (tag, size, body).
	got = Encode(nil, &PartitionChangeRecord{PartitionID: 1, TopicID: topicA, ISR: []int32{5}, Leader: 5,
		LeaderRecoveryState: NoRecoveryStateChange})
	want = append([]byte{1, 5, 0, 0, 0, 0, 1}, topicA[:]...)
	want = append(want, 2, 0, 5, 2, 0, 0, 0, 5, 1, 4, 0, 0, 0, 5)
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
}

// TestDecodeOldPartitionChange decodes a version 0 PartitionChangeRecord
// as every metadata log and snapshot written before eligible leader
// replicas has them, byte for byte: it still decodes, changes no ELR, and
// a tag 6 in a version 0 record is an unknown tag, skipped.
func TestDecodeOldPartitionChange(t *testing.T) {
	old := append([]byte{1, 5, 0, 0, 0, 0, 1}, topicA[:]...)
	old = append(old, 2, 0, 5, 2, 0, 0, 0, 5, 1, 4, 0, 0, 0, 5)
	rec, err := Decode(old)
	if err != nil {
		t.Fatal(err)
	}
	want := &PartitionChangeRecord{PartitionID: 1, TopicID: topicA, ISR: []int32{5}, Leader: 5,
		LeaderRecoveryState: NoRecoveryStateChange}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("got %+v\nwant %+v", rec, want)
	}
	if got := Encode(nil, rec); !bytes.Equal(got, old) {
		t.Fatalf("re-encoded % x\nwant % x", got, old)
	}
	withTag6 := append([]byte{1, 5, 0, 0, 0, 0, 1}, topicA[:]...)
	withTag6 = append(withTag6, 1, 6, 2, 2, 9)
	rec, err = Decode(withTag6)
	if err != nil {
		t.Fatal(err)
	}
	if r := rec.(*PartitionChangeRecord); r.EligibleLeaderReplicas != nil {
		t.Fatalf("v0 record read tag 6 as ELR: %v", r.EligibleLeaderReplicas)
	}
	// The image: an old-format partition and change apply with no ELR.
	var im Image
	im, _, err = im.ApplyAll([]Record{&TopicRecord{Name: "t", TopicID: topicA},
		&PartitionRecord{PartitionID: 1, TopicID: topicA, Replicas: []int32{5, 6}, ISR: []int32{5, 6}, Leader: 6}, want})
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := im.TopicByID(topicA)
	if p := tp.Partitions[1]; p.ELR != nil || p.LastKnownELR != nil || p.Leader != 5 {
		t.Fatalf("partition %+v", p)
	}
}

// TestPartitionChangeELRBytes pins version 2's ELR tags (6 and 7, after
// tag 5) in Kafka's layout.
func TestPartitionChangeELRBytes(t *testing.T) {
	got := Encode(nil, &PartitionChangeRecord{Ver: 2, PartitionID: 1, TopicID: topicA, ISR: []int32{},
		Leader: NoLeaderChange, LeaderRecoveryState: NoRecoveryStateChange, EligibleLeaderReplicas: []int32{5}, LastKnownELR: []int32{}})
	want := append([]byte{1, 5, 2, 0, 0, 0, 1}, topicA[:]...)
	want = append(want, 3, 0, 1, 1, 6, 5, 2, 0, 0, 0, 5, 7, 1, 1)
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	topic := Encode(nil, &TopicRecord{Name: "t", TopicID: topicA})
	cases := map[string][]byte{
		"empty":           nil,
		"frame version 0": append([]byte{0}, topic[1:]...),
		"unknown key":     {1, 99, 0, 0},
		"unknown version": {1, 2, 1, 0},
		"partition v3":    {1, 3, 3, 0},
		"register v4":     {1, 0, 4, 0},
		"change v3":       {1, 5, 3, 0},
		// A PartitionRecord claiming 2^28 replicas in a few bytes must
		// fail on the count, not allocate for it.
		"huge count": append(append([]byte{1, 3, 0, 0, 0, 0, 0}, topicA[:]...), 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0),
		// Non-nullable replicas as null.
		"null replicas": append(append([]byte{1, 3, 0, 0, 0, 0, 0}, topicA[:]...), 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		// A known tag whose body is longer than its field.
		"tag overlong": append(append([]byte{1, 5, 0, 0, 0, 0, 1}, topicA[:]...), 1, 1, 5, 0, 0, 0, 5, 9),
		// A tag size past the end.
		"tag past end": append(append([]byte{1, 5, 0, 0, 0, 0, 1}, topicA[:]...), 1, 7, 100, 0),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestUnknownTagsSkipped(t *testing.T) {
	b := Encode(nil, &TopicRecord{Name: "t", TopicID: topicA})
	b = append(b[:len(b)-1], 1, 9, 2, 0xde, 0xad) // one unknown tag, 2 bytes
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (&TopicRecord{Name: "t", TopicID: topicA}); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v want %+v", got, want)
	}
}

func FuzzRecord(f *testing.F) {
	// base is the image the samples that apply cleanly build (all but
	// the topic removal), for each decoded record to be applied to: Apply
	// must not panic on any record, and must accept or refuse it without
	// touching base.
	var base Image
	for _, rec := range samples() {
		f.Add(Encode(nil, rec))
		if _, remove := rec.(*RemoveTopicRecord); remove {
			continue
		}
		if next, _, err := base.Apply(rec); err == nil {
			base = next
		}
	}
	for i, rec := range securitySamples() { // security_records_test.go
		f.Add(Encode(nil, rec))
		if i < 2 { // the credential and the ACL, not their removals
			if next, _, err := base.Apply(rec); err == nil {
				base = next
			}
		}
	}
	if len(base.Topics()) == 0 || len(base.Brokers()) == 0 {
		f.Fatal("the samples built no image")
	}
	baseDump := dump(base)
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		b2 := Encode(nil, rec)
		rec2, err := Decode(b2)
		if err != nil {
			t.Fatalf("re-encoded %T does not decode: %v\n% x", rec, err, b2)
		}
		if !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("re-encode changed the value:\n%+v\n%+v", rec, rec2)
		}
		_, _, _ = base.Apply(rec) // accepted or refused, it must not panic
		if dump(base) != baseDump {
			t.Fatalf("Apply(%+v) changed the image it was called on", rec)
		}
	})
}

func TestApplyAllRefusal(t *testing.T) {
	base, _, err := Image{}.Apply(&TopicRecord{Name: "a", TopicID: topicA})
	if err != nil {
		t.Fatal(err)
	}
	before := dump(base)
	recs := []Record{
		&PartitionRecord{TopicID: topicA, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&PartitionChangeRecord{TopicID: topicA, Leader: NoLeader, LeaderRecoveryState: NoRecoveryStateChange},
		&PartitionRecord{TopicID: UUID{9}, Replicas: []int32{1}},
	}
	got, deltas, err := base.ApplyAll(recs)
	if err == nil || !strings.HasPrefix(err.Error(), "record 2: ") {
		t.Fatalf("err %v, want a refusal of record 2", err)
	}
	if deltas != nil || dump(got) != before || dump(base) != before {
		t.Fatalf("a refused batch changed the image:\n%s", dump(got))
	}
}

// FuzzBatch: the quorum entry payload decoder never panics, and what it
// decodes encodes back to the same bytes.
func FuzzBatch(f *testing.F) {
	f.Add(EncodeBatch(nil, []Record{&TopicRecord{Name: "t", TopicID: UUID{1}}, &FenceBrokerRecord{ID: 1, Epoch: 2}}))
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeBatch(b)
		if err != nil {
			return
		}
		again, err := DecodeBatch(EncodeBatch(nil, recs))
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-decoding %d records: %v", len(recs), err)
		}
	})
}
