//go:build linux

package integration

// Log compaction end to end (issue 17), on both backends, with the real daemon and
// real clients:
//
//   - TestCompactionClients: a topic created with cleanup.policy=compact (what
//     `kafka-topics.sh --create --config cleanup.policy=compact` sends), keyed
//     records overwritten many times with every codec, tombstones; the cleaner
//     compacts it (the DescribeLogDirs size drops) and franz-go, kcat,
//     confluent-kafka-python, kafka-python and KafkaJS read it from offset 0: every
//     key's latest value, offsets increasing, each record what was produced at its
//     offset, no older value below the cleaned offset, tombstones gone after
//     delete.retention.ms and a second clean.
//   - TestCompactionKeylessAndAlter: a keyless record on a compacted topic is
//     refused (INVALID_RECORD); a topic altered from delete to compact refuses them
//     from then on and gets compacted (the keyless records it had are removed).
//   - TestCompactionConsumerOffsets: many commits of one group on small
//     __consumer_offsets segments (offsets.topic.segment.bytes) are compacted; after a restart the group's
//     committed offsets are exactly its last commits.
//   - TestCompactionCrashDuringCleaning: SIGKILL while keyed records are produced and
//     the cleaner runs; after the restart every acknowledged key reads back with its
//     latest acknowledged value or a later one.
//
// The tests wait on the cleaner's own checkpoint (cleaner-offset-checkpoint: the
// first dirty offset of each compacted partition) reaching the active segment's
// base offset, read from the data dir: that is "everything that can be cleaned
// was", from outside the broker, without sleeping.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// compactKey is key i of a compaction test.
func compactKey(i int) []byte { return fmt.Appendf(nil, "key-%03d", i) }

// compactValue is the value key i has in round r: the key, the round, then
// incompressible filler (so compressed batches still fill segments), ~200-300 bytes.
func compactValue(prefix string, i, r int) []byte {
	return recordValue(fmt.Sprintf("%s-%03d-r%03d", prefix, i, r), i*1000+r, 200+(i*37+r*11)%100, true)
}

// compactProducers returns one franz-go producer per codec.
func compactProducers(t *testing.T, addr string, codecs []kgo.CompressionCodec) []*kgo.Client {
	t.Helper()
	var cls []*kgo.Client
	for _, c := range codecs {
		cls = append(cls, newClient(t, addr, kgo.ProducerBatchCompression(c)))
	}
	return cls
}

// compactReader names the clients TestCompactionClients reads with.
type compactReader string

const (
	readFranz       compactReader = "franz-go"
	readKcat        compactReader = "kcat"
	readConfluent   compactReader = "confluent"
	readKafkaPython compactReader = "kafka-python"
	readKafkaJS     compactReader = "KafkaJS"
)

// emptyFetchHint follows a failure of the kafka-python or KafkaJS reader.
const emptyFetchHint = `
A Fetch answer for a partition that holds record batches but no record (only
empty batches) crashes kafka-python 2.0.2 (IndexError at unpacked[-1].offset,
dpkp/kafka-python#2132) and stalls KafkaJS 2.2.4 (it refetches the same offset
forever). Apache Kafka's cleaner keeps an empty batch only for a producer's last
batch and for the last batch of a cleaning round (whose records the round's key
map never supersedes), and drops batches that are empty after filtering: a
cleaned Kafka log does not end a segment with an empty batch.`

