//go:build javatools

package integration

// kafka-features.sh (Kafka 3.9's tools) describe, upgrade, downgrade and
// disable against one node and a three-node cluster, both backends, then
// kafka-metadata-quorum.sh with a broker-only node as the quorum's
// observer. See javatools_test.go for how to run.

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// featureLineRe is a line of kafka-features.sh describe.
var featureLineRe = regexp.MustCompile(`(?m)^Feature: (\S+)\tSupportedMinVersion: (\S+)\tSupportedMaxVersion: (\S+)\tFinalizedVersionLevel: (\S+)\tEpoch: (\S+)\s*$`)

// describeFeatureTool runs kafka-features.sh describe through bootstrap and
// returns feature -> [min, max, finalized, epoch].
func describeFeatureTool(t *testing.T, bootstrap string) map[string][4]string {
	t.Helper()
	out := runJava(t, "kafka-features.sh", "--bootstrap-server", bootstrap, "describe")
	got := map[string][4]string{}
	for _, m := range featureLineRe.FindAllStringSubmatch(out, -1) {
		got[m[1]] = [4]string{m[2], m[3], m[4], m[5]}
	}
	if len(got) == 0 {
		t.Fatalf("kafka-features.sh describe printed no feature:\n%s", out)
	}
	return got
}

// checkFeaturesTool drives kafka-features.sh through bootstrap: describe
// (through each address of describeVia) at the default level 2, a dry-run
// and a real downgrade to 1, refused upgrades, an upgrade to 2 and a
// disable; waitDescribed checks each accepted change.
func checkFeaturesTool(t *testing.T, bootstrap string, describeVia []string, waitDescribed func(level string)) {
	t.Helper()
	for _, via := range describeVia {
		tv := describeFeatureTool(t, via)["transaction.version"]
		if tv[0] != "0" || tv[1] != "2" || tv[2] != "2" {
			t.Fatalf("describe via %s before any update: transaction.version %v", via, tv)
		}
	}
	first := describeFeatureTool(t, describeVia[0])["transaction.version"][3]

	out := runJava(t, "kafka-features.sh", "--bootstrap-server", bootstrap, "downgrade", "--feature", "transaction.version=1", "--dry-run")
	if !strings.Contains(out, "transaction.version can be downgraded to 1.") {
		t.Fatalf("downgrade --dry-run:\n%s", out)
	}
	// (A cluster's nodes each answer their own epoch: compared on one node.)
	if tv := describeFeatureTool(t, describeVia[0])["transaction.version"]; tv[2] != "2" || len(describeVia) == 1 && tv[3] != first {
		t.Fatalf("after a dry run: %v (epoch was %s)", tv, first)
	}
	out = runJava(t, "kafka-features.sh", "--bootstrap-server", bootstrap, "downgrade", "--feature", "transaction.version=1")
	if !strings.Contains(out, "transaction.version was downgraded to 1.") {
		t.Fatalf("downgrade:\n%s", out)
	}
	waitDescribed("1")

	// Refused: above the supported range, and an upgrade asked as a
	// downgrade. The tool exits non-zero and names the reason.
	for _, args := range [][]string{{"upgrade", "--feature", "transaction.version=3"}, {"downgrade", "--feature", "transaction.version=2"}} {
		argv := append([]string{"-c", `"$0" "$@" 2>&1`, javaTool(t, "kafka-features.sh"), "--bootstrap-server", bootstrap}, args...)
		out, err := runClient(t, javaToolTimeout, []string{"KAFKA_HEAP_OPTS=-Xmx512m"}, "/bin/sh", argv...)
		if err == nil || !strings.Contains(out, "Could not "+args[0]+" transaction.version to") || !strings.Contains(out, "Invalid update version") {
			t.Fatalf("kafka-features.sh %v: %v\n%s", args, err, out)
		}
	}
	out = runJava(t, "kafka-features.sh", "--bootstrap-server", bootstrap, "upgrade", "--feature", "transaction.version=2")
	if !strings.Contains(out, "transaction.version was upgraded to 2.") {
		t.Fatalf("upgrade:\n%s", out)
	}
	waitDescribed("2")
	out = runJava(t, "kafka-features.sh", "--bootstrap-server", bootstrap, "disable", "--feature", "transaction.version")
	if !strings.Contains(out, "transaction.version was disabled.") {
		t.Fatalf("disable:\n%s", out)
	}
	waitDescribed("0")
}

func TestJavaToolsFeatures(t *testing.T) {
	javaTool(t, "kafka-features.sh")
	forEachBackend(t, func(t *testing.T, backend string) {
		t.Run("single-node", func(t *testing.T) {
			b := startBroker(t, backend, nil)
			epoch := 0
			checkFeaturesTool(t, b.Addr, []string{b.Addr}, func(level string) {
				epoch++
				tv := describeFeatureTool(t, b.Addr)["transaction.version"]
				if tv[2] != level || tv[3] != strconv.Itoa(epoch) {
					t.Fatalf("describe: transaction.version %v, want level %s epoch %d", tv, level, epoch)
				}
			})
			// Kept across a restart.
			b.Stop(t)
			b2 := startBroker(t, backend, map[string]string{"log.dirs": b.Dir})
			if tv := describeFeatureTool(t, b2.Addr)["transaction.version"]; tv[2] != "0" || tv[3] != strconv.Itoa(epoch) {
				t.Fatalf("after a restart: transaction.version %v, want level 0 epoch %d", tv, epoch)
			}
		})
		t.Run("cluster", func(t *testing.T) {
			c := newTestCluster(t, backend)
			c.start(t)
			all := strings.Join(c.seeds(), ",")
			checkFeaturesTool(t, all, c.seeds(), func(level string) {
				for _, via := range c.seeds() {
					var tv [4]string
					for i := 0; i < 20; i++ { // each node applies the record on its own: bounded retries
						if tv = describeFeatureTool(t, via)["transaction.version"]; tv[2] == level {
							break
						}
					}
					if tv[2] != level || tv[3] == "-" || tv[3] == "0" {
						t.Fatalf("describe via %s: transaction.version %v, want level %s", via, tv, level)
					}
				}
			})
			// A broker-only node is an observer of the quorum for
			// kafka-metadata-quorum.sh, with its times.
			startBrokerOnlyNode(t, c, backend)
			out := waitQuorumTool(t, all, []int32{1, 2, 3}, []int32{4})
			if rows := replicationRows(runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", all, "describe", "--replication")); rows[4] != "Observer" {
				t.Fatalf("describe --replication rows %v\n%s", rows, out)
			}
			checkQuorumToolTimes(t, all, 4)
		})
	})
}
