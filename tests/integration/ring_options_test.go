//go:build linux

package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRingOptionsFranzGo: with each opt-in setting of the io_uring loops'
// receive and wait, franz-go produces records of up to 30 KB (random bytes)
// and reads every one back as sent:
//   - ring.recv.bundle=true, with 4 KiB provided buffers so that most
//     produce requests fill several buffers per completion;
//   - ring.wait.batch=16 (a sleeping loop waits for 16 completions, at most
//     ring.wait.batch.us=200 once one is there).
//
// The keys are the io_uring loops'; the portable runs check that they
// change nothing there.
func TestRingOptionsFranzGo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props map[string]string
	}{
		{"recv-bundle", map[string]string{"ring.recv.bundle": "true", "ring.recv.buffer.bytes": "4096", "ring.recv.buffers": "64"}},
		{"wait-batch", map[string]string{"ring.wait.batch": "16", "ring.wait.batch.us": "200"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, backend string) {
				b := startBroker(t, backend, tc.props)
				const topic = "ring-options"
				createTopic(t, b.Addr, topic, 3, nil)
				recs := spreadRecords(topic, 1500, 3, 30000, true)
				cl := newClient(t, b.Addr, kgo.ProducerBatchMaxBytes(1<<20))
				produceSync(t, cl, topic, recs)
				got := consumeFranz(t, b.Addr, topic, fromStart(3), len(recs))
				verifyRecords(t, "franz-go with "+tc.name, recs, got, nil)
			})
		})
	}
}
