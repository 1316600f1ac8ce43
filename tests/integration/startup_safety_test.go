//go:build linux

package integration

// Startup safety: the broker is restarted after each operator mistake on its
// log dirs and must either serve every acknowledged record again (after the
// mistake is fixed, where it must be) or refuse to start with every file
// exactly as it was. A second daemon on the same log dirs must be refused.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
	"github.com/ringbroker/ringbroker/internal/dirtree"
)

// safetyTopic is the topic every scenario produces to and checks.
const safetyTopic = "orders"

// seedTopic creates safetyTopic with parts partitions on b, produces n
// records through franz-go (acks=all, idempotent) and returns them.
func seedTopic(t *testing.T, b *Broker, parts int32, n int) []sentRecord {
	t.Helper()
	createTopic(t, b.Addr, safetyTopic, parts, nil)
	recs := spreadRecords(safetyTopic, n, parts, 600, true)
	cl := newClient(t, b.Addr)
	produceSync(t, cl, safetyTopic, recs)
	cl.Close()
	return recs
}

// verifyServed consumes safetyTopic (parts partitions) from b and checks it
// holds exactly want.
func verifyServed(t *testing.T, what string, b *Broker, parts int32, want []sentRecord) {
	t.Helper()
	got := consumeFranz(t, b.Addr, safetyTopic, fromStart(parts), len(want))
	verifyRecords(t, what, want, got, nil)
}

// dirDigest is dirtree.Digest of roots: equal digests mean nothing was
// created, removed, renamed or changed.
func dirDigest(t *testing.T, roots ...string) string {
	t.Helper()
	digest, err := dirtree.Digest(roots...)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// startRefused runs the daemon (behind wrapper, e.g. prlimit, when given)
// on logDirs and asserts it exits non-zero without ever serving, with
// wantOutput in its output. It returns the output.
func startRefused(t *testing.T, backend, logDirs string, wrapper []string, wantOutput string) string {
	t.Helper()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	conf := fmt.Sprintf("listeners=PLAINTEXT://%s\nlog.dirs=%s\nio.backend=%s\nmetrics.listener=\n", addr, logDirs, backend)
	confPath := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string(nil), wrapper...), daemonPath, "--config", confPath)
	d, err := daemontest.Start(daemontest.Options{Argv: args, OutputBytesMax: logCaptureBytesMax})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(3 * startTimeout)
	for {
		select {
		case <-d.Exited():
			if d.WaitErr() == nil {
				t.Fatalf("daemon exited 0, want a refused start; output:\n%s", d.Logs())
			}
			if !strings.Contains(d.Logs(), wantOutput) {
				t.Fatalf("refused start does not say %q; output:\n%s", wantOutput, d.Logs())
			}
			return d.Logs()
		case <-deadline:
			_ = d.Kill(stopTimeout)
			t.Fatalf("daemon neither served nor exited within %v; output:\n%s", 3*startTimeout, d.Logs())
		case <-time.After(100 * time.Millisecond):
			if probeApiVersions(addr, 200*time.Millisecond) == nil {
				_ = d.Kill(stopTimeout)
				t.Fatalf("daemon started serving, want a refused start; output:\n%s", d.Logs())
			}
		}
	}
}

