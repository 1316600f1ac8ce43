//go:build linux

package integration

// End-to-end produce and consume with franz-go (issue 4, "Done when"): every acks
// level, every codec, a 1,000-partition topic, consumers started at earliest, latest
// and by timestamp, a retried idempotent duplicate on the raw wire, and a /metrics
// scrape while clients run. Consumers are group-less (ConsumePartitions): consumer
// groups are issue 5.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// spreadRecords returns n records of run prefix over partitions 0..parts-1 (round
// robin), with sizes cycling from a few bytes to sizeMax, keyed by their index.
func spreadRecords(prefix string, n int, parts int32, sizeMax int, random bool) []sentRecord {
	recs := make([]sentRecord, n)
	for i := range recs {
		size := 16 + (i*7919)%max(sizeMax-16, 1)
		recs[i] = sentRecord{
			partition: int32(i) % parts,
			key:       []byte("k" + strconv.Itoa(i)),
			value:     recordValue(prefix, i, size, random),
		}
	}
	return recs
}

// TestFranzGoAcks: franz-go produces at acks 0, 1 and all (idempotent) and reads
// every record back.
func TestFranzGoAcks(t *testing.T) {
	cases := []struct {
		name string
		opts []kgo.Opt
	}{
		{"acks0", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
		{"acks1", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"acksAll-idempotent", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}}, // idempotent is kgo's default
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				topic := "franz-" + tc.name
				createTopic(t, b.Addr, topic, 3, nil)
				recs := spreadRecords(topic, 600, 3, 3000, false)
				cl := newClient(t, b.Addr, tc.opts...)
				offsets := produceSync(t, cl, topic, recs)
				if tc.name != "acks0" { // acks=0 has no answer, so no offsets
					next := map[int32]int64{}
					for i, r := range recs {
						if offsets[i] != next[r.partition] {
							t.Fatalf("record %d: broker assigned offset %d in partition %d, want %d", i, offsets[i], r.partition, next[r.partition])
						}
						next[r.partition]++
					}
				}
				got := consumeFranz(t, b.Addr, topic, fromStart(3), len(recs))
				verifyRecords(t, "franz-go "+tc.name, recs, got, nil)
			})
		}
	})
}

// TestFranzGoCodecs: batches compressed with each codec are stored and served as
// sent (the fetched records report the producer's codec) and decode to the same
// records.
func TestFranzGoCodecs(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		attr  uint8 // record batch attributes' codec bits
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		for _, c := range codecs {
			t.Run(c.name, func(t *testing.T) {
				topic := "codec-" + c.name
				createTopic(t, b.Addr, topic, 2, nil)
				recs := spreadRecords(topic, 400, 2, 4000, false)
				// A record near 1 MiB in the middle: a large compressed batch.
				recs[200].value = recordValue(topic, 200, 1<<20-200, false)
				cl := newClient(t, b.Addr, kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5*time.Millisecond))
				produceSync(t, cl, topic, recs)

				cons := newClient(t, b.Addr,
					kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(2)}),
					kgo.FetchMaxBytes(64<<20))
				ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
				defer cancel()
				var got []gotRecord
				codecSeen := map[uint8]int{}
				for len(got) < len(recs) && ctx.Err() == nil {
					fs := cons.PollFetches(ctx)
					fs.EachError(func(tp string, p int32, err error) {
						if ctx.Err() == nil {
							t.Errorf("fetch %s/%d: %v", tp, p, err)
						}
					})
					fs.EachRecord(func(r *kgo.Record) {
						codecSeen[r.Attrs.CompressionType()]++
						got = append(got, gotRecord{partition: r.Partition, offset: r.Offset, key: r.Key, value: r.Value})
					})
					if t.Failed() {
						break
					}
				}
				verifyRecords(t, "franz-go "+c.name, recs, got, nil)
				if len(codecSeen) != 1 || codecSeen[c.attr] == 0 {
					t.Errorf("fetched records' batch codecs (attribute bits -> records) %v, want all %d (%s, as produced)", codecSeen, c.attr, c.name)
				}
			})
		}
	})
}

