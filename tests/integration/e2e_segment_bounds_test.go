//go:build linux

package integration

// Segment bounds (issue: segment.bytes=14 from any client made a segment per
// batch until descriptors ran out): segment.bytes below Kafka 4's minimum
// (1048576) is refused with INVALID_CONFIG by CreateTopics, AlterConfigs and
// IncrementalAlterConfigs, and log.segment.bytes below it in server.properties
// stops the daemon at start; segment.ms=1, which Kafka 4 accepts, does not roll
// a segment per batch.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestSegmentBounds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		adm := newAdmin(t, b.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()

		for _, v := range []string{"14", "1048575", "-1"} {
			resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr(v)}, "seg-"+strings.TrimPrefix(v, "-"))
			if err == nil {
				err = resp.Err
			}
			if !errors.Is(err, kerr.InvalidConfig) {
				t.Errorf("CreateTopics segment.bytes=%s: %v, want INVALID_CONFIG", v, err)
			} else {
				t.Logf("CreateTopics segment.bytes=%s: %v %s", v, err, resp.ErrMessage)
			}
		}
		createTopic(t, b.Addr, "seg-ok", 1, map[string]string{"segment.bytes": "1048576"})
		for _, incremental := range []bool{false, true} {
			alter := adm.AlterTopicConfigsState
			if incremental {
				alter = adm.AlterTopicConfigs
			}
			rs, err := alter(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kadm.StringPtr("14")}}, "seg-ok")
			if err == nil {
				err = rs[0].Err
			}
			if !errors.Is(err, kerr.InvalidConfig) {
				t.Errorf("AlterConfigs (incremental %v) segment.bytes=14: %v, want INVALID_CONFIG", incremental, err)
			}
		}

		// segment.ms=1 is Kafka 4's minimum and accepted, but batches sent
		// milliseconds apart share a segment.
		createTopic(t, b.Addr, "seg-ms", 1, map[string]string{"segment.ms": "1"})
		cl := newClient(t, b.Addr)
		var sent []sentRecord
		for i := 0; i < 10; i++ {
			v := []byte{'r', byte('0' + i)}
			sent = append(sent, sentRecord{value: v})
			produceSync(t, cl, "seg-ms", []sentRecord{{value: v}})
			time.Sleep(3 * time.Millisecond) // the next batch comes well past segment.ms
		}
		logs, err := filepath.Glob(filepath.Join(b.Dir, "seg-ms-0", "*.log"))
		if err != nil || len(logs) != 1 {
			t.Errorf("segment.ms=1: %d segment files after 10 batches (%v), want 1", len(logs), err)
		}
		verifyRecords(t, "segment.ms=1 records", sent, consumeFranz(t, b.Addr, "seg-ms", fromStart(1), len(sent)), nil)

		// server.properties: log.segment.bytes below the floor stops the start.
		conf := filepath.Join(t.TempDir(), "server.properties")
		text := "listeners=PLAINTEXT://127.0.0.1:0\nmetrics.listener=\nio.backend=" + backend +
			"\nlog.dirs=" + filepath.Join(t.TempDir(), "data") + "\nlog.segment.bytes=14\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		runCtx, runCancel := context.WithTimeout(context.Background(), startTimeout)
		defer runCancel()
		out, err := exec.CommandContext(runCtx, daemonPath, "--config", conf).CombinedOutput()
		if err == nil || runCtx.Err() != nil || !strings.Contains(string(out), "log.segment.bytes") {
			t.Errorf("ringbrokerd with log.segment.bytes=14: %v (context %v)\n%s", err, runCtx.Err(), out)
		}
	})
}
