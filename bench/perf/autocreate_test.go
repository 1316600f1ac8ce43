package perf

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProducerAllowsAutoCreation: the producer asks Metadata to auto-create
// its topic, as the Java producer does (ringbench produce failed with
// UNKNOWN_TOPIC_OR_PARTITION on a fresh broker where
// kafka-producer-perf-test.sh succeeds).
func TestProducerAllowsAutoCreation(t *testing.T) {
	cl, err := kgo.NewClient(ProducerSettings{Bootstrap: []string{"127.0.0.1:1"}, Acks: -1, Idempotent: true, BatchBytes: 16384}.Opts(100)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if v, _ := cl.OptValue(kgo.AllowAutoTopicCreation).(bool); !v {
		t.Errorf("AllowAutoTopicCreation = %v, want true", cl.OptValue(kgo.AllowAutoTopicCreation))
	}
}