// TestCompactionClients: produce, compact, read back with every client.
func TestCompactionClients(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "/usr/bin/python3")
	node := requireTool(t, "node")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
	readScript := filepath.Join(repoRoot, "tests", "python", "read_to_end.py")

	// kafka-python (without the Python modules for them) and KafkaJS (natively)
	// decode none and gzip only: they read a topic produced with those two.
	cases := []struct {
		name    string
		codecs  []kgo.CompressionCodec
		readers []compactReader
	}{
		{"all-codecs", []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()},
			[]compactReader{readFranz, readKcat, readConfluent}},
		{"none-gzip", []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression()},
			[]compactReader{readFranz, readKcat, readConfluent, readKafkaPython, readKafkaJS}},
	}
	const (
		parts          = int32(2)
		keys           = 48
		rounds1        = 30 // phase 1: every key, every round
		rounds2        = 20 // phase 2: the keys 0 and 1 mod 4
		deleteRetainMs = 500
	)
	// Tombstones: keys 3 mod 8 are deleted in round 20 of phase 1 and never written
	// again; keys 5 mod 8 are deleted in round 10 and written again from round 11;
	// keys 7 mod 8 are deleted in phase 1's last round (likely in the active
	// segment when the first clean runs).
	tombstone := func(i, r int) bool {
		return (i%8 == 3 && r == 20) || (i%8 == 5 && r == 10) || (i%8 == 7 && r == rounds1-1)
	}
	deleted := func(i, r int) bool { return i%8 == 3 && r > 20 }

	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, compactBrokerProps(nil))
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				topic := "compacted-" + tc.name
				// min.cleanable.dirty.ratio=1 holds the cleaner (a log is cleaned when its
				// dirty ratio is above the setting, and a ratio is at most 1) until the size
				// before cleaning is measured; then it is lowered to 0.01.
				createTopic(t, b.Addr, topic, parts, map[string]string{
					"cleanup.policy":            "compact",
					"segment.bytes":             "16384",
					"min.cleanable.dirty.ratio": "1",
					"delete.retention.ms":       fmt.Sprint(deleteRetainMs),
				})
				model := newCompactModel()
				producers := compactProducers(t, b.Addr, tc.codecs)
				produceRound := func(r int, which func(i int) bool) {
					var recs []sentRecord
					for i := range keys {
						if !which(i) || deleted(i, r) {
							continue
						}
						rec := sentRecord{partition: int32(i) % parts, key: compactKey(i), value: compactValue(topic, i, r)}
						if tombstone(i, r) {
							rec.value = nil
						}
						recs = append(recs, rec)
					}
					model.add(recs, produceSync(t, producers[r%len(producers)], topic, recs))
				}

				// Phase 1: every key, rounds1 times.
				for r := range rounds1 {
					produceRound(r, func(int) bool { return true })
				}
				target1 := activeBases(t, b.Dir, topic, parts)
				for p, base := range target1 {
					if base == 0 {
						t.Fatalf("partition %d never rolled a segment (segment.bytes 16384)", p)
					}
				}
				before := logDirSizes(t, b.Addr, topic)
				if ck := cleanedOffsets(t, b.Dir, topic, parts); ck[0] != 0 || ck[1] != 0 {
					t.Fatalf("cleaned to %v while min.cleanable.dirty.ratio=1", ck)
				}
				alterTopicConfigs(t, b.Addr, topic, map[string]string{"min.cleanable.dirty.ratio": "0.01"})
				cleaned1, cleanedAt := waitCleaned(t, b, topic, target1)
				after := logDirSizes(t, b.Addr, topic)
				t.Logf("DescribeLogDirs sizes before cleaning %v, after %v", before, after)
				for p := range parts {
					if after[p] >= before[p] {
						t.Errorf("partition %d: DescribeLogDirs size %d after cleaning, %d before", p, after[p], before[p])
					}
				}

				// A tombstone cleaned in the first round has a delete horizon of that round's
				// time plus delete.retention.ms; wait until it has passed (a precondition on
				// the clock, not a wait for an effect), then make the log dirty again so a
				// second round runs after it.
				time.Sleep(time.Until(cleanedAt.Add(deleteRetainMs*time.Millisecond + 100*time.Millisecond)))
				for r := rounds1; r < rounds1+rounds2; r++ {
					produceRound(r, func(i int) bool { return i%4 <= 1 }) // both partitions; not keys 3 and 7 mod 8
				}
				target2 := activeBases(t, b.Dir, topic, parts)
				for p := range parts {
					if target2[p] <= target1[p] {
						t.Fatalf("partition %d: active segment base %d after phase 2, %d before: no roll", p, target2[p], target1[p])
					}
				}
				waitCleaned(t, b, topic, target2)
				// Tombstones below the first clean's offset are gone now; count them so the
				// check means something.
				goneBelow := cleaned1
				gone := 0
				for p := range parts {
					for _, o := range model.lastBelow(p, 1<<62) {
						if model.byOffset[p][o].value == nil && o < goneBelow[p] {
							gone++
						}
					}
				}
				if gone == 0 {
					t.Fatalf("no key's last record is a tombstone below the first clean's offsets %v: the test checks nothing", goneBelow)
				}

				ends := endOffsets(t, b.Addr, topic)
				cleanedTo := cleanedOffsets(t, b.Dir, topic, parts)
				t.Logf("%d records produced, end offsets %v, cleaned to %v, %d deleted keys to be gone", model.count(), ends, cleanedTo, gone)

				for _, reader := range tc.readers {
					t.Run(string(reader), func(t *testing.T) {
						var got []gotRecord
						switch reader {
						case readFranz:
							got = consumeFranzToEnd(t, b.Addr, topic, ends)
						case readKcat:
							// -e stops at the end of every partition, gaps or not.
							out, err := runClient(t, clientRunTimeout, nil, kcat, "-C", "-b", b.Addr, "-t", topic,
								"-o", "beginning", "-e", "-f", kcatFormat, "-X", "fetch.wait.max.ms=100")
							if err != nil {
								t.Fatalf("kcat -C: %v", err)
							}
							if got, err = parseKcatOutput(out); err != nil {
								t.Fatalf("kcat -C output: %v", err)
							}
						case readConfluent, readKafkaPython:
							// Group-less: assign() from the beginning.
							outPath := filepath.Join(t.TempDir(), "consumed.jsonl")
							out, err := runClient(t, clientRunTimeout, nil, python, readScript, string(reader), b.Addr, topic, endsArg(ends), outPath)
							t.Logf("read_to_end.py %s: %s", reader, strings.TrimSpace(out))
							if err != nil {
								t.Fatalf("read_to_end.py %s: %v%s", reader, err, emptyFetchHint)
							}
							got = readConsumedFile(t, outPath)
						case readKafkaJS:
							// A consumer group (KafkaJS has no group-less consumer) from the beginning.
							outPath := filepath.Join(t.TempDir(), "consumed.jsonl")
							out, err := runClient(t, clientRunTimeout, []string{"KAFKAJS_NO_PARTITIONER_WARNING=1"}, node,
								filepath.Join(jsDir, "read_to_end.js"), b.Addr, topic, "reader-"+topic, endsArg(ends), outPath, "30")
							t.Logf("read_to_end.js: %s", strings.TrimSpace(out))
							if err != nil {
								t.Fatalf("read_to_end.js: %v%s", err, emptyFetchHint)
							}
							got = readConsumedFile(t, outPath)
						}
						if n := verifyCompacted(t, string(reader), model, got, cleanedTo, goneBelow); n == 0 {
							t.Errorf("%s read nothing below the cleaned offsets %v", reader, cleanedTo)
						}
					})
				}
			})
		}
	})
}

