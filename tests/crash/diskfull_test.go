//go:build linux

package crash

// Disk full (issue 8, "Resource exhaustion"), with
// log.dir.offline.on.full.disk=false (the default takes a full dir offline
// until a restart, as Kafka does: tests/integration/logdir_failure_test.go):
// the second of two log dirs is a tmpfs of 8 MiB mounted by the test. Produce to a partition there until
// the disk is full and check that
//
//   - the client gets KAFKA_STORAGE_ERROR in bounded time (no hang) and the
//     daemon stays up;
//   - fetches of that partition still return every acknowledged batch;
//   - a partition in the other log dir (normal disk) keeps accepting writes;
//   - producing to the full partition works again once space returns (the
//     test deletes a ballast file it placed on the tmpfs first);
//   - nothing acknowledged is lost, after a clean restart either.
//
// Produce requests are raw (kmsg through kgo's Client.Request) so that the
// test sees each partition's error code as the broker sent it, without the
// producer's retries in between.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	tmpfsBytes   = 8 << 20
	ballastBytes = 2 << 20
	// dfBatchValues x dfValueBytes per produced batch: ~64 KiB.
	dfBatchValues = 16
	dfValueBytes  = 4000
	// produceTimeout bounds one produce round trip: a storage error must be
	// answered, not hang.
	produceTimeout = 10 * time.Second
)

// mountTmpfs mounts a tmpfs of size bytes on a new dir and unmounts it at
// cleanup; it skips the test when mounting is not allowed here.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs for the disk-full test (needs root / CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Still busy (a daemon we could not stop): detach it lazily.
			if err2 := syscall.Unmount(dir, syscall.MNT_DETACH); err2 != nil {
				t.Errorf("unmount %s: %v / %v", dir, err, err2)
			}
		}
	})
	return dir
}

func TestDiskFull(t *testing.T) {
	// One segment (the default 1 GiB segment.bytes), and 1 MiB segments:
	// then the disk also fills while a segment rolls.
	for _, segmentBytes := range []string{"", "1048576"} {
		name := "segment.bytes=" + segmentBytes
		if segmentBytes == "" {
			name = "segment.bytes=default"
		}
		t.Run(name, func(t *testing.T) { testDiskFull(t, segmentBytes) })
	}
}