// writeKafkaLogDir writes what an Apache Kafka 3.x KRaft broker (node 3 of
// another cluster) leaves in its log dir.
func writeKafkaLogDir(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"meta.properties":                                     "#\n#Thu Nov 20 10:00:00 UTC 2025\nnode.id=3\ndirectory.id=vRo6hTjbS7u0ZtWH1F2tNA\nversion=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n",
		".lock":                                               "",
		"bootstrap.checkpoint":                                "\x00\x00\x00\x00",
		"cleaner-offset-checkpoint":                           "0\n0\n",
		"log-start-offset-checkpoint":                         "0\n2\n__consumer_offsets 0 0\ntopic 0 0\n",
		"recovery-point-offset-checkpoint":                    "0\n2\n__consumer_offsets 0 7\ntopic 0 42\n",
		"replication-offset-checkpoint":                       "0\n2\n__consumer_offsets 0 7\ntopic 0 42\n",
		"__consumer_offsets-0/00000000000000000000.log":       "consumer offsets records",
		"__consumer_offsets-0/00000000000000000000.index":     "",
		"__consumer_offsets-0/00000000000000000000.timeindex": "",
		"__consumer_offsets-0/leader-epoch-checkpoint":        "0\n1\n0 0\n",
		"__consumer_offsets-0/partition.metadata":             "version: 0\ntopic_id: 3B2W1CJ2TWKyDnTrz5dFuw\n",
		"topic-0/00000000000000000000.log":                    "forty-two records of somebody's data",
		"topic-0/00000000000000000000.index":                  "",
		"topic-0/00000000000000000000.timeindex":              "",
		"topic-0/00000000000000000042.snapshot":               "",
		"topic-0/leader-epoch-checkpoint":                     "0\n1\n0 0\n",
		"topic-0/partition.metadata":                          "version: 0\ntopic_id: q0s2nZ3VQ9WlyCQJ9mRG-A\n",
		"__cluster_metadata-0/00000000000000000000.log":       "metadata records",
		"__cluster_metadata-0/quorum-state":                   "{\"leaderId\":3,\"leaderEpoch\":1,\"votedId\":-1,\"appliedOffset\":0,\"currentVoters\":[{\"voterId\":3}],\"data_version\":0}",
	}
	if err := dirtree.Write(dir, files); err != nil {
		t.Fatal(err)
	}
}

