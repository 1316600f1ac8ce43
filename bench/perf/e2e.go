package perf

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// E2EConfig is an end-to-end latency run: one producer at a fixed rate and
// one consumer in the same process, each record's latency measured from
// just before Produce to the moment the consumer returns it (one clock, so
// no clock skew between the two ends).
type E2EConfig struct {
	Bootstrap []string
	Topic     string
	// RecordSize is the value size in bytes (at least 16: the value carries
	// a run id and the send time in nanoseconds).
	RecordSize int
	// Rate is records per second (required: e2e latency is only meaningful
	// below saturation).
	Rate     float64
	Duration time.Duration
	// MaxRecords bounds the run in records too (0: Rate × Duration).
	MaxRecords int64
	Producer   ProducerSettings
	// Out receives a progress line every ReportInterval and the final
	// line, both in the producer tool's format (latencies end to end).
	Out            io.Writer
	ReportInterval time.Duration
}

// E2EResult holds the end-to-end latencies and the producer's own
// acknowledgement latencies of the same records.
type E2EResult struct {
	Summary
	// Ack is the produce acknowledgement latency of the same run.
	Ack ProduceResult `json:"ack"`
	// Missing is the number of acknowledged records not seen by the
	// consumer before the run's drain deadline.
	Missing int64 `json:"missing"`
	// ProduceRequests is the producer's view of its Produce requests.
	ProduceRequests RequestTimes `json:"produce_requests"`
}

// e2eHeaderBytes is the prefix of every value: 8 bytes run id, 8 bytes
// send time (Unix nanoseconds). Records of other runs are skipped.
const e2eHeaderBytes = 16

// RunE2E runs the producer and the consumer until Duration has passed and
// the consumer has caught up (or 10 s more have passed).
func RunE2E(ctx context.Context, cfg E2EConfig) (E2EResult, error) {
	if cfg.RecordSize < e2eHeaderBytes {
		return E2EResult{}, fmt.Errorf("e2e: --record-size must be at least %d", e2eHeaderBytes)
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return E2EResult{}, errors.New("e2e: --rate and --duration are required")
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = 5 * time.Second
	}
	limit := int64(cfg.Rate * cfg.Duration.Seconds())
	if cfg.MaxRecords > 0 {
		limit = min(limit, cfg.MaxRecords)
	}
	limit = max(limit, 1)
	// A fresh one-partition topic unless it exists; a broker without
	// CreateTopics may still auto-create it on first produce.
	_ = CreateTopic(ctx, cfg.Bootstrap, cfg.Topic, 1, nil, true)
	var runID [8]byte
	rand.Read(runID[:])

	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.ClientID("ringbench-e2e-consumer"),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return E2EResult{}, err
	}
	defer closeBounded(consumer)

	start := time.Now()
	e2e := NewStats(cfg.Out, cfg.ReportInterval, start)
	var seen atomic.Int64
	consumeCtx, stopConsume := context.WithCancel(ctx)
	defer stopConsume()
	var wg sync.WaitGroup
	var consumeErr atomic.Pointer[error]
	wg.Add(1)
	go func() {
		defer wg.Done()
		for consumeCtx.Err() == nil {
			fetches := consumer.PollFetches(consumeCtx)
			now := time.Now()
			fetches.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.Canceled) {
					consumeErr.CompareAndSwap(nil, &err)
				}
			})
			fetches.EachRecord(func(r *kgo.Record) {
				v := r.Value
				if len(v) < e2eHeaderBytes || [8]byte(v[:8]) != runID {
					return
				}
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(v[8:16])))
				e2e.Record(now.Sub(sent), len(v), now)
				seen.Add(1)
			})
		}
	}()

	settings := cfg.Producer
	produceHook := newRequestHook(0) // Produce
	producer, err := kgo.NewClient(append(settings.Opts(cfg.RecordSize), kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ClientID("ringbench-e2e-producer"), kgo.WithHooks(produceHook))...)
	if err != nil {
		return E2EResult{}, err
	}
	ack := NewStats(nil, 0, start)
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	slab := make([]byte, 0)
	thr := newThrottler(cfg.Rate, start)
	sendCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var sent int64
	for sent = 0; sent < limit && sendCtx.Err() == nil; sent++ {
		// Values are carved from slabs: each record needs its own bytes
		// (its send time), and one allocation per 1 MiB keeps the GC quiet.
		if len(slab) < cfg.RecordSize {
			slab = make([]byte, max(1<<20, cfg.RecordSize))
		}
		v := slab[:cfg.RecordSize:cfg.RecordSize]
		slab = slab[cfg.RecordSize:]
		copy(v, runID[:])
		now := time.Now()
		binary.BigEndian.PutUint64(v[8:], uint64(now.UnixNano()))
		producer.Produce(ctx, &kgo.Record{Value: v, Timestamp: now}, func(r *kgo.Record, err error) {
			done := time.Now()
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			ack.Record(done.Sub(r.Timestamp), len(r.Value), done)
		})
		if failed.Load() >= 100 && ack.countLocked() == 0 {
			break
		}
		thr.wait(sendCtx, sent+1, now)
	}
	flushCtx, flushCancel := context.WithTimeout(ctx, 10*time.Second)
	producer.Flush(flushCtx)
	flushCancel()
	end := time.Now()
	closeBounded(producer)

	ackSum := ack.Summary(end)
	// Drain: wait until the consumer saw every acknowledged record.
	drainUntil := time.Now().Add(10 * time.Second)
	// A consumer that has only failed so far (e.g. the broker has no
	// Fetch) will not catch up: stop waiting for it.
	for seen.Load() < ackSum.Records && time.Now().Before(drainUntil) && ctx.Err() == nil &&
		!(seen.Load() == 0 && consumeErr.Load() != nil) {
		time.Sleep(5 * time.Millisecond)
	}
	stopConsume()
	wg.Wait()

	res := E2EResult{
		Summary: e2e.Summary(end),
		Ack:     ProduceResult{Summary: ackSum, Failed: failed.Load()},
		Missing: max(ackSum.Records-seen.Load(), 0),

		ProduceRequests: produceHook.times(),
	}
	if p := firstErr.Load(); p != nil {
		res.Ack.FirstError = (*p).Error()
	}
	if cfg.Out != nil {
		PrintTotal(cfg.Out, res.Summary)
	}
	switch {
	case ackSum.Records == 0 && res.Ack.FirstError != "":
		return res, fmt.Errorf("%w: %s", ErrNothingAcknowledged, res.Ack.FirstError)
	case ackSum.Records == 0:
		return res, ErrNothingAcknowledged
	case res.Records == 0:
		if p := consumeErr.Load(); p != nil {
			return res, fmt.Errorf("no record consumed: %v", *p)
		}
		return res, errors.New("no record consumed")
	}
	return res, nil
}

// countLocked returns the number of records counted so far.
func (s *Stats) countLocked() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}
