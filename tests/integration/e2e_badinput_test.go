//go:build linux

package integration

// Produce requests a broker must refuse with a Kafka error code (issue 4, "Bad
// input"): each refused partition writes nothing (its high watermark does not move,
// no directory appears outside the log dir), the connection stays usable, and valid
// records sent afterwards land and read back.

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceBadInput covers CRC corruption, oversized batches, invalid topic names
// (including path traversal), unknown topics with auto-creation off, and
// non-existent partitions.
func TestProduceBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"auto.create.topics.enable": "false"})
		const topic = "guarded"
		createTopic(t, b.Addr, topic, 2, nil)
		const small = "guarded-small" // max.message.bytes 2000
		createTopic(t, b.Addr, small, 1, map[string]string{"max.message.bytes": "2000"})
		conn := dial(t, b.Addr)
		corr := int32(100)
		nextCorr := func() int32 { corr++; return corr }

		// A valid record first, so "nothing written" is checked against a non-empty log.
		var sent []sentRecord
		good := func(i int, partition int32) []byte {
			v := recordValue(topic, i, 100, false)
			sent = append(sent, sentRecord{partition: partition, value: v})
			return plainBatch(v)
		}
		res := rawProduce(t, conn, produceRequest(9, -1, producePart{topic, 0, good(0, 0)}), nextCorr())
		if r := res[topic+"/0"]; r.code != 0 || r.baseOffset != 0 {
			t.Fatalf("valid produce: error %s, base offset %d", codeName(r.code), r.baseOffset)
		}
		before := endOffsets(t, b.Addr, topic)
		beforeSmall := endOffsets(t, b.Addr, small)
		tempParent := filepath.Dir(b.Dir)
		parentBefore := dirNames(t, tempParent)

		corrupt := plainBatch(recordValue(topic, 1, 100, false))
		corrupt[len(corrupt)-10] ^= 0xff // a byte of the record value: the CRC no longer matches

		badCRC := plainBatch(recordValue(topic, 2, 100, false))
		badCRC[17] ^= 0x01 // the stored CRC itself

		tooLargeDefault := plainBatch(bytes.Repeat([]byte{'L'}, 1048588)) // over the default message.max.bytes
		tooLargeTopic := plainBatch(bytes.Repeat([]byte{'s'}, 2500))      // over the topic's max.message.bytes 2000

		longName := strings.Repeat("n", 250)
		cases := []struct {
			name     string
			version  int16
			parts    []producePart
			wantCode int16
		}{
			{"crc-corrupted-record", 9, []producePart{{topic, 0, corrupt}}, kerr.CorruptMessage.Code},
			{"crc-field-flipped", 3, []producePart{{topic, 1, badCRC}}, kerr.CorruptMessage.Code},
			{"oversized-default-limit", 9, []producePart{{topic, 0, tooLargeDefault}}, kerr.MessageTooLarge.Code},
			{"oversized-topic-limit", 11, []producePart{{small, 0, tooLargeTopic}}, kerr.MessageTooLarge.Code},
			{"topic-dotdot-slash-x", 9, []producePart{{"../x", 0, plainBatch([]byte("escape"))}}, kerr.InvalidTopicException.Code},
			{"topic-dotdot", 9, []producePart{{"..", 0, plainBatch([]byte("escape"))}}, kerr.InvalidTopicException.Code},
			{"topic-dot", 9, []producePart{{".", 0, plainBatch([]byte("escape"))}}, kerr.InvalidTopicException.Code},
			{"topic-slash", 9, []producePart{{"a/b", 0, plainBatch([]byte("escape"))}}, kerr.InvalidTopicException.Code},
			{"topic-absolute", 9, []producePart{{"/tmp/x", 0, plainBatch([]byte("escape"))}}, kerr.InvalidTopicException.Code},
			{"topic-space", 9, []producePart{{"a b", 0, plainBatch([]byte("x"))}}, kerr.InvalidTopicException.Code},
			{"topic-250-chars", 9, []producePart{{longName, 0, plainBatch([]byte("x"))}}, kerr.InvalidTopicException.Code},
			{"topic-empty", 9, []producePart{{"", 0, plainBatch([]byte("x"))}}, kerr.InvalidTopicException.Code},
			{"unknown-topic-autocreate-off", 9, []producePart{{"nosuchtopic", 0, plainBatch([]byte("x"))}}, kerr.UnknownTopicOrPartition.Code},
			{"partition-beyond-count", 9, []producePart{{topic, 2, plainBatch([]byte("x"))}}, kerr.UnknownTopicOrPartition.Code},
			{"partition-negative", 9, []producePart{{topic, -1, plainBatch([]byte("x"))}}, kerr.UnknownTopicOrPartition.Code},
			{"partition-huge", 9, []producePart{{topic, 1 << 30, plainBatch([]byte("x"))}}, kerr.UnknownTopicOrPartition.Code},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := rawProduce(t, conn, produceRequest(tc.version, -1, tc.parts...), nextCorr())
				for _, p := range tc.parts {
					key := p.topic + "/" + itoa(p.partition)
					r, ok := res[key]
					if !ok {
						continue // rawProduce already reported the missing partition
					}
					if r.code != tc.wantCode {
						t.Errorf("Produce v%d %q partition %d: error %s, want %s (message %q)", tc.version, p.topic, p.partition, codeName(r.code), codeName(tc.wantCode), r.message)
					} else {
						t.Logf("Produce v%d %q partition %d: error %s, base offset %d, message %q", tc.version, p.topic, p.partition, codeName(r.code), r.baseOffset, r.message)
					}
				}
				if !b.Alive() {
					t.Fatalf("broker died")
				}
			})
		}

		// A request mixing a good partition and refused ones: the good one is written,
		// the others are not.
		t.Run("mixed-request", func(t *testing.T) {
			res := rawProduce(t, conn, produceRequest(9, -1,
				producePart{topic, 1, good(1, 1)},
				producePart{topic, 7, plainBatch([]byte("x"))},
				producePart{"../x", 0, plainBatch([]byte("x"))},
			), nextCorr())
			if r := res[topic+"/1"]; r.code != 0 || r.baseOffset != 0 {
				t.Errorf("good partition of a mixed request: error %s, base offset %d; want NONE at 0", codeName(r.code), r.baseOffset)
			}
			if r := res[topic+"/7"]; r.code != kerr.UnknownTopicOrPartition.Code {
				t.Errorf("partition 7 of a mixed request: error %s", codeName(r.code))
			}
			if r := res["../x/0"]; r.code != kerr.InvalidTopicException.Code {
				t.Errorf("topic ../x of a mixed request: error %s", codeName(r.code))
			}
			before[1]++ // the good record
		})

		// Nothing written: high watermarks, topic list and the log dir's parent.
		if after := endOffsets(t, b.Addr, topic); after[0] != before[0] || after[1] != before[1] {
			t.Errorf("high watermarks of %s after the refused batches: %v, want %v", topic, after, before)
		}
		if after := endOffsets(t, b.Addr, small); after[0] != beforeSmall[0] {
			t.Errorf("high watermark of %s after the oversized batch: %v, want %v", small, after, beforeSmall)
		}
		if after := dirNames(t, tempParent); strings.Join(after, ",") != strings.Join(parentBefore, ",") {
			t.Errorf("the log dir's parent %s changed: %v, was %v", tempParent, after, parentBefore)
		}
		for _, name := range dirNames(t, b.Dir) {
			if strings.HasPrefix(name, "nosuchtopic") || strings.HasPrefix(name, "x-") || strings.HasPrefix(name, "a b") {
				t.Errorf("log dir holds %q: a refused topic was created", name)
			}
		}
		meta := kmsg.NewPtrMetadataResponse()
		mreq := metadataRequest(9)
		if err := roundTrip(conn, mreq, meta, nextCorr(), rawTimeout); err != nil {
			t.Fatalf("Metadata: %v", err)
		}
		var names []string
		for _, tp := range meta.Topics {
			if tp.Topic != nil {
				names = append(names, *tp.Topic)
			}
		}
		if strings.Join(names, ",") != topic+","+small && strings.Join(names, ",") != small+","+topic {
			t.Errorf("topics after the bad input: %v, want only %s and %s", names, topic, small)
		}

		// Metadata for an unknown topic with auto-creation off: refused, not created.
		t.Run("metadata-unknown-topic-autocreate-off", func(t *testing.T) {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 9
			req.AllowAutoTopicCreation = true
			for _, n := range []string{"nosuchtopic", "../x"} {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(n)
				req.Topics = append(req.Topics, rt)
			}
			resp := kmsg.NewPtrMetadataResponse()
			if err := roundTrip(conn, req, resp, nextCorr(), rawTimeout); err != nil {
				t.Fatalf("Metadata: %v", err)
			}
			want := map[string]int16{"nosuchtopic": kerr.UnknownTopicOrPartition.Code, "../x": kerr.InvalidTopicException.Code}
			for _, tp := range resp.Topics {
				if tp.Topic == nil {
					continue
				}
				if w, ok := want[*tp.Topic]; ok && tp.ErrorCode != w {
					t.Errorf("Metadata %q: error %s, want %s", *tp.Topic, codeName(tp.ErrorCode), codeName(w))
				}
				delete(want, *tp.Topic)
			}
			if len(want) != 0 {
				t.Errorf("Metadata answered no entry for %v", want)
			}
		})

		// The broker keeps serving: the same connection and a fresh client both work.
		res = rawProduce(t, conn, produceRequest(9, -1, producePart{topic, 0, good(2, 0)}), nextCorr())
		if r := res[topic+"/0"]; r.code != 0 || r.baseOffset != before[0] {
			t.Errorf("valid produce after the bad input: error %s, base offset %d, want NONE at %d", codeName(r.code), r.baseOffset, before[0])
		}
		got := consumeFranz(t, b.Addr, topic, fromStart(2), len(sent))
		verifyRecords(t, "records around the bad input", sent, got, nil)
		if err := probeApiVersions(b.Addr, rawTimeout); err != nil {
			t.Errorf("fresh connection after the bad input: %v", err)
		}
	})
}