// TestThousandPartitionsStopTime: a few records to every partition of a
// 1,000-partition topic, all read back by one group-less consumer; then the
// broker, holding 1,000 non-empty partitions, still exits within the harness's
// stop timeout after SIGTERM (stopped with a 30 s bound of its own, so a slow
// stop is reported with its duration). One test: the scenario without the
// stop-time check (TestThousandPartitions) was the same minute of make test.
func TestThousandPartitionsStopTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := produceConsumeThousand(t, backend)
		if took := stopWithin(t, b, 30*time.Second); took > stopTimeout {
			t.Errorf("stop took %v, over the %v stop timeout", took.Round(time.Millisecond), stopTimeout)
		}
	})
}

// produceConsumeThousand starts a broker, writes 3 records to each partition of a
// 1,000-partition topic and reads them all back with one consumer.
func produceConsumeThousand(t *testing.T, backend string) *Broker {
	const parts = 1000
	b := startBroker(t, backend, nil)
	topic := "wide"
	start := time.Now()
	createTopic(t, b.Addr, topic, parts, nil)
	t.Logf("created %d partitions in %v", parts, time.Since(start).Round(time.Millisecond))
	recs := spreadRecords(topic, 3*parts, parts, 200, false)
	start = time.Now()
	produceSync(t, newClient(t, b.Addr, kgo.ProducerLinger(2*time.Millisecond)), topic, recs)
	t.Logf("produced %d records to %d partitions in %v", len(recs), parts, time.Since(start).Round(time.Millisecond))
	hw := endOffsets(t, b.Addr, topic)
	if len(hw) != parts {
		t.Errorf("ListOffsets answered %d partitions, want %d", len(hw), parts)
	}
	for p, o := range hw {
		if o != 3 {
			t.Errorf("partition %d high watermark %d, want 3", p, o)
		}
	}
	start = time.Now()
	got := consumeFranz(t, b.Addr, topic, fromStart(parts), len(recs))
	t.Logf("consumed %d records in %v", len(got), time.Since(start).Round(time.Millisecond))
	verifyRecords(t, "1000 partitions", recs, got, nil)
	return b
}

