//go:build linux

package integration

// Soak (issue 8, opt-in): ~200 connections mixing franz-go producers, consumer
// group members that join and leave, and raw clients, all restarting now and then,
// for SOAK_DURATION (default 10 minutes). Every minute the test logs the broker's
// RSS, goroutines (go_goroutines from /metrics), open descriptors and sockets,
// connections, and the minute's produce latency; at the end it asserts that RSS,
// goroutines and descriptors are flat between the first minute and the last.
//
//	RINGBROKER_SOAK=1 [SOAK_DURATION=10m] [SOAK_BACKEND=uring|portable] \
//	    go test -count=1 -run TestSoak -timeout 30m -v ./tests/integration/
//
// It is skipped unless RINGBROKER_SOAK=1, so `make test` never runs it.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
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
	soakTopic      = "soak"
	soakPartitions = 8
	// soakProducers, soakConsumers and soakRawConns make ~200 broker connections:
	// a franz-go producer holds 3 (seed, broker 0, produce), a group member 4
	// (seed, broker 0, coordinator, fetch), a raw client 1 (measured: 40/20/60
	// gave 258).
	soakProducers = 30
	soakConsumers = 16 // in two groups of 8
	soakRawConns  = 50
	// Flatness tolerances between the first minute's sample and the last.
	soakRSSGrowthMax       = 1.5 // x, plus soakRSSSlack
	soakRSSSlack           = 32 << 20
	soakGoroutineGrowthMax = 1.2 // x, plus 20
	soakFDGrowthMax        = 1.2 // x, plus 20
)

// soakSample is one minute's figures.
type soakSample struct {
	at         time.Duration
	rss        int64
	goroutines float64
	fds        int
	sockets    int
	conns      float64
	produced   int64
	consumed   int64
	p50, p99   time.Duration
	latencyN   int
}

