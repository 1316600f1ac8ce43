package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// benchCluster returns a controller and an image with brokers unfenced
// brokers and topics topics of partitions partitions, replication 3.
func benchCluster(b *testing.B, brokers, topics int, partitions int32) (*Controller, metadata.Image, time.Time) {
	b.Helper()
	var next uint32
	c := New(Config{ClusterID: "c", NewUUID: func() (u metadata.UUID) {
		next++
		u[12], u[13], u[14], u[15] = byte(next>>24), byte(next>>16), byte(next>>8), byte(next)
		return u
	}})
	now := time.Unix(0, 0)
	var img metadata.Image
	c.Activate(now, img)
	apply := func(recs []metadata.Record) {
		var err error
		if img, _, err = img.ApplyAll(recs); err != nil {
			b.Fatal(err)
		}
	}
	for id := range brokers {
		reg := kmsg.NewPtrBrokerRegistrationRequest()
		reg.BrokerID, reg.ClusterID, reg.IncarnationID[15] = int32(id), "c", byte(id+1)
		rack := fmt.Sprint(id % 3)
		reg.Rack = &rack
		_, recs := c.RegisterBroker(now, img, int64(id), reg)
		apply(recs)
		hb := kmsg.NewPtrBrokerHeartbeatRequest()
		hb.BrokerID, hb.BrokerEpoch, hb.CurrentMetadataOffset = int32(id), int64(id), int64(id)
		_, recs = c.Heartbeat(now, img, hb)
		apply(recs)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	for i := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("t%d", i), partitions, 3
		req.Topics = append(req.Topics, rt)
	}
	_, recs := c.CreateTopics(img, req)
	apply(recs)
	return c, img, now
}

// BenchmarkTick is one controller tick over 1,000 topics of 10
// partitions with nothing to do: the cost every tick pays.
func BenchmarkTick(b *testing.B) {
	c, img, now := benchCluster(b, 9, 1000, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if recs := c.Tick(now, img); len(recs) != 0 {
			b.Fatalf("%d records", len(recs))
		}
	}
}

// BenchmarkCreateTopic creates one topic of 10 partitions in a cluster
// of 1,000.
func BenchmarkCreateTopic(b *testing.B) {
	c, img, _ := benchCluster(b, 9, 1000, 10)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new", 10, 3
	req.Topics = append(req.Topics, rt)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, recs := c.CreateTopics(img, req); len(recs) != 11 {
			b.Fatalf("%d records", len(recs))
		}
	}
}
