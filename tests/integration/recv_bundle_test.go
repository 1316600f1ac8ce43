//go:build linux

package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRecvBundleFranzGo (ring.recv.bundle=true): with bundled receives into
// 4 KiB provided buffers, so that most produce requests fill several buffers
// per completion, franz-go produces records of up to 30 KB (random bytes)
// and reads every one back as sent. The key is the io_uring loops'; the
// portable run checks that it changes nothing there.
func TestRecvBundleFranzGo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{
			"ring.recv.bundle":       "true",
			"ring.recv.buffer.bytes": "4096",
			"ring.recv.buffers":      "64",
		})
		const topic = "bundled"
		createTopic(t, b.Addr, topic, 3, nil)
		recs := spreadRecords(topic, 1500, 3, 30000, true)
		cl := newClient(t, b.Addr, kgo.ProducerBatchMaxBytes(1<<20))
		produceSync(t, cl, topic, recs)
		got := consumeFranz(t, b.Addr, topic, fromStart(3), len(recs))
		verifyRecords(t, "franz-go over bundled receives", recs, got, nil)
	})
}
