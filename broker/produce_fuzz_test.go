package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzProduceParse feeds the Produce request flyweight (produceCtx.parse)
// arbitrary bodies. Invariants: it never panics; a body it accepts is one
// kmsg decodes to the same topics, partitions and record bytes, and every
// records slice lies inside the body (the flyweight never copies them).
func FuzzProduceParse(f *testing.F) {
	for _, v := range []int16{3, 7, 9, 11} {
		req := kmsg.ProduceRequest{Version: v, Acks: -1, TimeoutMillis: 1000}
		for _, name := range []string{"a", "topic-b"} {
			t := kmsg.ProduceRequestTopic{Topic: name}
			for p := int32(0); p < 2; p++ {
				t.Partitions = append(t.Partitions, kmsg.ProduceRequestTopicPartition{Partition: p, Records: makeBatch([]byte("v"), []byte("w"))})
			}
			req.Topics = append(req.Topics, t)
		}
		f.Add(v, req.AppendTo(nil))
	}
	f.Add(int16(9), []byte{0, 0xff, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}) // array count 2^31
	f.Fuzz(func(t *testing.T, version int16, body []byte) {
		version = 3 + (version&0x7fff)%9 // the versions we parse: 3-11
		c := &produceCtx{}
		c.hdr.APIVersion = version
		_, ok := c.parse(body)
		if !ok {
			return
		}
		for _, s := range c.slots {
			if len(s.records) > 0 && !within(s.records, body) {
				t.Fatal("records slice outside the body")
			}
		}
		var k kmsg.ProduceRequest
		k.Version = version
		if err := k.ReadFrom(body); err != nil {
			return // kmsg is stricter about some encodings (e.g. null names)
		}
		if len(k.Topics) != len(c.topics) {
			t.Fatalf("topics: flyweight %d, kmsg %d", len(c.topics), len(k.Topics))
		}
		for i, kt := range k.Topics {
			ct := c.topics[i]
			if kt.Topic != ct.name || len(kt.Partitions) != ct.end-ct.first {
				t.Fatalf("topic %d: flyweight %q/%d, kmsg %q/%d", i, ct.name, ct.end-ct.first, kt.Topic, len(kt.Partitions))
			}
			for j, kp := range kt.Partitions {
				s := c.slots[ct.first+j]
				if s.partition != kp.Partition || !bytes.Equal(s.records, kp.Records) {
					t.Fatalf("topic %d partition %d differs", i, j)
				}
			}
		}
	})
}

// within reports whether sub is a sub-slice of b's memory.
func within(sub, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	start := &b[0]
	for i := range b {
		if &b[i] == &sub[0] {
			return i+len(sub) <= len(b)
		}
	}
	_ = start
	return false
}
