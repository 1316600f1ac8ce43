package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceConfig is one kafka-producer-perf-test-style run.
type ProduceConfig struct {
	Topic      string
	NumRecords int64
	// RecordSize is the value size in bytes; ignored when Payloads is set.
	RecordSize int
	// Payloads, when set, are chosen from at random for each record
	// (--payload-file).
	Payloads [][]byte
	// Throughput caps the send rate in records/s; ≤ 0 means unlimited
	// (the Kafka tool's -1).
	Throughput float64
	Producer   ProducerSettings
	// MaxDuration stops sending after this long (0: no limit). Not a Kafka
	// tool flag: the harness bounds every run in time as well as records.
	MaxDuration time.Duration
	// ReportInterval is the window length of progress lines (Kafka: 5 s).
	ReportInterval time.Duration
	// Out receives the progress lines and the final line (nil: discarded).
	Out io.Writer
	// Errors receives the first send error and the error count.
	Errors io.Writer
	// TransactionDuration is --transaction-duration-ms: with
	// Producer.TransactionalID set, records are produced in transactions
	// committed once this long has passed since each began (Kafka's
	// ProducerPerformance: the commit follows the first send after the
	// duration, and the last transaction is committed at the end).
	TransactionDuration time.Duration
}

// ProduceResult is what a produce run measured.
type ProduceResult struct {
	Summary
	// Failed is the number of records whose send failed.
	Failed int64 `json:"failed"`
	// FirstError is the first send error, if any.
	FirstError string `json:"first_error,omitempty"`
}

// ErrNothingAcknowledged is returned (wrapped) when a run ended without a
// single acknowledged record, e.g. because the broker does not serve
// Produce.
var ErrNothingAcknowledged = errors.New("no record was acknowledged")

// throttler paces sends to a target rate: it sleeps only when the sender is
// at least a millisecond ahead, so high rates are reached in small bursts
// rather than one sleep per record (Kafka's ThroughputThrottler does the
// same with its own threshold).
type throttler struct {
	start   time.Time
	perSend time.Duration
}

func newThrottler(ratePerSec float64, start time.Time) *throttler {
	if ratePerSec <= 0 {
		return nil
	}
	return &throttler{start: start, perSend: time.Duration(float64(time.Second) / ratePerSec)}
}

// wait blocks until send number i may go, or ctx ends.
func (t *throttler) wait(ctx context.Context, i int64, now time.Time) {
	if t == nil {
		return
	}
	due := t.start.Add(time.Duration(i) * t.perSend)
	if ahead := due.Sub(now); ahead >= time.Millisecond {
		timer := time.NewTimer(ahead)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
}

// RunProduce produces cfg.NumRecords records (or until MaxDuration or ctx
// ends), printing the Kafka tool's progress and final lines to cfg.Out.
func RunProduce(ctx context.Context, cfg ProduceConfig) (ProduceResult, error) {
	if cfg.NumRecords <= 0 {
		return ProduceResult{}, errors.New("--num-records should be greater than zero")
	}
	if len(cfg.Payloads) == 0 && cfg.RecordSize <= 0 {
		return ProduceResult{}, errors.New("--record-size should be greater than zero")
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = 5 * time.Second
	}
	largest := cfg.RecordSize
	for _, p := range cfg.Payloads {
		largest = max(largest, len(p))
	}
	opts := append(cfg.Producer.Opts(largest), kgo.DefaultProduceTopic(cfg.Topic))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ProduceResult{}, err
	}
	// One payload for the whole run: Kafka regenerates random letters per
	// record, which measures the tool's CPU, not the broker. The bytes are
	// random letters like Kafka's, so compression ratios are comparable.
	payload := make([]byte, cfg.RecordSize)
	rng := rand.New(rand.NewPCG(0, 0))
	for i := range payload {
		payload[i] = byte('A' + rng.IntN(26))
	}

	// Records are produced under ctx; sendCtx only stops the send loop, so
	// a time bound ends a run without failing what is already buffered.
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.MaxDuration > 0 {
		sendCtx, cancel = context.WithTimeout(ctx, cfg.MaxDuration)
		defer cancel()
	}

	start := time.Now()
	stats := NewStats(cfg.Out, cfg.ReportInterval, start)
	var (
		failed   atomic.Int64
		acked    atomic.Int64
		firstErr atomic.Pointer[error]
		pool     = sync.Pool{New: func() any { return new(kgo.Record) }}
	)
	promise := func(r *kgo.Record, err error) {
		now := time.Now()
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
		} else {
			acked.Add(1)
			stats.Record(now.Sub(r.Timestamp), len(r.Value), now)
		}
		*r = kgo.Record{}
		pool.Put(r)
	}
	thr := newThrottler(cfg.Throughput, start)
	txn := newTxnPacer(cl, cfg)
	var sent int64
	for sent = 0; sent < cfg.NumRecords; sent++ {
		// Stop early when the broker fails everything (e.g. it does
		// not serve Produce): the error is the result.
		if sendCtx.Err() != nil || failed.Load() >= 100 && acked.Load() == 0 || txn.failed() {
			break
		}
		txn.begin(time.Now())
		r := pool.Get().(*kgo.Record)
		if len(cfg.Payloads) > 0 {
			r.Value = cfg.Payloads[rng.IntN(len(cfg.Payloads))]
		} else {
			r.Value = payload
		}
		now := time.Now()
		// The record timestamp doubles as the send time the latency is
		// measured from (Kafka: sendStartMs before producer.send).
		r.Timestamp = now
		cl.Produce(ctx, r, promise)
		txn.maybeCommit(ctx, now)
		thr.wait(sendCtx, sent+1, now)
	}
	txn.commit(ctx)
	// Wait for what was sent; bounded so a broker that never answers
	// cannot hang the run (Close then fails what is left).
	flushCtx, flushCancel := context.WithTimeout(context.Background(), flushBound(cfg))
	cl.Flush(flushCtx)
	flushCancel()
	end := time.Now()
	closeBounded(cl)

	res := ProduceResult{Summary: stats.Summary(end), Failed: failed.Load()}
	if txn != nil && txn.err != nil {
		err := txn.err
		firstErr.CompareAndSwap(nil, &err)
	}
	if p := firstErr.Load(); p != nil {
		res.FirstError = (*p).Error()
		if cfg.Errors != nil {
			fmt.Fprintf(cfg.Errors, "ringbench: %d sends failed; first error: %v\n", res.Failed, *p)
		}
	}
	if cfg.Out != nil {
		PrintTotal(cfg.Out, res.Summary)
	}
	if res.Records == 0 {
		if res.FirstError != "" {
			return res, fmt.Errorf("%w: %s", ErrNothingAcknowledged, res.FirstError)
		}
		return res, ErrNothingAcknowledged
	}
	return res, nil
}

