package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metrics"
	"github.com/ringbroker/ringbroker/netpoll"
)

// BenchmarkApiVersionsPipelined: 64 connections, each writing 16 pipelined
// ApiVersions v3 requests and then reading the 16 responses, per iteration;
// io_uring and portable backends side by side in one run. Reports ns and
// heap allocations per request (the in-process client allocates nothing in
// steady state, so the allocations are the broker's).
//
// The "+metrics" variants run with a live Prometheus registry (per-API
// request counters and latency histograms, network byte counters, ring
// counters): the instrumented hot path must allocate nothing extra.
func BenchmarkApiVersionsPipelined(b *testing.B) {
	for _, backend := range []string{netpoll.BackendUring, netpoll.BackendPortable} {
		b.Run(backend, func(b *testing.B) { benchPipelined(b, backend, 64, 16, nil) })
	}
	for _, backend := range []string{netpoll.BackendUring, netpoll.BackendPortable} {
		b.Run(backend+"+metrics", func(b *testing.B) {
			benchPipelined(b, backend, 64, 16, metrics.New(metrics.Options{Rings: 2}))
		})
	}
}

func benchPipelined(b *testing.B, backend string, conns, depth int, m *metrics.Registry) {
	br, err := New(Options{NodeID: 0, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, DataDir: b.TempDir(), Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	var nm netpoll.Metrics
	if m != nil {
		nm = m
	}
	srv, err := netpoll.Listen(netpoll.Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Handler: br, Metrics: nm})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	// The load comes from a child process (this test binary re-executed), as
	// real clients do: an in-process client would compete with the pinned
	// ring threads for the same Go scheduler Ps and skew the comparison, and
	// the broker's allocation count below would include the client's.
	addr := srv.Addrs()[0].String()
	measureRequests(b, conns*depth, func(rounds int) {
		runBenchClient(b, "TestBenchClientProcess", fmt.Sprintf("RINGBROKER_BENCH_CLIENT=%s,%d,%d,%d", addr, conns, depth, rounds))
	})
}

// measureRequests runs run(20) to warm pools, buffers and the page cache,
// then run(b.N) timed, and reports per request (perRound requests a round)
// the time, the rate and this process's heap allocations.
func measureRequests(b *testing.B, perRound int, run func(rounds int)) {
	run(20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	requests := float64(b.N * perRound)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/requests, "ns/request")
	b.ReportMetric(requests/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/requests, "allocs/request")
}

// TestBenchClientProcess is the load client of BenchmarkApiVersionsPipelined
// when run as its child; otherwise it does nothing.
func TestBenchClientProcess(t *testing.T) {
	spec := os.Getenv("RINGBROKER_BENCH_CLIENT")
	if spec == "" {
		return
	}
	var addr string
	var conns, depth, rounds int
	parts := strings.Split(spec, ",")
	addr = parts[0]
	fmt.Sscan(parts[1], &conns)
	fmt.Sscan(parts[2], &depth)
	fmt.Sscan(parts[3], &rounds)
	req := kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "bench", ClientSoftwareVersion: "1"}
	one := encodeFrame(&req, 1, "bench")
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
	io.ReadFull(probe, lenBuf[:])
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
				if _, err := c.Write(batch); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- err
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

// encodeFrame builds a length-prefixed request frame as a client would.
func encodeFrame(req kmsg.Request, correlationID int32, clientID string) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}
