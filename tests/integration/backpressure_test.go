//go:build linux

package integration

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// hogRequestsMax bounds what the hog may write: ~100 B each, so ~200 MB, far more
	// than loopback socket buffers (tcp_rmem max 32 MiB + tcp_wmem max 4 MiB here)
	// plus queuedMaxRequestBytes can absorb, so a broker that mutes the hog blocks its
	// writer long before the end, and one that does not must hold a mountain of
	// responses in memory.
	hogRequestsMax = 2_000_000
	// hogWriteTimeout bounds the hog's writer in time.
	hogWriteTimeout = 10 * time.Second
	// probeDuration is how long the well-behaved connection measures while the hog runs.
	probeDuration = 3 * time.Second
	// probeP99Max is the latency the well-behaved connection must keep at p99.
	probeP99Max = 200 * time.Millisecond
	// rssMax is the bound on the broker's resident memory while the hog runs.
	rssMax = 512 << 20
	// queuedMaxRequestBytes is the per-loop request memory bound given to the broker.
	queuedMaxRequestBytes = 16 << 20
	// recvBuffers and recvBufferBytes size the broker's provided-buffer ring for
	// this test (ring.recv.buffers x ring.recv.buffer.bytes = 256 KiB per loop).
	recvBuffers, recvBufferBytes = 16, 16 << 10
	// heldRequestsMax bounds how many of the hog's requests the broker may hold
	// (taken off the socket but not answered onto it). The documented bound
	// (docs/ARCHITECTURE.md, "Bounds") is the per-connection in-flight bound (1,024
	// requests by default) plus at most one buffer ring of unparsed bytes that a
	// multishot receive can fill before the mute's cancel lands; 84-byte requests
	// make that 3,120 requests here. A small margin covers one send batch.
	heldRequestsMax = 1024 + recvBuffers*recvBufferBytes/84 + 256
)

