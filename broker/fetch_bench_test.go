package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
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
	dir := b.TempDir()
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.CreateTopic("bench", 1, map[string]string{"segment.bytes": "1073741824"}, false); err != nil {
		b.Fatal(err)
	}
	l := reg.Topic("bench").Partitions[0].Log
	vals := make([][]byte, 10)
	for i := range vals {
		vals[i] = make([]byte, 100)
	}
	done := make(chan storage.AppendResult, 64)
	for i := 0; i < 64; i++ {
		if err := l.Append(storedBatch(codecNone, -1, -1, -1, time.Now().UnixMilli(), 0, vals...), storage.AppendFunc(func(r storage.AppendResult) { done <- r })); err != nil {
			b.Fatal(err)
		}
		if r := <-done; r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	br, err := New(Options{NodeID: 0, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, DataDir: dir, Registry: reg, MessageMaxBytes: 1048588, FetchZeroCopy: true})
	if err != nil {
		b.Fatal(err)
	}
	defer br.CloseProducerState()
	srv, err := netpoll.Listen(netpoll.Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Handler: br})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	addr := srv.Addrs()[0].String()
	run := func(rounds int) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFetchBenchClientProcess$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("RINGBROKER_FETCH_BENCH_CLIENT=%s,%d,%d,%d", addr, conns, depth, rounds))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("client: %v\n%s", err, out)
		}
	}
	run(20) // warm pools and the page cache
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	requests := float64(b.N * conns * depth)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/requests, "ns/request")
	b.ReportMetric(requests/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/requests, "allocs/request")
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
