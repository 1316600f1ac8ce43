package broker

// Seeded fault tests of the topic metadata (issue 14 §4): the topic table
// (ringbroker-topics.json in every log dir, one generation per write) and
// partition.metadata. Two log dirs hold topic "old" (acknowledged records,
// flush.messages=1), everything through one storage.FaultIO. For every
// mutating filesystem step k of an operation (CreateTopic, DeleteTopic,
// CreatePartitions, SetTopicConfigs) the runs are (faultModes):
//
//   - fail-rest: every step from k to the end of the operation fails, then
//     the disk works again and the broker goes on: it appends a record to
//     every partition it still serves (acknowledged) and stops cleanly;
//   - fail: step k alone fails, and the broker goes on as above;
//   - fail+powerloss: step k fails, then the machine stops (every later
//     mutating call fails) and loses power;
//   - freeze+powerloss: the machine stops after k steps and loses power.
//
// The next start must succeed with the old state or the new one, never a
// mix or garbage, and keep every acknowledged record: in particular one
// acknowledged after an operation that reported failure. The seed (the
// torn tails of the power loss) is in each run's name.

import (
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ringbroker/ringbroker/storage"
)

type metaOp struct {
	name string
	run  func(r *Registry) error
	// want returns the topics (name -> partition count) and old's
	// retention.ms of the new state.
	newTopics map[string]int
	newConfig string
}

var metaOps = []metaOp{
	{"create", func(r *Registry) error { _, err := r.CreateTopic("new", 2, flushEvery, false); return err },
		map[string]int{"old": 2, "new": 2}, ""},
	{"delete", func(r *Registry) error { return r.DeleteTopic("old") },
		map[string]int{}, ""},
	{"partitions", func(r *Registry) error { return r.CreatePartitions("old", 3, false) },
		map[string]int{"old": 3}, ""},
	{"config", func(r *Registry) error {
		return r.SetTopicConfigs("old", map[string]string{"flush.messages": "1", "retention.ms": "123456"}, false)
	}, map[string]int{"old": 2}, "123456"},
}

var oldTopics = map[string]int{"old": 2}

// metaScenario makes two log dirs holding topic "old" (2 partitions, one
// per dir, flush.messages=1) with 3 acknowledged records per partition.
func metaScenario(t *testing.T, f *storage.FaultIO) (*Registry, []string) {
	t.Helper()
	dirs := []string{t.TempDir(), t.TempDir()}
	r, err := openFaultRegistry(t, f, dirs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateTopic("old", 2, flushEvery, false); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, r, "old", 3)
	return r, dirs
}

func topicShape(r *Registry) map[string]int {
	out := map[string]int{}
	for _, t := range r.Topics() {
		out[t.Name] = len(t.Partitions)
	}
	return out
}

func TestTopicMetadataFaultSteps(t *testing.T) {
	for _, op := range metaOps {
		f := storage.NewFaultIO(nil)
		f.SetScratchDir(t.TempDir())
		r, _ := metaScenario(t, f)
		count := f.Inject(storage.Fault{Op: storage.OpMutating, Skip: 1 << 30})
		if err := op.run(r); err != nil {
			t.Fatal(err)
		}
		steps := count.Matched()
		f.Clear()
		r.Close()
		for k := 0; k < steps; k++ {
			for _, mode := range faultModes(k) {
				seed := int64(k*3 + len(mode))
				t.Run(fmt.Sprintf("%s/step=%d/%s/seed=%d", op.name, k, mode, seed), func(t *testing.T) {
					metaFaultRound(t, op, k, mode, seed)
				})
			}
		}
	}
}

// faultModes picks the runs of step k. By default the two strongest: the
// operation fails from step k on while the broker goes on, and the machine
// stops after step k. Under the race detector one of them, alternating.
// RINGBROKER_FAULT_STEPS=all adds a single failure with and without a power
// loss after it.
func faultModes(k int) []string {
	if os.Getenv("RINGBROKER_FAULT_STEPS") == "all" {
		return []string{"fail", "fail-rest", "fail+powerloss", "freeze+powerloss"}
	}
	modes := []string{"fail-rest", "freeze+powerloss"}
	if raceEnabled || testing.Short() {
		return modes[k%2 : k%2+1]
	}
	return modes
}