func testDiskFull(t *testing.T, segmentBytes string) {
	full := mountTmpfs(t, tmpfsBytes)
	normal := filepath.Join(t.TempDir(), "normal")
	// A ballast file on the tmpfs: deleting it is how space "returns".
	ballast := filepath.Join(full, "ballast")
	if err := os.WriteFile(ballast, bytes.Repeat([]byte{'b'}, ballastBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	// Partition i lives in log dir i % 2: partition 0 on the normal disk
	// (with the topic metadata and meta.properties), partition 1 on tmpfs.
	props := map[string]string{
		"log.dirs": normal + "," + full,
		// This test is about riding out a full disk in place: by default
		// (Kafka's behaviour) ENOSPC takes the dir offline until a restart
		// (broker/log_dir_failure.go; tests/integration/logdir_failure_test.go).
		"log.dir.offline.on.full.disk":     "false",
		"group.initial.rebalance.delay.ms": "0",
		"auto.create.topics.enable":        "false",
	}
	d := startDaemon(t, props)
	const topic = "df"
	adm := newAdmin(t, d.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	configs := map[string]*string{}
	if segmentBytes != "" {
		configs["segment.bytes"] = kadm.StringPtr(segmentBytes)
	}
	if r, err := adm.CreateTopic(ctx, 2, 1, configs, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v / %v", topic, err, r.Err)
	}
	cl := newClient(t, d.addr)
	defer cl.Close()

	acked := map[int32][]ackedBatch{}
	seq := 0
	produce := func(p int32) (int16, error) {
		seq++
		b := ackedBatch{values: batchValues(p, seq)}
		code, base, err := rawProduce(ctx, cl, topic, p, b.values)
		if err == nil && code == 0 {
			b.base = base
			acked[p] = append(acked[p], b)
		}
		return code, err
	}

	// 1. Fill the tmpfs partition.
	var storageErrors, okBeforeFull int
	start := time.Now()
	for i := 0; i < 2*tmpfsBytes/(dfBatchValues*dfValueBytes); i++ {
		code, err := produce(1)
		if err != nil {
			t.Fatalf("produce to the tmpfs partition (batch %d): %v (daemon alive: %v)", i, err, d.alive())
		}
		if code == kerr.KafkaStorageError.Code {
			storageErrors++
			break
		}
		if code != 0 {
			t.Fatalf("produce to the tmpfs partition (batch %d): error %v, want NONE or KAFKA_STORAGE_ERROR", i, kerr.ErrorForCode(code))
		}
		okBeforeFull++
	}
	if storageErrors == 0 {
		t.Fatalf("%d batches (%d bytes) acknowledged on an %d-byte tmpfs without KAFKA_STORAGE_ERROR", okBeforeFull, okBeforeFull*dfBatchValues*dfValueBytes, tmpfsBytes)
	}
	t.Logf("tmpfs full after %d acknowledged batches (%d KiB) in %v", okBeforeFull, okBeforeFull*dfBatchValues*dfValueBytes>>10, time.Since(start).Round(time.Millisecond))
	// A few more: still errors, still answered.
	for i := 0; i < 3; i++ {
		code, err := produce(1)
		if err != nil || code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce to the full partition again: %v / %v, want KAFKA_STORAGE_ERROR", err, kerr.ErrorForCode(code))
		}
	}
	if !d.alive() {
		t.Fatalf("daemon died on a full disk")
	}

	// 2. The full partition still serves fetches; the other dir takes writes.
	verifyBatches(t, ctx, d.addr, topic, 1, acked[1])
	for i := 0; i < 20; i++ {
		if code, err := produce(0); err != nil || code != 0 {
			t.Fatalf("produce to the partition on the normal disk while the tmpfs is full: %v / %v", err, kerr.ErrorForCode(code))
		}
	}
	verifyBatches(t, ctx, d.addr, topic, 0, acked[0])

	// A real producer (idempotent, retrying KAFKA_STORAGE_ERROR, which is
	// retriable) started while the disk is full: nothing is acknowledged
	// yet, and everything is once space returns.
	prod := newClient(t, d.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		// franz-go retries a partition that answered an error after a metadata
		// refresh, at most every MetadataMinAge (5 s by default).
		kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	defer prod.Close()
	const waiting = 10
	waitingAcks := make(chan *kgo.Record, waiting)
	for i := 0; i < waiting; i++ {
		// 64 KiB values: bigger than the slack a failed append leaves in
		// the file's last pages, so they cannot fit before space returns.
		v := bytes.Repeat([]byte{'w'}, 64<<10)
		copy(v, fmt.Sprintf("waiting/%d/", i))
		prod.Produce(ctx, &kgo.Record{Topic: topic, Partition: 1, Value: v}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("franz-go record %.12q: %v", r.Value, err)
			}
			waitingAcks <- r
		})
	}
	select {
	case r := <-waitingAcks:
		t.Fatalf("record %.12q acknowledged at offset %d while the disk is full", r.Value, r.Offset)
	case <-time.After(500 * time.Millisecond):
	}

	// 3. Space returns: producing resumes.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for i := 0; i < waiting; i++ {
		select {
		case r := <-waitingAcks:
			if i == 0 || i == waiting-1 {
				t.Logf("franz-go producer: record %d of %d acknowledged %v after space returned", i+1, waiting, time.Since(freed).Round(time.Millisecond))
			}
			acked[1] = append(acked[1], ackedBatch{base: r.Offset, values: [][]byte{r.Value}})
		case <-time.After(20 * time.Second):
			t.Fatalf("franz-go producer: %d of %d records acknowledged within 20 s of space returning", i, waiting)
		}
	}
	resumed := false
	for i := 0; i < 50 && !resumed; i++ {
		code, err := produce(1)
		if err != nil {
			t.Fatalf("produce after freeing space: %v", err)
		}
		switch code {
		case 0:
			resumed = true
		case kerr.KafkaStorageError.Code:
			time.Sleep(100 * time.Millisecond)
		default:
			t.Fatalf("produce after freeing space: %v", kerr.ErrorForCode(code))
		}
	}
	if !resumed {
		t.Fatalf("producing to the tmpfs partition did not resume after %d KiB were freed", ballastBytes>>10)
	}
	for i := 0; i < 5; i++ {
		if code, err := produce(1); err != nil || code != 0 {
			t.Fatalf("produce after space returned: %v / %v", err, kerr.ErrorForCode(code))
		}
	}
	verifyBatches(t, ctx, d.addr, topic, 1, acked[1])

	// 4. Nothing acknowledged is lost across a clean restart.
	cl.Close()
	prod.Close()
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, props)
	for p := int32(0); p < 2; p++ {
		verifyBatches(t, ctx, d2.addr, topic, p, acked[p])
	}
	if err := d2.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("acknowledged batches verified after restart: %d on the normal disk, %d on the tmpfs; %d KAFKA_STORAGE_ERROR answers",
		len(acked[0]), len(acked[1]), storageErrors+3)
}

