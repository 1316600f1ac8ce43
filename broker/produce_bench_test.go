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
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
)

// BenchmarkProducePipelined measures the produce handler path end to end:
// a real Broker and Registry on a temp dir served over loopback, a child
// process (this test binary re-executed) writing pipelined Produce v9
// requests (acks=1, one partition, one batch of 10 records of 100 bytes)
// on 4 connections, 16 in flight each. Reports requests/s and the broker
// process's heap allocations per request and GC cycles (runtime/metrics),
// io_uring and portable backends side by side. The client's allocations
// are in the child and not counted.
func BenchmarkProducePipelined(b *testing.B) {
	for _, backend := range []string{netpoll.BackendUring, netpoll.BackendPortable} {
		b.Run(backend, func(b *testing.B) { benchProduce(b, backend, 4, 16, codecNone) })
	}
}

// BenchmarkProduceCompressed is BenchmarkProducePipelined with the batch's
// records compressed (the topic keeps the producer's codec): the broker
// decompresses and walks every batch on a produce worker.
func BenchmarkProduceCompressed(b *testing.B) {
	for _, backend := range []string{netpoll.BackendUring, netpoll.BackendPortable} {
		for _, codec := range []int8{codecLZ4, codecZstd} {
			b.Run(fmt.Sprintf("%s/codec=%d", backend, codec), func(b *testing.B) { benchProduce(b, backend, 4, 16, codec) })
		}
	}
}

func benchProduce(b *testing.B, backend string, conns, depth int, codec int8) {
	addr := serveBenchTopic(b, backend, nil)
	run := func(rounds int) {
		runBenchClient(b, "TestProduceBenchClientProcess", fmt.Sprintf("RINGBROKER_PRODUCE_BENCH_CLIENT=%s,%d,%d,%d,%d", addr, conns, depth, rounds, codec))
	}
	run(50) // warm pools
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/allocs:objects"}}
	metrics.Read(samples)
	gc0, objs0 := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	metrics.Read(samples)
	requests := float64(b.N * conns * depth)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/requests, "ns/request")
	b.ReportMetric(requests/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(requests*10/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/requests, "allocs/request")
	b.ReportMetric(float64(samples[1].Value.Uint64()-objs0)/requests, "heapobjs/request")
	b.ReportMetric(float64(samples[0].Value.Uint64()-gc0), "gc-cycles")
}

// serveBenchTopic serves a Broker and Registry on a temp dir over loopback
// on backend, with one topic "bench" of one partition and 1 GiB segments;
// fill, if not nil, writes to the partition's log first. It returns the
// listening address; everything stops when b ends.
func serveBenchTopic(b *testing.B, backend string, fill func(*storage.Log)) string {
	dir := b.TempDir()
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Close() })
	if _, err := reg.CreateTopic("bench", 1, map[string]string{"segment.bytes": "1073741824"}, false); err != nil {
		b.Fatal(err)
	}
	if fill != nil {
		fill(reg.Topic("bench").Partitions[0].Log)
	}
	br, err := New(Options{NodeID: 0, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, DataDir: dir, Registry: reg, MessageMaxBytes: 1048588, FetchZeroCopy: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.CloseProducerState() })
	srv, err := netpoll.Listen(netpoll.Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Handler: br})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv.Addrs()[0].String()
}

// runBenchClient runs this test binary again as the load client test
// named test, configured by env (NAME=value).
func runBenchClient(b *testing.B, test, env string) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("client: %v\n%s", err, out)
	}
}

// TestProduceBenchClientProcess is the load client of
// BenchmarkProducePipelined when run as its child; otherwise it does
// nothing.
func TestProduceBenchClientProcess(t *testing.T) {
	spec := os.Getenv("RINGBROKER_PRODUCE_BENCH_CLIENT")
	if spec == "" {
		return
	}
	parts := strings.Split(spec, ",")
	addr := parts[0]
	var conns, depth, rounds int
	var codec int8
	fmt.Sscan(parts[1], &conns)
	fmt.Sscan(parts[2], &depth)
	fmt.Sscan(parts[3], &rounds)
	fmt.Sscan(parts[4], &codec)
	vals := make([][]byte, 10)
	for i := range vals {
		vals[i] = make([]byte, 100)
		if codec != codecNone { // text-like values, so the codec has work to do
			for j := range vals[i] {
				vals[i][j] = "abcdefghij klmnopqrstuvwxyz"[(i*7+j*j)%27]
			}
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, 1, 30000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "bench", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: storedBatch(codec, -1, -1, -1, time.Now().UnixMilli(), 0, vals...)}}}}
	one := encodeFrame(req, 1, "bench")
	batch := make([]byte, 0, len(one)*depth)
	for i := 0; i < depth; i++ {
		batch = append(batch, one...)
	}
	probe, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	probe.Write(one)
	var lenBuf [4]byte
	if _, err := io.ReadFull(probe, lenBuf[:]); err != nil {
		t.Fatal(err)
	}
	respSize := 4 + int(binary.BigEndian.Uint32(lenBuf[:]))
	probe.Close()
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer c.Close()
			buf := make([]byte, respSize*depth)
			for r := 0; r < rounds; r++ {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write(batch); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- err
					return
				}
				// error code of the single partition: after length(4), header(4+1),
				// topics len(1), name(1+5), partitions len(1), index(4)
				if code := binary.BigEndian.Uint16(buf[4+4+1+1+6+1+4:]); code != 0 {
					errs <- fmt.Errorf("produce error code %d", code)
					return
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