func metaFaultRound(t *testing.T, op metaOp, k int, mode string, seed int64) {
	f := storage.NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	r, dirs := metaScenario(t, f)
	count := 1
	if mode == "freeze+powerloss" || mode == "fail-rest" {
		count = 0
	}
	f.Inject(storage.Fault{Op: storage.OpMutating, Skip: k, Count: count, Err: syscall.EIO})
	opErr := op.run(r)
	goesOn := mode == "fail" || mode == "fail-rest"
	if mode == "fail-rest" {
		f.Clear() // the disk works again
	}
	// What the broker still serves gets one more acknowledged record per
	// partition (when the disk still works).
	acked := map[string]int{}
	for name, n := range topicShape(r) {
		if !goesOn {
			break
		}
		appendRecords(t, r, name, 1)
		acked[name] = n
	}
	r2, err := reopenAfterFault(t, r, f, dirs, !goesOn, seed)
	if err != nil {
		t.Fatalf("start after a fault at step %d (op error: %v): %v", k, opErr, err)
	}
	defer r2.Close()
	got := topicShape(r2)
	isOld, isNew := maps.Equal(got, oldTopics), maps.Equal(got, op.newTopics)
	if !isOld && !isNew {
		t.Fatalf("topics %v after a fault at step %d: neither the old %v nor the new %v (op error: %v)", got, k, oldTopics, op.newTopics, opErr)
	}
	if isOld && op.newConfig != "" {
		retention := r2.Topic("old").ConfigOverrides()["retention.ms"]
		if retention != "" && retention != op.newConfig {
			t.Fatalf("retention.ms %q: neither the old nor the new", retention)
		}
	}
	for name, n := range got {
		for i := 0; i < n; i++ {
			want := int64(0)
			if name == "old" && i < 2 {
				want = 3
			}
			if _, ok := acked[name]; ok && i < acked[name] {
				want++
			}
			if hw := r2.Partition(name, int32(i)).Log.HighWatermark(); hw < want {
				t.Fatalf("%s-%d: high watermark %d, want >= %d acknowledged (op error: %v)", name, i, hw, want, opErr)
			}
		}
	}
	for name := range acked {
		if _, ok := got[name]; !ok {
			t.Fatalf("topic %s lost after records were acknowledged to it (op error: %v)", name, opErr)
		}
	}
}

// TestStartupFaultSteps fails each step of a start, reads included, once
// (fail) or from that step on (fail-rest). The start has work to do: a
// partition lost its partition.metadata and a directory no topic accounts
// for waits to be set aside. A start that fails before its first write
// leaves both dirs byte-identical; whatever failed, the start after it
// serves every topic and record and keeps the unknown directory's content.
func TestStartupFaultSteps(t *testing.T) {
	setup := func(t *testing.T) (*storage.FaultIO, []string) {
		f := storage.NewFaultIO(nil)
		f.SetScratchDir(t.TempDir())
		r, dirs := metaScenario(t, f)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dirs[1], "old-1", partitionMetadataFile)); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dirs[0], "ghost-0"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirs[0], "ghost-0", "keep"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		return f, dirs
	}
	f, dirs := setup(t)
	count := f.Inject(storage.Fault{Op: storage.OpAny, Skip: 1 << 30})
	r, err := openFaultRegistry(t, f, dirs)
	if err != nil {
		t.Fatal(err)
	}
	steps := count.Matched()
	f.Clear()
	r.Close()
	// Every other step by default (every step with
	// RINGBROKER_FAULT_STEPS=all, every fourth under the race detector).
	stride := 2
	switch {
	case os.Getenv("RINGBROKER_FAULT_STEPS") == "all":
		stride = 1
	case raceEnabled || testing.Short():
		stride = 4
	}
	for k := 0; k < steps; k += stride {
		for _, mode := range []string{"fail", "fail-rest"} {
			t.Run(fmt.Sprintf("step=%d/%s", k, mode), func(t *testing.T) {
				f, dirs := setup(t)
				before := treeDigest(t, dirs...)
				n := 1
				if mode == "fail-rest" {
					n = 0
				}
				writes := f.Inject(storage.Fault{Op: storage.OpWrite | storage.OpTruncate | storage.OpRename | storage.OpRemove, Skip: 1 << 30})
				f.Inject(storage.Fault{Op: storage.OpAny, Skip: k, Count: n, Err: syscall.EIO})
				r, err := openFaultRegistry(t, f, dirs)
				if err == nil {
					r.Close()
				} else if writes.Matched() == 0 {
					if after := treeDigest(t, dirs...); after != before {
						t.Fatalf("a start failing before its first write (%v) changed the dirs:\nbefore:\n%s\nafter:\n%s", err, before, after)
					}
				}
				f.Clear()
				r, err = openFaultRegistry(t, f, dirs)
				if err != nil {
					t.Fatalf("the start after a failed one (step %d): %v", k, err)
				}
				defer r.Close()
				if got := topicShape(r); !maps.Equal(got, oldTopics) {
					t.Fatalf("topics %v, want %v", got, oldTopics)
				}
				wantWatermarks(t, "after the failed start", highWatermarks(r, "old", 2), 3, 3)
				ghosts, _ := filepath.Glob(filepath.Join(dirs[0], "ghost-0*", "keep"))
				if len(ghosts) != 1 {
					t.Fatalf("the unknown directory's file: %v", ghosts)
				}
				if data, err := os.ReadFile(ghosts[0]); err != nil || string(data) != "mine" {
					t.Fatalf("the unknown directory's file: %q %v", data, err)
				}
			})
		}
	}
}