// TestCompactionKeylessAndAlter: INVALID_RECORD for keyless records on a compacted
// topic, and a topic altered from delete to compact.
func TestCompactionKeylessAndAlter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, compactBrokerProps(nil))
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()

		// Created compacted: a keyless record is refused, a keyed one accepted.
		createTopic(t, b.Addr, "born-compacted", 1, map[string]string{"cleanup.policy": "compact"})
		cl := newClient(t, b.Addr)
		keyless := &kgo.Record{Topic: "born-compacted", Value: []byte("no key")}
		if err := cl.ProduceSync(ctx, keyless).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
			t.Errorf("keyless record on a compacted topic: %v, want %v", err, kerr.InvalidRecord)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "born-compacted", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
			t.Errorf("keyed record on a compacted topic: %v", err)
		}

		// Created with delete: keyless and keyed records, several segments.
		const topic = "altered"
		createTopic(t, b.Addr, topic, 1, map[string]string{
			"cleanup.policy":            "delete",
			"segment.bytes":             "16384",
			"min.cleanable.dirty.ratio": "0.01",
		})
		model := newCompactModel()
		var recs []sentRecord
		for i := range 200 {
			rec := sentRecord{key: compactKey(i % 10), value: compactValue(topic, i%10, i/10)}
			if i%4 == 0 {
				rec.key = nil
			}
			recs = append(recs, rec)
		}
		model.add(recs, produceSync(t, newClient(t, b.Addr), topic, recs))

		alterTopicConfigs(t, b.Addr, topic, map[string]string{"cleanup.policy": "compact"})
		// A fresh producer: the one above may carry idempotent state for the topic
		// that an INVALID_RECORD failure would poison for its later records.
		cl2 := newClient(t, b.Addr)
		if err := cl2.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no key")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
			t.Errorf("keyless record after cleanup.policy delete -> compact: %v, want %v", err, kerr.InvalidRecord)
		}

		// More overwrites to roll the active segment past the keyless records.
		recs = recs[:0]
		for i := range 100 {
			recs = append(recs, sentRecord{key: compactKey(i % 10), value: compactValue(topic, i%10, 100+i/10)})
		}
		model.add(recs, produceSync(t, newClient(t, b.Addr), topic, recs))
		target := activeBases(t, b.Dir, topic, 1)
		// The keyless records are in the first 200 offsets; the clean must reach past them.
		if target[0] < 200 {
			t.Fatalf("active segment base %d: the keyless records are not all below it", target[0])
		}
		waitCleaned(t, b, topic, target)

		// Keyless records are all below the cleaned offset; the model's "last record of
		// the key" for a nil key is the last keyless record, which a clean removes too.
		ends := endOffsets(t, b.Addr, topic)
		cleanedTo := cleanedOffsets(t, b.Dir, topic, 1)
		got := consumeFranzToEnd(t, b.Addr, topic, ends)
		for _, r := range got {
			if r.key == nil {
				t.Errorf("offset %d: a keyless record survived the clean (cleaned to %v)", r.offset, cleanedTo)
			}
		}
		// verifyCompacted's rules for keyed records; drop the keyless ones from the
		// model (a compacted log keeps none).
		for o, r := range model.byOffset[0] {
			if r.key == nil {
				delete(model.byOffset[0], o)
			}
		}
		verifyCompacted(t, "franz-go after delete -> compact", model, got, cleanedTo, nil)
	})
}

