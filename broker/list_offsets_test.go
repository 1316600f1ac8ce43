package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets earliest/latest/by timestamp/max timestamp, DeleteRecords
// moving the log start, OffsetForLeaderEpoch.
func TestListOffsetsDeleteRecordsEpochs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		prodCreate(t, tb, "lo", 1, map[string]string{"segment.bytes": "200"})
		rc := dialProd(t, tb.Addr)
		t0 := time.Now().Add(-time.Hour).UnixMilli()
		// Batches of 2 records at t0, t0+1000, ..., t0+4000: offsets 0-9.
		for i := 0; i < 5; i++ {
			if got := rc.produceRaw(9, "lo", 0, prodBatch(-1, -1, -1, t0+int64(i)*1000, prodValues("v", 2)...)); got.ErrorCode != 0 {
				t.Fatalf("produce %d: %v", i, kerr.ErrorForCode(got.ErrorCode))
			}
		}
		list := func(version int16, ts int64, epoch int32) kmsg.ListOffsetsResponseTopicPartition {
			t.Helper()
			req := kmsg.NewPtrListOffsetsRequest()
			req.Version, req.ReplicaID = version, -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "lo"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp, rp.CurrentLeaderEpoch = ts, epoch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := kmsg.NewPtrListOffsetsResponse()
			if err := rc.roundTrip(req, resp); err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].Partitions[0]
		}
		cases := []struct {
			name          string
			version       int16
			ts            int64
			epoch         int32
			code          *kerr.Error
			offset, stamp int64
		}{
			{"earliest", 1, -2, -1, nil, 0, -1},
			{"latest", 8, -1, -1, nil, 10, -1},
			{"latest-epoch0", 5, -1, 0, nil, 10, -1},
			{"by-ts-exact", 4, t0 + 2000, -1, nil, 4, t0 + 2000},
			{"by-ts-between", 8, t0 + 1500, -1, nil, 4, t0 + 2000},
			{"by-ts-before-all", 8, 1, -1, nil, 0, t0},
			{"by-ts-after-all", 8, t0 + 99999, -1, nil, -1, -1},
			{"max-ts", 7, -3, -1, nil, 9, t0 + 4000},
			{"earliest-local", 8, -4, -1, nil, 0, -1},
			{"future-epoch", 8, -1, 3, kerr.UnknownLeaderEpoch, -1, -1},
			{"fenced-epoch", 8, -1, -5, kerr.FencedLeaderEpoch, -1, -1},
		}
		for _, c := range cases {
			got := list(c.version, c.ts, c.epoch)
			if got.ErrorCode != 0 && (c.code == nil || got.ErrorCode != c.code.Code) || got.ErrorCode == 0 && c.code != nil {
				t.Fatalf("%s: error %v, want %v", c.name, kerr.ErrorForCode(got.ErrorCode), c.code)
			}
			if got.Offset != c.offset || got.Timestamp != c.stamp {
				t.Fatalf("%s: offset %d timestamp %d, want %d %d", c.name, got.Offset, got.Timestamp, c.offset, c.stamp)
			}
		}

		// DeleteRecords.
		del := func(topic string, partition int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
			t.Helper()
			req := kmsg.NewPtrDeleteRecordsRequest()
			req.Version = 2
			req.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: topic, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: partition, Offset: offset}}}}
			resp := kmsg.NewPtrDeleteRecordsResponse()
			if err := rc.roundTrip(req, resp); err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].Partitions[0]
		}
		if got := del("lo", 0, 5); got.ErrorCode != 0 || got.LowWatermark != 5 {
			t.Fatalf("delete records: %+v", got)
		}
		if got := list(8, -2, -1); got.Offset != 5 {
			t.Fatalf("earliest after delete: %d", got.Offset)
		}
		if got := del("lo", 0, 11); got.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("delete past hw: %v", kerr.ErrorForCode(got.ErrorCode))
		}
		if got := del("lo", 3, 0); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("delete unknown partition: %v", kerr.ErrorForCode(got.ErrorCode))
		}
		if got := del("lo", 0, -1); got.ErrorCode != 0 || got.LowWatermark != 10 {
			t.Fatalf("delete to hw: %+v", got)
		}
		if got := list(8, -2, -1); got.Offset != 10 {
			t.Fatalf("earliest after delete to hw: %d", got.Offset)
		}

		// OffsetForLeaderEpoch.
		ofle := func(version int16, epoch, current int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
			t.Helper()
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.Version, req.ReplicaID = version, -1
			req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "lo", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, LeaderEpoch: epoch, CurrentLeaderEpoch: current}}}}
			resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
			if err := rc.roundTrip(req, resp); err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].Partitions[0]
		}
		if got := ofle(4, 0, 0); got.ErrorCode != 0 || got.LeaderEpoch != 0 || got.EndOffset != 10 {
			t.Fatalf("epoch 0: %+v", got)
		}
		if got := ofle(0, 0, -1); got.ErrorCode != 0 || got.EndOffset != 10 {
			t.Fatalf("v0 epoch 0: %+v", got)
		}
		if got := ofle(3, 2, -1); got.ErrorCode != 0 || got.LeaderEpoch != -1 || got.EndOffset != -1 {
			t.Fatalf("epoch 2: %+v", got)
		}
		if got := ofle(4, 0, 1); got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
			t.Fatalf("current epoch 1: %+v", got)
		}
	})
}
