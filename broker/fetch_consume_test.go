package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFetchConsumesWhatWasAppended(t *testing.T) {
	for _, zeroCopy := range []bool{true, false} {
		t.Run(fmt.Sprintf("zerocopy=%v", zeroCopy), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, backend string) {
				tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.FetchZeroCopy = zeroCopy })
				topic, err := tb.Reg.CreateTopic("fetch-me", 3, nil, false)
				if err != nil {
					t.Fatal(err)
				}
				want := map[int32][]string{}
				for p := int32(0); p < 3; p++ {
					for b := 0; b < 20; b++ {
						var vals [][]byte
						for r := 0; r < 5; r++ {
							v := fmt.Sprintf("p%d-b%d-r%d-%s", p, b, r, make([]byte, (b*r*997)%40000))
							vals = append(vals, []byte(v))
							want[p] = append(want[p], v)
						}
						appendSync(t, topic.Partitions[p], makeBatch(vals...))
					}
				}
				cl := tb.client(kgo.ConsumeTopics("fetch-me"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(1<<20))
				got := map[int32][]string{}
				total := 0
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				for total < 300 {
					fs := cl.PollFetches(ctx)
					if err := fs.Err(); err != nil {
						t.Fatalf("after %d records: %v", total, err)
					}
					fs.EachRecord(func(r *kgo.Record) {
						if int64(len(got[r.Partition])) != r.Offset {
							t.Errorf("partition %d: offset %d, expected %d", r.Partition, r.Offset, len(got[r.Partition]))
						}
						got[r.Partition] = append(got[r.Partition], string(r.Value))
						total++
					})
				}
				for p := int32(0); p < 3; p++ {
					if len(got[p]) != len(want[p]) {
						t.Fatalf("partition %d: %d records, want %d", p, len(got[p]), len(want[p]))
					}
					for i := range want[p] {
						if got[p][i] != want[p][i] {
							t.Fatalf("partition %d record %d differs", p, i)
						}
					}
				}
			})
		})
	}
}
