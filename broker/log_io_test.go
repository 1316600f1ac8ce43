package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ioUringFds counts this process's io_uring descriptors.
func ioUringFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "anon_inode:[io_uring]" {
			n++
		}
	}
	return n
}

// log.io.backend=uring: every partition writes through a ring of its own
// (one more io_uring descriptor per open partition), with and without an
// fdatasync per batch (flush.messages=1: the linked FSYNC), and what was
// produced reads back in order.
func TestLogIOBackendUring(t *testing.T) {
	withSettings(t, "log.io.backend=uring")
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		before := ioUringFds(t)
		topics := map[string]map[string]string{"uio": nil, "uio-flush": {"flush.messages": "1"}}
		for name, cfg := range topics {
			if _, err := tb.Reg.CreateTopic(name, 2, cfg, false); err != nil {
				t.Fatal(err)
			}
		}
		if got := ioUringFds(t) - before; got < 4 {
			t.Fatalf("%d more io_uring descriptors after creating 4 partitions, want at least 4", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		producer := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
		const perPartition = 500
		failed := make(chan error, 1)
		for name := range topics {
			for i := 0; i < perPartition; i++ {
				for p := int32(0); p < 2; p++ {
					producer.Produce(ctx, &kgo.Record{Topic: name, Partition: p, Value: []byte(fmt.Sprintf("%s-%d-%d", name, p, i))}, func(_ *kgo.Record, err error) {
						if err != nil {
							select {
							case failed <- err:
							default:
							}
						}
					})
				}
			}
		}
		if err := producer.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-failed:
			t.Fatal(err)
		default:
		}
		for name := range topics {
			consumer := tb.client(kgo.ConsumeTopics(name), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			next := [2]int{}
			for next[0] < perPartition || next[1] < perPartition {
				fs := consumer.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					t.Fatalf("%s after %v records: %v", name, next, err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					p := r.Partition
					if want := fmt.Sprintf("%s-%d-%d", name, p, next[p]); string(r.Value) != want || r.Offset != int64(next[p]) {
						t.Fatalf("%s partition %d offset %d: %q, want %q at offset %d", name, p, r.Offset, r.Value, want, next[p])
					}
					next[p]++
				})
			}
			consumer.Close()
		}
	})
}
