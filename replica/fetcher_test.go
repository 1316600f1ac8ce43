package replica_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/broker"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/replica"
	"github.com/ringbroker/ringbroker/storage"
)

// The leader in these tests is a real single-node ringbroker (registry,
// broker, netpoll portable backend) on a loopback port: it serves a
// replica's Fetch as it serves a consumer's (up to its high watermark,
// which on one node is its log end), OffsetForLeaderEpoch from its epoch
// cache at leader epoch 0, and ListOffsets. The follower is a real
// storage.Log, and the image is built from
// metadata records as the controller writes them.

const (
	leaderID   = 0
	followerID = 1
	topic      = "t"
)

type leader struct {
	addr string
	port int
	reg  *broker.Registry
	cl   *kgo.Client
}

func startLeader(t *testing.T) *leader { return startLeaderWith(t, 1) }

// startLeaderWith starts the leader with topic t of the given partitions.
func startLeaderWith(t *testing.T, partitions int32) *leader {
	t.Helper()
	logger := zaptest.NewLogger(t)
	dir := t.TempDir()
	reg, err := broker.OpenRegistry(broker.RegistryOptions{LogDirs: []string{dir}, Logger: logger, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	var bp atomic.Pointer[broker.Broker]
	fwd := netpoll.HandlerFunc(func(req netpoll.Request, frame []byte) { bp.Load().ServeFrame(req, frame) })
	srv, err := netpoll.Listen(netpoll.Options{Listeners: []string{"127.0.0.1:0"}, Backend: netpoll.BackendPortable, Loops: 1, Handler: fwd, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Addrs()[0].(*net.TCPAddr).Port
	b, err := broker.New(broker.Options{NodeID: leaderID, AdvertisedHost: "127.0.0.1", AdvertisedPort: int32(port), DataDir: dir,
		Logger: logger, Registry: reg, AutoCreateTopics: true, NumPartitions: 1, MessageMaxBytes: 1048588})
	if err != nil {
		t.Fatal(err)
	}
	bp.Store(b)
	l := &leader{addr: srv.Addrs()[0].String(), port: port, reg: reg}
	l.cl, err = kgo.NewClient(kgo.SeedBrokers(l.addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(l.cl).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("leader shutdown: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("leader close: %v", err)
		}
		if err := reg.Close(); err != nil {
			t.Errorf("leader registry close: %v", err)
		}
	})
	return l
}

// produce writes n one-record batches with values prefix-i to partition 0.
func (l *leader) produce(t *testing.T, prefix string, n int) { l.produceTo(t, 0, prefix, n) }

func (l *leader) produceTo(t *testing.T, partition int32, prefix string, n int) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Partition: partition, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
		if err := l.cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func (l *leader) log(t *testing.T) *storage.Log { return l.logOf(t, 0) }

func (l *leader) logOf(t *testing.T, partition int32) *storage.Log {
	t.Helper()
	p := l.reg.Partition(topic, partition)
	if p == nil {
		t.Fatal("leader has no partition")
	}
	return p.Log
}

func (l *leader) topicID(t *testing.T) [16]byte {
	t.Helper()
	return l.reg.Topic(topic).ID
}

// image is a cluster of the leader and this follower with topic t's
// partition 0 on both, led by leaderNode at leaderEpoch.
func image(t *testing.T, l *leader, id [16]byte, leaderNode, leaderEpoch int32) *metadata.Image {
	return imageWith(t, l, id, 1, leaderNode, leaderEpoch)
}

// imageWith is image with the given number of partitions.
func imageWith(t *testing.T, l *leader, id [16]byte, partitions int32, leaderNode, leaderEpoch int32) *metadata.Image {
	t.Helper()
	recs := []metadata.Record{
		&metadata.RegisterBrokerRecord{BrokerID: leaderID, BrokerEpoch: 3,
			Endpoints: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(l.port)}}},
		&metadata.RegisterBrokerRecord{BrokerID: followerID, BrokerEpoch: 7,
			Endpoints: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 1}}},
		&metadata.TopicRecord{Name: topic, TopicID: id},
	}
	for p := range partitions {
		recs = append(recs, &metadata.PartitionRecord{PartitionID: p, TopicID: id, Replicas: []int32{leaderID, followerID},
			ISR: []int32{leaderID, followerID}, Leader: leaderNode, LeaderEpoch: leaderEpoch})
	}
	im, _, err := metadata.Image{}.ApplyAll(recs)
	if err != nil {
		t.Fatal(err)
	}
	return &im
}

