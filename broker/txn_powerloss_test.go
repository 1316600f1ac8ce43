package broker

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
)

// TestTxnPowerLoss: transactions committed and aborted with
// flush.messages=1, producer state snapshots every few KiB (each syncing
// the transaction indexes first), one ABORT whose transaction index write
// fails (the marker is on disk, its answer is KAFKA_STORAGE_ERROR), then a
// power loss (storage.FaultIO: everything not synced is lost or torn).
// The reopened broker's read_committed fetch returns exactly the committed
// records: no acknowledged marker is lost, and the lost or failed
// txnindex entries are re-derived from the log.
func TestTxnPowerLoss(t *testing.T) {
	defer func(v int64) { snapshotEveryBytes = v }(snapshotEveryBytes)
	snapshotEveryBytes = 1024
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { txnPowerLossRound(t, seed) })
	}
}

func txnPowerLossRound(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	fio := storage.NewFaultIO(nil)
	fio.SetScratchDir(t.TempDir())
	mod := func(fs *storage.FaultIO) func(*Options, *RegistryOptions) {
		return func(o *Options, ro *RegistryOptions) {
			mustSet(t, ro.Config, "log.flush.interval.messages", "1")
			if fs != nil {
				ro.FS, ro.NewIO = fs, fs.NewIO
			}
		}
	}
	tb := &testBroker{t: t, dir: dir, backend: netpoll.BackendPortable, mod: mod(fio), onNew: noTxnVerify}
	tb.start()
	prodCreate(t, tb, "txn", 1, nil)
	rc := dialProd(t, tb.Addr)
	pid := rc.initProducerID(4, nil).ProducerID
	steps := 6 + rng.Intn(12)
	failAt := rng.Intn(steps)
	txnIndex := filepath.Join(tb.Reg.Partition("txn", 0).Log.Dir(), "00000000000000000000.txnindex")
	var committed, all []string
	seq := int32(0)
	for i := 0; i < steps; i++ {
		vals := prodValues(fmt.Sprintf("t%d", i), 1+rng.Intn(3))
		wantCode(t, "produce", rc.produceRaw(9, "txn", 0, txnBatch(pid, 0, seq, vals...)).ErrorCode, nil)
		seq += int32(len(vals))
		for _, v := range vals {
			all = append(all, string(v))
		}
		commit := rng.Intn(2) == 0
		fail := i == failAt && !commit
		if fail {
			fio.Inject(storage.Fault{Op: storage.OpWrite, Path: txnIndex, Err: syscall.EIO})
		}
		code := rc.writeMarkers(1, marker{pid: pid, commit: commit, partition: 0})[0]
		if fail {
			wantCode(t, "abort with a failing txnindex write", code, kerr.KafkaStorageError)
			fio.Clear()
		} else {
			wantCode(t, "marker", code, nil)
		}
		if commit {
			for _, v := range vals {
				committed = append(committed, string(v))
			}
		}
	}
	// The machine stops.
	fio.Inject(storage.Fault{Op: storage.OpMutating, Err: syscall.EIO})
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	tb.Server.Shutdown(sctx)
	cancel()
	if err := fio.PowerLoss(rand.New(rand.NewSource(rng.Int63()))); err != nil {
		t.Fatal(err)
	}
	next := t.TempDir()
	if err := copyTree(dir, next); err != nil {
		t.Fatal(err)
	}
	abandon(tb)

	tb2 := &testBroker{t: t, dir: next, backend: netpoll.BackendPortable, mod: mod(nil), onNew: noTxnVerify}
	tb2.start()
	t.Cleanup(tb2.stop)
	rc = dialProd(t, tb2.Addr)
	if got := rc.fetchAllTxn(0, 1).committed(); !slices.Equal(got, committed) {
		t.Fatalf("read_committed after the power loss:\n got %v\nwant %v", got, committed)
	}
	if got := rc.fetchAllTxn(0, 0); !slices.Equal(got.values, all) {
		t.Fatalf("read_uncommitted after the power loss:\n got %v\nwant %v", got.values, all)
	}
}
