package broker

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/storage"
)

// Retention deletes whole old segments through the maintenance task, when
// its ticker fires (stepped on a manual clock).
func TestMaintenanceRetention(t *testing.T) {
	clk := clock.NewManual(time.Now())
	tb := startTestBroker(t, "portable", func(_ *Options, ro *RegistryOptions) { ro.Clock = clk })
	topic, err := tb.Reg.CreateTopic("old", 1, map[string]string{"segment.bytes": "1024", "retention.ms": "1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partitions[0]
	for i := 0; i < 20; i++ {
		appendSync(t, p, makeBatch(make([]byte, 600)))
	}
	before := p.Log.NumSegments()
	stop := tb.Reg.StartMaintenance(time.Minute, time.Hour)
	if err := clk.WaitTimers(2, 10*time.Second); err != nil { // both tickers
		t.Fatal(err)
	}
	if p.Log.LogStartOffset() != 0 {
		t.Fatal("retention ran before its ticker fired")
	}
	// One retention tick, a minute after the records (retention.ms 1).
	clk.Advance(time.Minute)
	deadline := time.Now().Add(60 * time.Second)
	for p.Log.LogStartOffset() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if p.Log.LogStartOffset() == 0 || p.Log.NumSegments() >= before {
		t.Fatalf("retention did not run: segments %d -> %d, log start %d", before, p.Log.NumSegments(), p.Log.LogStartOffset())
	}
	tb.Reg.checkpoint()
}

// log.flush.offset.checkpoint.interval.ms drives the checkpoint ticker: with
// a short interval a moved log start offset reaches the log dir's
// log-start-offset-checkpoint file without a restart (the interval was once
// accepted and ignored, with a fixed one-minute ticker).
func TestMaintenanceCheckpointInterval(t *testing.T) {
	clk := clock.NewManual(time.Now())
	tb := startTestBroker(t, "portable", func(_ *Options, ro *RegistryOptions) { ro.Clock = clk })
	topic, err := tb.Reg.CreateTopic("ckpt", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partitions[0]
	for i := 0; i < 3; i++ {
		appendSync(t, p, makeBatch([]byte("x")))
	}
	if _, err := p.Log.DeleteRecords(2); err != nil {
		t.Fatal(err)
	}
	stop := tb.Reg.StartMaintenance(time.Hour, 20*time.Millisecond)
	defer stop()
	if err := clk.WaitTimers(2, 10*time.Second); err != nil { // both tickers
		t.Fatal(err)
	}
	clk.Advance(20 * time.Millisecond) // one checkpoint tick
	path := filepath.Join(tb.dir, storage.LogStartOffsetCheckpointFile)
	tp := storage.TopicPartition{Topic: "ckpt", Partition: 0}
	deadline := time.Now().Add(10 * time.Second)
	for {
		offsets, err := storage.ReadCheckpoint(nil, path)
		if err == nil && offsets[tp] == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s with a 20 ms checkpoint interval, %s holds %v (err %v); want %v at 2", path, offsets, err, tp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
