package broker

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
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
			{"max-ts", 7, -3, -1, nil, 8, t0 + 4000}, // the first record with it (Kafka 3.8+)
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

		// A leader change to epoch 3 (as the cluster metadata would apply
		// it): before epoch 3 writes, it counts as started at the log end;
		// after, epoch 0 ends where it starts (the leader-epoch cache).
		part := tb.Reg.Partition("lo", 0)
		part.leaderEpoch.Store(3)
		part.Log.SetLeaderEpoch(3)
		if got := ofle(4, 0, 3); got.ErrorCode != 0 || got.LeaderEpoch != 0 || got.EndOffset != 10 {
			t.Fatalf("epoch 0 under leader epoch 3, nothing written: %+v", got)
		}
		if got := ofle(4, 3, 3); got.ErrorCode != 0 || got.LeaderEpoch != 3 || got.EndOffset != 10 {
			t.Fatalf("epoch 3, nothing written: %+v", got)
		}
		if got := ofle(4, 0, 0); got.ErrorCode != kerr.FencedLeaderEpoch.Code {
			t.Fatalf("current epoch 0 under 3: %+v", got)
		}
		for i := 0; i < 2; i++ { // offsets 10-13 in epoch 3
			if got := rc.produceRaw(9, "lo", 0, prodBatch(-1, -1, -1, t0+int64(10+i)*1000, prodValues("w", 2)...)); got.ErrorCode != 0 {
				t.Fatalf("produce in epoch 3: %v", kerr.ErrorForCode(got.ErrorCode))
			}
		}
		for _, c := range []struct {
			epoch, wantEpoch int32
			wantEnd          int64
		}{
			// DeleteRecords above left no record of epoch 0 (log start 10):
			// epoch 3's first batch, at 10, replaced its entry, so an
			// older epoch is answered as below every cached one (Kafka's
			// endOffsetFor: the epoch asked, the first cached start).
			{0, 0, 10}, {2, 2, 10}, {3, 3, 14}, {4, -1, -1},
		} {
			if got := ofle(4, c.epoch, -1); got.ErrorCode != 0 || got.LeaderEpoch != c.wantEpoch || got.EndOffset != c.wantEnd {
				t.Fatalf("epoch %d after epoch 3 wrote: %+v, want (%d, %d)", c.epoch, got, c.wantEpoch, c.wantEnd)
			}
		}
	})
}

// exactBatch is one stored-form v2 batch of n records at firstTs +
// step*i, compressed with codec.
func exactBatch(codec int8, firstTs, step int64, n int) []byte {
	values := make([][]byte, n)
	for i := range values {
		values[i] = []byte(fmt.Sprintf("r%d", i))
	}
	return storedBatch(codec, -1, -1, -1, firstTs, step, values...)
}

