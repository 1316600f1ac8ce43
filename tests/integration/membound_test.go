//go:build linux

package integration

// Memory bounds per process (queued.max.request.bytes): three attacks that each
// grew the broker by gigabytes — large frames being read, pipelined requests
// with large answers that are never read, copied fetch responses that are
// never read. Each test reports the broker's RSS before, at its peak and after,
// against the bound, and demands that a probe keeps being served.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// memQueuedBytes is queued.max.request.bytes for the memory-bound brokers.
	memQueuedBytes = 32 << 20
	// memSlackBytes is what the broker may hold beyond the memory it accounts
	// for: the two loops' receive buffer rings (2 x 16 MiB), the Go heap's GC
	// headroom (GOGC=100 lets the heap reach twice its live size before a
	// collection, and garbage — a spanning frame's earlier, smaller copies —
	// counts until then), runtime and page cache slop.
	memSlackBytes = 96 << 20
	// memAttackTime bounds each attack.
	memAttackTime = 15 * time.Second
)

// memProbe round-trips ApiVersions on its own connection every 20 ms until
// stop closes, and records the latencies.
type memProbe struct {
	lat  []time.Duration
	err  error
	done chan struct{}
}

func startMemProbe(t *testing.T, addr string, stop <-chan struct{}) *memProbe {
	p := &memProbe{done: make(chan struct{})}
	conn := dial(t, addr)
	go func() {
		defer close(p.done)
		for corr := int32(1); ; corr++ {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			if err := apiVersionsOn(conn, corr, 10*time.Second); err != nil {
				p.err = fmt.Errorf("probe round trip %d: %w", len(p.lat), err)
				return
			}
			p.lat = append(p.lat, time.Since(t0))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return p
}

// report waits for the probe to stop and returns its p99 and max.
func (p *memProbe) report() (p99, maxLat time.Duration, n int) {
	<-p.done
	if len(p.lat) == 0 {
		return 0, 0, 0
	}
	sortDurations(p.lat)
	return percentile(p.lat, 0.99), p.lat[len(p.lat)-1], len(p.lat)
}

// checkMem logs and judges one attack's figures.
func checkMem(t *testing.T, backend, what string, before, peak, after, bound int64, probe *memProbe) {
	t.Helper()
	p99, maxLat, n := probe.report()
	t.Logf("%s %s: broker RSS before %s, PEAK %s (+%s), after %s; bound on the growth %s (queued.max.request.bytes %s + what the attack may hold + slack %s); probe %d round trips p99 %v max %v",
		backend, what, mib(before), mib(peak), mib(peak-before), mib(after), mib(bound), mib(memQueuedBytes), mib(memSlackBytes),
		n, p99.Round(time.Millisecond), maxLat.Round(time.Millisecond))
	if peak-before > bound {
		t.Errorf("%s: broker RSS grew by %s, want <= %s", what, mib(peak-before), mib(bound))
	}
	if probe.err != nil {
		t.Errorf("%s: %v", what, probe.err)
	}
	if n == 0 || p99 > 2*time.Second {
		t.Errorf("%s: probe p99 %v over %d round trips, want <= 2 s", what, p99, n)
	}
}

// outcome reads until conn yields an answer, is closed, or the deadline.
func outcome(conn net.Conn, deadline time.Time) error {
	_ = conn.SetReadDeadline(deadline)
	_, _, err := readOutcome(conn, time.Until(deadline))
	return err
}

// TestRequestMemoryBound: 16 connections each send a 40 MiB Produce frame at
// once (the batch is larger than message.max.bytes: the broker answers
// MESSAGE_TOO_LARGE, or closes). The bytes being read into frames count
// toward queued.max.request.bytes; one frame at a time may exceed it, so every
// connection gets its answer, and the RSS stays within the bound plus one
// frame. Before, each connection's frame buffer grew unaccounted (a 99 MiB
// frame cost ~200 MB): 40 connections took the broker to 7.9 GB.
func TestRequestMemoryBound(t *testing.T) {
	const conns, frameBytes = 16, 40 << 20
	frame := appendRequest(nil, produceRequest(9, 1, producePart{"bigframes", 0, plainBatch(make([]byte, frameBytes))}), 1)
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"queued.max.request.bytes": strconv.Itoa(memQueuedBytes)})
		createTopic(t, b.Addr, "bigframes", 1, nil)
		rss := startRSSSampler(t, b)
		before := rss.reset()
		stop := make(chan struct{})
		probe := startMemProbe(t, b.Addr, stop)

		deadline := time.Now().Add(memAttackTime)
		var answered atomic.Int32
		var errs sync.Map
		var wg sync.WaitGroup
		for i := range conns {
			c := dial(t, b.Addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.SetWriteDeadline(deadline)
				if _, err := c.Write(frame); err != nil {
					errs.Store(i, fmt.Errorf("write: %w", err))
					return
				}
				if err := outcome(c, deadline); err != nil {
					errs.Store(i, err)
					return
				}
				answered.Add(1)
			}()
		}
		wg.Wait()
		close(stop)
		peak := rss.overall.Load()
		after, _ := b.RSS()
		errs.Range(func(k, v any) bool {
			t.Errorf("connection %v: no answer to its %d MiB frame within %v: %v", k, frameBytes>>20, memAttackTime, v)
			return true
		})
		t.Logf("%s large frames: %d of %d connections sent a %d MiB frame and got an answer or a close", backend, answered.Load(), conns, frameBytes>>20)
		checkMem(t, backend, "large frames", before, peak, after, memQueuedBytes+2*frameBytes+memSlackBytes, probe)
	})
}

