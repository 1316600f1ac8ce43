package controller

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// TestPartitionsPerRequest checks that one request creates at most
// maxPartitionsPerRequest partitions: the topics past it fail.
func TestPartitionsPerRequest(t *testing.T) {
	var next byte
	c := New(Config{ClusterID: "c", NewUUID: func() (u metadata.UUID) { next++; u[15] = next; return u }})
	now := time.Unix(0, 0)
	c.Activate(now, metadata.Image{})
	reg := kmsg.NewPtrBrokerRegistrationRequest()
	reg.BrokerID, reg.ClusterID = 1, "c"
	_, recs := c.RegisterBroker(now, metadata.Image{}, 0, reg)
	img, _, err := metadata.Image{}.ApplyAll(recs)
	if err != nil {
		t.Fatal(err)
	}
	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch, hb.CurrentMetadataOffset = 1, 0, 1
	_, recs = c.Heartbeat(now, img, hb)
	if img, _, err = img.ApplyAll(recs); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"a", "b", "c"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, maxPartitionsPerRequest/2, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, recs := c.CreateTopics(img, req)
	want := []int16{0, 0, kerr.InvalidPartitions.Code}
	for i, rt := range resp.Topics {
		if rt.ErrorCode != want[i] {
			t.Errorf("topic %s: error %d, want %d", rt.Topic, rt.ErrorCode, want[i])
		}
	}
	if len(recs) != 2+maxPartitionsPerRequest {
		t.Errorf("%d records, want %d", len(recs), 2+maxPartitionsPerRequest)
	}
}
