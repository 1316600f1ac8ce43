//go:build linux && clusterfaults

package integration

// Log dir failure (broker/log_dir_failure.go, storage/logdir_failure.go)
// with real daemons built with -tags faultinject, whose partition logs fail
// every write and fdatasync with the errno a control file names
// (storage/faultinject.go, RINGBROKER_FAULTINJECT_WRITE_ERROR_FILE):
//
//   - TestLogDirFailureCluster: three loopback nodes, an RF 3 topic with
//     min.insync.replicas=2 under an idempotent acks=all producer; ENOSPC
//     (then, in a second run, EIO) on the leader's dir. The leader takes
//     the dir offline and stops (controlled shutdown), a new leader is
//     elected, every acknowledged record (before and after the fault) is
//     read back from it, the failed node's partition files are all still
//     there, and once the fault is gone the node restarts on its data dir
//     and rejoins the ISR.
//   - TestLogDirFailureSingleNode: a single node whose only dir fails
//     answers KAFKA_STORAGE_ERROR, stops with exit status 1 and a message
//     naming the dir, keeps every file, and after the fault is cleared a
//     restart serves every acknowledged record.
//
// Built only with -tags clusterfaults (make cluster-faults; no root
// needed for these two): each builds the faultinject daemon first.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// writeErrorEnv is storage.FaultInjectWriteErrorEnv (only compiled with
// -tags faultinject).
const writeErrorEnv = "RINGBROKER_FAULTINJECT_WRITE_ERROR_FILE"

// logDirExitTimeout bounds a failed node's stop: the controlled shutdown
// (shutdownGrace in the daemon) and the close of its logs.
const logDirExitTimeout = 90 * time.Second

// setWriteError makes the daemon reading ctl fail writes with errno ("" =
// none) and waits until it says so.
func setWriteError(t *testing.T, ctl, errno string) {
	t.Helper()
	if err := os.WriteFile(ctl, []byte(errno), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the faultinject hook to apply write error "+strconv.Quote(errno), clusterStepTimeout, func() error {
		b, err := os.ReadFile(ctl + ".applied")
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(b)); got != errno {
			return fmt.Errorf("write error in force %q, want %q", got, errno)
		}
		return nil
	})
}

// partitionFiles maps each file of the partition dirs of topic under dir
// to its size.
func partitionFiles(t *testing.T, dir, topic string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, pd := range partitionDirs(t, dir, topic) {
		err := filepath.WalkDir(filepath.Join(dir, pd), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = info.Size()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkFilesKept fails unless every file of before is still there, and no
// segment (.log) is shorter than it was.
func checkFilesKept(t *testing.T, before, after map[string]int64) {
	t.Helper()
	if len(before) == 0 {
		t.Fatal("no partition files recorded before the fault")
	}
	for name, size := range before {
		got, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s was removed from the failed dir", name)
		case strings.HasSuffix(name, ".log") && got < size:
			t.Errorf("%s shrank from %d to %d bytes in the failed dir", name, size, got)
		}
	}
}

// produceAcked produces records "k-<seq>" for seqs [from, to) to partition
// 0 of topic, each ProduceSync bounded, and returns the seqs acknowledged;
// it fails the test on any record not acknowledged.
func produceAcked(t *testing.T, cl *kgo.Client, topic string, from, to int) []int {
	t.Helper()
	var acked []int
	const per = 10
	for s := from; s < to; s += per {
		var recs []*kgo.Record
		for i := s; i < min(s+per, to); i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("k-%d", i))})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*clusterStepTimeout)
		res := cl.ProduceSync(ctx, recs...)
		cancel()
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("record k-%d not acknowledged: %v", s+i, r.Err)
			}
			acked = append(acked, s+i)
		}
	}
	return acked
}

func TestLogDirFailureCluster(t *testing.T) {
	if why := useFaultInjectDaemon(t); why != "" {
		t.Skip(why)
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		for _, errno := range []string{"ENOSPC", "EIO"} {
			t.Run(errno, func(t *testing.T) { testLogDirFailureCluster(t, backend, errno) })
		}
	})
}