func openFollower(t *testing.T, dir string) *storage.Log {
	t.Helper()
	l, err := storage.Open(dir, storage.DefaultConfig(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func newManager(t *testing.T, follower replica.Log, id [16]byte) *replica.Manager {
	t.Helper()
	m := replica.New(replica.Config{
		NodeID: followerID, ListenerName: "PLAINTEXT",
		FetchWaitMax: 100 * time.Millisecond, Backoff: 20 * time.Millisecond, RequestTimeout: 10 * time.Second,
		Logger: zaptest.NewLogger(t),
		Logs: func(name string, tid [16]byte, p int32) replica.Log {
			if name == topic && tid == id && p == 0 {
				return follower
			}
			return nil
		},
	})
	t.Cleanup(func() {
		if !m.Close(10 * time.Second) {
			t.Error("fetchers did not stop")
		}
	})
	return m
}

// waitFor polls cond until it holds, failing after a bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// segmentBytes is the bytes of the log's first segment file.
func segmentBytes(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameSegment(t *testing.T, leaderDir, followerDir string) {
	t.Helper()
	lb, fb := segmentBytes(t, leaderDir), segmentBytes(t, followerDir)
	if !bytes.Equal(lb, fb) {
		t.Fatalf("follower segment (%d bytes) differs from the leader's (%d bytes)", len(fb), len(lb))
	}
}

// TestFollowerCopiesLeader: the fetcher copies the leader's log byte for
// byte, keeps up with new records (long polls), sets the high watermark
// from the leader's, follows its log start, and stops when this node
// becomes the leader.
func TestFollowerCopiesLeader(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 20)
	ll := l.log(t)
	id := l.topicID(t)
	f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
	m := newManager(t, f, id)

	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the follower to copy 20 records", func() bool { return f.LogEndOffset() == 20 })
	sameSegment(t, ll.Dir(), f.Dir())
	waitFor(t, "the leader's high watermark", func() bool { return f.HighWatermark() == 20 && f.Replicated() })
	if le, fe := ll.LeaderEpochs(), f.LeaderEpochs(); fmt.Sprint(le) != fmt.Sprint(fe) {
		t.Fatalf("epochs: follower %v, leader %v", fe, le)
	}

	// New records reach the follower through the fetch long poll.
	l.produce(t, "b", 15)
	waitFor(t, "the follower to copy 35 records", func() bool { return f.LogEndOffset() == 35 })
	sameSegment(t, ll.Dir(), f.Dir())

	// The leader's DeleteRecords moves the follower's log start.
	if _, err := ll.DeleteRecords(12); err != nil {
		t.Fatal(err)
	}
	l.produce(t, "c", 1) // a response that carries the new log start
	waitFor(t, "the follower's log start to follow", func() bool { return f.LogStartOffset() == 12 && f.LogEndOffset() == 36 })

	// This node becomes the leader: Retire (before the broker applies the
	// image) drops the partition, and the fetcher exits.
	m.Retire(image(t, l, id, followerID, 1), nil, true)
	if got := m.Fetching(); len(got) != 0 {
		t.Fatalf("still fetching %v after becoming leader", got)
	}
	waitFor(t, "the fetcher to exit", func() bool { return m.Fetchers() == 0 })
	l.produce(t, "d", 3)
	// Not fetched: Retire returned with the partition removed under the
	// fetcher's lock, so nothing more is appended.
	if got := f.LogEndOffset(); got != 36 {
		t.Fatalf("follower log end %d after becoming leader, want 36", got)
	}

	// Follower again (leader epoch 0 is the only one a single-node leader
	// serves): the partition starts over by truncating, then resumes
	// where it stopped.
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the follower to catch up again", func() bool { return f.LogEndOffset() == 39 })
}

// batchesOf splits a segment's bytes into its batches.
func batchesOf(t *testing.T, seg []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for p := 0; p < len(seg); {
		n := int(binary.BigEndian.Uint32(seg[p+8:])) + 12
		out = append(out, seg[p:p+n])
		p += n
	}
	return out
}

// rebased is batch with its base offset and partition leader epoch
// replaced: neither is covered by the batch's CRC, so the result is a
// valid batch (the divergent history a deposed leader could hold).
func rebased(batch []byte, base int64, epoch int32) []byte {
	b := bytes.Clone(batch)
	binary.BigEndian.PutUint64(b, uint64(base))
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
	return b
}

func appendReplica(t *testing.T, l replica.Log, b []byte) {
	t.Helper()
	done := make(chan error, 1)
	if err := l.AppendReplica(b, storage.AppendFunc(func(r storage.AppendResult) { done <- r.Err })); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestFollowerTruncatesToDivergence: a follower whose log holds records
// past the leader's end in the leader's epoch cuts them at the end the
// leader gives for that epoch (OffsetForLeaderEpoch), then copies the
// leader's records in their place.
func TestFollowerTruncatesToDivergence(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 10)
	ll := l.log(t)
	id := l.topicID(t)
	f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
	// The follower holds the leader's 10 batches, then 5 more in epoch 0
	// that the leader does not have.
	batches := batchesOf(t, segmentBytes(t, ll.Dir()))
	if len(batches) != 10 {
		t.Fatalf("leader has %d batches, want 10", len(batches))
	}
	for _, b := range batches {
		appendReplica(t, f, b)
	}
	for i := range 5 {
		appendReplica(t, f, rebased(batches[i], int64(10+i), 0))
	}
	if f.LogEndOffset() != 15 {
		t.Fatalf("follower log end %d, want 15", f.LogEndOffset())
	}
	l.produce(t, "b", 3) // the leader's own records at 10-12

	m := newManager(t, f, id)
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	// Epoch 0 ends at 13 on the leader and 15 here: cut at 13, which still
	// leaves 10-12 divergent in the same epoch (a same-epoch divergence
	// cannot happen in a real cluster; the test only checks the cut). So
	// the follower must have cut to 13 and fetched on from there.
	waitFor(t, "the truncation", func() bool { return f.LogEndOffset() == 13 && m.StateOf(topic, 0) == "fetching" })
	l.produce(t, "c", 2)
	waitFor(t, "the follower to copy on", func() bool { return f.LogEndOffset() == 15 })
}

// TestFollowerTruncatesAfterUncleanLeader: records of a later epoch the
// leader never saw (this follower once led uncleanly) are unknown to the
// leader's cache (undefined answer, nothing proven); the fetch past the
// leader's end is OFFSET_OUT_OF_RANGE and, as Kafka does, the follower
// truncates to the leader's log end and copies its records.
func TestFollowerTruncatesAfterUncleanLeader(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 6)
	ll := l.log(t)
	id := l.topicID(t)
	f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
	batches := batchesOf(t, segmentBytes(t, ll.Dir()))
	for _, b := range batches[:4] {
		appendReplica(t, f, b)
	}
	for i := range 6 {
		appendReplica(t, f, rebased(batches[i], int64(4+i), 5))
	}
	if f.LogEndOffset() != 10 {
		t.Fatalf("follower log end %d, want 10", f.LogEndOffset())
	}
	m := newManager(t, f, id)
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the truncation to the leader's end", func() bool { return f.LogEndOffset() == 6 })
	// Offsets 4 and 5 are still epoch 5's: nothing the leader answered
	// proves them divergent (the same as Kafka). New records copy on.
	l.produce(t, "b", 4)
	waitFor(t, "the follower to copy on", func() bool { return f.LogEndOffset() == 10 })
}

// TestFollowerBelowLeaderLogStart: a follower whose log ends below the
// leader's log start (the leader's DeleteRecords or retention removed
// every record the follower has, and those it lacks) starts its log over,
// empty, at the leader's log start (Kafka's truncateFullyAndStartAt), then
// copies the leader's records from there.
func TestFollowerBelowLeaderLogStart(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 8)
	ll := l.log(t)
	id := l.topicID(t)
	f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
	// The follower copied offsets 0-2, then the leader deleted 0-4.
	batches := batchesOf(t, segmentBytes(t, ll.Dir()))
	for _, b := range batches[:3] {
		appendReplica(t, f, b)
	}
	if _, err := ll.DeleteRecords(5); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, f, id)
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the follower to start over at 5 and copy to 8", func() bool {
		return f.LogStartOffset() == 5 && f.LogEndOffset() == 8 && m.StateOf(topic, 0) == "fetching"
	})
	l.produce(t, "b", 2)
	waitFor(t, "the follower to copy on", func() bool { return f.LogEndOffset() == 10 })
}

