package config

import (
	"strings"
	"testing"
)

// ring.wait.batch defaults to 1 (a loop wakes for each completion, as
// before the key) and ring.wait.batch.us to 50; both are bounded.
func TestRingWaitBatch(t *testing.T) {
	if d := Default(); d.RingWaitBatch != 1 || d.RingWaitBatchUs != 50 {
		t.Fatalf("defaults ring.wait.batch=%d ring.wait.batch.us=%d, want 1 and 50", d.RingWaitBatch, d.RingWaitBatchUs)
	}
	c, _ := parse(t, "ring.wait.batch=8\nring.wait.batch.us=200\n")
	if c.RingWaitBatch != 8 || c.RingWaitBatchUs != 200 {
		t.Fatalf("parsed ring.wait.batch=%d ring.wait.batch.us=%d", c.RingWaitBatch, c.RingWaitBatchUs)
	}
	for _, bad := range []string{"ring.wait.batch=0", "ring.wait.batch=65", "ring.wait.batch.us=0", "ring.wait.batch.us=10001"} {
		if _, _, err := Parse(strings.NewReader(bad+"\n"), "test.properties"); err == nil {
			t.Fatalf("%s accepted", bad)
		}
	}
}