// ackedBatch is one acknowledged produce: its values and base offset.
type ackedBatch struct {
	base   int64
	values [][]byte
}

func batchValues(p int32, seq int) [][]byte {
	vals := make([][]byte, dfBatchValues)
	for i := range vals {
		head := fmt.Sprintf("p%d/b%d/r%d/", p, seq, i)
		v := bytes.Repeat([]byte{byte('a' + (seq+i)%26)}, dfValueBytes)
		copy(v, head)
		vals[i] = v
	}
	return vals
}

// rawProduce sends one acks=all produce of one uncompressed batch and
// returns the partition's error code and base offset.
func rawProduce(ctx context.Context, cl *kgo.Client, topic string, p int32, values [][]byte) (int16, int64, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p
	rp.Records = encodeBatch(values)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rctx, cancel := context.WithTimeout(ctx, produceTimeout)
	defer cancel()
	kresp, err := cl.Request(rctx, req)
	if err != nil {
		return 0, 0, err
	}
	resp := kresp.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, 0, errors.New("produce response without our partition")
	}
	part := resp.Topics[0].Partitions[0]
	return part.ErrorCode, part.BaseOffset, nil
}

// encodeBatch encodes values as one uncompressed v2 record batch (no keys,
// no headers, no producer id).
func encodeBatch(values [][]byte) []byte {
	var recs []byte
	for i, v := range values {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, -1)       // null key
		body = binary.AppendVarint(body, int64(len(v)))
		body = append(body, v...)
		body = binary.AppendVarint(body, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	now := time.Now().UnixMilli()
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 0)                     // base offset
	b = binary.BigEndian.AppendUint32(b, 0)                     // batch length, below
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)            // partition leader epoch
	b = append(b, 2)                                            // magic
	b = binary.BigEndian.AppendUint32(b, 0)                     // crc, below
	b = binary.BigEndian.AppendUint16(b, 0)                     // attributes
	b = binary.BigEndian.AppendUint32(b, uint32(len(values)-1)) // last offset delta
	b = binary.BigEndian.AppendUint64(b, uint64(now))           // base timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(now))           // max timestamp
	b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff)    // producer id -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)                // producer epoch -1
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)            // base sequence -1
	b = binary.BigEndian.AppendUint32(b, uint32(len(values)))   // records
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// verifyBatches reads topic/p from offset 0 and checks that every
// acknowledged batch's records are at their offsets, intact.
func verifyBatches(t *testing.T, ctx context.Context, addr, topic string, p int32, want []ackedBatch) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	expect := map[int64][]byte{}
	var last int64
	for _, b := range want {
		for i, v := range b.values {
			expect[b.base+int64(i)] = v
			last = max(last, b.base+int64(i))
		}
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	next := int64(0)
	for next <= last {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("%s/%d: fetch stuck at offset %d (want up to %d): %v", topic, p, next, last, rctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("%s/%d: fetch at offset %d: %v", topic, p, next, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next {
				t.Fatalf("%s/%d: record at offset %d, want %d", topic, p, r.Offset, next)
			}
			if v, ok := expect[r.Offset]; ok && !bytes.Equal(v, r.Value) {
				t.Fatalf("%s/%d offset %d: value %.20q differs from the acknowledged %.20q", topic, p, r.Offset, r.Value, v)
			}
			delete(expect, r.Offset)
			next++
		})
	}
	if len(expect) != 0 {
		t.Fatalf("%s/%d: %d acknowledged records missing", topic, p, len(expect))
	}
}

