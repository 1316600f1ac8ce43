package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
)

// BenchmarkFetchPipelined is the Fetch handler's cost end to end: conns
// connections each keep depth Fetch v12 requests in flight, each reading
// the same 64 batches (10 records of 100 bytes) from one partition, served
// zero-copy. The load comes from a child process, as in
// BenchmarkApiVersionsPipelined.
func BenchmarkFetchPipelined(b *testing.B) {
	for _, backend := range []string{netpoll.BackendUring, netpoll.BackendPortable} {
		b.Run(backend, func(b *testing.B) { benchFetch(b, backend, 4, 16) })
	}
}

func benchFetch(b *testing.B, backend string, conns, depth int) {
	addr := serveBenchTopic(b, backend, func(l *storage.Log) {
		vals := make([][]byte, 10)
		for i := range vals {
			vals[i] = make([]byte, 100)
		}
		done := make(chan storage.AppendResult, 1)
		for i := 0; i < 64; i++ {
			if err := l.Append(storedBatch(codecNone, -1, -1, -1, time.Now().UnixMilli(), 0, vals...), storage.AppendFunc(func(r storage.AppendResult) { done <- r })); err != nil {
				b.Fatal(err)
			}
			if r := <-done; r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	})
	measureRequests(b, conns*depth, func(rounds int) {
		runBenchClient(b, "TestFetchBenchClientProcess", fmt.Sprintf("RINGBROKER_FETCH_BENCH_CLIENT=%s,%d,%d,%d", addr, conns, depth, rounds))
	})
}

// TestFetchBenchClientProcess is the load client of BenchmarkFetchPipelined
// when run as its child; otherwise it does nothing.
func TestFetchBenchClientProcess(t *testing.T) {
	spec := os.Getenv("RINGBROKER_FETCH_BENCH_CLIENT")
	if spec == "" {
		return
	}
	parts := strings.Split(spec, ",")
	addr := parts[0]
	var conns, depth, rounds int
	fmt.Sscan(parts[1], &conns)
	fmt.Sscan(parts[2], &depth)
	fmt.Sscan(parts[3], &rounds)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 12, -1, 0, 1, 1<<20
	req.SessionEpoch = -1 // no session: a full fetch each time
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition, p.FetchOffset, p.PartitionMaxBytes, p.LogStartOffset, p.CurrentLeaderEpoch, p.LastFetchedEpoch = 0, 0, 1<<20, -1, -1, -1
	req.Topics = []kmsg.FetchRequestTopic{{Topic: "bench", Partitions: []kmsg.FetchRequestTopicPartition{p}}}
	one := encodeFrame(req, 1, "bench")
	batch := make([]byte, 0, len(one)*depth)
	for i := 0; i < depth; i++ {
		batch = append(batch, one...)
	}
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer c.Close()
			var lenBuf [4]byte
			body := make([]byte, 0, 128<<10)
			for r := 0; r < rounds; r++ {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write(batch); err != nil {
					errs <- err
					return
				}
				for k := 0; k < depth; k++ {
					if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
						errs <- err
						return
					}
					n := int(binary.BigEndian.Uint32(lenBuf[:]))
					if n < 64<<10 {
						errs <- fmt.Errorf("fetch response of %d bytes, want the 64 batches", n)
						return
					}
					if _, err := io.ReadFull(c, body[:n]); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < conns; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