// TestStartupOperatorMistakes restarts the broker after each mistake an
// operator makes with its log dirs (each once wiped acknowledged records)
// and checks every acknowledged record is served after the fixed-up
// restart, or that the start was refused with every file untouched.
func TestStartupOperatorMistakes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		t.Run("deleted topic table", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			props := map[string]string{"log.dirs": dir}
			b := startBroker(t, backend, props)
			recs := seedTopic(t, b, 4, 400)
			b.Stop(t)
			if err := os.Remove(filepath.Join(dir, "ringbroker-topics.json")); err != nil {
				t.Fatal(err)
			}
			b = startBroker(t, backend, props)
			verifyServed(t, "after deleting the topic table", b, 4, recs)
		})

		t.Run("swapped log.dirs", func(t *testing.T) {
			d0, d1 := filepath.Join(t.TempDir(), "d0"), filepath.Join(t.TempDir(), "d1")
			b := startBroker(t, backend, map[string]string{"log.dirs": d0 + "," + d1})
			recs := seedTopic(t, b, 4, 400)
			b.Stop(t)
			b = startBroker(t, backend, map[string]string{"log.dirs": d1 + "," + d0})
			verifyServed(t, "after swapping log.dirs", b, 4, recs)
			// More records in the swapped order, then back: still all there.
			more := spreadRecords(safetyTopic+"-more", 100, 4, 600, true)
			cl := newClient(t, b.Addr)
			produceSync(t, cl, safetyTopic, more)
			cl.Close()
			b.Stop(t)
			b = startBroker(t, backend, map[string]string{"log.dirs": d0 + "," + d1})
			verifyServed(t, "after swapping back", b, 4, append(recs, more...))
		})

		t.Run("first disk replaced", func(t *testing.T) {
			d0, d1 := filepath.Join(t.TempDir(), "d0"), filepath.Join(t.TempDir(), "d1")
			props := map[string]string{"log.dirs": d0 + "," + d1}
			b := startBroker(t, backend, props)
			recs := seedTopic(t, b, 4, 400)
			b.Stop(t)
			onSecond := map[int32]bool{}
			for p := int32(0); p < 4; p++ {
				if _, err := os.Stat(filepath.Join(d1, fmt.Sprintf("%s-%d", safetyTopic, p))); err == nil {
					onSecond[p] = true
				}
			}
			if len(onSecond) == 0 || len(onSecond) == 4 {
				t.Fatalf("partitions on the second dir: %v, want some", onSecond)
			}
			// The first disk is replaced by an empty one.
			if err := os.RemoveAll(d0); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(d0, 0o755); err != nil {
				t.Fatal(err)
			}
			b = startBroker(t, backend, props)
			var survivors []sentRecord
			for _, r := range recs {
				if onSecond[r.partition] {
					survivors = append(survivors, r)
				}
			}
			verifyServed(t, "records on the disk that was not replaced", b, 4, survivors)
		})

		t.Run("stray dirs", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			props := map[string]string{"log.dirs": dir}
			b := startBroker(t, backend, props)
			recs := seedTopic(t, b, 4, 400)
			b.Stop(t)
			strays := map[string]string{
				"backup-2024/orders-0.tar":         "an operator's backup",
				"foo-0/00000000000000000000.log":   "someone's partition",
				"foo-0/00000000000000000000.index": "",
			}
			if err := dirtree.Write(dir, strays); err != nil {
				t.Fatal(err)
			}
			b = startBroker(t, backend, props)
			verifyServed(t, "with stray dirs beside the partitions", b, 4, recs)
			for name, content := range strays {
				top, rest, _ := strings.Cut(name, "/")
				found, _ := filepath.Glob(filepath.Join(dir, top+"*", rest))
				if len(found) != 1 {
					t.Fatalf("stray %s: found %v", name, found)
				}
				if data, err := os.ReadFile(found[0]); err != nil || string(data) != content {
					t.Fatalf("stray %s: %q, %v", found[0], data, err)
				}
			}
			if !strings.Contains(b.Logs(), "set aside") {
				t.Errorf("the broker did not say it set the strays aside")
			}
		})

		t.Run("foreign Kafka log dir", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			kafka := filepath.Join(t.TempDir(), "kafka-logs")
			writeKafkaLogDir(t, kafka)
			b := startBroker(t, backend, map[string]string{"log.dirs": dir})
			recs := seedTopic(t, b, 4, 400)
			b.Stop(t)
			before := dirDigest(t, dir, kafka)
			startRefused(t, backend, kafka, nil, "node.id 3 does not match")
			startRefused(t, backend, dir+","+kafka, nil, "node.id 3 does not match")
			if after := dirDigest(t, dir, kafka); after != before {
				t.Fatalf("a refused start changed files:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			b = startBroker(t, backend, map[string]string{"log.dirs": dir})
			verifyServed(t, "after the refused starts", b, 4, recs)
		})

		t.Run("unopenable partition", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			props := map[string]string{"log.dirs": dir}
			b := startBroker(t, backend, props)
			recs := seedTopic(t, b, 4, 400)
			b.Stop(t)
			// A directory where partition 2's segment file should be.
			seg := filepath.Join(dir, safetyTopic+"-2", "00000000000000000000.log")
			aside := filepath.Join(t.TempDir(), "segment")
			if err := os.Rename(seg, aside); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(seg, 0o755); err != nil {
				t.Fatal(err)
			}
			startRefused(t, backend, dir, nil, safetyTopic+"-2")
			if err := os.Remove(seg); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(aside, seg); err != nil {
				t.Fatal(err)
			}
			b = startBroker(t, backend, props)
			verifyServed(t, "after the fixed-up restart", b, 4, recs)
		})

		t.Run("low nofile", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			props := map[string]string{"log.dirs": dir}
			b := startBroker(t, backend, props)
			recs := seedTopic(t, b, 64, 640)
			b.Stop(t)
			// 64 partitions need about 200 descriptors; give it 96
			// (hard and soft: Go raises the soft limit to the hard one).
			startRefused(t, backend, dir, []string{"prlimit", "--nofile=96:96", "--"}, "too many open files")
			b = startBroker(t, backend, props)
			verifyServed(t, "after restarting with enough descriptors", b, 64, recs)
		})
	})
}

// TestSecondDaemonSameLogDirs: a second broker started on log dirs a
// running broker holds is refused (Kafka's .lock), and the first keeps
// serving every record.
func TestSecondDaemonSameLogDirs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		d0, d1 := filepath.Join(t.TempDir(), "d0"), filepath.Join(t.TempDir(), "d1")
		b := startBroker(t, backend, map[string]string{"log.dirs": d0 + "," + d1})
		recs := seedTopic(t, b, 4, 400)
		startRefused(t, backend, d1+","+d0, nil, "locked by another process")
		startRefused(t, backend, d1, nil, "locked by another process")
		more := spreadRecords(safetyTopic+"-more", 100, 4, 600, true)
		cl := newClient(t, b.Addr)
		produceSync(t, cl, safetyTopic, more)
		cl.Close()
		recs = append(recs, more...)
		verifyServed(t, "first broker, after the second was refused", b, 4, recs)
		b.Stop(t)
		b = startBroker(t, backend, map[string]string{"log.dirs": d0 + "," + d1})
		verifyServed(t, "after a restart", b, 4, recs)
	})
}