// TestListOffsetsExactRecord: by timestamp (and -3), ListOffsets answers the
// record, not its batch, as Kafka does: in a batch of records 10 ms apart,
// a timestamp between two records gives the later one, for every codec (the
// batch is decompressed) and after DeleteRecords cut into the batch; a
// LogAppendTime topic answers each batch's first record.
func TestListOffsetsExactRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		rc := dialProd(t, tb.Addr)
		t0 := time.Now().Add(-time.Hour).UnixMilli()
		list := func(topic string, ts int64) (int64, int64) {
			t.Helper()
			req := kmsg.NewPtrListOffsetsRequest()
			req.Version, req.ReplicaID = 8, -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := kmsg.NewPtrListOffsetsResponse()
			if err := rc.roundTrip(req, resp); err != nil {
				t.Fatal(err)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 {
				t.Fatalf("%s ts %d: %v", topic, ts, kerr.ErrorForCode(p.ErrorCode))
			}
			return p.Offset, p.Timestamp
		}
		for _, codec := range []int8{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
			topic := fmt.Sprintf("exact-%d", codec)
			prodCreate(t, tb, topic, 1, nil)
			// Offsets 0-4 at t0..t0+40, then 5-9 at t0+100..t0+140.
			for i, first := range []int64{t0, t0 + 100} {
				if got := rc.produceRaw(9, topic, 0, exactBatch(codec, first, 10, 5)); got.ErrorCode != 0 {
					t.Fatalf("codec %d produce %d: %v", codec, i, kerr.ErrorForCode(got.ErrorCode))
				}
			}
			for _, c := range []struct {
				ts, offset, stamp int64
			}{
				{t0, 0, t0},
				{t0 + 25, 3, t0 + 30},
				{t0 + 40, 4, t0 + 40},
				{t0 + 41, 5, t0 + 100},
				{t0 + 131, 9, t0 + 140},
				{-3, 9, t0 + 140},
			} {
				if off, at := list(topic, c.ts); off != c.offset || at != c.stamp {
					t.Errorf("codec %d, timestamp %d: offset %d timestamp %d, want %d %d", codec, c.ts-t0, off, at, c.offset, c.stamp)
				}
			}
		}
		// The log start offset inside a batch: records below it are not answers.
		delReq := kmsg.NewPtrDeleteRecordsRequest()
		delReq.Version = 2
		delReq.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "exact-0", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 2}}}}
		delResp := kmsg.NewPtrDeleteRecordsResponse()
		if err := rc.roundTrip(delReq, delResp); err != nil || delResp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("delete records: %v %+v", err, delResp.Topics)
		}
		if off, at := list("exact-0", t0); off != 2 || at != t0+20 {
			t.Errorf("after DeleteRecords to 2: offset %d timestamp %d, want 2 %d", off, at, t0+20)
		}
		// The log start inside a batch whose only record reaching the target
		// is below it: the answer is in a later batch (Kafka walks on), not
		// the log start with the batch's max timestamp.
		prodCreate(t, tb, "exact-skip", 1, nil)
		early := exactBatch(codecNone, t0+50, -10, 5)         // t0+50, t0+40, ..., t0+10
		binary.BigEndian.PutUint64(early[35:], uint64(t0+50)) // max
		recrc(early)
		for i, batch := range [][]byte{early, exactBatch(codecNone, t0+5, 1, 5), exactBatch(codecNone, t0+100, 10, 5)} {
			if got := rc.produceRaw(9, "exact-skip", 0, batch); got.ErrorCode != 0 {
				t.Fatalf("produce %d: %v", i, kerr.ErrorForCode(got.ErrorCode))
			}
		}
		delReq.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "exact-skip", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		if err := rc.roundTrip(delReq, delResp); err != nil || delResp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("delete records: %v %+v", err, delResp.Topics)
		}
		for _, c := range []struct{ ts, offset, stamp int64 }{
			{t0 + 45, 10, t0 + 100}, // offset 0 (t0+50) is deleted; the middle batch never reaches t0+45
			{t0 + 40, 1, t0 + 40},
			{t0 + 200, -1, -1}, // nothing reaches it
		} {
			if off, at := list("exact-skip", c.ts); off != c.offset || at != c.stamp {
				t.Errorf("log start 1, timestamp %d: offset %d timestamp %d, want %d %d", c.ts-t0, off, at, c.offset, c.stamp)
			}
		}
		// -3 when the max timestamp is not the batch's last record.
		prodCreate(t, tb, "exact-max", 1, nil)
		down := exactBatch(codecNone, t0+40, -10, 5)         // t0+40, t0+30, ..., t0
		binary.BigEndian.PutUint64(down[27:], uint64(t0+40)) // first
		binary.BigEndian.PutUint64(down[35:], uint64(t0+40)) // max
		recrc(down)
		if got := rc.produceRaw(9, "exact-max", 0, down); got.ErrorCode != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(got.ErrorCode))
		}
		if off, at := list("exact-max", -3); off != 0 || at != t0+40 {
			t.Errorf("max timestamp first in its batch: offset %d timestamp %d, want 0 %d", off, at, t0+40)
		}
		// LogAppendTime: every record of a batch has the batch's timestamp.
		prodCreate(t, tb, "exact-lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
		for range 2 {
			if got := rc.produceRaw(9, "exact-lat", 0, exactBatch(codecNone, t0, 10, 5)); got.ErrorCode != 0 {
				t.Fatalf("produce: %v", kerr.ErrorForCode(got.ErrorCode))
			}
			time.Sleep(5 * time.Millisecond)
		}
		first, firstAt := list("exact-lat", 0)
		if first != 0 {
			t.Errorf("LogAppendTime, timestamp 0: offset %d, want 0", first)
		}
		if off, _ := list("exact-lat", firstAt+1); off != 5 {
			t.Errorf("LogAppendTime, after the first batch's time: offset %d, want 5 (a batch's first record)", off)
		}
	})
}

