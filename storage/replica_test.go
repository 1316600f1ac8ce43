package storage

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

// appendReplicaSync is AppendReplica, waiting for the callback (bounded).
func appendReplicaSync(t *testing.T, l *Log, b []byte) AppendResult {
	t.Helper()
	ch := make(chan AppendResult, 1)
	if err := l.AppendReplica(b, AppendFunc(func(r AppendResult) { ch <- r })); err != nil {
		return AppendResult{BaseOffset: -1, LastOffset: -1, Err: err}
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("append callback timeout")
	}
	return AppendResult{}
}

// rawFrom concatenates the stored bytes of a leader's batches from offset.
func rawFrom(t *testing.T, l *Log, from int64) []byte {
	t.Helper()
	var out []byte
	for _, b := range readAll(t, l, from) {
		out = append(out, b.raw...)
	}
	return out
}

func openTestLog(t *testing.T, dir string) *Log {
	t.Helper()
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func sameLogs(t *testing.T, leader, follower *Log, when string) {
	t.Helper()
	lb, fb := rawFrom(t, leader, 0), rawFrom(t, follower, 0)
	if !bytes.Equal(lb, fb) {
		t.Fatalf("%s: follower's batches (%d bytes) differ from the leader's (%d bytes)", when, len(fb), len(lb))
	}
	if le, fe := leader.LeaderEpochs(), follower.LeaderEpochs(); !slices.Equal(le, fe) {
		t.Fatalf("%s: follower's epochs %v, leader's %v", when, fe, le)
	}
}

// TestAppendReplicaCopiesLeader: a follower appending what the leader
// stored gets the same bytes at the same offsets and the same epoch cache,
// across rolls and a reopen.
func TestAppendReplicaCopiesLeader(t *testing.T) {
	leader := openTestLog(t, t.TempDir())
	defer leader.Close()
	for i := 0; i < 10; i++ {
		switch i {
		case 0:
			leader.SetLeaderEpoch(1)
		case 4:
			leader.SetLeaderEpoch(3)
		}
		if r := syncAppend(t, leader, makeBatch(1+i%3, 150, int64(i), byte(i))); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	fdir := t.TempDir()
	follower := openTestLog(t, fdir)
	// Fetch-sized pieces: a few batches at a time, from the follower's end.
	for follower.HighWatermark() < leader.HighWatermark() {
		reg, err := leader.Read(follower.HighWatermark(), 600)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, reg.Len)
		if _, err := reg.File.ReadAt(buf, reg.Pos); err != nil {
			t.Fatal(err)
		}
		reg.Release()
		r := appendReplicaSync(t, follower, buf)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	sameLogs(t, leader, follower, "after replicating")
	follower.crashClose()
	follower = openTestLog(t, fdir)
	defer follower.Close()
	sameLogs(t, leader, follower, "after the follower's restart")
}

// TestAppendReplicaRefuses: input that is not whole valid batches, that is
// not contiguous, or that does not start at the log end is refused, and
// nothing is written.
func TestAppendReplicaRefuses(t *testing.T) {
	leader := openTestLog(t, t.TempDir())
	defer leader.Close()
	leader.SetLeaderEpoch(2)
	for i := 0; i < 4; i++ {
		syncAppend(t, leader, makeBatch(2, 100, int64(i), 1))
	}
	bs := readAll(t, leader, 0) // offsets 0-1, 2-3, 4-5, 6-7
	follower := openTestLog(t, t.TempDir())
	defer follower.Close()

	if r := appendReplicaSync(t, follower, bs[1].raw); !errors.Is(r.Err, ErrReplicaOffset) {
		t.Fatalf("batch at 2 on an empty log: %v, want ErrReplicaOffset", r.Err)
	}
	gap := append(slices.Clone(bs[0].raw), bs[2].raw...)
	if r := appendReplicaSync(t, follower, gap); !errors.Is(r.Err, ErrReplicaOffset) {
		t.Fatalf("batches 0-1 then 4-5: %v, want ErrReplicaOffset", r.Err)
	}
	bad := slices.Clone(bs[0].raw)
	bad[len(bad)-1] ^= 0xff
	if r := appendReplicaSync(t, follower, bad); !errors.Is(r.Err, ErrCorruptBatch) {
		t.Fatalf("corrupt batch: %v, want ErrCorruptBatch", r.Err)
	}
	if r := appendReplicaSync(t, follower, bs[0].raw[:40]); !errors.Is(r.Err, ErrInvalidBatch) {
		t.Fatalf("torn batch: %v, want ErrInvalidBatch", r.Err)
	}
	if hw := follower.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d after refused appends", hw)
	}
	if r := appendReplicaSync(t, follower, append(slices.Clone(bs[0].raw), bs[1].raw...)); r.Err != nil || r.BaseOffset != 0 || r.LastOffset != 3 {
		t.Fatalf("batches 0-3: %+v", r)
	}
	if r := appendReplicaSync(t, follower, bs[3].raw); !errors.Is(r.Err, ErrReplicaOffset) {
		t.Fatalf("batch at 6 with log end 4: %v, want ErrReplicaOffset", r.Err)
	}
	if got := follower.LeaderEpochs(); !slices.Equal(got, []EpochEntry{{2, 0}}) {
		t.Fatalf("follower's epochs %v", got)
	}
}

// TestFollowerDivergence: the primitives of Kafka's truncation by leader
// epoch, end to end on two logs. A follower wrote records in epoch 1 that
// the new leader (epoch 2) never had; it asks the leader where epoch 1
// ends, truncates there and replicates the leader's epoch-2 records: the
// logs are then the same.
func TestFollowerDivergence(t *testing.T) {
	leader := openTestLog(t, t.TempDir())
	defer leader.Close()
	follower := openTestLog(t, t.TempDir())
	defer follower.Close()
	leader.SetLeaderEpoch(1)
	for i := 0; i < 4; i++ { // offsets 0-3 in both
		r := syncAppend(t, leader, makeBatch(1, 100, int64(i), 1))
		if fr := appendReplicaSync(t, follower, rawFrom(t, leader, r.BaseOffset)); fr.Err != nil {
			t.Fatal(fr.Err)
		}
	}
	// The old leader (now the follower) wrote 4-6 in epoch 1 alone.
	follower.SetLeaderEpoch(1)
	for i := 0; i < 3; i++ {
		syncAppend(t, follower, makeBatch(1, 100, int64(10+i), 2))
	}
	// The new leader, in epoch 2, wrote 4-8.
	leader.SetLeaderEpoch(2)
	for i := 0; i < 5; i++ {
		syncAppend(t, leader, makeBatch(1, 100, int64(20+i), 3))
	}
	latest, _ := follower.LatestEpoch()
	epoch, end := leader.EndOffsetForEpochAsLeader(latest, 2)
	if epoch != 1 || end != 4 {
		t.Fatalf("leader's end of epoch %d: (%d, %d), want (1, 4)", latest, epoch, end)
	}
	if err := follower.TruncateTo(end); err != nil {
		t.Fatal(err)
	}
	if r := appendReplicaSync(t, follower, rawFrom(t, leader, follower.HighWatermark())); r.Err != nil {
		t.Fatal(r.Err)
	}
	sameLogs(t, leader, follower, "after truncating and replicating")
}