// TestFollowerStartsAtStraddlingBatch: the leader's log start is inside a
// batch (DeleteRecords at 5 of a batch holding 0-9). An empty follower
// starts over at 5 (OFFSET_OUT_OF_RANGE), gets the whole batch 0-9 for
// fetch offset 5, starts its empty log at the batch's base offset instead
// (Kafka's UnexpectedAppendOffsetException handling), copies the leader's
// bytes and moves its log start up to 5 again.
func TestFollowerStartsAtStraddlingBatch(t *testing.T) {
	l := startLeader(t)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "one-batch-%d", i)})
	}
	if err := l.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ll := l.log(t)
	if n := len(batchesOf(t, segmentBytes(t, ll.Dir()))); n != 1 {
		t.Fatalf("the leader holds %d batches, want the 10 records in one", n)
	}
	if _, err := ll.DeleteRecords(5); err != nil {
		t.Fatal(err)
	}
	l.produce(t, "b", 2)
	id := l.topicID(t)
	f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
	var startedOver []int64
	var mu sync.Mutex
	m := replica.New(replica.Config{
		NodeID: followerID, ListenerName: "PLAINTEXT",
		FetchWaitMax: 100 * time.Millisecond, Backoff: 20 * time.Millisecond, RequestTimeout: 10 * time.Second,
		Logger: zaptest.NewLogger(t),
		Logs: func(name string, tid [16]byte, p int32) replica.Log {
			if name == topic && tid == id && p == 0 {
				return f
			}
			return nil
		},
		StartedOver: func(_ string, _ int32, start int64) {
			mu.Lock()
			startedOver = append(startedOver, start)
			mu.Unlock()
		},
	})
	t.Cleanup(func() {
		if !m.Close(10 * time.Second) {
			t.Error("fetchers did not stop")
		}
	})
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the follower to copy to 12 with its log start back at 5", func() bool {
		return f.LogEndOffset() == 12 && f.LogStartOffset() == 5 && m.StateOf(topic, 0) == "fetching"
	})
	sameSegment(t, ll.Dir(), f.Dir())
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(startedOver) != "[5 0]" {
		t.Errorf("started over at %v, want [5 0] (the leader's log start, then the straddling batch's base)", startedOver)
	}
}

