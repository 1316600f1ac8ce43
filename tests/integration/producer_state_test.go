//go:build linux

package integration

// Idempotent producer state across topic deletion and restarts.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
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

// produceOneByOne produces values to topic/0 through a new idempotent franz-go
// client, one ProduceSync (one batch) at a time, and closes the client.
func produceOneByOne(t *testing.T, addr, topic string, recs []sentRecord) []int64 {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	var offsets []int64
	for i := range recs {
		offsets = append(offsets, produceSync(t, cl, topic, recs[i:i+1])...)
	}
	return offsets
}

// TestProducerIDBlockFileLost: the producer id block file is deleted between
// restarts (after a clean stop, and after a crash with no producer state
// snapshots of the last writes); a new idempotent producer's first records are
// all stored and read back. Ids used to restart at 0, so the new producer's
// batches were acknowledged and dropped as duplicates of the old producer 0's.
func TestProducerIDBlockFileLost(t *testing.T) {
	for _, how := range []string{"sigterm", "sigkill"} {
		t.Run(how, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, backend string) {
				dir := filepath.Join(t.TempDir(), "data")
				props := map[string]string{"log.dirs": dir}
				b := startBroker(t, backend, props)
				const topic = "pids"
				createTopic(t, b.Addr, topic, 1, nil)
				var sent []sentRecord
				for i := range 3 {
					sent = append(sent, sentRecord{value: recordValue(topic+"-old", i, 200, false)})
				}
				produceOneByOne(t, b.Addr, topic, sent)
				if how == "sigkill" {
					b.Kill(t)
				} else {
					b.Stop(t)
				}
				if err := os.Remove(filepath.Join(dir, "ringbroker-producer-id-block")); err != nil {
					t.Fatal(err)
				}

				b2 := startBroker(t, backend, props)
				var fresh []sentRecord
				for i := range 3 {
					fresh = append(fresh, sentRecord{value: recordValue(topic+"-new", i, 200, false)})
				}
				offsets := produceOneByOne(t, b2.Addr, topic, fresh)
				if fmt.Sprint(offsets) != "[3 4 5]" {
					t.Errorf("new producer's records acknowledged at offsets %v, want [3 4 5]", offsets)
				}
				sent = append(sent, fresh...)
				verifyRecords(t, "old and new producer", sent, consumeFranz(t, b2.Addr, topic, fromStart(1), len(sent)), nil)
			})
		})
	}
}

// runDaemonExpectingExit starts ringbrokerd with props and waits (bounded) for
// it to exit on its own; it fails the test if the daemon starts serving
// instead. It returns the daemon's output.
func runDaemonExpectingExit(t *testing.T, backend string, props map[string]string) string {
	t.Helper()
	conf := map[string]string{
		"listeners":        fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", freePort(t)),
		"io.backend":       backend,
		"metrics.listener": "",
	}
	for k, v := range props {
		conf[k] = v
	}
	confPath := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(confPath, []byte(daemontest.ConfigText("", conf)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, daemonPath, "--config", confPath)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("ringbrokerd still running after %v, want it to refuse the start:\n%s", 2*startTimeout, out)
	case err == nil:
		t.Fatalf("ringbrokerd exited 0, want a refused start:\n%s", out)
	case !errors.As(err, &exit):
		t.Fatalf("running ringbrokerd: %v", err)
	}
	return string(out)
}

// TestGarbageProducerIDBlockFileRefusesStart: a block file holding no producer id
// refuses the start with a message naming the file, and leaves it and the data dir
// as they were (not a file written, the clean-shutdown marker still there); with the file restored the broker starts and every record is there.
// It used to start and answer every InitProducerId with KAFKA_STORAGE_ERROR.
func TestGarbageProducerIDBlockFileRefusesStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		props := map[string]string{"log.dirs": dir}
		b := startBroker(t, backend, props)
		const topic = "kept"
		createTopic(t, b.Addr, topic, 1, nil)
		var sent []sentRecord
		for i := range 5 {
			sent = append(sent, sentRecord{value: recordValue(topic, i, 300, false)})
		}
		produceOneByOne(t, b.Addr, topic, sent)
		b.Stop(t)

		path := filepath.Join(dir, "ringbroker-producer-id-block")
		good, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		garbage := []byte("\x00\x00garbage\n")
		if err := os.WriteFile(path, garbage, 0o644); err != nil {
			t.Fatal(err)
		}
		before := dirState(t, dir)
		out := runDaemonExpectingExit(t, backend, props)
		if after := dirState(t, dir); after != before {
			t.Errorf("the refused start changed the data dir:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if !strings.Contains(out, "ringbroker-producer-id-block") || !strings.Contains(out, "bad producer id block") {
			t.Errorf("the refused start does not say which file is wrong:\n%s", out)
		}
		if now, _ := os.ReadFile(path); string(now) != string(garbage) {
			t.Errorf("block file rewritten to %q by a refused start", now)
		}

		if err := os.WriteFile(path, good, 0o644); err != nil {
			t.Fatal(err)
		}
		b2 := startBroker(t, backend, props)
		verifyRecords(t, "after the refused start", sent, consumeFranz(t, b2.Addr, topic, fromStart(1), len(sent)), nil)
		more := []sentRecord{{value: recordValue(topic+"-more", 0, 300, false)}}
		if offsets := produceOneByOne(t, b2.Addr, topic, more); offsets[0] != 5 {
			t.Errorf("idempotent produce after the restored start at offset %d, want 5", offsets[0])
		}
	})
}

// dirState lists every file under dir with its size and modification time (the
// clean-shutdown marker and checkpoints included), to compare before and after.
// Directory entries come and go with the files listed, so directories
// themselves are left out.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if info.IsDir() || rel == ".lock" {
			// Directories' times follow their entries, listed here; a data-dir
			// lock file (Kafka's .lock) is taken before anything is checked.
			return nil
		}
		fmt.Fprintf(&b, "%s %d %s\n", rel, info.Size(), info.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
