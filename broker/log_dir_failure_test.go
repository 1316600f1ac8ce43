package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/storage"
)

// TestLogDirFailureServesOtherDirs: a single node with two log dirs. ENOSPC
// on one partition of the first dir takes the whole dir offline: each of
// its partitions answers Produce, Fetch and ListOffsets with
// KAFKA_STORAGE_ERROR, the second dir's partitions keep being served, the
// broker keeps running, a new topic goes to the online dir only, and the
// offline dir's files are not touched. When the second dir fails too the
// broker is told to stop.
func TestLogDirFailureServesOtherDirs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		root := t.TempDir()
		dirA, dirB := filepath.Join(root, "a"), filepath.Join(root, "b")
		f := storage.NewFaultIO(nil)
		f.SetScratchDir(t.TempDir())
		tb := startTestBroker(t, backend, func(_ *Options, ro *RegistryOptions) {
			ro.LogDirs = []string{dirA, dirB}
			ro.FS, ro.NewIO = f, f.NewIO
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm := kadm.NewClient(tb.client())
		const topic = "dirs"
		// Partitions round-robin over the dirs: 0 and 2 in a, 1 in b.
		created, err := adm.CreateTopic(ctx, 3, 1, nil, topic)
		if err != nil || created.Err != nil {
			t.Fatalf("create: %v %v", err, created.Err)
		}
		cl := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(0))
		produce := func(p int32) error {
			return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")}).FirstErr()
		}
		for p := int32(0); p < 3; p++ {
			if err := produce(p); err != nil {
				t.Fatalf("produce to %d: %v", p, err)
			}
		}
		f.Inject(storage.Fault{Op: storage.OpWrite, PathUnder: filepath.Join(dirA, topic+"-0"), Err: syscall.ENOSPC})
		if err := produce(0); !errors.Is(err, kerr.KafkaStorageError) {
			t.Fatalf("produce to a full disk: %v, want KAFKA_STORAGE_ERROR", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(tb.Reg.OfflineLogDirs(), []string{dirA}) {
			if time.Now().After(deadline) {
				t.Fatalf("offline dirs %v, want [%s]", tb.Reg.OfflineLogDirs(), dirA)
			}
			time.Sleep(5 * time.Millisecond)
		}
		f.Clear()
		before := treeOf(t, dirA)

		// Partition 2 never failed itself: its dir did.
		for _, p := range []int32{0, 2} {
			if err := produce(p); !errors.Is(err, kerr.KafkaStorageError) {
				t.Errorf("produce to %d (offline dir): %v, want KAFKA_STORAGE_ERROR", p, err)
			}
		}
		if err := produce(1); err != nil {
			t.Errorf("produce to 1 (online dir): %v", err)
		}
		fetch := kmsg.NewPtrFetchRequest()
		fetch.Version, fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MaxBytes = 12, -1, 0, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = topic, created.ID // (the client picks the version)
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.Version, lo.ReplicaID = 7, -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		for p := int32(0); p < 3; p++ {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes, fp.LogStartOffset = p, 1<<20, -1
			ft.Partitions = append(ft.Partitions, fp)
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition, lp.Timestamp = p, -1
			lt.Partitions = append(lt.Partitions, lp)
		}
		fetch.Topics = append(fetch.Topics, ft)
		lo.Topics = append(lo.Topics, lt)
		fr, err := fetch.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		lr, err := lo.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int32]int16{0: kerr.KafkaStorageError.Code, 1: 0, 2: kerr.KafkaStorageError.Code}
		for _, p := range fr.Topics[0].Partitions {
			if p.ErrorCode != want[p.Partition] {
				t.Errorf("fetch %d: error %d, want %d", p.Partition, p.ErrorCode, want[p.Partition])
			}
			if p.Partition == 1 && p.HighWatermark != 2 {
				t.Errorf("fetch 1: high watermark %d, want 2", p.HighWatermark)
			}
		}
		for _, p := range lr.Topics[0].Partitions {
			if p.ErrorCode != want[p.Partition] {
				t.Errorf("list offsets %d: error %d, want %d", p.Partition, p.ErrorCode, want[p.Partition])
			}
		}
		// To the broker itself: kgo's sharding of DescribeLogDirs would
		// merge the answer.
		raw, err := cl.Broker(0).Request(ctx, kmsg.NewPtrDescribeLogDirsRequest())
		if err != nil {
			t.Fatal(err)
		}
		dl := raw.(*kmsg.DescribeLogDirsResponse)
		for _, d := range dl.Dirs {
			want := int16(0)
			if d.Dir == dirA {
				want = kerr.KafkaStorageError.Code
			}
			if d.ErrorCode != want {
				t.Errorf("DescribeLogDirs %s: error %d, want %d", d.Dir, d.ErrorCode, want)
			}
		}
		if len(dl.Dirs) != 2 {
			t.Errorf("DescribeLogDirs: %d dirs, want 2", len(dl.Dirs))
		}
		dirs, online := tb.Reg.LogDirOnline()
		if !slices.Equal(dirs, []string{dirA, dirB}) || !slices.Equal(online, []bool{false, true}) {
			t.Errorf("LogDirOnline() = %v %v", dirs, online)
		}
		select {
		case <-tb.Reg.StopForLogDirFailure():
			t.Fatalf("told to stop with a dir online: %v", tb.Reg.StopReason())
		default:
		}

		// A new topic lands in the online dir only.
		if r, err := adm.CreateTopic(ctx, 2, 1, nil, "after"); err != nil || r.Err != nil {
			t.Fatalf("create after the failure: %v %v", err, r.Err)
		}
		for p := int32(0); p < 2; p++ {
			if err := produce2(ctx, cl, "after", p); err != nil {
				t.Errorf("produce to after/%d: %v", p, err)
			}
			if _, err := os.Stat(filepath.Join(dirB, fmt.Sprintf("after-%d", p))); err != nil {
				t.Errorf("after/%d not in the online dir: %v", p, err)
			}
		}
		if after := treeOf(t, dirA); !slices.Equal(before, after) {
			t.Errorf("the offline dir changed:\nbefore %v\nafter  %v", before, after)
		}

		// The last online dir fails: the broker must stop.
		f.Inject(storage.Fault{Op: storage.OpWrite, PathUnder: dirB, Err: syscall.EIO})
		if err := produce(1); !errors.Is(err, kerr.KafkaStorageError) {
			t.Fatalf("produce on a failing disk: %v, want KAFKA_STORAGE_ERROR", err)
		}
		select {
		case <-tb.Reg.StopForLogDirFailure():
		case <-time.After(10 * time.Second):
			t.Fatal("not told to stop with every dir offline")
		}
		if why := tb.Reg.StopReason(); why == nil || !strings.Contains(why.Error(), "every log dir is offline") {
			t.Errorf("stop reason %v", why)
		}
		f.Clear()
	})
}

func produce2(ctx context.Context, cl *kgo.Client, topic string, p int32) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")}).FirstErr()
}

// treeOf lists every file under dir with its size and modification time.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %s", p, info.Size(), info.ModTime()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