// flushBound is how long RunProduce waits for outstanding records after the
// last send: the delivery timeout, cut to 10 s for time-bounded runs.
func flushBound(cfg ProduceConfig) time.Duration {
	if cfg.MaxDuration > 0 {
		return 10 * time.Second
	}
	return cfg.Producer.DeliveryTimeout + 5*time.Second
}

// closeBounded closes the client but gives up waiting after 5 s: an
// idempotent producer may wait for in-flight requests that a stuck broker
// never answers.
func closeBounded(cl *kgo.Client) {
	done := make(chan struct{})
	go func() { cl.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// txnPacer runs a transactional producer's transactions as Kafka's
// ProducerPerformance does: begin before the first send of a transaction,
// commit after the send that finds TransactionDuration elapsed since the
// transaction began (the commit waits for the transaction's records, as
// Java's commitTransaction flushes), commit the last one at the end. A nil
// pacer (no transactional id) does nothing.
type txnPacer struct {
	cl       *kgo.Client
	duration time.Duration
	open     bool
	began    time.Time
	err      error
}

func newTxnPacer(cl *kgo.Client, cfg ProduceConfig) *txnPacer {
	if cfg.Producer.TransactionalID == "" {
		return nil
	}
	d := cfg.TransactionDuration
	if d <= 0 {
		d = DefaultTransactionDuration
	}
	return &txnPacer{cl: cl, duration: d}
}

// DefaultTransactionDuration is the Kafka tool's transaction duration when
// only a transactional id is given.
const DefaultTransactionDuration = 3 * time.Second

func (t *txnPacer) failed() bool { return t != nil && t.err != nil }

func (t *txnPacer) begin(now time.Time) {
	if t == nil || t.open {
		return
	}
	if err := t.cl.BeginTransaction(); err != nil {
		t.err = fmt.Errorf("begin transaction: %w", err)
		return
	}
	t.open, t.began = true, now
}

func (t *txnPacer) maybeCommit(ctx context.Context, now time.Time) {
	if t != nil && t.open && now.Sub(t.began) >= t.duration {
		t.commit(ctx)
	}
}

// commit flushes the open transaction's records and commits it.
func (t *txnPacer) commit(ctx context.Context) {
	if t == nil || !t.open {
		return
	}
	t.open = false
	if err := t.cl.Flush(ctx); err != nil {
		t.err = fmt.Errorf("flush before commit: %w", err)
		return
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.err = fmt.Errorf("commit transaction: %w", err)
	}
}
