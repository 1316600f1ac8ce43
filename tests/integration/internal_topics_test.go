//go:build linux

package integration

// Internal topics take no client writes: a record a client appended to
// __consumer_offsets used to keep the broker from starting again, and a
// DeleteTopics of it dropped every committed offset at the next start. A record
// the group loader cannot use is skipped at start with a log line.

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const offsetsTopic = "__consumer_offsets"

// commitGroupOffset commits group's offset at on topic/0 through kadm.
func commitGroupOffset(t *testing.T, addr, group, topic string, at int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
	resp, err := newAdmin(t, addr).CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
}

// checkGroupOffset fails unless group's committed offset on topic/0 is at.
func checkGroupOffset(t *testing.T, addr, group, topic string, at int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	fo, err := newAdmin(t, addr).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	if o, ok := fo.Lookup(topic, 0); !ok || o.At != at {
		t.Errorf("group %s, %s-0: committed %d (found %v), want %d", group, topic, o.At, ok, at)
	}
}

// TestInternalTopicRefusesClients: kcat cannot produce to __consumer_offsets,
// DeleteTopics of it is refused, kadm does not list it (Metadata flags it
// internal), and after a restart the broker starts and the commits are there.
func TestInternalTopicRefusesClients(t *testing.T) {
	kcat := requireTool(t, "kcat")
	forEachBackend(t, func(t *testing.T, backend string) {
		props := map[string]string{"log.dirs": filepath.Join(t.TempDir(), "data"), "offsets.topic.num.partitions": "3"}
		b := startBroker(t, backend, props)
		createTopic(t, b.Addr, "data", 1, nil)
		commitGroupOffset(t, b.Addr, "g", "data", 7)

		// One record with a null key, as in the report.
		out, err := runClientStdin(t, clientRunTimeout, []byte("x\n"), kcat, "-P", "-b", b.Addr, "-t", offsetsTopic, "-p", "0",
			"-X", "message.timeout.ms=10000")
		if err == nil {
			t.Errorf("kcat -P -t %s succeeded, want a refusal (output %q)", offsetsTopic, out)
		} else if !strings.Contains(err.Error(), "Invalid topic") {
			t.Errorf("kcat -P -t %s: %v; want the broker's INVALID_TOPIC_EXCEPTION (\"Invalid topic\")", offsetsTopic, err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		adm := newAdmin(t, b.Addr)
		dr, err := adm.DeleteTopics(ctx, offsetsTopic)
		if err != nil {
			t.Fatal(err)
		}
		if err := dr[offsetsTopic].Err; !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("DeleteTopics %s: %v, want INVALID_TOPIC_EXCEPTION", offsetsTopic, err)
		}
		lt, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lt.Has(offsetsTopic) || !lt.Has("data") {
			t.Errorf("kadm ListTopics lists %v; want data and not the internal %s", lt.Names(), offsetsTopic)
		}
		all, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := all[offsetsTopic]; !ok || !d.IsInternal {
			t.Errorf("Metadata: %s listed %v, internal %v", offsetsTopic, ok, d.IsInternal)
		}

		b.Stop(t)
		b2 := startBroker(t, backend, props) // used to fail: "loading consumer groups: malformed record batch"
		checkGroupOffset(t, b2.Addr, "g", "data", 7)
	})
}

// TestOffsetsLoadSkipsPlantedRecord: a record with a null key planted in a
// __consumer_offsets segment between two restarts (what a client's produce
// left there before produce was refused) is skipped at start with a log line;
// the broker starts and serves the commits around it.
func TestOffsetsLoadSkipsPlantedRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		props := map[string]string{"log.dirs": dir, "offsets.topic.num.partitions": "1"}
		b := startBroker(t, backend, props)
		createTopic(t, b.Addr, "data", 1, nil)
		commitGroupOffset(t, b.Addr, "before", "data", 3)
		b.Stop(t)
		if t.Failed() {
			t.FailNow()
		}

		// Append a valid batch holding one null-key record after the last batch
		// of the segment, and drop the clean-shutdown marker so the start
		// recovers (and validates) the segment.
		seg := filepath.Join(dir, offsetsTopic+"-0", "00000000000000000000.log")
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		next := int64(0)
		for pos := 0; pos+61 <= len(data); {
			base := int64(binary.BigEndian.Uint64(data[pos:]))
			n := int(binary.BigEndian.Uint32(data[pos+8:])) + 12
			if n < 61 || pos+n > len(data) {
				t.Fatalf("%s: no whole batch at byte %d", seg, pos)
			}
			next = base + int64(binary.BigEndian.Uint32(data[pos+23:])) + 1
			pos += n
		}
		if next == 0 {
			t.Fatalf("%s holds no batch", seg)
		}
		planted := plainBatch([]byte("x"))
		binary.BigEndian.PutUint64(planted[0:], uint64(next)) // the CRC does not cover the base offset
		f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(planted); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		markers, _ := filepath.Glob(filepath.Join(dir, ".kafka_cleanshutdown"))
		for _, m := range markers {
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
		}

		b2 := startBroker(t, backend, props) // used to fail: "loading consumer groups: malformed record batch"
		logs := b2.Logs()
		if !strings.Contains(logs, "skipping unusable __consumer_offsets record") || !strings.Contains(logs, "null key") {
			t.Errorf("no log line about the skipped null-key record:\n%s", logs)
		}
		checkGroupOffset(t, b2.Addr, "before", "data", 3)
		commitGroupOffset(t, b2.Addr, "after", "data", 5)
		b2.Stop(t)
		b3 := startBroker(t, backend, props)
		checkGroupOffset(t, b3.Addr, "before", "data", 3)
		checkGroupOffset(t, b3.Addr, "after", "data", 5)
	})
}
