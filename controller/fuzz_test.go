package controller

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// FuzzRequests decodes any bytes as one of the controller's requests (the
// first byte picks which, the second its version) and runs it against a
// small cluster: the controller must never panic, and its records must
// apply to the image (batch.done panics otherwise). Requests arrive
// decoded by the broker, so any request that decodes is fair input.
func FuzzRequests(f *testing.F) {
	for key := range 12 {
		f.Add([]byte{byte(key), 0})
	}
	// A CreateTopics v0 of topic "a", 2 partitions, RF 2.
	ct := kmsg.NewPtrCreateTopicsRequest()
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "a", 2, 2
	ct.Topics = append(ct.Topics, topic)
	f.Add(ct.AppendTo([]byte{2, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		reqs := []kmsg.Request{
			kmsg.NewPtrBrokerRegistrationRequest(), kmsg.NewPtrBrokerHeartbeatRequest(),
			kmsg.NewPtrCreateTopicsRequest(), kmsg.NewPtrDeleteTopicsRequest(),
			kmsg.NewPtrCreatePartitionsRequest(), kmsg.NewPtrAlterConfigsRequest(),
			kmsg.NewPtrIncrementalAlterConfigsRequest(), kmsg.NewPtrElectLeadersRequest(),
			kmsg.NewPtrAlterPartitionAssignmentsRequest(), kmsg.NewPtrListPartitionReassignmentsRequest(),
			kmsg.NewPtrAlterPartitionRequest(), nil, // nil: a tick
		}
		req := reqs[int(data[0])%len(reqs)]
		h := fuzzCluster(t)
		if req == nil {
			h.apply(h.c.Tick(h.now.Add(time.Duration(data[1])*time.Second), h.img))
			return
		}
		req.SetVersion(int16(data[1]) % (req.MaxVersion() + 1))
		if err := req.ReadFrom(data[2:]); err != nil {
			return
		}
		var recs []metadata.Record
		switch r := req.(type) {
		case *kmsg.BrokerRegistrationRequest:
			_, recs = h.c.RegisterBroker(h.now, h.img, h.offset, r)
		case *kmsg.BrokerHeartbeatRequest:
			_, recs = h.c.Heartbeat(h.now, h.img, r)
		case *kmsg.CreateTopicsRequest:
			_, recs = h.c.CreateTopics(h.img, r)
		case *kmsg.DeleteTopicsRequest:
			_, recs = h.c.DeleteTopics(h.img, r)
		case *kmsg.CreatePartitionsRequest:
			_, recs = h.c.CreatePartitions(h.img, r)
		case *kmsg.AlterConfigsRequest:
			_, recs = h.c.AlterConfigs(h.img, r)
		case *kmsg.IncrementalAlterConfigsRequest:
			_, recs = h.c.IncrementalAlterConfigs(h.img, r)
		case *kmsg.ElectLeadersRequest:
			_, recs = h.c.ElectLeaders(h.img, r)
		case *kmsg.AlterPartitionAssignmentsRequest:
			_, recs = h.c.AlterPartitionReassignments(h.img, r)
		case *kmsg.ListPartitionReassignmentsRequest:
			h.c.ListPartitionReassignments(h.img, r)
		case *kmsg.AlterPartitionRequest:
			_, recs = h.c.AlterPartition(h.img, r)
		}
		h.apply(recs)
		if msg := h.check(); msg != "" {
			t.Fatal(msg)
		}
		if msg := h.checkLeaders(false); msg != "" {
			t.Fatal(msg)
		}
	})
}

// fuzzCluster is three brokers (1-3, broker 3 fenced) and topic "t" of
// two partitions, replicas [1 2] and [2 3].
func fuzzCluster(t *testing.T) *harness {
	h := newHarness(t)
	for id := int32(1); id <= 3; id++ {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.BrokerID, req.ClusterID, req.IncarnationID[15] = id, "cluster", byte(id)
		_, recs := h.c.RegisterBroker(h.now, h.img, h.offset, req)
		h.apply(recs)
		if id == 3 {
			continue
		}
		hb := kmsg.NewPtrBrokerHeartbeatRequest()
		hb.BrokerID, hb.BrokerEpoch, hb.CurrentMetadataOffset = id, h.offset-1, h.offset
		_, recs = h.c.Heartbeat(h.now, h.img, hb)
		h.apply(recs)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t", -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1, 2}}, {Partition: 1, Replicas: []int32{2, 3}}}
	req.Topics = append(req.Topics, rt)
	resp, recs := h.c.CreateTopics(h.img, req)
	h.apply(recs)
	if len(recs) != 3 {
		t.Fatalf("cluster setup: %d records: %+v", len(recs), resp.Topics)
	}
	return h
}
