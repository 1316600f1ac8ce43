//go:build linux

package integration

// Helpers for the log compaction tests (compaction_clients_test.go, issue 17): a
// model of what was produced to a compacted topic (every offset's key and value),
// a verifier of what a consumer read back against it, and the conditions the tests
// wait on, read from outside the broker: the cleaner's checkpoint file (the first
// dirty offset of each compacted partition), the partition's segment files (the
// active segment's base offset) and DescribeLogDirs sizes.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/storage"
)

// cleanWaitTimeout bounds a wait for the log cleaner to reach an offset. The
// cleaner runs every log.cleaner.backoff.ms (50 in these tests) and each round is
// a few hundred KiB: a fail-safe against a cleaner that never runs, not a speed
// requirement.
const cleanWaitTimeout = 90 * time.Second

// compactBrokerProps are the broker keys every compaction test starts with: small
// segments allowed (log.segment.bytes.min, Kafka 4's 1 MiB floor by default), a
// cleaner that looks for work every 50 ms instead of 15 s, and a key map that
// does not take 128 MiB of a shared test machine.
func compactBrokerProps(extra map[string]string) map[string]string {
	props := map[string]string{
		"log.segment.bytes.min":          "4096",
		"log.cleaner.backoff.ms":         "50",
		"log.cleaner.dedupe.buffer.size": "16777216",
	}
	for k, v := range extra {
		props[k] = v
	}
	return props
}

// compactModel is every record produced to a compacted topic, by partition and
// offset. A nil value is a tombstone.
type compactModel struct {
	byOffset map[int32]map[int64]sentRecord
}

func newCompactModel() *compactModel {
	return &compactModel{byOffset: map[int32]map[int64]sentRecord{}}
}

// add records recs at the offsets the broker acknowledged.
func (m *compactModel) add(recs []sentRecord, offsets []int64) {
	for i, r := range recs {
		if m.byOffset[r.partition] == nil {
			m.byOffset[r.partition] = map[int64]sentRecord{}
		}
		m.byOffset[r.partition][offsets[i]] = r
	}
}

// count is the number of records produced.
func (m *compactModel) count() int {
	n := 0
	for _, recs := range m.byOffset {
		n += len(recs)
	}
	return n
}

// lastBelow returns, for partition p, each key's highest offset below end.
func (m *compactModel) lastBelow(p int32, end int64) map[string]int64 {
	last := map[string]int64{}
	for o, r := range m.byOffset[p] {
		if o >= end {
			continue
		}
		if prev, ok := last[string(r.key)]; !ok || o > prev {
			last[string(r.key)] = o
		}
	}
	return last
}

