package proto

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The hand-written Fetch encoder produces kmsg's bytes for every version.
func TestFetchEncodingMatchesKmsg(t *testing.T) {
	records := []byte("0123456789abcdef")
	for v := int16(4); v <= 16; v++ {
		e := NewFetchEncoder(v)
		var got []byte
		got = e.AppendHeader(got, 0, 77, 2)
		got = e.AppendTopic(got, "topic-a", [16]byte{1, 2}, 3)
		got = e.AppendPartitionTxn(got, 0, 0, 100, 90, 5, []AbortedTransaction{{ProducerID: 3, FirstOffset: 40}, {ProducerID: 4, FirstOffset: 41}}, int64(len(records)))
		got = append(got, records...)
		got = e.EndPartition(got)
		got = e.AppendPartition(got, 1, 1, 7, 7, 0, -1)
		got = e.EndPartition(got)
		got = e.AppendPartitionPreferred(got, 2, 0, 9, -1, 3, nil, 2, 0)
		got = e.EndPartition(got)
		got = e.EndTopic(got)
		got = e.AppendTopic(got, "b", [16]byte{3}, 0)
		got = e.EndTopic(got)
		got = e.EndResponse(got)

		resp := kmsg.FetchResponse{Version: v, SessionID: 77}
		p0 := kmsg.NewFetchResponseTopicPartition() // defaults: no tagged fields
		p0.Partition, p0.HighWatermark, p0.LastStableOffset, p0.LogStartOffset, p0.RecordBatches = 0, 100, 90, 5, records
		p0.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 3, FirstOffset: 40}, {ProducerID: 4, FirstOffset: 41}}
		p1 := kmsg.NewFetchResponseTopicPartition()
		p1.Partition, p1.ErrorCode, p1.HighWatermark, p1.LastStableOffset, p1.LogStartOffset = 1, 1, 7, 7, 0
		p2 := kmsg.NewFetchResponseTopicPartition() // a KIP-392 redirect: no records
		p2.Partition, p2.HighWatermark, p2.LastStableOffset, p2.LogStartOffset, p2.RecordBatches = 2, 9, -1, 3, []byte{}
		if v >= 11 {
			p2.PreferredReadReplica = 2
		}
		resp.Topics = []kmsg.FetchResponseTopic{
			{Topic: "topic-a", TopicID: [16]byte{1, 2}, Partitions: []kmsg.FetchResponseTopicPartition{p0, p1, p2}},
			{Topic: "b", TopicID: [16]byte{3}},
		}
		want := resp.AppendTo(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d:\n got %x\nwant %x", v, got, want)
		}
	}
}
