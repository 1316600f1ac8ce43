package controller

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata scale (issue 15): the controller over 10,000 topics of 10
// partitions on 3 brokers (replication factor 3). Measured, never
// asserted:
//
//	go test -run '^$' -bench Scale -benchtime 1x ./controller/
const (
	scaleBrokers    = 3
	scaleTopics     = 10_000
	scalePartitions = 10
)

// BenchmarkScaleTick is one controller tick with nothing to do over the
// scale image (Tick reads every partition).
func BenchmarkScaleTick(b *testing.B) {
	c, img, now := benchCluster(b, scaleBrokers, scaleTopics, scalePartitions)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if recs := c.Tick(now, img); len(recs) != 0 {
			b.Fatalf("%d records", len(recs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(scaleTopics*scalePartitions), "ns/partition")
}

// BenchmarkScaleCreateTopics creates, on the scale image, one topic of 10
// partitions and a batch of 500 such topics (the batch the cluster
// benchmark loads with).
func BenchmarkScaleCreateTopics(b *testing.B) {
	c, img, _ := benchCluster(b, scaleBrokers, scaleTopics, scalePartitions)
	for _, n := range []int{1, 500} {
		b.Run(fmt.Sprintf("topics=%d", n), func(b *testing.B) {
			req := kmsg.NewPtrCreateTopicsRequest()
			for i := range n {
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("new-%d", i), scalePartitions, 3
				req.Topics = append(req.Topics, rt)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, recs := c.CreateTopics(img, req); len(recs) != n*(1+scalePartitions) {
					b.Fatalf("%d records", len(recs))
				}
			}
		})
	}
}