// TestDiskFullPageByPage frees the full tmpfs one 4 KiB page at a time and
// produces one 4096-byte batch into each freed page, so that at some point
// the log's data takes the last free page just as the partition's
// mmap'd, sparsely preallocated offset or time index needs a new page of
// its own. Writing that index page through the mapping cannot fail
// politely: the kernel answers with SIGBUS. The broker must survive (a
// storage error is fine) and lose nothing acknowledged.
func TestDiskFullPageByPage(t *testing.T) {
	// This used to kill the daemon with SIGBUS: index entries are written
	// through a shared mapping of a sparse file, and the first entry in a new
	// page could find no block left. storage/index.go now reserves each index
	// page with fallocate before writing it, and skips the entry if it can't.
	full := mountTmpfs(t, tmpfsBytes)
	normal := filepath.Join(t.TempDir(), "normal")
	const pages = 1200 // > 2 offset-index pages' worth of 4 KiB batches
	props := map[string]string{
		"log.dirs":                     normal + "," + full,
		"log.dir.offline.on.full.disk": "false", // (as TestDiskFull)
		"auto.create.topics.enable":    "false",
	}
	d := startDaemon(t, props)
	const topic = "pages"
	adm := newAdmin(t, d.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v / %v", topic, err, r.Err)
	}
	cl := newClient(t, d.addr)
	defer cl.Close()
	// Fill the tmpfs with ballast pages, then partition 1 with big batches.
	for i := 0; i < pages; i++ {
		if err := os.WriteFile(filepath.Join(full, fmt.Sprintf("ballast-%d", i)), bytes.Repeat([]byte{'x'}, 4096), 0o644); err != nil {
			t.Fatalf("ballast page %d: %v", i, err)
		}
	}
	var acked []ackedBatch
	seq := 0
	for i := 0; ; i++ {
		seq++
		vals := batchValues(1, seq)
		code, base, err := rawProduce(ctx, cl, topic, 1, vals)
		if err != nil {
			t.Fatalf("filling: %v (daemon alive: %v)", err, d.alive())
		}
		if code != 0 {
			break
		}
		acked = append(acked, ackedBatch{base: base, values: vals})
	}
	// Then the slack the failed big batch left with one-page batches.
	for i := 0; i < 64; i++ {
		seq++
		vals := [][]byte{pageValue(seq)}
		code, base, err := rawProduce(ctx, cl, topic, 1, vals)
		if err != nil {
			t.Fatalf("filling: %v (daemon alive: %v)", err, d.alive())
		}
		if code != 0 {
			break
		}
		acked = append(acked, ackedBatch{base: base, values: vals})
	}
	var ok, storageErrors int
	for i := 0; i < pages; i++ {
		if err := os.Remove(filepath.Join(full, fmt.Sprintf("ballast-%d", i))); err != nil {
			t.Fatal(err)
		}
		seq++
		vals := [][]byte{pageValue(seq)}
		code, base, err := rawProduce(ctx, cl, topic, 1, vals)
		if err != nil || !d.alive() {
			t.Fatalf("page %d: produce: %v; daemon alive: %v (exit: %v)", i, err, d.alive(), d.WaitErr())
		}
		switch code {
		case 0:
			ok++
			acked = append(acked, ackedBatch{base: base, values: vals})
		case kerr.KafkaStorageError.Code:
			storageErrors++
		default:
			t.Fatalf("page %d: produce: %v", i, kerr.ErrorForCode(code))
		}
	}
	t.Logf("%d one-page batches acknowledged, %d answered KAFKA_STORAGE_ERROR", ok, storageErrors)
	verifyBatches(t, ctx, d.addr, topic, 1, acked)
	cl.Close()
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, props)
	verifyBatches(t, ctx, d2.addr, topic, 1, acked)
	if err := d2.stop(); err != nil {
		t.Fatal(err)
	}
}

// pageValue returns a value whose batch (encodeBatch) is exactly 4096
// bytes: one tmpfs page.
func pageValue(seq int) []byte {
	size := 4096 - 61 - 8
	for {
		v := bytes.Repeat([]byte{byte('a' + seq%26)}, size)
		copy(v, fmt.Sprintf("page/%d/", seq))
		switch n := len(encodeBatch([][]byte{v})); {
		case n == 4096:
			return v
		case n > 4096:
			size -= n - 4096
		default:
			size += 4096 - n
		}
	}
}