// verifyCompacted checks what a consumer read from the start of a compacted topic
// against the model:
//   - per partition, offsets strictly increase and every record is, byte for byte
//     (key, value, null or not), what was produced at its offset;
//   - every key's latest record is there when it is a value; when it is a
//     tombstone below goneBelow[p] (cleaned once, then cleaned again after its
//     delete.retention.ms) it is gone, otherwise it may be there (as null) or not;
//   - below cleanedTo[p] (the cleaner's first dirty offset when the read began),
//     a record is there only if it is its key's last record below cleanedTo[p]:
//     no older value of a key survives a clean.
//
// It reports at most a handful of problems per run and returns the number of
// records below cleanedTo that were read.
func verifyCompacted(t *testing.T, what string, m *compactModel, got []gotRecord, cleanedTo, goneBelow map[int32]int64) int {
	t.Helper()
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 10 {
			t.Errorf("%s: "+format, append([]any{what}, args...)...)
		}
	}
	gotBy := map[int32][]gotRecord{}
	for _, r := range got {
		gotBy[r.partition] = append(gotBy[r.partition], r)
	}
	cleanedRead := 0
	for p, recs := range gotBy {
		if m.byOffset[p] == nil {
			report("partition %d returned %d records, none were produced there", p, len(recs))
		}
	}
	for p, produced := range m.byOffset {
		recs := gotBy[p]
		read := map[int64]bool{}
		for i, r := range recs {
			if i > 0 && r.offset <= recs[i-1].offset {
				report("partition %d: offset %d read after offset %d", p, r.offset, recs[i-1].offset)
			}
			read[r.offset] = true
			want, ok := produced[r.offset]
			switch {
			case !ok:
				report("partition %d offset %d: key %q read, nothing was produced at that offset", p, r.offset, r.key)
			case !bytes.Equal(r.key, want.key):
				report("partition %d offset %d: key %q, produced %q", p, r.offset, r.key, want.key)
			case (r.value == nil) != (want.value == nil) || !bytes.Equal(r.value, want.value):
				report("partition %d offset %d (key %q): value %s, produced %s", p, r.offset, r.key, describeValue(r.value), describeValue(want.value))
			}
		}
		for key, o := range m.lastBelow(p, 1<<62) {
			switch tomb := produced[o].value == nil; {
			case !tomb && !read[o]:
				report("partition %d key %q: its latest value (offset %d) was not read", p, key, o)
			case tomb && o < goneBelow[p] && read[o]:
				report("partition %d key %q: tombstone at offset %d read after its delete.retention.ms and a second clean", p, key, o)
			}
		}
		survivors := m.lastBelow(p, cleanedTo[p])
		for _, r := range recs {
			if r.offset >= cleanedTo[p] {
				continue
			}
			cleanedRead++
			if last := survivors[string(r.key)]; last != r.offset {
				report("partition %d offset %d: key %q read below the cleaned offset %d, whose last record below it is at %d",
					p, r.offset, r.key, cleanedTo[p], last)
			}
		}
	}
	if problems > 10 {
		t.Errorf("%s: %d more problems not shown", what, problems-10)
	}
	if problems == 0 {
		t.Logf("%s: %d records read of %d produced, %d below the cleaned offsets %v; all verified", what, len(got), m.count(), cleanedRead, cleanedTo)
	}
	return cleanedRead
}

// describeValue renders a value for a failure message: null, or its head and size.
func describeValue(v []byte) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%q (%d bytes)", head(v, 40), len(v))
}

// partitionDir is the log directory of topic's partition p under the data dir.
func partitionDir(dataDir, topic string, p int32) string {
	return filepath.Join(dataDir, topic+"-"+strconv.Itoa(int(p)))
}

// segmentBases lists the base offsets of partition p's segment files (the
// <base>.log names; .cleaned and .swap files of a swap in progress are not
// segments yet), in order.
func segmentBases(t *testing.T, dataDir, topic string, p int32) []int64 {
	t.Helper()
	entries, err := os.ReadDir(partitionDir(dataDir, topic, p))
	if err != nil {
		t.Fatalf("segment files of %s/%d: %v", topic, p, err)
	}
	var bases []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		base, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue
		}
		bases = append(bases, base)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases
}

// activeBase is the base offset of partition p's active (last) segment: the
// cleaner never cleans it, so a clean of everything before it ends there.
func activeBase(t *testing.T, dataDir, topic string, p int32) int64 {
	t.Helper()
	bases := segmentBases(t, dataDir, topic, p)
	if len(bases) == 0 {
		t.Fatalf("%s/%d has no segment files", topic, p)
	}
	return bases[len(bases)-1]
}

// cleanerCheckpoint reads the cleaner's checkpoint of the data dir: each compacted
// partition's first dirty offset (where its next cleaning round starts). A
// partition never cleaned is absent (0).
func cleanerCheckpoint(t *testing.T, dataDir string) map[storage.TopicPartition]int64 {
	t.Helper()
	ck, err := storage.ReadCheckpoint(nil, filepath.Join(dataDir, storage.CleanerOffsetCheckpointFile))
	if err != nil {
		t.Fatalf("%s: %v", storage.CleanerOffsetCheckpointFile, err)
	}
	return ck
}

// cleanedOffsets is cleanerCheckpoint for topic's partitions 0..parts-1.
func cleanedOffsets(t *testing.T, dataDir, topic string, parts int32) map[int32]int64 {
	t.Helper()
	ck := cleanerCheckpoint(t, dataDir)
	out := map[int32]int64{}
	for p := range parts {
		out[p] = ck[storage.TopicPartition{Topic: topic, Partition: p}]
	}
	return out
}

