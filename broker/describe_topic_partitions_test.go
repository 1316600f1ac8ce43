package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDescribeTopicPartitionsWalk: the pre-walk never panics, accepts every
// well-formed request, and whatever it accepts kmsg decodes without an
// array count larger than the bytes behind it.
func FuzzDescribeTopicPartitionsWalk(f *testing.F) {
	req := kmsg.NewDescribeTopicPartitionsRequest()
	for _, n := range []string{"a", "topic-b"} {
		t := kmsg.NewDescribeTopicPartitionsRequestTopic()
		t.Topic = n
		req.Topics = append(req.Topics, t)
	}
	req.ResponsePartitionLimit = 10
	req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "a", Partition: 1}
	f.Add(req.AppendTo(nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}) // claims 2^32 topics
	f.Fuzz(func(t *testing.T, body []byte) {
		if !walkDescribeTopicPartitionsRequest(body) {
			return
		}
		r := kmsg.NewDescribeTopicPartitionsRequest()
		if err := r.ReadFrom(body); err == nil && 2*len(r.Topics) > len(body) {
			t.Fatalf("%d topics decoded from %d bytes", len(r.Topics), len(body))
		}
	})
}

// TestDescribeTopicPartitionsWalkAccepts: well-formed requests pass the walk.
func TestDescribeTopicPartitionsWalkAccepts(t *testing.T) {
	req := kmsg.NewDescribeTopicPartitionsRequest()
	if !walkDescribeTopicPartitionsRequest(req.AppendTo(nil)) {
		t.Error("empty request rejected")
	}
	for i := 0; i < 50; i++ {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = "topic"
		req.Topics = append(req.Topics, rt)
	}
	if !walkDescribeTopicPartitionsRequest(req.AppendTo(nil)) {
		t.Error("50-topic request rejected")
	}
}