// TestCompactionConsumerOffsets: __consumer_offsets is compacted and the compacted
// log restores exactly the last commits.
func TestCompactionConsumerOffsets(t *testing.T) {
	const (
		group   = "many-commits"
		topic   = "committed"
		parts   = int32(4)
		commits = 2000
		offsets = "__consumer_offsets"
	)
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		// One __consumer_offsets partition (the group's commits are all in
		// __consumer_offsets-0), created with 16 KiB segments.
		props := compactBrokerProps(map[string]string{"log.dirs": dir,
			"offsets.topic.num.partitions": "1", "offsets.topic.segment.bytes": "16384"})
		b := startBroker(t, backend, props)
		createTopic(t, b.Addr, topic, parts, nil)
		adm := newAdmin(t, b.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), 3*e2eTimeout)
		defer cancel()
		commit := func(n int) {
			var offs kadm.Offsets
			for p := range parts {
				offs.Add(kadm.Offset{Topic: topic, Partition: p, At: int64(n*10) + int64(p), LeaderEpoch: -1})
			}
			resps, err := adm.CommitOffsets(ctx, group, offs)
			if err == nil {
				err = resps.Error()
			}
			if err != nil {
				t.Fatalf("commit %d: %v", n, err)
			}
		}
		commit(0) // creates __consumer_offsets (one record: nothing to clean yet)
		// The cleaner held (ratio 1) until the size before cleaning is measured.
		alterTopicConfigs(t, b.Addr, offsets, map[string]string{"min.cleanable.dirty.ratio": "1"})
		for n := 1; n < commits; n++ {
			commit(n)
		}
		target := activeBases(t, b.Dir, offsets, 1)
		if target[0] == 0 {
			t.Fatalf("%s-0 never rolled a segment", offsets)
		}
		before := logDirSizes(t, b.Addr, offsets)[0]
		segsBefore := len(segmentBases(t, b.Dir, offsets, 0))
		alterTopicConfigs(t, b.Addr, offsets, map[string]string{"min.cleanable.dirty.ratio": "0.01"})
		waitCleaned(t, b, offsets, target)
		after := logDirSizes(t, b.Addr, offsets)[0]
		segsAfter := len(segmentBases(t, b.Dir, offsets, 0))
		t.Logf("%s-0: %d bytes in %d segments before cleaning, %d bytes in %d segments after", offsets, before, segsBefore, after, segsAfter)
		if after >= before {
			t.Errorf("%s-0: DescribeLogDirs size %d after cleaning, %d before", offsets, after, before)
		}

		want := map[int32]int64{}
		for p := range parts {
			want[p] = int64((commits-1)*10) + int64(p)
		}
		b.Stop(t)
		if t.Failed() {
			t.FailNow()
		}
		b2 := startBroker(t, backend, props)
		gcCheckCommitted(t, gcAdmin(t, b2.Addr), group, topic, want)
		if size := logDirSizes(t, b2.Addr, offsets)[0]; size >= before {
			t.Errorf("%s-0 after the restart: %d bytes, %d before cleaning", offsets, size, before)
		}
	})
}

