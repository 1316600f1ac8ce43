package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/storage"
)

// produceEach produces values to topic/0 one ProduceSync at a time (one
// batch each) through an idempotent client, and returns the offsets.
func produceEach(t *testing.T, tb *testBroker, topic string, values ...string) []int64 {
	t.Helper()
	cl := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var offsets []int64
	for _, v := range values {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %q: %v", v, err)
		}
		offsets = append(offsets, r.Offset)
	}
	return offsets
}

func initProducerID(t *testing.T, tb *testBroker) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	resp, err := req.RequestWith(ctx, tb.client())
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v, error %d", err, resp.ErrorCode)
	}
	return resp.ProducerID
}

// TestProducerIDsRecoveredWithoutBlockFile: with the producer id block file
// lost between restarts, new producer ids do not repeat ids the logs hold:
// a new idempotent producer's first batches are all stored. Ids used to
// restart at 0, and the new producer's batches were acknowledged and
// dropped as duplicates of the old producer 0's. With and without producer
// state snapshots (a clean or an unclean stop), and with the partition's
// state already loaded (an old producer wrote first) or read from disk.
func TestProducerIDsRecoveredWithoutBlockFile(t *testing.T) {
	for _, v := range []struct{ snapshots, oldWritesFirst bool }{{true, false}, {false, false}, {true, true}} {
		snapshots := v.snapshots
		t.Run(fmt.Sprintf("snapshots=%v,loaded=%v", snapshots, v.oldWritesFirst), func(t *testing.T) {
			tb := startTestBroker(t, testBackends[1], nil)
			createTopic(t, tb, "ids", 1)
			createTopic(t, tb, "other", 1)
			produceEach(t, tb, "ids", "old-0", "old-1", "old-2") // producer id 0
			tb.restart()
			produceEach(t, tb, "other", "x") // producer id 1000: the next block
			tb.stop()
			if err := os.Remove(filepath.Join(tb.dir, producerIDFile)); err != nil {
				t.Fatal(err)
			}
			if !snapshots {
				snaps, _ := filepath.Glob(filepath.Join(tb.dir, "*", "*.snapshot"))
				if len(snaps) == 0 {
					t.Fatal("no producer state snapshots to remove")
				}
				for _, s := range snaps {
					if err := os.Remove(s); err != nil {
						t.Fatal(err)
					}
				}
			}
			tb.start()
			first := int64(3)
			if v.oldWritesFirst {
				// Producer 0 goes on (sequence 3): the partition's state is
				// loaded before any InitProducerId.
				rc := dialProd(t, tb.Addr)
				if r := rc.produceRaw(9, "ids", 0, prodBatch(0, 0, 3, time.Now().UnixMilli(), []byte("old-3"))); r.ErrorCode != 0 || r.BaseOffset != 3 {
					t.Fatalf("old producer after restart: error %d, base offset %d", r.ErrorCode, r.BaseOffset)
				}
				first = 4
			}
			offsets := produceEach(t, tb, "ids", "new-0", "new-1", "new-2")
			if want := []int64{first, first + 1, first + 2}; fmt.Sprint(offsets) != fmt.Sprint(want) {
				t.Errorf("new producer's records at offsets %v, want %v (ids repeated: answered as duplicates)", offsets, want)
			}
			if hw := tb.Reg.Partition("ids", 0).Log.HighWatermark(); hw != first+3 {
				t.Errorf("high watermark %d, want %d", hw, first+3)
			}
			if id := initProducerID(t, tb); id < 2000 {
				t.Errorf("InitProducerId after recovery: %d; want past the block of id 1000 (>= 2000)", id)
			}
			data, err := os.ReadFile(filepath.Join(tb.dir, producerIDFile))
			if err != nil || strings.TrimSpace(string(data)) != "3000" {
				t.Errorf("block file after recovery: %q %v, want 3000", data, err)
			}
		})
	}
}

// TestGarbageProducerIDFileRefusesStart: a block file that holds no id
// refuses the start with an error naming it, and stays as it was. It used
// to give a broker that looked healthy while every InitProducerId failed.
func TestGarbageProducerIDFileRefusesStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, producerIDFile)
	garbage := []byte("\x00\x17 not a number\n")
	if err := os.WriteFile(path, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	logger := zaptest.NewLogger(t)
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	b, err := New(Options{DataDir: dir, Logger: logger, Registry: reg, AdvertisedHost: "127.0.0.1"})
	if err == nil {
		b.Close()
		t.Fatal("New accepted a garbage producer id block file")
	}
	if !strings.Contains(err.Error(), producerIDFile) || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("error %q does not name the file and what to do", err)
	}
	if data, _ := os.ReadFile(path); string(data) != string(garbage) {
		t.Errorf("block file changed to %q", data)
	}
}

// BenchmarkRecoverNextProducerID measures the lost-block-file recovery over
// one partition of 100,000 one-record idempotent batches with no snapshot
// (the worst case: every batch header is read). Reported per recovery.
func BenchmarkRecoverNextProducerID(b *testing.B) {
	dir := b.TempDir()
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	br, err := New(Options{DataDir: dir, Registry: reg, AdvertisedHost: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if _, err := reg.CreateTopic("scan", 1, nil, false); err != nil {
		b.Fatal(err)
	}
	l := reg.Partition("scan", 0).Log
	const batches = 100000
	now := time.Now().UnixMilli()
	done := make(chan error, 1)
	for i := 0; i < batches; i++ {
		cb := storage.AppendFunc(func(r storage.AppendResult) {})
		if i == batches-1 {
			cb = func(r storage.AppendResult) { done <- r.Err }
		}
		for {
			err := l.Append(prodBatch(int64(i%5000), 0, int32(i/5000), now, []byte("value-of-some-bytes")), cb)
			if err == nil {
				break
			}
			if !errors.Is(err, storage.ErrBacklog) {
				b.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	s := br.produce
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next, err := s.recoverNextProducerID()
		if err != nil || next != 5000 {
			b.Fatalf("next %d, err %v", next, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batches, "ns/batch")
}