func testLogDirFailureCluster(t *testing.T, backend, errno string) {
	c := newTestCluster(t, backend)
	ctl := func(n *clusterNode) string { return filepath.Join(n.confDir, "write-error") }
	c.wrap = func(n *clusterNode) []string { return []string{"env", writeErrorEnv + "=" + ctl(n)} }
	c.start(t)
	const topic = "logdir-failure"
	ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
	defer cancel()
	adm := kadm.NewClient(seedClient(t, c.seeds()))
	waitFor(t, "CreateTopics "+topic+" (RF 3)", clusterStepTimeout, func() error {
		r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
		if err == nil && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			err = r.Err
		}
		return err
	})
	waitFor(t, "every node in the ISR of "+topic, clusterStepTimeout, func() error {
		return c.checkISR(topic, map[int32][]int32{0: {1, 2, 3}})
	})
	prod := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(10*time.Second))
	acked := produceAcked(t, prod, topic, 0, 200)

	var leader int32
	waitFor(t, "the leader of "+topic+"/0", clusterStepTimeout, func() error {
		var err error
		leader, err = c.leaderOf(topic, 0)
		return err
	})
	victim := c.node(leader)
	before := partitionFiles(t, victim.dir, topic)
	t.Logf("%s on node %d's dir (leader of %s/0)", errno, victim.id, topic)
	setWriteError(t, ctl(victim), errno)
	start := time.Now()
	// The producer keeps going: the old leader answers KAFKA_STORAGE_ERROR
	// (retried), the new one acknowledges.
	acked = append(acked, produceAcked(t, prod, topic, 200, 300)...)
	t.Logf("records 200-299 acknowledged %v after the fault", time.Since(start).Round(time.Millisecond))

	p := victim.proc
	select {
	case <-p.Exited():
	case <-time.After(logDirExitTimeout):
		t.Fatalf("node %d still runs %v after its only log dir failed", victim.id, logDirExitTimeout)
	}
	p.stopped = true
	if err := p.WaitErr(); err == nil {
		t.Errorf("node %d exited with status 0 after its log dir failed, want 1", victim.id)
	}
	for _, want := range []string{"log dir offline", "shutting down: log dir failure"} {
		if !strings.Contains(p.Logs(), want) {
			t.Errorf("node %d's output lacks %q", victim.id, want)
		}
	}
	for _, line := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(line, "log dir") || strings.Contains(line, "controlled shutdown") {
			t.Logf("node %d: %s", victim.id, line)
		}
	}
	victim.proc, victim.crashed = nil, true
	checkFilesKept(t, before, partitionFiles(t, victim.dir, topic))

	var newLeader int32
	waitFor(t, "a new leader of "+topic+"/0", clusterStepTimeout, func() error {
		var err error
		if newLeader, err = c.leaderOf(topic, 0); err == nil && newLeader == victim.id {
			err = fmt.Errorf("node %d (failed) still leads", victim.id)
		}
		return err
	})
	t.Logf("node %d leads %s/0 after node %d's dir failed", newLeader, topic, victim.id)
	got := consumeToEnd(t, []string{c.node(newLeader).addr()}, topic, 1)
	if bad := checkAckedOnce(acked, got[0]); len(bad) > 0 {
		t.Fatalf("reading back from node %d: %s", newLeader, strings.Join(bad, "; "))
	}

	// The operator fixed the disk: the node restarts on its data dir,
	// recovers it and rejoins the ISR.
	setWriteErrorOff(t, ctl(victim))
	c.startNode(t, victim)
	c.waitReady(t)
	acked = append(acked, produceAcked(t, prod, topic, 300, 350)...)
	waitFor(t, fmt.Sprintf("node %d back in the ISR of %s", victim.id, topic), clusterStepTimeout, func() error {
		return c.checkISR(topic, map[int32][]int32{0: {1, 2, 3}})
	})
	got = consumeToEnd(t, c.seeds(), topic, 1)
	if bad := checkAckedOnce(acked, got[0]); len(bad) > 0 {
		t.Fatalf("after the restart: %s", strings.Join(bad, "; "))
	}
}