// TestConsumerStartPositions: consumers and ListOffsets started at the earliest
// offset, at the latest (only records produced afterwards arrive), latest-minus-N,
// and at a timestamp.
func TestConsumerStartPositions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		const topic = "positions"
		createTopic(t, b.Addr, topic, 1, nil)
		// Two runs of 50 records with explicit create times 1 s apart per run: old
		// ones at base+i, new ones at base+100000+i.
		base := time.Now().Add(-time.Hour).Truncate(time.Second)
		const half = 50
		var recs []sentRecord
		var krs []*kgo.Record
		for i := range 2 * half {
			ts := base.Add(time.Duration(i) * time.Millisecond)
			if i >= half {
				ts = base.Add(100*time.Second + time.Duration(i)*time.Millisecond)
			}
			v := recordValue(topic, i, 100, false)
			recs = append(recs, sentRecord{value: v})
			krs = append(krs, &kgo.Record{Topic: topic, Value: v, Timestamp: ts})
		}
		cl := newClient(t, b.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		// One at a time: each its own batch, so the timestamp index sees each.
		for i, r := range krs {
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
		splitMs := base.Add(100 * time.Second).UnixMilli()

		adm := newAdmin(t, b.Addr)
		if lo, err := adm.ListStartOffsets(ctx, topic); err != nil || lo[topic][0].Offset != 0 {
			t.Errorf("ListOffsets earliest: %+v, %v; want 0", lo[topic][0], err)
		}
		if lo, err := adm.ListEndOffsets(ctx, topic); err != nil || lo[topic][0].Offset != 2*half {
			t.Errorf("ListOffsets latest: %+v, %v; want %d", lo[topic][0], err, 2*half)
		}
		if lo, err := adm.ListOffsetsAfterMilli(ctx, splitMs, topic); err != nil || lo[topic][0].Offset != half {
			t.Errorf("ListOffsets at timestamp %d: %+v, %v; want offset %d", splitMs, lo[topic][0], err, half)
		}
		if lo, err := adm.ListOffsetsAfterMilli(ctx, splitMs-5000, topic); err != nil || lo[topic][0].Offset != half {
			t.Errorf("ListOffsets at timestamp %d (between the runs): %+v, %v; want offset %d", splitMs-5000, lo[topic][0], err, half)
		}

		// Record-exact, as in Kafka: 20 records 1 ms apart in one zstd batch;
		// a timestamp inside the batch answers the record, not the batch.
		const inBatch = "positions-batch"
		createTopic(t, b.Addr, inBatch, 1, nil)
		zcl := newClient(t, b.Addr, kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerLinger(time.Second))
		var batch []*kgo.Record
		for i := range 20 {
			batch = append(batch, &kgo.Record{Topic: inBatch, Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := zcl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatalf("produce one batch: %v", err)
		}
		if lo, err := adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+7, inBatch); err != nil || lo[inBatch][0].Offset != 7 || lo[inBatch][0].Timestamp != base.UnixMilli()+7 {
			t.Errorf("ListOffsets at the 8th record's timestamp inside one compressed batch: %+v, %v; want offset 7", lo[inBatch][0], err)
		}

		t.Run("earliest", func(t *testing.T) {
			got := consumeFranz(t, b.Addr, topic, map[int32]kgo.Offset{0: kgo.NewOffset().AtStart()}, 2*half)
			verifyRecords(t, "earliest", recs, got, nil)
		})
		t.Run("timestamp", func(t *testing.T) {
			got := consumeFranz(t, b.Addr, topic, map[int32]kgo.Offset{0: kgo.NewOffset().AfterMilli(splitMs)}, half)
			verifyRecords(t, "after timestamp", recs[half:], got, map[int32]int64{0: half})
		})
		t.Run("latest-minus-10", func(t *testing.T) {
			got := consumeFranz(t, b.Addr, topic, map[int32]kgo.Offset{0: kgo.NewOffset().AtEnd().Relative(-10)}, 10)
			verifyRecords(t, "latest-10", recs[2*half-10:], got, map[int32]int64{0: 2*half - 10})
		})
		t.Run("latest", func(t *testing.T) {
			// The consumer resolves "latest" at some moment after it starts; produce one
			// record at a time until it sees one. It must never see an older record,
			// and what it sees must be contiguous from where it joined.
			cons := newClient(t, b.Addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtEnd()}}))
			var got []gotRecord
			var late []sentRecord
			for i := 0; i < 40 && len(got) == 0; i++ {
				v := recordValue(topic+"-late", i, 80, false)
				late = append(late, sentRecord{value: v})
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: v}).FirstErr(); err != nil {
					t.Fatalf("produce late %d: %v", i, err)
				}
				pctx, pcancel := context.WithTimeout(ctx, 250*time.Millisecond)
				fs := cons.PollFetches(pctx)
				pcancel()
				fs.EachRecord(func(r *kgo.Record) {
					got = append(got, gotRecord{partition: r.Partition, offset: r.Offset, value: r.Value})
				})
			}
			if len(got) == 0 {
				t.Fatalf("a consumer started at the latest offset saw none of %d records produced afterwards", len(late))
			}
			first := got[0].offset - 2*half // index into late of the first record seen
			if first < 0 {
				t.Fatalf("a consumer started at the latest offset (%d) received offset %d", 2*half, got[0].offset)
			}
			verifyRecords(t, "latest", late[first:first+int64(len(got))], got, map[int32]int64{0: got[0].offset})
			t.Logf("consumer at latest joined at offset %d (%d late records produced)", got[0].offset, len(late))
		})
	})
}