// TestFirstStartFaultSteps fails each step of a first start on two empty
// log dirs (meta.properties, the lock, the empty topic table), from that
// step on (fail-rest) or by a power loss after it (freeze+powerloss). The
// start after it succeeds, and every dir then names one cluster id.
func TestFirstStartFaultSteps(t *testing.T) {
	f := storage.NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	count := f.Inject(storage.Fault{Op: storage.OpMutating, Skip: 1 << 30})
	r, err := openFaultRegistry(t, f, []string{t.TempDir(), t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	steps := count.Matched()
	r.Close()
	for k := 0; k < steps; k++ {
		for _, mode := range []string{"fail-rest", "freeze+powerloss"} {
			seed := int64(k*2 + len(mode))
			t.Run(fmt.Sprintf("step=%d/%s/seed=%d", k, mode, seed), func(t *testing.T) {
				f := storage.NewFaultIO(nil)
				f.SetScratchDir(t.TempDir())
				dirs := []string{t.TempDir(), t.TempDir()}
				f.Inject(storage.Fault{Op: storage.OpMutating, Skip: k, Err: syscall.EIO})
				if r, err := openFaultRegistry(t, f, dirs); err == nil {
					r.Close()
				}
				f.Clear()
				if mode == "freeze+powerloss" {
					if err := f.PowerLoss(rand.New(rand.NewSource(seed))); err != nil {
						t.Fatal(err)
					}
				}
				r, err := openFaultRegistry(t, f, dirs)
				if err != nil {
					t.Fatalf("the start after a failed first start (step %d): %v", k, err)
				}
				r.Close()
				var ids []string
				for _, d := range dirs {
					id, found, err := readMeta(d, 0)
					if err != nil || !found {
						t.Fatalf("%s: meta.properties %v found=%v", d, err, found)
					}
					ids = append(ids, id)
				}
				if ids[0] != ids[1] || ids[0] != r.ClusterID() {
					t.Fatalf("cluster ids %v, registry %s", ids, r.ClusterID())
				}
			})
		}
	}
}

// TestRemoveReplicasFaultSteps fails each mutating step of RemoveReplicas
// (a replica the cluster metadata took off this node: deleted live, set
// aside on the first image after a start) from that step on, or stops the
// machine there and cuts the power. The next start always succeeds; the
// other partition keeps its acknowledged records; the removed one is either
// still served whole (the table change did not land) or not served at all,
// and when set aside its data is kept in a -stray directory: a partition
// directory with files missing is never opened.
func TestRemoveReplicasFaultSteps(t *testing.T) {
	id := [16]byte{5, 5}
	setup := func(t *testing.T, f *storage.FaultIO) (*Registry, []string) {
		dirs := []string{t.TempDir(), t.TempDir()}
		r, err := openFaultRegistry(t, f, dirs)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SyncTopic("moved", id, []bool{true, true}, flushEvery); err != nil {
			t.Fatal(err)
		}
		appendRecords(t, r, "moved", 3)
		return r, dirs
	}
	for _, setAside := range []bool{false, true} {
		f := storage.NewFaultIO(nil)
		f.SetScratchDir(t.TempDir())
		r, _ := setup(t, f)
		count := f.Inject(storage.Fault{Op: storage.OpMutating, Skip: 1 << 30})
		if err := r.RemoveReplicas("moved", id, []int32{1}, setAside); err != nil {
			t.Fatal(err)
		}
		steps := count.Matched()
		f.Clear()
		r.Close()
		for k := 0; k < steps; k++ {
			for _, mode := range faultModes(k) {
				seed := int64(k*3 + len(mode))
				t.Run(fmt.Sprintf("setAside=%v/step=%d/%s/seed=%d", setAside, k, mode, seed), func(t *testing.T) {
					f := storage.NewFaultIO(nil)
					f.SetScratchDir(t.TempDir())
					r, dirs := setup(t, f)
					f.Inject(storage.Fault{Op: storage.OpMutating, Skip: k, Err: syscall.EIO})
					opErr := r.RemoveReplicas("moved", id, []int32{1}, setAside)
					stopped := mode != "fail-rest"
					if !stopped {
						f.Clear()
					}
					r2, err := reopenAfterFault(t, r, f, dirs, stopped, seed)
					if err != nil {
						t.Fatalf("start after a fault at step %d (op error: %v): %v", k, opErr, err)
					}
					defer r2.Close()
					hw := highWatermarks(r2, "moved", 2)
					if hw[0] < 3 {
						t.Fatalf("partition 0: high watermark %d, want >= 3 (op error: %v)", hw[0], opErr)
					}
					if hw[1] >= 0 && hw[1] < 3 {
						t.Fatalf("partition 1 served with high watermark %d, want the whole log (>= 3) or not served (op error: %v)", hw[1], opErr)
					}
					if hw[1] < 0 {
						if _, err := os.Stat(filepath.Join(dirs[1], "moved-1")); err == nil {
							t.Fatalf("partition 1 not served, but its directory is there under its own name")
						}
						strays, _ := filepath.Glob(filepath.Join(dirs[1], "moved-1.*"+straySuffix, "00000000000000000000.log"))
						if setAside && len(strays) != 1 {
							t.Fatalf("partition 1 set aside: its data is not in one -stray directory (%v; op error: %v)", strays, opErr)
						}
					}
				})
			}
		}
	}
}