// TestProduceBadInputAutoCreateOn: with auto-creation on (the default), Produce to
// an unknown topic still answers UNKNOWN_TOPIC_OR_PARTITION (creation belongs to
// Metadata, as in Kafka 3+) and an invalid name is never created by Metadata.
func TestProduceBadInputAutoCreateOn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		conn := dial(t, b.Addr)
		res := rawProduce(t, conn, produceRequest(9, -1, producePart{"fresh", 0, plainBatch([]byte("x"))}), 1)
		if r := res["fresh/0"]; r.code != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("Produce to an unknown topic: error %s, want %s", codeName(r.code), codeName(kerr.UnknownTopicOrPartition.Code))
		}
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 1 // kafka-python's version: auto-creates
		for _, n := range []string{"../x", "ok.topic"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp := kmsg.NewPtrMetadataResponse()
		if err := roundTrip(conn, req, resp, 2, rawTimeout); err != nil {
			t.Fatalf("Metadata v1: %v", err)
		}
		for _, tp := range resp.Topics {
			name := ""
			if tp.Topic != nil {
				name = *tp.Topic
			}
			switch name {
			case "../x":
				if tp.ErrorCode != kerr.InvalidTopicException.Code {
					t.Errorf("Metadata v1 %q: error %s, want INVALID_TOPIC_EXCEPTION", name, codeName(tp.ErrorCode))
				}
			case "ok.topic":
				if tp.ErrorCode != 0 && tp.ErrorCode != kerr.LeaderNotAvailable.Code {
					t.Errorf("Metadata v1 %q (auto-created): error %s", name, codeName(tp.ErrorCode))
				}
			}
		}
		if names := dirNames(t, filepath.Dir(b.Dir)); len(names) != 1 || names[0] != filepath.Base(b.Dir) {
			t.Errorf("the log dir's parent holds %v, want only %s", names, filepath.Base(b.Dir))
		}
		res = rawProduce(t, conn, produceRequest(9, -1, producePart{"ok.topic", 0, plainBatch([]byte("x"))}), 3)
		if r := res["ok.topic/0"]; r.code != 0 || r.baseOffset != 0 {
			t.Errorf("Produce to the auto-created topic: error %s, base offset %d", codeName(r.code), r.baseOffset)
		}
	})
}

// dirNames lists a directory's entries (sorted).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
