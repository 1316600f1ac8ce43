package nullbroker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchServesEveryOffset produces records of one size in batches of
// varying length (some cut by a small batch.size), then consumes the topic
// from the start with franz-go checking CRCs: every offset from 0 to the
// high watermark must arrive once, in order, with the produced value
// size, so the null broker's catch-up moves the bytes a real broker would.
func TestFetchServesEveryOffset(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const (
		records   = 3001 // not a multiple of any batch length: the last batch is cut
		valueSize = 1000
	)
	prod, err := kgo.NewClient(kgo.SeedBrokers(s.Addr()), kgo.DefaultProduceTopic("cu"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(16<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < records; i++ {
		prod.Produce(ctx, &kgo.Record{Partition: 1, Value: make([]byte, valueSize)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
		if i == 10 { // a first small batch, then larger ones
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Offsets("cu")[1]; got != records {
		t.Fatalf("high watermark %d, want %d", got, records)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(s.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"cu": {1: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxPartitionBytes(64<<10), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var next int64
	var bytes int64
	for next < records {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the bound", next, records)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next {
				t.Fatalf("offset %d, want %d", r.Offset, next)
			}
			if len(r.Value) != valueSize {
				t.Fatalf("offset %d: value of %d bytes, want %d", r.Offset, len(r.Value), valueSize)
			}
			next++
			bytes += int64(len(r.Value))
		})
	}
	if bytes != records*valueSize {
		t.Fatalf("consumed %d bytes, want %d", bytes, records*valueSize)
	}

	// A fetch in the middle of a batch starts at the batch holding it;
	// a fetch at the end waits (bounded) and answers nothing; past the
	// end is OFFSET_OUT_OF_RANGE; latest is the high watermark.
	for _, tc := range []struct {
		offset  int64
		errCode int16
		empty   bool
	}{{1500, 0, false}, {records, 0, true}, {records + 1, errOffsetOutOfRange, true}} {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 50
		req.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "cu"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 1, tc.offset, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp, err := req.RequestWith(ctx, cons)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != tc.errCode || (len(p.RecordBatches) == 0) != tc.empty || p.HighWatermark != records {
			t.Fatalf("fetch at %d: error %d, %d bytes, high watermark %d", tc.offset, p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
		}
		if !tc.empty {
			first := int64(0)
			for i := 0; i < 8; i++ {
				first = first<<8 | int64(p.RecordBatches[i])
			}
			k := int64(p.RecordBatches[lastOffsetDeltaAt])<<24 | int64(p.RecordBatches[lastOffsetDeltaAt+1])<<16 |
				int64(p.RecordBatches[lastOffsetDeltaAt+2])<<8 | int64(p.RecordBatches[lastOffsetDeltaAt+3])
			if first > tc.offset || first+k < tc.offset {
				t.Fatalf("fetch at %d: first batch covers %d..%d", tc.offset, first, first+k)
			}
		}
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "cu"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp = 1, -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, cons)
	if err != nil {
		t.Fatal(err)
	}
	if got := lresp.Topics[0].Partitions[0].Offset; got != records {
		t.Fatalf("ListOffsets latest = %d, want %d", got, records)
	}
}

// TestTemplateRejectsCompressed: a compressed batch is no template, so a
// partition that only had those answers Fetch with an error instead of
// records of a guessed size.
func TestTemplateRejectsCompressed(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(s.Addr()), kgo.DefaultProduceTopic("z"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "z"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Topics[0].Partitions[0].ErrorCode; got != errUnsupportedCompressionTyp {
		t.Fatalf("error code %d, want %d", got, errUnsupportedCompressionTyp)
	}
}
