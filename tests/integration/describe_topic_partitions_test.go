//go:build linux

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeTopicPartitions: DescribeTopicPartitions (key 75, KIP-966) is
// advertised and served: topics sorted by name, unknown topics
// UNKNOWN_TOPIC_OR_PARTITION, an empty list for all topics, and the cursor
// across ResponsePartitionLimit. Before it was served, kafka-topics.sh
// --describe and friends warned and fell back to Metadata.
func TestDescribeTopicPartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		createTopic(t, b.Addr, "tc", 1, nil)
		createTopic(t, b.Addr, "ta", 3, nil)
		createTopic(t, b.Addr, "tb", 2, nil)
		cl := newClient(t, b.Addr)
		ctx := context.Background()

		vreq := kmsg.NewPtrApiVersionsRequest()
		vresp, err := vreq.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		advertised := false
		for _, k := range vresp.ApiKeys {
			advertised = advertised || (k.ApiKey == int16(kmsg.DescribeTopicPartitions) && k.MinVersion == 0 && k.MaxVersion >= 0)
		}
		if !advertised {
			t.Fatalf("ApiVersions does not advertise DescribeTopicPartitions")
		}

		// describe returns "topic:code:partitions" per topic and the next cursor.
		describe := func(topics []string, limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor) (string, string) {
			t.Helper()
			req := kmsg.NewPtrDescribeTopicPartitionsRequest()
			for _, n := range topics {
				rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
				rt.Topic = n
				req.Topics = append(req.Topics, rt)
			}
			req.ResponsePartitionLimit, req.Cursor = limit, cursor
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, rt := range resp.Topics {
				s := fmt.Sprintf("%s:%s:", *rt.Topic, codeName(rt.ErrorCode))
				for i, p := range rt.Partitions {
					if i > 0 {
						s += ","
					}
					s += fmt.Sprint(p.Partition)
					if p.LeaderID != 0 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
						t.Errorf("%s-%d: leader %d replicas %v isr %v, want node 0 alone", *rt.Topic, p.Partition, p.LeaderID, p.Replicas, p.ISR)
					}
				}
				if rt.ErrorCode == 0 && rt.TopicID == [16]byte{} {
					t.Errorf("%s: no topic id", *rt.Topic)
				}
				parts = append(parts, s)
			}
			next := "none"
			if resp.NextCursor != nil {
				next = fmt.Sprintf("%s/%d", resp.NextCursor.Topic, resp.NextCursor.Partition)
			}
			return strings.Join(parts, " "), next
		}
		ok := codeName(0)
		unknown := codeName(kerr.UnknownTopicOrPartition.Code)
		for _, c := range []struct {
			what     string
			topics   []string
			limit    int32
			cursor   *kmsg.DescribeTopicPartitionsRequestCursor
			want     string
			wantNext string
		}{
			{"all topics", nil, 100, nil, "ta:" + ok + ":0,1,2 tb:" + ok + ":0,1 tc:" + ok + ":0", "none"},
			{"limit cuts a topic", nil, 4, nil, "ta:" + ok + ":0,1,2 tb:" + ok + ":0", "tb/1"},
			{"from the cursor", nil, 4, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "tb", Partition: 1}, "tb:" + ok + ":1 tc:" + ok + ":0", "none"},
			{"limit ends a topic", nil, 3, nil, "ta:" + ok + ":0,1,2", "tb/0"},
			{"named, sorted, unknown", []string{"zz-missing", "tc", "ta", "tc"}, 100, nil, "ta:" + ok + ":0,1,2 tc:" + ok + ":0 zz-missing:" + unknown + ":", "none"},
			{"named with cursor", []string{"tc", "ta", "tb"}, 2, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "ta", Partition: 2}, "ta:" + ok + ":2 tb:" + ok + ":0", "tb/1"},
		} {
			got, next := describe(c.topics, c.limit, c.cursor)
			if got != c.want || next != c.wantNext {
				t.Errorf("%s: got %q next %s, want %q next %s", c.what, got, next, c.want, c.wantNext)
			}
		}
	})
}
