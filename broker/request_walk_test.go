package broker

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every well-formed request kmsg encodes passes its walk; a count claiming
// more elements than the bytes hold fails it.
func TestRequestWalks(t *testing.T) {
	for v := int16(4); v <= 16; v++ {
		req := kmsg.NewPtrFetchRequest()
		req.Version = v
		for _, name := range []string{"a", "bb"} {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = name, [16]byte{1}
			for p := int32(0); p < 3; p++ {
				rt.Partitions = append(rt.Partitions, kmsg.NewFetchRequestTopicPartition())
			}
			req.Topics = append(req.Topics, rt)
		}
		req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "c", Partitions: []int32{1, 2}}}
		if body := req.AppendTo(nil); !walkFetchRequest(v, body) {
			t.Fatalf("fetch v%d: valid body rejected", v)
		}
	}
	for v := int16(0); v <= 12; v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		for _, name := range []string{"x", "yy"} {
			name := name
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = &name
			req.Topics = append(req.Topics, mt)
		}
		if body := req.AppendTo(nil); !walkMetadataRequest(v, body) {
			t.Fatalf("metadata v%d: valid body rejected", v)
		}
	}
	zeros := make([]byte, 1<<16)
	binary.BigEndian.PutUint32(zeros, uint32(len(zeros)-4)) // topics count = remaining bytes
	if walkMetadataRequest(1, zeros) {
		t.Fatal("metadata: a count of one topic per byte of zeros passed")
	}
	fetch := make([]byte, 1<<16)
	binary.BigEndian.PutUint32(fetch[17:], uint32(len(fetch)-21))
	if walkFetchRequest(4, fetch) {
		t.Fatal("fetch: a count of one topic per byte of zeros passed")
	}
}