// TestCompactionCrashDuringCleaning: SIGKILL while keyed records are produced to a
// compacted topic and the cleaner runs.
func TestCompactionCrashDuringCleaning(t *testing.T) {
	const (
		topic     = "crashed"
		parts     = int32(2)
		keys      = 40
		roundsMax = 400
		// cleanRoundsMin: the kill comes once the checkpoint has moved this many
		// times (so the cleaner is busy with this log) or when the rounds run out.
		cleanRoundsMin = 3
	)
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		props := compactBrokerProps(map[string]string{"log.dirs": dir})
		b := startBroker(t, backend, props)
		createTopic(t, b.Addr, topic, parts, map[string]string{
			"cleanup.policy":            "compact",
			"segment.bytes":             "8192",
			"min.cleanable.dirty.ratio": "0.01",
		})

		// The producer: round after round of every key until roundsMax or an error
		// (the kill). acked[i] is the last round of key i the broker acknowledged.
		acked := make([]int, keys)
		for i := range acked {
			acked[i] = -1
		}
		cl := newClient(t, b.Addr, kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.RecordRetries(2))
		stop := make(chan struct{})
		done := make(chan int)
		go func() {
			r := 0
			defer func() { done <- r }()
			for ; r < roundsMax; r++ {
				select {
				case <-stop:
					return
				default:
				}
				var krs []*kgo.Record
				for i := range keys {
					krs = append(krs, &kgo.Record{Topic: topic, Partition: int32(i) % parts, Key: compactKey(i), Value: compactValue(topic, i, r)})
				}
				ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
				results := cl.ProduceSync(ctx, krs...)
				cancel()
				failed := false
				for _, res := range results {
					if res.Err != nil {
						failed = true
						continue
					}
					var i int
					fmt.Sscanf(string(res.Record.Key), "key-%d", &i)
					acked[i] = r
				}
				if failed {
					return
				}
			}
		}()

		// Kill once the cleaner has moved its checkpoint cleanRoundsMin times while
		// the producer runs, or when the producer is done.
		moves, last := 0, int64(0)
		deadline := time.Now().Add(cleanWaitTimeout)
		var rounds int
		producing := true
		for producing && moves < cleanRoundsMin {
			if time.Now().After(deadline) {
				t.Fatalf("the cleaner moved its checkpoint %d times in %v of produce", moves, cleanWaitTimeout)
			}
			select {
			case rounds = <-done:
				producing = false
			case <-time.After(20 * time.Millisecond):
			}
			ck := cleanedOffsets(t, dir, topic, parts)
			if sum := ck[0] + ck[1]; sum != last {
				moves, last = moves+1, sum
			}
		}
		b.Kill(t)
		close(stop)
		cl.Close() // fails what is still buffered: the producer returns
		if producing {
			select {
			case rounds = <-done:
			case <-time.After(2 * e2eTimeout):
				t.Fatalf("the producer did not return within %v of the kill", 2*e2eTimeout)
			}
		}
		t.Logf("killed after %d produce rounds, the checkpoint moved %d times (now %v)", rounds, moves, cleanedOffsets(t, dir, topic, parts))

		b2 := startBroker(t, backend, props)
		ends := endOffsets(t, b2.Addr, topic)
		got := consumeFranzToEnd(t, b2.Addr, topic, ends)
		latest := make([]gotRecord, keys)
		seen := make([]bool, keys)
		prev := map[int32]int64{0: -1, 1: -1}
		for _, r := range got {
			if r.offset <= prev[r.partition] {
				t.Errorf("partition %d: offset %d after %d", r.partition, r.offset, prev[r.partition])
			}
			prev[r.partition] = r.offset
			var i int
			if _, err := fmt.Sscanf(string(r.key), "key-%d", &i); err != nil || i < 0 || i >= keys {
				t.Errorf("offset %d: unexpected key %q", r.offset, r.key)
				continue
			}
			latest[i], seen[i] = r, true
		}
		checked := 0
		for i := range keys {
			if acked[i] < 0 {
				continue
			}
			checked++
			if !seen[i] {
				t.Errorf("key %d: acknowledged up to round %d, not read after the restart", i, acked[i])
				continue
			}
			// The acknowledged round or a later one (the round in flight at the kill
			// may have been written without its acknowledgement arriving).
			r := latest[i]
			found := false
			for round := acked[i]; round <= min(rounds, roundsMax-1) && !found; round++ {
				found = string(r.value) == string(compactValue(topic, i, round))
			}
			if !found {
				t.Errorf("key %d (partition %d offset %d): value %s is none of rounds %d..%d (acknowledged up to round %d)",
					i, r.partition, r.offset, describeValue(r.value), acked[i], rounds, acked[i])
			}
		}
		if checked == 0 {
			t.Fatalf("no record acknowledged before the kill")
		}
		t.Logf("%d records read after the restart (end offsets %v); %d keys checked", len(got), ends, checked)

		// The log is still cleaned after the restart.
		more := make([]sentRecord, 0, 4*keys)
		for r := range 4 {
			for i := range keys {
				more = append(more, sentRecord{partition: int32(i) % parts, key: compactKey(i), value: compactValue(topic+"-after", i, r)})
			}
		}
		produceSync(t, newClient(t, b2.Addr), topic, more)
		waitCleaned(t, b2, topic, activeBases(t, dir, topic, parts))
	})
}