func TestSoak(t *testing.T) {
	if os.Getenv("RINGBROKER_SOAK") != "1" {
		t.Skip("soak is opt-in: RINGBROKER_SOAK=1 (make soak)")
	}
	duration := 10 * time.Minute
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SOAK_DURATION=%q: %v", s, err)
		}
		duration = d
	}
	backend := os.Getenv("SOAK_BACKEND")
	if backend == "" {
		backend = "uring"
	}
	interval := time.Minute
	if duration < 5*time.Minute {
		interval = duration / 5 // short runs still get five samples
	}

	metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	b := startBroker(t, backend, map[string]string{
		"metrics.listener":                 metricsAddr,
		"group.initial.rebalance.delay.ms": "500",
		"offsets.topic.num.partitions":     "8",
		// Bounded disk: small segments, size retention checked every 10 s.
		"log.segment.bytes":               strconv.Itoa(16 << 20),
		"log.retention.bytes":             strconv.Itoa(64 << 20),
		"log.retention.check.interval.ms": "10000",
	})
	createTopic(t, b.Addr, soakTopic, soakPartitions, nil)
	baseFDs, baseSockets := countFDsAndSockets(t, b.PID)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg       sync.WaitGroup
		produced atomic.Int64
		consumed atomic.Int64
		errMu    sync.Mutex
		errs     = map[string]int{}
		latMu    sync.Mutex
		lat      []time.Duration
	)
	noteErr := func(what string, err error) {
		if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return
		}
		errMu.Lock()
		key := what + ": " + err.Error()
		if errs[key] == 0 {
			t.Logf("soak: %s", key)
		}
		errs[key]++
		errMu.Unlock()
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	jitter := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rand.Int64N(int64(hi-lo))) }

	// Producers: batches of 10 records every ~50 ms, each client restarted after
	// 20-60 s.
	for i := range soakProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gen := 0; ctx.Err() == nil; gen++ {
				cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic(soakTopic),
					kgo.ClientID(fmt.Sprintf("soak-producer-%d-%d", i, gen)), kgo.ProducerLinger(0))
				if err != nil {
					noteErr("new producer", err)
					return
				}
				life := time.Now().Add(jitter(20*time.Second, 60*time.Second))
				for n := 0; time.Now().Before(life) && ctx.Err() == nil; n++ {
					recs := make([]*kgo.Record, 10)
					for j := range recs {
						recs[j] = &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: recordValue("soak", n*10+j, 200, false)}
					}
					pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
					t0 := time.Now()
					err := cl.ProduceSync(pctx, recs...).FirstErr()
					d := time.Since(t0)
					pcancel()
					if err != nil {
						noteErr("produce", err)
					} else {
						produced.Add(int64(len(recs)))
						if n > 0 { // the first includes connecting, metadata and InitProducerID
							latMu.Lock()
							lat = append(lat, d)
							latMu.Unlock()
						}
					}
					if !sleep(50 * time.Millisecond) {
						break
					}
				}
				cl.Close()
			}
		}()
	}

	// Group members: two groups; each member lives 15-45 s, leaves (Close sends
	// LeaveGroup), pauses and joins again.
	for i := range soakConsumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := fmt.Sprintf("soak-group-%d", i%2)
			for gen := 0; ctx.Err() == nil; gen++ {
				cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(soakTopic),
					kgo.ClientID(fmt.Sprintf("soak-consumer-%d-%d", i, gen)), kgo.FetchMaxWait(500*time.Millisecond),
					kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(time.Second))
				if err != nil {
					noteErr("new consumer", err)
					return
				}
				life := time.Now().Add(jitter(15*time.Second, 45*time.Second))
				for time.Now().Before(life) && ctx.Err() == nil {
					pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
					fs := cl.PollFetches(pctx)
					pcancel()
					fs.EachError(func(_ string, _ int32, err error) {
						if !errors.Is(err, context.DeadlineExceeded) {
							noteErr("fetch", err)
						}
					})
					consumed.Add(int64(fs.NumRecords()))
				}
				cl.Close() // leaves the group (and commits what it polled)
				if !sleep(jitter(time.Second, 5*time.Second)) {
					return
				}
			}
		}()
	}

	// Raw clients: ApiVersions and Metadata round trips every ~100 ms on one
	// connection, reconnecting every 10-30 s.
	for range soakRawConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				conn, err := net.DialTimeout("tcp", b.Addr, 5*time.Second)
				if err != nil {
					noteErr("raw dial", err)
					if !sleep(time.Second) {
						return
					}
					continue
				}
				life := time.Now().Add(jitter(10*time.Second, 30*time.Second))
				for corr := int32(0); time.Now().Before(life) && ctx.Err() == nil; corr++ {
					if corr%2 == 0 {
						err = apiVersionsOn(conn, corr, rawTimeout)
					} else {
						err = roundTrip(conn, metadataRequest(1), kmsg.NewPtrMetadataResponse(), corr, rawTimeout)
					}
					if err != nil {
						noteErr("raw round trip", err)
						break
					}
					if !sleep(100 * time.Millisecond) {
						break
					}
				}
				conn.Close()
			}
		}()
	}

	// Sampler.
	var samples []soakSample
	start := time.Now()
	takeSample := func() soakSample {
		s := soakSample{at: time.Since(start).Round(time.Second), produced: produced.Load(), consumed: consumed.Load()}
		s.rss, _ = b.RSS()
		s.fds, s.sockets = countFDsAndSockets(t, b.PID)
		for try := 0; try < 3; try++ { // a loaded host can miss the scrape's 5 s
			m, err := scrapeMetrics(metricsAddr)
			if err == nil {
				s.goroutines = m["go_goroutines"]
				s.conns = m["ringbroker_connections"]
				break
			}
			t.Logf("soak: scrape /metrics: %v", err)
		}
		latMu.Lock()
		window := lat
		lat = nil
		latMu.Unlock()
		sortDurations(window)
		s.latencyN = len(window)
		s.p50, s.p99 = percentile(window, 0.5), percentile(window, 0.99)
		t.Logf("soak %s %7v: RSS %s, goroutines %.0f, fds %d (sockets %d), connections %.0f, produced %d, consumed %d, produce p50 %v p99 %v (%d batches)",
			backend, s.at, mib(s.rss), s.goroutines, s.fds, s.sockets, s.conns, s.produced, s.consumed,
			s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond), s.latencyN)
		return s
	}
	for time.Since(start) < duration {
		next := start.Add(time.Duration(len(samples)+1) * interval)
		if !b.Alive() {
			t.Fatalf("broker died during the soak")
		}
		time.Sleep(time.Until(next))
		samples = append(samples, takeSample())
	}
	cancel()
	wg.Wait()
	time.Sleep(2 * time.Second)
	idleFDs, idleSockets := countFDsAndSockets(t, b.PID)
	idleRSS, _ := b.RSS()

	errMu.Lock()
	var errLines []string
	total := 0
	for k, n := range errs {
		errLines = append(errLines, fmt.Sprintf("%dx %s", n, k))
		total += n
	}
	errMu.Unlock()

	first, last := samples[0], samples[len(samples)-1]
	t.Logf("soak %s summary over %v: start (after %v) RSS %s, goroutines %.0f, fds %d; end RSS %s, goroutines %.0f, fds %d; after all clients closed: fds %d (sockets %d; before they started %d and %d), RSS %s; produced %d, consumed %d; client errors %d %v",
		backend, duration, first.at, mib(first.rss), first.goroutines, first.fds, mib(last.rss), last.goroutines, last.fds,
		idleFDs, idleSockets, baseFDs, baseSockets, mib(idleRSS), last.produced, last.consumed, total, errLines)
	if float64(last.rss) > float64(first.rss)*soakRSSGrowthMax+soakRSSSlack {
		t.Errorf("RSS not flat: %s after the first interval, %s at the end (tolerance x%.1f + %s)", mib(first.rss), mib(last.rss), soakRSSGrowthMax, mib(soakRSSSlack))
	}
	if last.goroutines > first.goroutines*soakGoroutineGrowthMax+20 {
		t.Errorf("goroutines not flat: %.0f -> %.0f (tolerance x%.1f + 20)", first.goroutines, last.goroutines, soakGoroutineGrowthMax)
	}
	if float64(last.fds) > float64(first.fds)*soakFDGrowthMax+20 {
		t.Errorf("descriptors not flat: %d -> %d (tolerance x%.1f + 20)", first.fds, last.fds, soakFDGrowthMax)
	}
	if idleSockets > baseSockets+2 {
		t.Errorf("%d sockets open in the broker 2 s after every soak client closed, %d before they started", idleSockets, baseSockets)
	}
	if last.produced == 0 || last.consumed == 0 {
		t.Errorf("nothing produced (%d) or consumed (%d)", last.produced, last.consumed)
	}
	for k, n := range errs {
		if strings.HasPrefix(k, "produce") || strings.HasPrefix(k, "raw") {
			t.Errorf("client errors during the soak: %dx %s", n, k)
		}
	}
}

// countFDsAndSockets counts a process's open descriptors and, of them, sockets.
func countFDsAndSockets(t *testing.T, pid int) (fds, sockets int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("fds of %d: %v", pid, err)
	}
	for _, e := range ents {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return len(ents), sockets
}
