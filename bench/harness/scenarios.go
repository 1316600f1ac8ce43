package harness

import (
	"fmt"
	"time"
)

// Modes bound every scenario differently; a run stops at its record bound
// or its time bound, whichever comes first.
const (
	ModeTiny  = "tiny"  // seconds in total: exercised by go test
	ModeQuick = "quick" // default, under 3 minutes
	ModeFull  = "full"  // BENCH=full: the figures for docs/BENCHMARKS.md
)

// Scenario kinds.
const (
	kindProduce = "produce"
	kindConsume = "consume"
	kindE2E     = "e2e"
	// kindJavaPerf runs Apache Kafka's kafka-producer-perf-test.sh
	// (Options.JavaBin) and parses its final line.
	kindJavaPerf = "javaperf"
)

// ScenarioJava50k is the Java perf tool scenario (issue 20's goal 1d): it
// runs only when Options.JavaBin is set.
const ScenarioJava50k = "java-50k"

// scenario is one workload of issue 7.
type scenario struct {
	id    string
	title string
	kind  string

	partitions   int32
	topicConfigs map[string]string
	recordSize   int
	props        map[string]string // Java producer properties

	records int64         // record bound (produce, e2e); records to consume
	seconds time.Duration // time bound of the measured phase

	// consume: bytes produced (not measured) before the measured read.
	preloadBytes int64
	// e2e: fixed rate in MiB/s.
	rateMiB float64
	// consume: longest wait between records before giving up.
	idleTimeout time.Duration
	// txnDuration > 0: the producer (or the consume scenario's preload) is
	// transactional (a transactional id per run), committing every
	// txnDuration as kafka-producer-perf-test.sh --transaction-duration-ms.
	txnDuration time.Duration
	// consume: isolation.level=read_committed.
	readCommitted bool
	// javaperf: --throughput in records/s.
	throughput int
}

// scenarios returns the workloads with the bounds of mode.
func scenarios(mode string) ([]scenario, error) {
	type bounds struct {
		small, large     int64 // records of 100 B, of 64 KiB
		java             int64 // records for the Java tool at 50,000/s
		catchUp          int64 // bytes
		sec, e2eDuration time.Duration
		idle             time.Duration
	}
	var b bounds
	switch mode {
	case ModeTiny:
		b = bounds{small: 20_000, large: 200, java: 5_000, catchUp: 4 << 20, sec: 2 * time.Second, e2eDuration: time.Second, idle: 2 * time.Second}
	case ModeQuick, "":
		b = bounds{small: 3_000_000, large: 16_000, java: 400_000, catchUp: 256 << 20, sec: 8 * time.Second, e2eDuration: 5 * time.Second, idle: 5 * time.Second}
	case ModeFull:
		b = bounds{small: 20_000_000, large: 100_000, java: 1_500_000, catchUp: 1 << 30, sec: 30 * time.Second, e2eDuration: 30 * time.Second, idle: 10 * time.Second}
	default:
		return nil, fmt.Errorf("unknown mode %q (tiny, quick, full)", mode)
	}
	idempotentAll := map[string]string{"acks": "all", "enable.idempotence": "true"}
	const catchUpRecord = 16 << 10
	return []scenario{
		// The latency scenarios first: run after the throughput ones, they
		// measured the writeback of the gigabytes those wrote (stalls of
		// 20-40 ms on every target, portable included; docs/BENCHMARKS.md,
		// "Index pages and the order of the scenarios"), not the broker.
		{
			id: "e2e-20mb", title: "end-to-end latency at 20 MiB/s (1 KiB records, acks=all)",
			kind: kindE2E, partitions: 1, recordSize: 1024,
			props:   map[string]string{"acks": "all", "linger.ms": "0"},
			rateMiB: 20, seconds: b.e2eDuration,
		},
		{
			// Issue 20's goal 1d: Kafka's own Java producer tool at a
			// fixed 50,000 records/s with its defaults (acks=all,
			// idempotent, linger 0 in Kafka 3.9), p99 against the
			// in-memory kfake peer. Only with Options.JavaBin.
			id: ScenarioJava50k, title: "kafka-producer-perf-test.sh at 50,000 records/s, 100 B, 1 partition",
			kind: kindJavaPerf, partitions: 1, recordSize: 100, throughput: 50_000,
			records: b.java, seconds: time.Duration(b.java/50_000+1) * time.Second,
		},
		{
			id: "p100-1p", title: "100 B, acks=all idempotent, 1 partition, unlimited",
			kind: kindProduce, partitions: 1, recordSize: 100, props: idempotentAll,
			records: b.small, seconds: b.sec,
		},
		{
			id: "p100-8p", title: "100 B, acks=all idempotent, 8 partitions, unlimited",
			kind: kindProduce, partitions: 8, recordSize: 100, props: idempotentAll,
			records: b.small, seconds: b.sec,
		},
		{
			// AutoMQ's write-path study: one producer, 64 KiB records,
			// 1 MiB batches, linger 1 ms, the topic fsyncing every message.
			id: "automq-64k", title: "64 KiB, batch.size=1 MiB, linger.ms=1, flush.messages=1, 1 partition",
			kind: kindProduce, partitions: 1, recordSize: 64 << 10,
			props:        map[string]string{"batch.size": "1048576", "linger.ms": "1"},
			topicConfigs: map[string]string{"flush.messages": "1"},
			records:      b.large, seconds: b.sec,
		},
		{
			id: "catchup", title: fmt.Sprintf("consumer catch-up of %d MiB from page cache", b.catchUp>>20),
			kind: kindConsume, partitions: 1, recordSize: catchUpRecord,
			props:        map[string]string{"acks": "1", "batch.size": "1048576", "linger.ms": "5"},
			preloadBytes: b.catchUp, records: b.catchUp / catchUpRecord, seconds: b.sec * 2,
			idleTimeout: b.idle,
		},
		{
			// Issue 18: beside p100-1p (the same load, idempotent).
			id: "txn-100ms", title: "100 B, transactional (100 ms transactions), 1 partition, unlimited",
			kind: kindProduce, partitions: 1, recordSize: 100, props: idempotentAll,
			records: b.small, seconds: b.sec, txnDuration: 100 * time.Millisecond,
		},
		{
			// Issue 18: read_committed vs read_uncommitted catch-up of
			// the same transactional data (LSO bound, aborted index).
			id: "catchup-txn-rc", title: fmt.Sprintf("read_committed catch-up of %d MiB written in 100 ms transactions", b.catchUp>>20),
			kind: kindConsume, partitions: 1, recordSize: catchUpRecord,
			props:        map[string]string{"acks": "all", "batch.size": "1048576", "linger.ms": "5"},
			preloadBytes: b.catchUp, records: b.catchUp / catchUpRecord, seconds: b.sec * 2,
			idleTimeout: b.idle, txnDuration: 100 * time.Millisecond, readCommitted: true,
		},
		{
			id: "catchup-txn-ru", title: fmt.Sprintf("read_uncommitted catch-up of %d MiB written in 100 ms transactions", b.catchUp>>20),
			kind: kindConsume, partitions: 1, recordSize: catchUpRecord,
			props:        map[string]string{"acks": "all", "batch.size": "1048576", "linger.ms": "5"},
			preloadBytes: b.catchUp, records: b.catchUp / catchUpRecord, seconds: b.sec * 2,
			idleTimeout: b.idle, txnDuration: 100 * time.Millisecond,
		},
	}, nil
}
