package controller

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopicsAnswersConfigs: CreateTopics v5+ answers carry the new
// topic's configs and never a null array (the Java admin client, as
// kafka-topics.sh uses it, dereferences them whenever NumPartitions is
// set); v4 answers carry none.
func TestCreateTopicsAnswersConfigs(t *testing.T) {
	for _, version := range []int16{4, 5, 7} {
		h := fuzzCluster(t)
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = version
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "c", 2, 1
		v := "compact"
		rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: &v}}
		req.Topics = append(req.Topics, rt)
		resp, _ := h.c.CreateTopics(h.img, req)
		got := resp.Topics[0]
		if got.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", version, got.ErrorCode)
		}
		if version < 5 {
			if got.Configs != nil {
				t.Fatalf("v%d: configs %v, want none", version, got.Configs)
			}
			continue
		}
		if got.Configs == nil {
			t.Fatalf("v%d: configs null", version)
		}
		found := false
		for _, c := range got.Configs {
			if c.Name == "cleanup.policy" {
				found = c.Value != nil && *c.Value == "compact"
			}
		}
		if !found {
			t.Fatalf("v%d: cleanup.policy=compact not among the %d configs answered", version, len(got.Configs))
		}
	}
}
