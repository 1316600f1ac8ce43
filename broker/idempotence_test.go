package broker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/storage"
)

func (rc *prodConn) initProducerID(version int16, txn *string) *kmsg.InitProducerIDResponse {
	rc.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID = version, txn
	resp := kmsg.NewPtrInitProducerIDResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		rc.t.Fatal(err)
	}
	return resp
}

// Duplicates, gaps, stale epochs and unknown producers, before and after a
// restart (with and without a clean-shutdown snapshot).
func TestIdempotentProducerState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		prodCreate(t, tb, "idem", 1, nil)
		rc := dialProd(t, tb.Addr)
		ip := rc.initProducerID(4, nil)
		if ip.ErrorCode != 0 || ip.ProducerEpoch != 0 {
			t.Fatalf("InitProducerId: %+v", ip)
		}
		pid := ip.ProducerID
		now := time.Now().UnixMilli()
		b0 := prodBatch(pid, 0, 0, now, prodValues("a", 3)...)
		b3 := prodBatch(pid, 0, 3, now, prodValues("b", 2)...)
		type step struct {
			name     string
			batch    []byte
			wantCode *kerr.Error
			wantBase int64
			wantHW   int64
		}
		run := func(t *testing.T, rc *prodConn, steps []step) {
			for _, s := range steps {
				got := rc.produceRaw(9, "idem", 0, s.batch)
				code := kerr.ErrorForCode(got.ErrorCode)
				if code != error(nil) && code != s.wantCode || code == nil && s.wantCode != nil {
					t.Fatalf("%s: error %v, want %v", s.name, code, s.wantCode)
				}
				if s.wantCode == nil && got.BaseOffset != s.wantBase {
					t.Fatalf("%s: base offset %d, want %d", s.name, got.BaseOffset, s.wantBase)
				}
				if hw := tb.Reg.Partition("idem", 0).Log.HighWatermark(); hw != s.wantHW {
					t.Fatalf("%s: high watermark %d, want %d", s.name, hw, s.wantHW)
				}
			}
		}
		run(t, rc, []step{
			{"first", b0, nil, 0, 3},
			{"duplicate", b0, nil, 0, 3},
			{"second", b3, nil, 3, 5},
			{"duplicate-older", b0, nil, 0, 5},
			{"gap", prodBatch(pid, 0, 9, now, prodValues("c", 1)...), kerr.OutOfOrderSequenceNumber, 0, 5},
			{"new-epoch-nonzero-seq", prodBatch(pid, 1, 5, now, prodValues("d", 1)...), kerr.OutOfOrderSequenceNumber, 0, 5},
			{"unknown-producer", prodBatch(pid+1, 0, 4, now, prodValues("e", 1)...), kerr.UnknownProducerID, 0, 5},
			{"unknown-producer-seq0", prodBatch(pid+1, 0, 0, now, prodValues("e", 1)...), nil, 5, 6},
			{"new-epoch", prodBatch(pid, 1, 0, now, prodValues("f", 2)...), nil, 6, 8},
			{"stale-epoch", prodBatch(pid, 0, 5, now, prodValues("g", 1)...), kerr.InvalidProducerEpoch, 0, 8},
		})
		last := prodBatch(pid, 1, 2, now, prodValues("h", 2)...)
		run(t, rc, []step{{"before-restart", last, nil, 8, 10}})

		// Unclean path: no snapshot, the state is rebuilt from the log.
		tb.restart()
		rc = dialProd(t, tb.Addr)
		run(t, rc, []step{
			{"dup-after-restart", last, nil, 8, 10},
			{"older-dup-after-restart", prodBatch(pid, 1, 0, now, prodValues("f", 2)...), nil, 6, 10},
			{"gap-after-restart", prodBatch(pid, 1, 7, now, prodValues("i", 1)...), kerr.OutOfOrderSequenceNumber, 0, 10},
			{"next-after-restart", prodBatch(pid, 1, 4, now, prodValues("i", 1)...), nil, 10, 11},
		})

		// Clean path: snapshot at shutdown, restart reads it.
		if err := tb.Broker.CloseProducerState(); err != nil {
			t.Fatal(err)
		}
		dir := tb.Reg.Partition("idem", 0).Log.Dir()
		if _, err := os.Stat(filepath.Join(dir, "00000000000000000011.snapshot")); err != nil {
			t.Fatalf("snapshot not written: %v", err)
		}
		tb.restart()
		rc = dialProd(t, tb.Addr)
		run(t, rc, []step{
			{"dup-after-snapshot", prodBatch(pid, 1, 4, now, prodValues("i", 1)...), nil, 10, 11},
			{"next-after-snapshot", prodBatch(pid, 1, 5, now, prodValues("j", 1)...), nil, 11, 12},
		})
	})
}