// TestResponseMemoryBound: 12 connections pipeline Metadata requests for every
// topic (~40 bytes each, answered with ~150 KiB: 400 topics with long names)
// and never read. Answers count toward the bounds from the moment the handler
// gives them, so a connection is muted once its answers exceed its bound and
// every connection with answers queued is muted once the loop's share is
// used. Before, on io_uring, the answers to a whole receive buffer of
// requests were built before any was counted (up to 1024 per connection):
// 200 connections took the broker to +4.8 GB.
func TestResponseMemoryBound(t *testing.T) {
	const conns, topics, requestsPerConn = 12, 400, 4096
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{
			"queued.max.request.bytes":  strconv.Itoa(memQueuedBytes),
			"auto.create.topics.enable": "false",
		})
		names := make([]string, topics)
		for i := range names {
			names[i] = fmt.Sprintf("t%03d-%s", i, strings.Repeat("x", 240))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		resps, err := newAdmin(t, b.Addr).CreateTopics(ctx, 1, 1, nil, names...)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			t.Fatalf("create %d topics: %v", topics, err)
		}
		meta := kmsg.NewPtrMetadataRequest()
		meta.Version = 12
		meta.Topics = nil // every topic
		respBytes := responseSize(t, dial(t, b.Addr), meta)
		chunk := make([]byte, 0, 64*64)
		for i := range 64 {
			chunk = appendRequest(chunk, meta, int32(i))
		}

		rss := startRSSSampler(t, b)
		before := rss.reset()
		stop := make(chan struct{})
		probe := startMemProbe(t, b.Addr, stop)
		deadline := time.Now().Add(memAttackTime / 3)
		var wg sync.WaitGroup
		var written atomic.Int64
		for range conns {
			c := dial(t, b.Addr)
			_ = c.SetReadBuffer(4096) // never read: the answers back up at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.SetWriteDeadline(deadline)
				for n := 0; n < requestsPerConn; n += 64 {
					k, err := c.Write(chunk)
					written.Add(int64(k))
					if err != nil {
						return // the deadline: the broker stopped reading us
					}
				}
			}()
		}
		wg.Wait()
		// The broker keeps building answers for what it read: give the
		// peak time to show.
		time.Sleep(time.Second)
		close(stop)
		peak := rss.overall.Load()
		after, _ := b.RSS()
		requests := written.Load() / int64(len(chunk)/64)
		t.Logf("%s pipelined Metadata: %d connections wrote %d requests of %d B (answers of %s each, %s if all were built)",
			backend, conns, requests, len(chunk)/64, mib(int64(respBytes)), mib(requests*int64(respBytes)))
		// Per connection at most one answer beyond the bound.
		checkMem(t, backend, "pipelined Metadata", before, peak, after, memQueuedBytes+int64(conns*respBytes)+memSlackBytes, probe)
	})
}

// TestCopiedFetchMemoryBound: with fetch.zero.copy=false, 16 consumers each
// send one Fetch for a partition holding ~24 MiB and never read. Copied
// record bytes are reserved from a process-wide budget
// (queued.max.request.bytes); what does not fit is spliced from the segment
// file as with zero copy, so the RSS stays within the bound while a franz-go
// consumer still reads every record. Before, each consumer held a whole
// copied response: 40 connections took the broker to +3.4 GB.
func TestCopiedFetchMemoryBound(t *testing.T) {
	const conns, records, valueBytes = 16, 24, 1 << 20
	const topic = "copyfetch"
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{
			"queued.max.request.bytes": strconv.Itoa(memQueuedBytes),
			"fetch.zero.copy":          "false",
			"message.max.bytes":        strconv.Itoa(2 << 20),
		})
		createTopic(t, b.Addr, topic, 1, nil)
		cl := newClient(t, b.Addr, kgo.ProducerBatchMaxBytes(2<<20))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range records {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: recordValue(topic, i, valueBytes, true)}).FirstErr(); err != nil {
				t.Fatalf("produce record %d: %v", i, err)
			}
		}
		fetch := kmsg.NewPtrFetchRequest()
		fetch.Version = 12
		fetch.ReplicaID = -1
		fetch.MaxWaitMillis = 0
		fetch.MinBytes = 1
		fetch.MaxBytes = 64 << 20
		fetch.SessionEpoch = -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.LogStartOffset, fp.CurrentLeaderEpoch = 0, 0, 64<<20, -1, -1
		ft.Partitions = append(ft.Partitions, fp)
		fetch.Topics = append(fetch.Topics, ft)
		frame := appendRequest(nil, fetch, 7)

		rss := startRSSSampler(t, b)
		before := rss.reset()
		stop := make(chan struct{})
		probe := startMemProbe(t, b.Addr, stop)
		var held []*net.TCPConn
		for range conns {
			c := dial(t, b.Addr)
			_ = c.SetReadBuffer(4096) // never read
			_ = c.SetWriteDeadline(time.Now().Add(rawTimeout))
			if _, err := c.Write(frame); err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		// A well-behaved consumer reads every record meanwhile (its
		// responses may be spliced rather than copied).
		got := consumeFranz(t, b.Addr, topic, fromStart(1), records)
		time.Sleep(time.Second) // the held responses are built by now
		close(stop)
		peak := rss.overall.Load()
		for _, c := range held {
			c.Close()
		}
		time.Sleep(time.Second)
		after, _ := b.RSS()
		t.Logf("%s copied fetch: %d consumers that never read, each asking for %d MiB; franz-go consumer read %d of %d records", backend, conns, records*valueBytes>>20, len(got), records)
		if len(got) < records {
			t.Errorf("franz-go consumer read %d of %d records", len(got), records)
		}
		checkMem(t, backend, "copied fetch", before, peak, after, memQueuedBytes+memSlackBytes, probe)
	})
}