// FuzzMatchRecord: the record walk behind exact ListOffsets never panics on
// any stored batch (whatever a corrupt segment holds), and what it answers
// is a record of the batch: at or after the log start and its timestamp
// >= the target (== the max for -3).
func FuzzMatchRecord(f *testing.F) {
	t0 := int64(1_700_000_000_000)
	for _, codec := range []int8{codecNone, codecGzip, codecZstd} {
		b := exactBatch(codec, t0, 10, 5)
		f.Add(b, t0+25, int64(0))
		f.Add(b, int64(storage.TimestampMax), int64(2))
	}
	f.Add(prodBatch(-1, -1, -1, t0, prodValues("v", 3)...), t0, int64(1))
	f.Fuzz(func(t *testing.T, b []byte, ts, logStart int64) {
		if len(b) < proto.RecordBatchHeaderSize {
			return // the caller reads at least a header
		}
		off, at, err := matchRecord(b, ts, logStart)
		if err != nil {
			return
		}
		if off < logStart {
			t.Fatalf("offset %d below the log start %d", off, logStart)
		}
		maxTs := int64(binary.BigEndian.Uint64(b[proto.BatchPosMaxTimestamp:]))
		if ts == storage.TimestampMax && at != maxTs || ts != storage.TimestampMax && at < ts {
			t.Fatalf("timestamp %d does not answer %d (max %d)", at, ts, maxTs)
		}
	})
}

// TestListOffsetsDeleteRecordsRepeatedPartition: a partition named twice in
// one request gets INVALID_REQUEST at each occurrence (as in Kafka); the
// others are answered.
func TestListOffsetsDeleteRecordsRepeatedPartition(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		prodCreate(t, tb, "rep", 2, nil)
		rc := dialProd(t, tb.Addr)
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.Version, lo.ReplicaID = 8, -1
		lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "rep", Partitions: []kmsg.ListOffsetsRequestTopicPartition{
			{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1},
			{Partition: 1, Timestamp: -1, CurrentLeaderEpoch: -1},
			{Partition: 0, Timestamp: -2, CurrentLeaderEpoch: -1},
		}}}
		loResp := kmsg.NewPtrListOffsetsResponse()
		if err := rc.roundTrip(lo, loResp); err != nil {
			t.Fatal(err)
		}
		for i, want := range []int16{kerr.InvalidRequest.Code, 0, kerr.InvalidRequest.Code} {
			if got := loResp.Topics[0].Partitions[i].ErrorCode; got != want {
				t.Errorf("ListOffsets entry %d: %v, want %v", i, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
			}
		}
		dr := kmsg.NewPtrDeleteRecordsRequest()
		dr.Version = 2
		dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "rep", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{
			{Partition: 1, Offset: 0}, {Partition: 1, Offset: 0}, {Partition: 0, Offset: 0},
		}}}
		drResp := kmsg.NewPtrDeleteRecordsResponse()
		if err := rc.roundTrip(dr, drResp); err != nil {
			t.Fatal(err)
		}
		for i, want := range []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0} {
			if got := drResp.Topics[0].Partitions[i].ErrorCode; got != want {
				t.Errorf("DeleteRecords entry %d: %v, want %v", i, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
			}
		}
	})
}
