package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The long-poll tests with fetch.wake.on.loop each way: true (the default),
// a woken fetch is answered on its connection's io_uring loop thread
// (fetchOp.wakeOnLoop); false, on a goroutine of its own (fetchOp.wake), as
// on the portable backend. RINGBROKER_TEST_SET=fetch.wake.on.loop=false runs
// the whole package the second way.
func TestFetchWakeOnLoop(t *testing.T) {
	for _, on := range []string{"true", "false"} {
		t.Run(on, func(t *testing.T) {
			withSettings(t, "fetch.wake.on.loop="+on)
			t.Run("woken-by-append", TestFetchLongPollWokenByAppend)
			t.Run("answers-at-max-wait", TestFetchLongPollAnswersAtMaxWait)
			t.Run("woken-copies-small-region", TestFetchWokenCopiesSmallRegion)
			t.Run("errors-and-sessions", TestFetchErrorsAndSessions)
			t.Run("produce-and-consume", TestFetchProduceAndConsumeTogether)
			t.Run("inline-appends", func(t *testing.T) {
				// The append runs on the producer's ring thread, which
				// wakes the fetch itself: on its own loop or another's.
				withSettings(t, "append.inline=true")
				TestFetchProduceAndConsumeTogether(t)
			})
		})
	}
}

// A producer and a long-polling consumer at the same time: the consumer is
// woken by appends over and over and reads every record once, in order, on
// each of two partitions (their requests land on either loop).
func TestFetchProduceAndConsumeTogether(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		if _, err := tb.Reg.CreateTopic("together", 2, nil, false); err != nil {
			t.Fatal(err)
		}
		before := loopWakes.Load()
		const perPartition = 3000
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		consumer := tb.client(kgo.ConsumeTopics("together"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(5*time.Second))
		producer := tb.client(kgo.DefaultProduceTopic("together"), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		produced := make(chan error, 1)
		go func() {
			for i := 0; i < perPartition; i++ {
				for p := int32(0); p < 2; p++ {
					r := &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))}
					if i%50 == 49 { // now and then wait, so the consumer catches up and parks
						if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
							produced <- err
							return
						}
						continue
					}
					producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
						if err != nil {
							select {
							case produced <- err:
							default:
							}
						}
					})
				}
			}
			produced <- producer.Flush(ctx)
		}()
		next := [2]int{}
		for next[0] < perPartition || next[1] < perPartition {
			fs := consumer.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatalf("after %v records: %v", next, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				p := r.Partition
				if want := fmt.Sprintf("%d-%d", p, next[p]); string(r.Value) != want || r.Offset != int64(next[p]) {
					t.Fatalf("partition %d offset %d: %q, want %q at offset %d", p, r.Offset, r.Value, want, next[p])
				}
				next[p]++
			})
		}
		if err := <-produced; err != nil {
			t.Fatal(err)
		}
		// (Only checked one way: loopWakes is process-wide, and a broker
		// stopped before this test may still finish a posted wake-up.)
		if tb.Broker.opts.FetchWakeOnLoop && backend == "uring" && loopWakes.Load() == before {
			t.Fatal("fetch.wake.on.loop: no wake-up ran on a loop")
		}
	})
}