// TestNoReplicasNoFetchers: with no partition to follow (every partition
// led here, or none with a local replica) the manager starts nothing.
func TestNoReplicasNoFetchers(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 1)
	id := l.topicID(t)
	m := newManager(t, openFollower(t, filepath.Join(t.TempDir(), "t-0")), id)
	m.Update(image(t, l, id, followerID, 0), nil, true)
	m.Update(image(t, l, [16]byte{9}, leaderID, 0), nil, true) // a topic with no local log
	m.Retire(image(t, l, id, leaderID, 0), nil, true)          // Retire starts nothing
	if n := m.Fetchers(); n != 0 {
		t.Fatalf("%d fetchers, want none", n)
	}
	m.Update(image(t, l, id, leaderID, 0), []metadata.Delta{{ChangedConfigs: []metadata.ConfigResource{{}}}}, false)
	if n := m.Fetchers(); n != 0 {
		t.Fatalf("an image changing no partition started %d fetchers", n)
	}
}

// TestManyPartitionsFetchers: with num.replica.fetchers > 1 a leader's
// partitions spread over fetchers by Kafka's fetcher id, each fetcher
// fetching its partitions in one request, and every copy is exact.
func TestManyPartitionsFetchers(t *testing.T) {
	const partitions, fetchers = 6, 3
	l := startLeaderWith(t, partitions)
	id := l.topicID(t)
	followers := make([]*storage.Log, partitions)
	indexes := map[int]bool{}
	for p := range int32(partitions) {
		l.produceTo(t, p, fmt.Sprint("p", p), int(p)+2)
		followers[p] = openFollower(t, filepath.Join(t.TempDir(), fmt.Sprintf("t-%d", p)))
		indexes[replica.FetcherIndex(topic, p, fetchers)] = true
	}
	m := replica.New(replica.Config{
		NodeID: followerID, ListenerName: "PLAINTEXT", Fetchers: fetchers,
		FetchWaitMax: 100 * time.Millisecond, Backoff: 20 * time.Millisecond, RequestTimeout: 10 * time.Second,
		Logger: zaptest.NewLogger(t),
		Logs: func(name string, tid [16]byte, p int32) replica.Log {
			if name == topic && tid == id && p >= 0 && p < partitions {
				return followers[p]
			}
			return nil
		},
	})
	defer func() {
		if !m.Close(10 * time.Second) {
			t.Error("fetchers did not stop")
		}
	}()
	m.Update(imageWith(t, l, id, partitions, leaderID, 0), nil, true)
	if got := m.Fetchers(); got != len(indexes) {
		t.Fatalf("%d fetchers, want %d (the distinct fetcher ids)", got, len(indexes))
	}
	for p := range int32(partitions) {
		waitFor(t, fmt.Sprint("partition ", p), func() bool { return followers[p].LogEndOffset() == int64(p)+2 })
		sameSegment(t, l.logOf(t, p).Dir(), followers[p].Dir())
	}
}