// Periodic snapshots are written by the workers as bytes accumulate.
func TestProducerStateSnapshotEvery(t *testing.T) {
	old := snapshotEveryBytes
	snapshotEveryBytes = 1
	// Restored after the broker stops (cleanups run last in, first out):
	// its log writers read it until then.
	t.Cleanup(func() { snapshotEveryBytes = old })
	tb := startTestBroker(t, testBackends[0], nil)
	prodCreate(t, tb, "snap", 1, nil)
	rc := dialProd(t, tb.Addr)
	pid := rc.initProducerID(2, nil).ProducerID
	for seq := int32(0); seq < 5; seq++ {
		if got := rc.produceRaw(9, "snap", 0, prodBatch(pid, 0, seq, time.Now().UnixMilli(), prodValues("s", 1)...)); got.ErrorCode != 0 {
			t.Fatalf("seq %d: %v", seq, kerr.ErrorForCode(got.ErrorCode))
		}
	}
	dir := tb.Reg.Partition("snap", 0).Log.Dir()
	deadline := time.Now().Add(5 * time.Second)
	for {
		offs := snapshotFiles(storage.DefaultFS, dir)
		if len(offs) > 0 && offs[0] >= 4 && len(offs) <= snapshotsKept {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshots %v", offs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	data, err := os.ReadFile(snapshotPath(dir, snapshotFiles(storage.DefaultFS, dir)[0]))
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]*producerEntry{}
	if _, err := decodeSnapshot(data, m, map[*openTxn]struct{}{}); err != nil || m[pid] == nil || m[pid].n == 0 {
		t.Fatalf("decoded snapshot %v %v", m, err)
	}
	data[len(data)-5] ^= 1
	if _, err := decodeSnapshot(data, map[int64]*producerEntry{}, map[*openTxn]struct{}{}); err == nil {
		t.Fatal("corrupt snapshot decoded")
	}
	tb.Broker.CloseProducerState() // before the temp dir goes
}

// Producer ids never repeat across restarts (transactional ids: txn_test.go).
func TestInitProducerID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		rc := dialProd(t, tb.Addr)
		seen := map[int64]bool{}
		for v := int16(0); v <= 5; v++ {
			r := rc.initProducerID(v, nil)
			if r.ErrorCode != 0 || seen[r.ProducerID] || r.ProducerEpoch != 0 {
				t.Fatalf("v%d: %+v", v, r)
			}
			seen[r.ProducerID] = true
		}
		empty := ""
		if r := rc.initProducerID(4, &empty); r.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("empty transactional id: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		bad := kmsg.NewPtrInitProducerIDRequest()
		bad.Version, bad.ProducerID, bad.ProducerEpoch = 4, 5, -1
		resp := kmsg.NewPtrInitProducerIDResponse()
		if err := rc.roundTrip(bad, resp); err != nil || resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("inconsistent id/epoch: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
		}
		tb.restart()
		rc = dialProd(t, tb.Addr)
		r := rc.initProducerID(4, nil)
		if r.ErrorCode != 0 || seen[r.ProducerID] || r.ProducerID < producerIDBlock {
			t.Fatalf("after restart: %+v (had %v)", r, seen)
		}
	})
}

// TestReplicaTruncatedReloadsProducerState: after a follower's log is
// truncated (the replica fetcher calls ReplicaTruncated), the producer
// state and the snapshots past the new end are dropped, so the producer's
// sequence continues from what the log holds: a retry of a cut batch is
// appended again, not answered as a duplicate of records that are gone.
func TestReplicaTruncatedReloadsProducerState(t *testing.T) {
	old := snapshotEveryBytes
	snapshotEveryBytes = 1
	// Restored after the broker stops (cleanups run last in, first out):
	// its log writers read it until then.
	t.Cleanup(func() { snapshotEveryBytes = old })
	tb := startTestBroker(t, testBackends[0], nil)
	prodCreate(t, tb, "cut", 1, nil)
	rc := dialProd(t, tb.Addr)
	pid := rc.initProducerID(2, nil).ProducerID
	now := time.Now().UnixMilli()
	for seq := int32(0); seq < 5; seq++ {
		if got := rc.produceRaw(9, "cut", 0, prodBatch(pid, 0, seq, now, prodValues("s", 1)...)); got.ErrorCode != 0 || got.BaseOffset != int64(seq) {
			t.Fatalf("seq %d: offset %d, %v", seq, got.BaseOffset, kerr.ErrorForCode(got.ErrorCode))
		}
	}
	l := tb.Reg.Partition("cut", 0).Log
	dir := l.Dir()
	deadline := time.Now().Add(10 * time.Second)
	for offs := snapshotFiles(storage.DefaultFS, dir); len(offs) == 0 || offs[0] < 4; offs = snapshotFiles(storage.DefaultFS, dir) {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot past offset 2 to drop: %v", offs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	tb.Broker.ReplicaTruncated("cut", 0, l.LogEndOffset())
	if offs := snapshotFiles(storage.DefaultFS, dir); len(offs) > 0 && offs[0] > 2 {
		t.Fatalf("snapshots %v left past the truncated end 2", offs)
	}
	// Sequence 2 was cut: it is appended again at offset 2.
	if got := rc.produceRaw(9, "cut", 0, prodBatch(pid, 0, 2, now, prodValues("s", 1)...)); got.ErrorCode != 0 || got.BaseOffset != 2 {
		t.Fatalf("retry of the cut sequence 2: offset %d, %v; want offset 2", got.BaseOffset, kerr.ErrorForCode(got.ErrorCode))
	}
	if end := l.LogEndOffset(); end != 3 {
		t.Fatalf("log end %d after the retry, want 3", end)
	}
}
