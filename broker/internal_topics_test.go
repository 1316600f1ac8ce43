package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// commitOffset commits group's offset at for topic/0 and fails on error.
func commitOffset(t *testing.T, adm *kadm.Client, group, topic string, at int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
}

// wantCommitted checks group's committed offset for topic/0.
func wantCommitted(t *testing.T, adm *kadm.Client, group, topic string, at int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	if o, ok := fo.Lookup(topic, 0); !ok || o.At != at {
		t.Fatalf("group %s %s-0: committed %+v (found %v), want %d", group, topic, o, ok, at)
	}
}

// TestInternalTopicRefusals: clients cannot append to __consumer_offsets,
// delete it or delete its records (each INVALID_TOPIC_EXCEPTION), Metadata
// flags it internal, and committed offsets survive the attempts and a
// restart.
func TestInternalTopicRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, groupTestOptions)
		createTopic(t, tb, "data", 1)
		commitOffset(t, tb.admin(), "g", "data", 7)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		// Produce, non-idempotent (acks=1) and idempotent.
		for _, idempotent := range []bool{false, true} {
			opts := []kgo.Opt{kgo.RecordRetries(1), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}
			if idempotent {
				opts = []kgo.Opt{kgo.RecordRetries(1)}
			}
			cl := tb.client(opts...)
			res := cl.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Partition: 0, Value: []byte("x")})
			if err := res.FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
				t.Errorf("produce to %s (idempotent %v): %v, want INVALID_TOPIC_EXCEPTION", offsetsTopic, idempotent, err)
			}
		}
		// A raw Produce naming a partition beyond the topic: still refused
		// as internal, before the partition is looked up (as Kafka).
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = offsetsTopic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 999
		rp.Records = appendRecordBatch(nil, time.Now().UnixMilli(), [][2][]byte{{[]byte("k"), []byte("v")}})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		pr, err := req.RequestWith(ctx, tb.client())
		if err != nil {
			t.Fatal(err)
		}
		if code := pr.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
			t.Errorf("raw produce to %s-999: error %d, want INVALID_TOPIC_EXCEPTION", offsetsTopic, code)
		}

		adm := tb.admin()
		dr, err := adm.DeleteTopics(ctx, offsetsTopic)
		if err != nil {
			t.Fatal(err)
		}
		if err := dr[offsetsTopic].Err; !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("DeleteTopics %s: %v, want INVALID_TOPIC_EXCEPTION", offsetsTopic, err)
		}
		// By id (DeleteTopics v6).
		id := tb.Reg.Topic(offsetsTopic).ID
		dreq := kmsg.NewPtrDeleteTopicsRequest()
		dreq.Version = 6
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.TopicID = id
		dreq.Topics = append(dreq.Topics, dt)
		dresp, err := dreq.RequestWith(ctx, tb.client())
		if err != nil {
			t.Fatal(err)
		}
		if code := dresp.Topics[0].ErrorCode; code != kerr.InvalidTopicException.Code {
			t.Errorf("DeleteTopics %s by id: error %d, want INVALID_TOPIC_EXCEPTION", offsetsTopic, code)
		}
		if tb.Reg.Topic(offsetsTopic) == nil {
			t.Fatalf("%s was deleted", offsetsTopic)
		}

		recs, err := adm.DeleteRecords(ctx, kadm.Offsets{offsetsTopic: {0: {Topic: offsetsTopic, Partition: 0, At: -1}}})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := recs.Lookup(offsetsTopic, 0); !errors.Is(r.Err, kerr.InvalidTopicException) {
			t.Errorf("DeleteRecords %s-0: %v, want INVALID_TOPIC_EXCEPTION", offsetsTopic, r.Err)
		}

		md, err := adm.Metadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := md.Topics[offsetsTopic]; !ok || !d.IsInternal {
			t.Errorf("Metadata %s: listed %v, internal %v; want an internal topic", offsetsTopic, ok, d.IsInternal)
		}
		if md.Topics["data"].IsInternal {
			t.Errorf("Metadata: topic data flagged internal")
		}
		lt, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lt.Has(offsetsTopic) {
			t.Errorf("kadm ListTopics (which hides internal topics) lists %s", offsetsTopic)
		}

		tb.restart()
		wantCommitted(t, tb.admin(), "g", "data", 7)
	})
}