// TestIdempotentRetriedDuplicate: the same idempotent batch sent twice (a producer
// retrying after a lost answer) gets the original base offset and is stored once; a
// sequence gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER and writes nothing.
func TestIdempotentRetriedDuplicate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		const topic = "dup"
		createTopic(t, b.Addr, topic, 1, nil)
		conn := dial(t, b.Addr)

		initReq := kmsg.NewPtrInitProducerIDRequest()
		initReq.Version = 4
		initReq.TransactionTimeoutMillis = 60_000
		initResp := kmsg.NewPtrInitProducerIDResponse()
		if err := roundTrip(conn, initReq, initResp, 1, rawTimeout); err != nil {
			t.Fatalf("InitProducerId v4: %v", err)
		}
		if initResp.ErrorCode != 0 || initResp.ProducerID < 0 {
			t.Fatalf("InitProducerId: error %s, producer id %d", codeName(initResp.ErrorCode), initResp.ProducerID)
		}
		pid, epoch := initResp.ProducerID, initResp.ProducerEpoch
		t.Logf("producer id %d epoch %d", pid, epoch)

		batch := func(seq int32, first, n int) []byte {
			var vals [][]byte
			for i := first; i < first+n; i++ {
				vals = append(vals, recordValue(topic, i, 64, false))
			}
			return rawBatch(batchSpec{producerID: pid, producerEpoch: epoch, baseSequence: seq, values: vals})
		}
		first := batch(0, 0, 5)
		second := batch(5, 5, 5)
		key := topic + "/0"
		steps := []struct {
			what     string
			batch    []byte
			wantCode int16
			wantBase int64
		}{
			{"first batch (seq 0-4)", first, 0, 0},
			{"retried first batch", first, 0, 0},
			{"second batch (seq 5-9)", second, 0, 5},
			{"retried second batch", second, 0, 5},
			{"first batch again, still among the last 5", first, 0, 0},
			{"sequence gap (seq 20)", batch(20, 20, 5), kerr.OutOfOrderSequenceNumber.Code, -1},
		}
		for i, s := range steps {
			res := rawProduce(t, conn, produceRequest(9, -1, producePart{topic, 0, s.batch}), int32(10+i))[key]
			t.Logf("%s: error %s, base offset %d", s.what, codeName(res.code), res.baseOffset)
			if res.code != s.wantCode {
				t.Errorf("%s: error %s, want %s", s.what, codeName(res.code), codeName(s.wantCode))
			}
			if s.wantCode == 0 && res.baseOffset != s.wantBase {
				t.Errorf("%s: base offset %d, want %d", s.what, res.baseOffset, s.wantBase)
			}
		}
		if hw := endOffsets(t, b.Addr, topic)[0]; hw != 10 {
			t.Errorf("high watermark %d after two batches of 5 and their retries, want 10", hw)
		}
		var want []sentRecord
		for i := range 10 {
			want = append(want, sentRecord{value: recordValue(topic, i, 64, false)})
		}
		got := consumeFranz(t, b.Addr, topic, fromStart(1), len(want))
		verifyRecords(t, "idempotent duplicates", want, got, nil)
	})
}

// TestMetricsDuringProduceConsume: /metrics scraped while a franz-go producer and
// consumer run shows Produce and Fetch requests and network bytes counted.
func TestMetricsDuringProduceConsume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		b := startBroker(t, backend, map[string]string{"metrics.listener": metricsAddr})
		const topic = "metered"
		createTopic(t, b.Addr, topic, 2, nil)
		recs := spreadRecords(topic, 500, 2, 2000, true)
		var produced int64
		for _, r := range recs {
			produced += int64(len(r.value))
		}

		// Scrape while the producer runs (in another goroutine), then after the consumer.
		done := make(chan struct{})
		var during map[string]float64
		go func() {
			defer close(done)
			time.Sleep(20 * time.Millisecond)
			during, _ = scrapeMetrics(metricsAddr)
		}()
		produceSync(t, newClient(t, b.Addr), topic, recs)
		<-done
		got := consumeFranz(t, b.Addr, topic, fromStart(2), len(recs))
		verifyRecords(t, "metered", recs, got, nil)

		after, err := scrapeMetrics(metricsAddr)
		if err != nil {
			t.Fatalf("scrape http://%s/metrics: %v", metricsAddr, err)
		}
		if during == nil {
			t.Errorf("scrape during the produce run failed")
		}
		for _, name := range []string{
			`ringbroker_requests_total{api="Produce"}`,
			`ringbroker_requests_total{api="Fetch"}`,
			`ringbroker_network_received_bytes_total`,
			`ringbroker_network_sent_bytes_total`,
		} {
			v, ok := after[name]
			t.Logf("%s = %v (during produce: %v)", name, v, during[name])
			if !ok || v <= 0 {
				t.Errorf("%s = %v (present %v), want > 0 after producing and consuming", name, v, ok)
			}
			if d, ok := during[name]; ok && d > v {
				t.Errorf("%s went down: %v during the run, %v after", name, d, v)
			}
		}
		if in := after[`ringbroker_network_received_bytes_total`]; in < float64(produced) {
			t.Errorf("network_received_bytes_total %v < %d bytes of record values produced", in, produced)
		}
		if out := after[`ringbroker_network_sent_bytes_total`]; out < float64(produced) {
			t.Errorf("network_sent_bytes_total %v < %d bytes of record values consumed", out, produced)
		}
	})
}

// scrapeMetrics fetches http://addr/metrics and returns each sample by its series
// as written ("name{labels}" or "name").
func scrapeMetrics(addr string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}