// setWriteErrorOff removes the control file of a daemon that is gone (no
// .applied to wait for).
func setWriteErrorOff(t *testing.T, ctl string) {
	t.Helper()
	for _, f := range []string{ctl, ctl + ".applied"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

func TestLogDirFailureSingleNode(t *testing.T) {
	if why := useFaultInjectDaemon(t); why != "" {
		t.Skip(why)
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		ctl := filepath.Join(t.TempDir(), "write-error")
		start := func() *Broker {
			conf := map[string]string{
				"listeners": "PLAINTEXT://127.0.0.1:{port}", "log.dirs": dir, "io.backend": backend, "metrics.listener": "",
				"num.partitions": "1",
			}
			d, err := daemontest.Start(daemontest.Options{
				Argv:   []string{"env", writeErrorEnv + "=" + ctl, daemonPath},
				Config: conf, ConfigPath: filepath.Join(t.TempDir(), "server.properties"), ConfigHeader: "written by tests/integration (log dir failure)",
				Dir: t.TempDir(), OutputBytesMax: logCaptureBytesMax,
			})
			if err != nil {
				t.Fatal(err)
			}
			b := &Broker{Daemon: d, Dir: dir, Backend: backend}
			t.Cleanup(func() {
				b.Stop(t)
				if t.Failed() {
					t.Logf("ringbrokerd (%s, pid %d) output:\n%s", backend, b.PID, daemontest.Tail(b.Logs(), clusterLogTail))
				}
			})
			if err := b.WaitReady(startTimeout, func(addr string) error { return probeApiVersions(addr, time.Second) }); err != nil {
				t.Fatalf("not ready: %v", err)
			}
			return b
		}
		const topic = "single-logdir-failure"
		b := start()
		cl := newClient(t, b.Addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		createTopic(t, b.Addr, topic, 1, nil)
		acked := produceAcked(t, cl, topic, 0, 100)
		before := partitionFiles(t, dir, topic)

		setWriteError(t, ctl, "ENOSPC")
		// One Produce by hand: KAFKA_STORAGE_ERROR, not a client retry loop.
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = plainBatch([]byte("k-fail"))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), newClient(t, b.Addr))
		if err == nil {
			code := resp.Topics[0].Partitions[0].ErrorCode
			if code != kerr.KafkaStorageError.Code {
				t.Errorf("produce to a full disk: %s, want KAFKA_STORAGE_ERROR", codeName(code))
			}
		} // (the connection may close under a broker already stopping)

		select {
		case <-b.Exited():
		case <-time.After(logDirExitTimeout):
			t.Fatalf("the broker still runs %v after its only log dir failed", logDirExitTimeout)
		}
		b.stopped = true
		if err := b.WaitErr(); err == nil {
			t.Error("exit status 0 after the only log dir failed, want 1")
		}
		for _, want := range []string{"log dir offline", "every log dir is offline", "no space left on device"} {
			if !strings.Contains(b.Logs(), want) {
				t.Errorf("output lacks %q", want)
			}
		}
		t.Logf("the failed broker's last lines:\n%s", daemontest.Tail(b.Logs(), 4<<10))
		checkFilesKept(t, before, partitionFiles(t, dir, topic))

		// The operator freed space: the restart recovers and serves every
		// acknowledged record.
		setWriteErrorOff(t, ctl)
		b2 := start()
		if !strings.Contains(b2.Logs(), "no clean shutdown file found") {
			t.Error("the restart did not recover the dir (no \"no clean shutdown file found\")")
		}
		got := consumeToEnd(t, []string{b2.Addr}, topic, 1)
		if bad := checkAckedOnce(acked, got[0]); len(bad) > 0 {
			t.Fatalf("after the restart: %s", strings.Join(bad, "; "))
		}
		cl2 := newClient(t, b2.Addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		acked = append(acked, produceAcked(t, cl2, topic, 100, 120)...)
		got = consumeToEnd(t, []string{b2.Addr}, topic, 1)
		if bad := checkAckedOnce(acked, got[0]); len(bad) > 0 {
			t.Fatalf("after producing again: %s", strings.Join(bad, "; "))
		}
	})
}
