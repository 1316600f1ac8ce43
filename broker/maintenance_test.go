package broker

import (
	"testing"
	"time"
)

// Retention deletes whole old segments through the maintenance task.
func TestMaintenanceRetention(t *testing.T) {
	tb := startTestBroker(t, "portable", nil)
	topic, err := tb.Reg.CreateTopic("old", 1, map[string]string{"segment.bytes": "1024", "retention.ms": "1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partitions[0]
	for i := 0; i < 20; i++ {
		appendSync(t, p, makeBatch(make([]byte, 600)))
	}
	before := p.Log.NumSegments()
	time.Sleep(20 * time.Millisecond)
	stop := tb.Reg.StartMaintenance(10 * time.Millisecond)
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