// waitCleaned waits until the cleaner's checkpoint of every partition in targets
// is at least its target offset, polling every 50 ms for at most cleanWaitTimeout,
// and returns the checkpoint it saw and when.
func waitCleaned(t *testing.T, b *Broker, topic string, targets map[int32]int64) (map[int32]int64, time.Time) {
	t.Helper()
	deadline := time.Now().Add(cleanWaitTimeout)
	start := time.Now()
	for {
		ck := cleanedOffsets(t, b.Dir, topic, int32(len(targets)))
		reached := true
		for p, target := range targets {
			reached = reached && ck[p] >= target
		}
		if reached {
			t.Logf("%s cleaned to %v (targets %v) after %v", topic, ck, targets, time.Since(start).Round(time.Millisecond))
			return ck, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the cleaner's checkpoint is %v after %v, want at least %v; broker log:\n%s",
				topic, ck, cleanWaitTimeout, targets, b.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// activeBases is activeBase for partitions 0..parts-1.
func activeBases(t *testing.T, dataDir, topic string, parts int32) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for p := range parts {
		out[p] = activeBase(t, dataDir, topic, p)
	}
	return out
}

// logDirSizes returns the size DescribeLogDirs reports for each of topic's
// partitions.
func logDirSizes(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	all, err := newAdmin(t, addr).DescribeAllLogDirs(ctx, nil) // every partition: a topic without partitions asks for none
	if err != nil {
		t.Fatalf("DescribeLogDirs %s: %v", topic, err)
	}
	out := map[int32]int64{}
	all.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("DescribeLogDirs %s: dir %s: %v", topic, d.Dir, d.Err)
		}
		for p, dp := range d.Topics[topic] {
			out[p] += dp.Size
		}
	})
	if len(out) == 0 {
		t.Fatalf("DescribeLogDirs lists no partition of %s", topic)
	}
	return out
}

// alterTopicConfigs sets keys of topic (or of an internal topic) with
// IncrementalAlterConfigs.
func alterTopicConfigs(t *testing.T, addr, topic string, set map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var alters []kadm.AlterConfig
	for k, v := range set {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	resps, err := newAdmin(t, addr).AlterTopicConfigs(ctx, alters, topic)
	if err == nil {
		for _, r := range resps {
			if r.Err != nil {
				err = fmt.Errorf("%w (%s)", r.Err, r.ErrMessage)
			}
		}
	}
	if err != nil {
		t.Fatalf("IncrementalAlterConfigs %s %v: %v", topic, set, err)
	}
}

// consumeFranzToEnd reads topic's partitions from the log start with a
// group-less franz-go consumer until each has returned the record just below its
// end offset (ends: the high watermarks; the record there must exist, as the
// last record of a log is in its active segment, which is never cleaned). A
// compacted log has gaps: the stop is on offsets, not on a count.
func consumeFranzToEnd(t *testing.T, addr, topic string, ends map[int32]int64) []gotRecord {
	t.Helper()
	start := map[int32]kgo.Offset{}
	last := map[int32]int64{}
	for p, end := range ends {
		if end > 0 {
			start[p] = kgo.NewOffset().AtStart()
			last[p] = -1
		}
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}), kgo.FetchMaxBytes(64<<20))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	done := func() bool {
		for p, o := range last {
			if o < ends[p]-1 {
				return false
			}
		}
		return true
	}
	var got []gotRecord
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: last offsets read %v within %v, want up to %v", topic, last, e2eTimeout, ends)
		}
		fs.EachError(func(tp string, p int32, err error) {
			t.Errorf("fetch %s/%d: %v", tp, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, gotRecord{partition: r.Partition, offset: r.Offset, key: r.Key, value: r.Value})
			last[r.Partition] = max(last[r.Partition], r.Offset)
		})
		if t.Failed() {
			t.FailNow()
		}
	}
	return got
}

// endsArg renders end offsets as the scripts' ENDS argument "p:end,...".
func endsArg(ends map[int32]int64) string {
	var parts []string
	for p, end := range ends {
		parts = append(parts, fmt.Sprintf("%d:%d", p, end))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