// TestMetadataAutoCreatesOffsetsTopicAsCoordinator: a Metadata request that
// auto-creates __consumer_offsets gives it the coordinator's partition count
// and compaction (a topic of num.partitions partitions left groups mapped to
// partitions that did not exist); the other internal names are not created.
func TestMetadataAutoCreatesOffsetsTopicAsCoordinator(t *testing.T) {
	tb := startTestBroker(t, testBackends[1], groupTestOptions)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	req.AllowAutoTopicCreation = true
	for _, name := range []string{offsetsTopic, "__transaction_state"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	if _, err := req.RequestWith(ctx, tb.client()); err != nil {
		t.Fatal(err)
	}
	tp := tb.Reg.Topic(offsetsTopic)
	if tp == nil || len(tp.Partitions) != 4 || tp.Settings().cleanupPolicy != "compact" {
		t.Fatalf("auto-created %s: %+v, want 4 compacted partitions", offsetsTopic, tp)
	}
	if tb.Reg.Topic("__transaction_state") != nil {
		t.Errorf("__transaction_state was auto-created")
	}
	commitOffset(t, tb.admin(), "g", offsetsTopic, 1) // any group maps to an existing partition
}

// nullKeyBatch is a coordinator-style batch whose one record has a null key
// (what `kcat -P -t __consumer_offsets` wrote before produce was refused).
func nullKeyBatch(t *testing.T) []byte {
	b := appendRecordBatch(nil, time.Now().UnixMilli(), [][2][]byte{{[]byte{}, []byte("x")}})
	// Record: length, attributes, timestamp delta, offset delta, key length.
	if b[proto.RecordBatchHeaderSize+4] != 0 {
		t.Fatalf("unexpected record layout % x", b[proto.RecordBatchHeaderSize:])
	}
	b[proto.RecordBatchHeaderSize+4] = 1 // zigzag varint -1: a null key
	recrc(b)
	return b
}

// TestOffsetsLoadSkipsMalformedRecords: records in __consumer_offsets the
// loader cannot use (a null key, an undecodable key, a compressed batch) are
// skipped and counted at start; the broker starts and the commits around
// them are loaded.
func TestOffsetsLoadSkipsMalformedRecords(t *testing.T) {
	tb := startTestBroker(t, testBackends[1], func(o *Options, _ *RegistryOptions) { o.OffsetsTopicNumPartitions = 1 })
	createTopic(t, tb, "data", 1)
	commitOffset(t, tb.admin(), "before", "data", 3)

	garbageKey := appendRecordBatch(nil, time.Now().UnixMilli(), [][2][]byte{{[]byte{0, 1, 0xff}, []byte("v")}})
	compressed := appendRecordBatch(nil, time.Now().UnixMilli(), [][2][]byte{{[]byte("k"), []byte("v")}})
	binary.BigEndian.PutUint16(compressed[21:], 1) // says gzip; the loader must not try
	recrc(compressed)
	l := tb.Reg.Partition(offsetsTopic, 0).Log
	for _, batch := range [][]byte{nullKeyBatch(t), garbageKey, compressed} {
		done := make(chan error, 1)
		if err := l.Append(batch, storage.AppendFunc(func(r storage.AppendResult) { done <- r.Err })); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	commitOffset(t, tb.admin(), "after", "data", 5)

	tb.restart() // used to fail: "loading consumer groups: malformed record batch"
	adm := tb.admin()
	wantCommitted(t, adm, "before", "data", 3)
	wantCommitted(t, adm, "after", "data", 5)
	commitOffset(t, adm, "later", "data", 9)
	wantCommitted(t, adm, "later", "data", 9)
}

// TestForEachRecordSkipsBadBatchOnly: a batch with an unparsable record is
// reported once and the batches after it are still read.
func TestForEachRecordSkipsBadBatchOnly(t *testing.T) {
	buf := appendRecordBatch(nil, 1, [][2][]byte{{[]byte("a"), []byte("1")}})
	bad := nullKeyBatch(t)
	binary.BigEndian.PutUint64(bad[0:], 1)
	buf = append(buf, bad...)
	good := appendRecordBatch(nil, 1, [][2][]byte{{[]byte("b"), []byte("2")}})
	binary.BigEndian.PutUint64(good[0:], 2)
	buf = append(buf, good...)
	var keys []string
	var skipped []int64
	next, err := forEachRecord(buf, func(_ int64, k, _ []byte) { keys = append(keys, string(k)) },
		func(base int64, why error) {
			if !errors.Is(why, errNullKey) {
				t.Errorf("skip reason %v, want the null key", why)
			}
			skipped = append(skipped, base)
		})
	if err != nil || next != 3 || len(keys) != 2 || keys[0] != "a" || keys[1] != "b" || len(skipped) != 1 || skipped[0] != 1 {
		t.Fatalf("next %d err %v keys %q skipped %v", next, err, keys, skipped)
	}
}

// TestDeletedTopicProducerStateGone: deleting a topic drops its partitions'
// producer state. It used to stay: every shutdown then failed to snapshot it
// into the missing dir, and a topic re-created under the same name got the
// old topic's snapshot in its new dir.
func TestDeletedTopicProducerStateGone(t *testing.T) {
	tb := startTestBroker(t, testBackends[1], nil)
	createTopic(t, tb, "gone", 1)
	createTopic(t, tb, "again", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner())) // idempotent by default
	for _, topic := range []string{"gone", "again"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	adm := tb.admin()
	for _, topic := range []string{"gone", "again"} {
		if r, err := adm.DeleteTopics(ctx, topic); err != nil || r[topic].Err != nil {
			t.Fatalf("delete %s: %v %v", topic, err, r[topic].Err)
		}
	}
	createTopic(t, tb, "again", 1)

	// Close snapshots every partition state it still holds: an error here is
	// what the daemon logged at every shutdown.
	ctxShut, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	if err := tb.Server.Shutdown(ctxShut); err != nil {
		t.Fatal(err)
	}
	if err := tb.Broker.Close(); err != nil {
		t.Errorf("closing producer state after deleting topics: %v", err)
	}
	if err := tb.Reg.Close(); err != nil {
		t.Fatal(err)
	}
	tb.Server = nil
	if snaps, _ := filepath.Glob(filepath.Join(tb.dir, "again-0", "*.snapshot")); len(snaps) != 0 {
		t.Errorf("re-created topic holds the deleted topic's producer state snapshots %v", snaps)
	}
	if _, err := os.Stat(filepath.Join(tb.dir, "gone-0")); !os.IsNotExist(err) {
		t.Errorf("deleted topic's dir: %v, want it gone", err)
	}
}

// FuzzForEachRecord feeds the __consumer_offsets batch walker arbitrary
// bytes. Invariants: it never panics; every key and value it hands out lies
// inside the input, keys are never null; without a framing error the
// records of our own batches come back whole.
func FuzzForEachRecord(f *testing.F) {
	good := appendRecordBatch(nil, 1, [][2][]byte{{[]byte("k"), []byte("v")}, {[]byte("t"), nil}})
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), good...))
	bad := appendRecordBatch(nil, 1, [][2][]byte{{[]byte{}, []byte("x")}})
	bad[proto.RecordBatchHeaderSize+4] = 1 // null key
	f.Add(append(bad, good...))
	f.Fuzz(func(t *testing.T, buf []byte) {
		_, _ = forEachRecord(buf, func(_ int64, key, value []byte) {
			if key == nil {
				t.Fatal("null key handed out")
			}
			if len(key) > 0 && !within(key, buf) || len(value) > 0 && !within(value, buf) {
				t.Fatal("key or value outside the input")
			}
		}, func(int64, error) {})
	})
}