// TestLeaderEndpointChange: a leader registered at an address nobody
// listens on is retried with backoff; when it registers again at its real
// address the manager replaces the fetcher and the copy catches up.
func TestLeaderEndpointChange(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 5)
	id := l.topicID(t)
	f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
	m := newManager(t, f, id)

	realPort := l.port
	l.port = 1 // nothing listens there
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	if got := m.Fetchers(); got != 1 {
		t.Fatalf("%d fetchers, want 1", got)
	}
	l.port = realPort
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the copy through the new endpoint", func() bool { return f.LogEndOffset() == 5 })
	waitFor(t, "the old fetcher to exit", func() bool { return m.Fetchers() == 1 })
}

// TestFollowerTruncatesOnDivergingEpoch: a Fetch answer carrying
// diverging_epoch (KIP-595) is the leader's end of the largest epoch it has
// at or below the follower's last one: the follower cuts where that proves
// divergence. Follower epochs 1 at 0-4, 3 at 5-9. The leader says epoch 3
// ends at 8: both have epoch 3 up to 8, cut there and fetch on. The leader
// says epoch 2 ends at 7: the follower has no epoch 2, its epoch 1 ends at
// 5, so cut at 5 and ask OffsetForLeaderEpoch again (never past what is
// proven: the records of epoch 1 stay).
func TestFollowerTruncatesOnDivergingEpoch(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 10)
	batches := batchesOf(t, segmentBytes(t, l.log(t).Dir()))
	if len(batches) != 10 {
		t.Fatalf("leader has %d batches, want 10", len(batches))
	}
	build := func() replica.Log {
		f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
		for i, b := range batches {
			epoch := int32(1)
			if i >= 5 {
				epoch = 3
			}
			appendReplica(t, f, rebased(b, int64(i), epoch))
		}
		return f
	}
	f := build()
	if st := replica.Diverged(f, 3, 8); st != "fetching" || f.LogEndOffset() != 8 {
		t.Fatalf("diverging (3, 8): state %s log end %d, want fetching at 8", st, f.LogEndOffset())
	}
	f = build()
	if st := replica.Diverged(f, 2, 7); st != "truncating" || f.LogEndOffset() != 5 {
		t.Fatalf("diverging (2, 7): state %s log end %d, want truncating at 5", st, f.LogEndOffset())
	}
	// An end at or past the follower's log end proves nothing to cut.
	f = build()
	if st := replica.Diverged(f, 3, 12); st != "fetching" || f.LogEndOffset() != 10 {
		t.Fatalf("diverging (3, 12): state %s log end %d, want fetching at 10", st, f.LogEndOffset())
	}
}

