package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/storage"
)

// makeBatch encodes an uncompressed v2 record batch holding values.
func makeBatch(values ...[]byte) []byte {
	now := time.Now().UnixMilli()
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: v}
		// Record.AppendTo writes Length as given: measure the body first.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		for int32(len(r.AppendTo(nil)))-int32(varintLen(int64(r.Length))) != r.Length {
			r.Length = int32(len(r.AppendTo(nil))) - int32(varintLen(int64(r.Length)))
		}
		records = append(records, r.AppendTo(nil)...)
	}
	rb := kmsg.RecordBatch{
		Magic: 2, PartitionLeaderEpoch: -1, LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: records,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12)) // batch length
	crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(b[17:], crc)
	return b
}

// appendSync appends a batch straight into a partition log and waits.
func appendSync(t *testing.T, p *Partition, batch []byte) storage.AppendResult {
	t.Helper()
	done := make(chan storage.AppendResult, 1)
	if err := p.Log.Append(batch, storage.AppendFunc(func(r storage.AppendResult) { done <- r })); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return r
}

// longPoll sends a sessionless Fetch v12 of partition 0 of topic from
// offset 0 with min_bytes 1 and maxWaitMs, on a goroutine; the answer (and
// when it arrived) comes on the channel.
func longPoll(tb *testBroker, topic *Topic, maxWaitMs int32) <-chan longPollResult {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis = maxWaitMs
	req.MinBytes = 1
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic.Name, topic.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, 0, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	cl := tb.client()
	done := make(chan longPollResult, 1)
	go func() {
		resp, err := req.RequestWith(context.Background(), cl)
		done <- longPollResult{resp, err, time.Now()}
	}()
	return done
}

type longPollResult struct {
	resp *kmsg.FetchResponse
	err  error
	at   time.Time
}

// A consumer waiting at the end is woken by an append, long before its
// max wait. The broker's clock stands still, so only the append can answer.
func TestFetchLongPollWokenByAppend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		clk := clock.NewManual(time.Now())
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.Clock = clk })
		topic, err := tb.Reg.CreateTopic("poll", 1, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		done := longPoll(tb, topic, 10000)
		// Parked: its max-wait timer is the one timer armed.
		if err := clk.WaitTimers(1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		appended := time.Now()
		appendSync(t, topic.Partitions[0], makeBatch([]byte("wake up")))
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if lat := r.at.Sub(appended); lat > 2*time.Second {
			t.Fatalf("woken %v after the append", lat)
		}
		p := r.resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
			t.Fatalf("partition = %+v", p)
		}
	})
}

// With nothing to read, the long poll answers at its max wait and not
// before: stepped on a manual clock.
func TestFetchLongPollAnswersAtMaxWait(t *testing.T) {
	clk := clock.NewManual(time.Now())
	tb := startTestBroker(t, testBackends[0], func(o *Options, _ *RegistryOptions) { o.Clock = clk })
	topic, err := tb.Reg.CreateTopic("idle", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	done := longPoll(tb, topic, 5000)
	if err := clk.WaitTimers(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4999 * time.Millisecond)
	if clk.Armed() != 1 {
		t.Fatalf("max-wait timer gone %v before the deadline", 4999*time.Millisecond)
	}
	clk.Advance(time.Millisecond)
	var r longPollResult
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10 s after the max wait passed")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	p := r.resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("partition = %+v", p)
	}
}

func TestFetchErrorsAndSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		topic, err := tb.Reg.CreateTopic("s", 2, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		appendSync(t, topic.Partitions[0], makeBatch([]byte("a")))
		cl := tb.client()
		fetch := func(sessionID, epoch int32, parts map[int32]int64, forget []int32) *kmsg.FetchResponse {
			t.Helper()
			req := kmsg.NewPtrFetchRequest()
			req.Version = 12
			req.SessionID, req.SessionEpoch = sessionID, epoch
			if len(parts) > 0 {
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic, rt.TopicID = "s", topic.ID
				for p, off := range parts {
					rp := kmsg.NewFetchRequestTopicPartition()
					rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
			}
			if len(forget) > 0 {
				req.ForgottenTopics = append(req.ForgottenTopics, kmsg.FetchRequestForgottenTopic{Topic: "s", TopicID: topic.ID, Partitions: forget})
			}
			resp, err := req.RequestWith(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		// Out of range.
		r := fetch(0, -1, map[int32]int64{0: 100}, nil)
		if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.OffsetOutOfRange.Code {
			t.Fatalf("offset 100: error %d", c)
		}
		// Full fetch creating a session: both partitions listed.
		r = fetch(0, 0, map[int32]int64{0: 1, 1: 0}, nil)
		if r.SessionID == 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 {
			t.Fatalf("session create: %+v", r)
		}
		sid := r.SessionID
		// Incremental with nothing new: no partitions.
		r = fetch(sid, 1, nil, nil)
		if r.ErrorCode != 0 || len(r.Topics) != 0 {
			t.Fatalf("empty incremental: %+v", r)
		}
		// New data on partition 1 only: only it comes back.
		appendSync(t, topic.Partitions[1], makeBatch([]byte("b")))
		r = fetch(sid, 2, nil, nil)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Partition != 1 {
			t.Fatalf("incremental with new data: %+v", r.Topics)
		}
		// Wrong epoch and unknown session.
		if r = fetch(sid, 9, nil, nil); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
			t.Fatalf("bad epoch: %d", r.ErrorCode)
		}
		if r = fetch(12345, 1, nil, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("unknown session: %d", r.ErrorCode)
		}
		// Unknown topic.
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "nope"
		rt.Partitions = append(rt.Partitions, kmsg.NewFetchRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
			t.Fatalf("unknown topic: %v %+v", err, resp)
		}
	})
}

// varintLen is the size of v as a zig-zag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
