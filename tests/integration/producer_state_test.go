//go:build linux

package integration

// Idempotent producer state across topic deletion and restarts.

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecreatedTopicGetsNoStaleProducerState: an idempotent producer writes to a
// topic, the topic is deleted and re-created under the same name, and the broker
// stops: no snapshot of the deleted topic's producer state lands in the new
// topic's dir and shutdown logs no snapshot failure (for a deleted topic that
// was not re-created either). The broker used to keep the
// deleted partitions' state and write it at every shutdown.
func TestRecreatedTopicGetsNoStaleProducerState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		props := map[string]string{"log.dirs": dir}
		b := startBroker(t, backend, props)
		// reborn is re-created after its deletion, gone is not.
		const topic, gone = "reborn", "gone"
		cl := newClient(t, b.Addr) // idempotent: franz-go's default
		for _, name := range []string{topic, gone} {
			createTopic(t, b.Addr, name, 1, nil)
			produceSync(t, cl, name, []sentRecord{{value: recordValue(name, 0, 100, false)}, {value: recordValue(name, 1, 100, false)}})
		}
		cl.Close()

		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		adm := newAdmin(t, b.Addr)
		for _, name := range []string{topic, gone} {
			if r, err := adm.DeleteTopics(ctx, name); err != nil || r[name].Err != nil {
				t.Fatalf("delete %s: %v %v", name, err, r[name].Err)
			}
		}
		createTopic(t, b.Addr, topic, 1, nil)
		b.Stop(t)
		if logs := b.Logs(); strings.Contains(logs, "producer state snapshot") {
			t.Errorf("shutdown logged a producer state snapshot failure:\n%s", logs)
		}
		if snaps, _ := filepath.Glob(filepath.Join(dir, topic+"-0", "*.snapshot")); len(snaps) != 0 {
			t.Errorf("the re-created topic's dir holds snapshots of the deleted topic's producers: %v", snaps)
		}

		// The new topic takes idempotent writes from a new producer, from offset 0.
		b2 := startBroker(t, backend, props)
		recs := []sentRecord{{value: recordValue(topic+"-new", 0, 100, false)}, {value: recordValue(topic+"-new", 1, 100, false)}}
		produceSync(t, newClient(t, b2.Addr), topic, recs)
		verifyRecords(t, "re-created topic", recs, consumeFranz(t, b2.Addr, topic, fromStart(1), len(recs)), nil)
	})
}
