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