// TestInternalTopicAdmin: CreateTopics cannot make __consumer_offsets with a
// partition count of its own (INVALID_REQUEST; TOPIC_ALREADY_EXISTS once
// the coordinator created it); CreatePartitions and AlterConfigs on it are
// accepted, as in Kafka, and groups keep committing and loading.
func TestInternalTopicAdmin(t *testing.T) {
	tb := startTestBroker(t, testBackends[1], groupTestOptions)
	createTopic(t, tb, "data", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := tb.admin()
	r, err := adm.CreateTopic(ctx, 2, 1, nil, offsetsTopic)
	if !errors.Is(err, kerr.InvalidRequest) && !errors.Is(r.Err, kerr.InvalidRequest) {
		t.Fatalf("CreateTopics %s: %v / %v, want INVALID_REQUEST", offsetsTopic, err, r.Err)
	}
	if tb.Reg.Topic(offsetsTopic) != nil {
		t.Fatalf("CreateTopics made %s", offsetsTopic)
	}
	for i, g := range []string{"a", "b", "c", "d", "e"} {
		commitOffset(t, adm, g, "data", int64(i))
	}
	if n := len(tb.Reg.Topic(offsetsTopic).Partitions); n != 4 {
		t.Fatalf("%s has %d partitions, want the coordinator's 4", offsetsTopic, n)
	}
	r, err = adm.CreateTopic(ctx, 2, 1, nil, offsetsTopic)
	if !errors.Is(err, kerr.TopicAlreadyExists) && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("CreateTopics of the existing %s: %v / %v, want TOPIC_ALREADY_EXISTS", offsetsTopic, err, r.Err)
	}
	cp, err := adm.CreatePartitions(ctx, 2, offsetsTopic)
	if err != nil || cp[offsetsTopic].Err != nil {
		t.Fatalf("CreatePartitions %s: %v / %v", offsetsTopic, err, cp[offsetsTopic].Err)
	}
	ac, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kmsg.StringPtr("1048576")}}, offsetsTopic)
	if err != nil || ac[0].Err != nil {
		t.Fatalf("IncrementalAlterConfigs %s: %v / %+v", offsetsTopic, err, ac)
	}
	for i, g := range []string{"a", "b", "c", "d", "e"} {
		commitOffset(t, adm, g, "data", int64(10+i))
	}
	tb.restart()
	adm = tb.admin()
	for i, g := range []string{"a", "b", "c", "d", "e"} {
		wantCommitted(t, adm, g, "data", int64(10+i))
	}
}