// TestBackpressure: a client that pipelines requests and never reads gets muted (its
// writes stall), the broker's RSS stays bounded, and another connection keeps its
// latency; after the hog goes away the broker still serves.
func TestBackpressure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{
			"queued.max.request.bytes": strconv.Itoa(queuedMaxRequestBytes),
			"ring.recv.buffers":        strconv.Itoa(recvBuffers),
			"ring.recv.buffer.bytes":   strconv.Itoa(recvBufferBytes),
		})
		probe := dial(t, b.Addr)
		for i := range 50 { // warm up the probe's connection and the broker
			if err := apiVersionsOn(probe, int32(i), rawTimeout); err != nil {
				t.Fatalf("probe warm-up: %v", err)
			}
		}
		rssStart := mustRSS(t, b)

		// RSS sampler: every 20 ms until stopped.
		var rssPeak atomic.Int64
		rssPeak.Store(rssStart)
		stopSampler := make(chan struct{})
		var samplerDone sync.WaitGroup
		samplerDone.Add(1)
		go func() {
			defer samplerDone.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopSampler:
					return
				case <-tick.C:
					if rss, err := b.RSS(); err == nil && rss > rssPeak.Load() {
						rssPeak.Store(rss)
					}
				}
			}
		}()
		defer func() { close(stopSampler); samplerDone.Wait() }()

		// The hog: ApiVersions v3 requests (~100 B each, padded through the software
		// version field), written in chunks of 1,000, never read.
		req := apiVersionsRequest(3)
		req.ClientSoftwareVersion = strings.Repeat("9", 40)
		const chunkRequests = 1000
		var chunk []byte
		for i := range chunkRequests {
			chunk = appendRequest(chunk, req, int32(i))
		}
		hogRequestBytes := len(chunk) / chunkRequests
		// The size of one answer to the hog's request, to count answers in kernel queues.
		responseFrameBytes := responseSize(t, probe, req)
		hog := dial(t, b.Addr)
		var hogWritten atomic.Int64
		hogDone := make(chan error, 1)
		hogStart := time.Now()
		_ = hog.SetWriteDeadline(hogStart.Add(hogWriteTimeout))
		go func() {
			for range hogRequestsMax / chunkRequests {
				n, err := hog.Write(chunk)
				hogWritten.Add(int64(n))
				if err != nil {
					hogDone <- err
					return
				}
			}
			hogDone <- nil
		}()

		// The probe measures round trips while the hog fills the broker up.
		var latencies []time.Duration
		for corr := int32(1000); time.Since(hogStart) < probeDuration; corr++ {
			t0 := time.Now()
			if err := apiVersionsOn(probe, corr, rawTimeout); err != nil {
				t.Fatalf("probe round trip %d while the hog runs: %v", len(latencies), err)
			}
			latencies = append(latencies, time.Since(t0))
		}
		written1 := hogWritten.Load()
		time.Sleep(300 * time.Millisecond)
		written2 := hogWritten.Load()
		var hogFinished bool
		select {
		case err := <-hogDone:
			hogFinished = err == nil
			hogDone <- err // for the reader below
		default:
		}

		// Where the hog's bytes sit. Whatever is not in a kernel queue on the request
		// side was taken in by the broker; of that, the requests whose answers are not
		// in a kernel queue on the response side are still held inside the broker
		// (queued, being handled, or answered but unsent) — the quantity the
		// per-connection bound limits.
		hogLocal, brokerSide := hog.LocalAddr().(*net.TCPAddr), hog.RemoteAddr().(*net.TCPAddr)
		clientSendQ, clientRecvQ, errClient := tcpQueues(hogLocal, brokerSide)
		brokerSendQ, brokerRecvQ, errBroker := tcpQueues(brokerSide, hogLocal)
		if errClient != nil || errBroker != nil {
			t.Fatalf("hog socket queues unavailable: %v / %v", errClient, errBroker)
		}
		takenRequests := (written2 - clientSendQ - brokerRecvQ) / int64(hogRequestBytes)
		answersInKernel := (brokerSendQ + clientRecvQ) / int64(responseFrameBytes)
		heldRequests := takenRequests - answersInKernel
		t.Logf("%s backpressure: hog socket queues: client send-q %d B, broker recv-q %d B | broker send-q %d B, client recv-q %d B (%d answers of %d B)",
			backend, clientSendQ, brokerRecvQ, brokerSendQ, clientRecvQ, answersInKernel, responseFrameBytes)
		t.Logf("%s backpressure: the broker took in %d requests and holds %d of them unanswered on the wire (bound for the test: %d)",
			backend, takenRequests, heldRequests, heldRequestsMax)

		slices.Sort(latencies)
		p50, p99, pmax := percentile(latencies, 0.50), percentile(latencies, 0.99), latencies[len(latencies)-1]
		t.Logf("%s backpressure: hog wrote %d of %d requests (%.1f MiB of %.1f MiB, %d B each) in %v, +%d B in the last 300 ms",
			backend, written2/int64(hogRequestBytes), hogRequestsMax,
			float64(written2)/(1<<20), float64(hogRequestsMax*hogRequestBytes)/(1<<20), hogRequestBytes,
			time.Since(hogStart).Round(time.Millisecond), written2-written1)
		t.Logf("%s backpressure: probe %d round trips: p50 %v, p99 %v, max %v", backend, len(latencies),
			p50.Round(time.Microsecond), p99.Round(time.Microsecond), pmax.Round(time.Microsecond))
		t.Logf("%s backpressure: broker RSS start %.1f MiB, peak %.1f MiB", backend,
			float64(rssStart)/(1<<20), float64(rssPeak.Load())/(1<<20))

		if hogFinished {
			t.Errorf("the hog wrote all %d requests without reading a byte: the broker never muted it", hogRequestsMax)
		} else if written2 != written1 {
			t.Errorf("the hog still got %d B through in 300 ms, %v after it started and without reading a byte: the broker is not muting it", written2-written1, probeDuration)
		}
		if heldRequests > heldRequestsMax {
			t.Errorf("the broker holds %d requests of a connection that never reads, want <= %d: it kept receiving after the in-flight bound (1,024 requests / 16 MiB per connection by default) plus one buffer ring should have muted the connection",
				heldRequests, heldRequestsMax)
		}
		if p99 >= probeP99Max {
			t.Errorf("probe p99 %v while the hog runs, want < %v", p99, probeP99Max)
		}
		if peak := rssPeak.Load(); peak >= rssMax {
			t.Errorf("broker RSS peaked at %.1f MiB, want < %d MiB", float64(peak)/(1<<20), rssMax>>20)
		}

		// Hog gone: the broker must shed its state and keep serving.
		hog.Close()
		<-hogDone
		for i := range 100 {
			if err := apiVersionsOn(probe, int32(100_000+i), rawTimeout); err != nil {
				t.Fatalf("probe after the hog closed: %v", err)
			}
		}
		if err := probeApiVersions(b.Addr, rawTimeout); err != nil {
			t.Fatalf("new connection after the hog closed: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		t.Logf("%s backpressure: broker RSS after the hog closed %.1f MiB", backend, float64(mustRSS(t, b))/(1<<20))
	})
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func mustRSS(t *testing.T, b *Broker) int64 {
	t.Helper()
	rss, err := b.RSS()
	if err != nil {
		t.Fatalf("broker RSS: %v", err)
	}
	return rss
}

// responseSize does one round trip of req on conn and returns the length of the whole
// response frame, size prefix included.
func responseSize(t *testing.T, conn net.Conn, req kmsg.Request) int {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(rawTimeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(appendRequest(nil, req, 424242)); err != nil {
		t.Fatal(err)
	}
	payload, err := readFrame(conn)
	if err != nil {
		t.Fatalf("sizing round trip: %v", err)
	}
	return 4 + len(payload)
}