// TestFollowerLag: Manager.Lags reports nothing before a partition's
// first fetch answer, then the leader's high watermark minus the follower's
// log end: 0 once it has copied everything.
func TestFollowerLag(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 10)
	id := l.topicID(t)
	f := openFollower(t, filepath.Join(t.TempDir(), "t-0"))
	m := newManager(t, f, id)
	lags := func() map[string]int64 {
		out := map[string]int64{}
		m.Lags(func(topic string, partition int32, lag int64) { out[fmt.Sprintf("%s-%d", topic, partition)] = lag })
		return out
	}
	if got := lags(); len(got) != 0 {
		t.Fatalf("lags before any fetch: %v", got)
	}
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the follower to copy the leader with lag 0", func() bool {
		lag, ok := lags()["t-0"]
		return f.LogEndOffset() == 10 && ok && lag == 0
	})
}

// failingIO is a follower log's IO whose writes fail with err while it is
// set, counting the failed attempts.
type failingIO struct {
	storage.IO
	err      atomic.Pointer[error]
	failures atomic.Int64
}

func (f *failingIO) Writev(file *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	if e := f.err.Load(); e != nil {
		f.failures.Add(1)
		return 0, false, &os.PathError{Op: "pwritev", Path: file.Name(), Err: *e}
	}
	return f.IO.Writev(file, iov, off, datasync)
}

// TestFollowerRetriesAfterFullDisk: an append the follower log undid (the
// disk full: ENOSPC on the write) is fetched again after the backoff, and
// the follower catches up once the disk has room, instead of stopping the
// partition until its leadership changes (the fault schedule's full-disk
// left the follower out of the ISR for good).
func TestFollowerRetriesAfterFullDisk(t *testing.T) {
	l := startLeader(t)
	l.produce(t, "a", 5)
	ll := l.log(t)
	id := l.topicID(t)
	fio := &failingIO{IO: storage.NewPortableIO()}
	dir := filepath.Join(t.TempDir(), "t-0")
	f, err := storage.Open(dir, storage.DefaultConfig(), storage.Options{IO: fio})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m := newManager(t, f, id)
	m.Update(image(t, l, id, leaderID, 0), nil, true)
	waitFor(t, "the follower to copy 5 records", func() bool { return f.LogEndOffset() == 5 })

	enospc := error(syscall.ENOSPC)
	fio.err.Store(&enospc)
	l.produce(t, "b", 5)
	waitFor(t, "the follower to retry the failed append", func() bool { return fio.failures.Load() >= 3 })
	if got := f.LogEndOffset(); got != 5 {
		t.Fatalf("follower log end %d with every write failing, want 5", got)
	}
	fio.err.Store(nil)
	waitFor(t, "the follower to catch up after the disk has room", func() bool { return f.LogEndOffset() == 10 })
	sameSegment(t, ll.Dir(), f.Dir())
}
