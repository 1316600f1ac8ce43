package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/codec"
)

// TestCleanerExpiredProducer: a producer's last batch stays (empty once
// nothing in it is kept) while the producer is active, and goes once the
// producer has written nothing for producer.id.expiration.ms (Kafka keeps
// the last batches of the producer state manager's active producers only);
// a producer that wrote since keeps its last batch.
func TestCleanerExpiredProducer(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.Compact, cfg.NoDeleteRetention = true, true
	cfg.SegmentBytes = 100 // a segment per batch
	cfg.FlushMessages = 1  // the recovery point follows the high watermark
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := func() int64 { return clk.Now().UnixMilli() }
	batch := func(pid int64, seq int32, k, v string) []byte {
		return cleanTestBatch([]wrec{{key: []byte(k), value: []byte(v), ts: now()}}, now(), codec.None, pid, seq)
	}
	for _, b := range [][]byte{
		batch(5, 0, "k1", "a"),  // 0: producer 5's last batch
		batch(-1, 0, "k1", "b"), // 1
		batch(-1, 0, "k9", "t1"),
		batch(-1, 0, "k9", "t2"), // 3 (active)
	} {
		syncAppend(t, l, b)
	}
	const expiration = time.Hour
	c := NewCleaner(CleanerConfig{Clock: clk, ProducerIDExpirationMs: expiration.Milliseconds()}, nil)
	check := func(when string, want ...string) {
		t.Helper()
		if _, err := c.CleanLog(l); err != nil {
			t.Fatal(err)
		}
		if got := cleanedView(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s:\n got %v\nwant %v", when, got, want)
		}
	}
	check("producer 5 active", "0:empty(5)", "1:k1=b", "2:k9=t1", "3:k9=t2")

	// Just before the expiration, producer 5 still holds its batch;
	// producer 6 writes now.
	clk.Advance(expiration - time.Second)
	for _, b := range [][]byte{batch(6, 0, "k2", "x"), batch(-1, 0, "k2", "y"), batch(-1, 0, "k9", "t3"), batch(-1, 0, "k9", "t4")} {
		syncAppend(t, l, b)
	}
	check("before producer 5 expires", "0:empty(5)", "1:k1=b", "4:empty(6)", "5:k2=y", "6:k9=t3", "7:k9=t4")

	// Past producer 5's expiration (not producer 6's): its empty batch goes.
	clk.Advance(2 * time.Second)
	for _, b := range [][]byte{batch(-1, 0, "k9", "t5"), batch(-1, 0, "k9", "t6")} {
		syncAppend(t, l, b)
	}
	check("producer 5 expired", "1:k1=b", "4:empty(6)", "5:k2=y", "8:k9=t5", "9:k9=t6")

	// And producer 6 after its own.
	clk.Advance(expiration)
	for _, b := range [][]byte{batch(-1, 0, "k9", "t7"), batch(-1, 0, "k9", "t8")} {
		syncAppend(t, l, b)
	}
	check("producer 6 expired", "1:k1=b", "5:k2=y", "10:k9=t7", "11:k9=t8")
}

// TestProducerTailsPastRecoveryPoint: a producer with a batch at or past the
// recovery point stays active whatever the timestamps say (a power loss
// may take that batch, and the one below would then be its last), and
// keeps its last batch below it; one without such a batch expires.
func TestProducerTailsPastRecoveryPoint(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.Compact, cfg.NoDeleteRetention = true, true
	cfg.SegmentBytes = 100 // a segment per batch
	cfg.FlushMessages = 1
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ts := clk.Now().UnixMilli()
	for _, b := range [][]byte{
		cleanTestBatch([]wrec{{key: []byte("k1"), value: []byte("a"), ts: ts}}, ts, codec.None, 5, 0),  // 0
		cleanTestBatch([]wrec{{key: []byte("k1"), value: []byte("b"), ts: ts}}, ts, codec.None, -1, 0), // 1
		cleanTestBatch([]wrec{{key: []byte("k2"), value: []byte("c"), ts: ts}}, ts, codec.None, 6, 0),  // 2
		cleanTestBatch([]wrec{{key: []byte("k3"), value: []byte("d"), ts: ts}}, ts, codec.None, 5, 1),  // 3
		cleanTestBatch([]wrec{{key: []byte("k4"), value: []byte("e"), ts: ts}}, ts, codec.None, -1, 0), // 4 (active)
	} {
		syncAppend(t, l, b)
	}
	c := NewCleaner(CleanerConfig{Clock: clk, ProducerIDExpirationMs: time.Hour.Milliseconds()}, nil)
	th := c.newThread()
	cl, ok := l.snapshotForClean(clk.Now().UnixMilli(), true)
	if !ok {
		t.Fatal("no snapshot")
	}
	defer cl.unpin()
	cl.recoveryPoint, cl.uncleanable = 3, 2 // as if offsets 3 on were not synced yet, and the round ends at 2
	lastOf := producerTails{}
	end, err := th.buildKeyMap(&cl, lastOf)
	if err != nil || end != 2 {
		t.Fatalf("key map: end %d, %v", end, err)
	}
	th.producerTails(&cl, end, lastOf)
	clk.Advance(2 * time.Hour)
	lastOf.expire(clk.Now().UnixMilli(), time.Hour.Milliseconds())
	if e, ok := lastOf[5]; !ok || !e.recent || e.lastOffset != 0 || !lastOf.isLast(5, 0) {
		t.Errorf("producer 5 (a batch past the recovery point): %+v %v, want recent, last batch below it at 0", e, ok)
	}
	if e, ok := lastOf[6]; ok {
		t.Errorf("producer 6 (last batch 2 hours old, none past the recovery point) not expired: %+v", e)
	}
}

// TestCleanerKeepsLastDataBatch: a producer whose last batch is a
// transaction marker keeps its last data batch too (empty: its sequence),
// as Kafka keeps the batch at the producer's last data offset; both go
// once the producer expired (the marker a round later, once no batch of
// its transaction is left and it is older than delete.retention.ms).
func TestCleanerKeepsLastDataBatch(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.Compact, cfg.NoDeleteRetention = true, true
	cfg.SegmentBytes = 100 // a segment per batch
	cfg.FlushMessages = 1
	cfg.DeleteRetentionMs = time.Minute.Milliseconds()
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := func() int64 { return clk.Now().UnixMilli() }
	plain := func(k, v string) []byte {
		return cleanTestBatch([]wrec{{key: []byte(k), value: []byte(v), ts: now()}}, now(), codec.None, -1, 0)
	}
	for _, b := range [][]byte{
		txnTestBatch(5, 0, "k1", "a", now()), // 0: producer 5's last data batch
		markerTestBatch(5, true, now()),      // 1: its last batch
		plain("k1", "b"),                     // 2
		plain("k9", "t1"),
		plain("k9", "t2"), // 4 (active)
	} {
		syncAppend(t, l, b)
	}
	const expiration = time.Hour
	c := NewCleaner(CleanerConfig{Clock: clk, ProducerIDExpirationMs: expiration.Milliseconds()}, nil)
	clean := func(when string, want ...string) {
		t.Helper()
		if _, err := c.CleanLog(l); err != nil {
			t.Fatal(err)
		}
		if got := cleanedView(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s:\n got %v\nwant %v", when, got, want)
		}
	}
	clean("producer 5 active", "0:empty(5)", "1:COMMIT(5)", "2:k1=b", "3:k9=t1", "4:k9=t2")
	clk.Advance(expiration + time.Second)
	for _, b := range [][]byte{plain("k9", "t3"), plain("k9", "t4")} {
		syncAppend(t, l, b)
	}
	clean("producer 5 expired", "1:COMMIT(5)", "2:k1=b", "5:k9=t3", "6:k9=t4")
	for _, b := range [][]byte{plain("k9", "t5"), plain("k9", "t6")} {
		syncAppend(t, l, b)
	}
	clean("its marker covers nothing", "2:k1=b", "7:k9=t5", "8:k9=t6")
}
