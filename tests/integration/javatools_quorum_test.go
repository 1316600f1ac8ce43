//go:build javatools

package integration

// kafka-metadata-quorum.sh (Kafka 3.9's tools) against a static and a
// dynamic quorum (KIP-853) on three daemons, both backends. See
// javatools_test.go for how to run.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	quorumListRe  = regexp.MustCompile(`(?m)^(CurrentVoters|CurrentObservers):\s+\[(.*)\]$`)
	quorumIDRe    = regexp.MustCompile(`\{"id": (\d+)`)
	replicationRe = regexp.MustCompile(`(?m)^(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(Leader|Follower|Observer)\s*$`)
	// replicationHumanRe is a row of describe --replication --human-readable:
	// node id, directory id, log end offset, lag, "N ms ago" twice, status.
	replicationHumanRe = regexp.MustCompile(`(?m)^(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+) ms ago\s+(\d+) ms ago\s+(Leader|Follower|Observer)\s*$`)
	maxLagTimeRe       = regexp.MustCompile(`(?m)^MaxFollowerLagTimeMs:\s+(-?\d+)\s*$`)
)

// checkQuorumToolTimes: the quorum's fetch and caught-up times as the Java
// tool shows them. describe --status: MaxFollowerLagTimeMs a small
// non-negative figure (the leader's caught-up time minus the most lagging
// voter's); describe --replication: every member's LastFetchTimestamp and
// LastCaughtUpTimestamp epoch milliseconds of the last few seconds, caught
// up no later than fetched; --human-readable: "N ms ago", N small, for
// every row (the tool refuses a time in the future or at -1 there).
func checkQuorumToolTimes(t *testing.T, bootstrap string, members int) {
	t.Helper()
	out := runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", bootstrap, "describe", "--status")
	m := maxLagTimeRe.FindStringSubmatch(out)
	if m == nil {
		t.Errorf("describe --status has no MaxFollowerLagTimeMs:\n%s", out)
	} else if lag, _ := strconv.Atoi(m[1]); lag < 0 || lag > 10_000 {
		t.Errorf("describe --status: MaxFollowerLagTimeMs %d:\n%s", lag, out)
	}
	before := time.Now().UnixMilli()
	out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", bootstrap, "describe", "--replication")
	after := time.Now().UnixMilli()
	rows := replicationRe.FindAllStringSubmatch(out, -1)
	if len(rows) != members {
		t.Errorf("describe --replication: %d rows, want %d:\n%s", len(rows), members, out)
	}
	for _, r := range rows {
		fetched, err1 := strconv.ParseInt(r[5], 10, 64)
		caughtUp, err2 := strconv.ParseInt(r[6], 10, 64)
		if err1 != nil || err2 != nil || fetched < before-10_000 || fetched > after || caughtUp < before-10_000 || caughtUp > fetched {
			t.Errorf("describe --replication: node %s last fetch %s, last caught up %s (asked between %d and %d):\n%s",
				r[1], r[5], r[6], before, after, out)
		}
	}
	out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", bootstrap, "describe", "--replication", "--human-readable")
	t.Logf("describe --replication --human-readable:\n%s", out)
	rows = replicationHumanRe.FindAllStringSubmatch(out, -1)
	if len(rows) != members {
		t.Errorf("describe --replication --human-readable: %d rows, want %d:\n%s", len(rows), members, out)
	}
	for _, r := range rows {
		fetched, _ := strconv.Atoi(r[5])
		caughtUp, _ := strconv.Atoi(r[6])
		if fetched > 10_000 || caughtUp > 10_000 || caughtUp < fetched {
			t.Errorf("describe --replication --human-readable: node %s fetched %d ms ago, caught up %d ms ago:\n%s", r[1], fetched, caughtUp, out)
		}
	}
}

// quorumMembers parses describe --status: CurrentVoters or CurrentObservers
// as ids, in Kafka 3.8's form ([1,2,3]) or 3.9's ([{"id": 1, ...}, ...]).
func quorumMembers(out, which string) []int32 {
	var ids []int32
	for _, m := range quorumListRe.FindAllStringSubmatch(out, -1) {
		if m[1] != which {
			continue
		}
		if sub := quorumIDRe.FindAllStringSubmatch(m[2], -1); len(sub) > 0 {
			for _, s := range sub {
				n, _ := strconv.Atoi(s[1])
				ids = append(ids, int32(n))
			}
		} else {
			for _, f := range strings.Split(m[2], ",") {
				if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
					ids = append(ids, int32(n))
				}
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// replicationRows parses describe --replication: node id -> status.
func replicationRows(out string) map[int32]string {
	rows := map[int32]string{}
	for _, m := range replicationRe.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		rows[int32(n)] = m[7]
	}
	return rows
}

// waitQuorumTool runs describe --status through bootstrap until it shows
// these voters and observers (bounded by count and time) and returns the
// output.
func waitQuorumTool(t *testing.T, bootstrap string, voters, observers []int32) string {
	t.Helper()
	var out string
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < 15 && time.Now().Before(deadline); i++ {
		out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", bootstrap, "describe", "--status")
		if slices.Equal(quorumMembers(out, "CurrentVoters"), voters) && slices.Equal(quorumMembers(out, "CurrentObservers"), observers) {
			return out
		}
	}
	t.Fatalf("kafka-metadata-quorum.sh describe --status never showed voters %v observers %v; last:\n%s", voters, observers, out)
	return ""
}

// writeNodeProps writes node n's server.properties (what add-controller
// reads: node.id, process.roles, listeners, controller.listener.names,
// log.dirs) to a file.
func writeNodeProps(t *testing.T, c *testCluster, n *clusterNode) string {
	t.Helper()
	props := c.props(n)
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("node-%d.properties", n.id))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJavaToolsQuorum: describe --status and --replication on a static
// quorum of three; then a dynamic quorum (node 1 standalone, nodes 2 and 3
// observers) grown with add-controller (each node's own config, as Kafka's
// docs say) and shrunk with remove-controller, describe after each step.
func TestJavaToolsQuorum(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		t.Run("static", func(t *testing.T) {
			c := newTestCluster(t, backend)
			c.start(t)
			all := strings.Join(c.seeds(), ",")
			out := waitQuorumTool(t, all, []int32{1, 2, 3}, nil)
			t.Logf("describe --status:\n%s", out)
			if !regexp.MustCompile(`LeaderId:\s+[123]\b`).MatchString(out) {
				t.Errorf("describe --status has no leader:\n%s", out)
			}
			out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", all, "describe", "--replication")
			t.Logf("describe --replication:\n%s", out)
			rows := replicationRows(out)
			leaders := 0
			for id, st := range rows {
				if st == "Leader" {
					leaders++
				}
				if id < 1 || id > 3 || st == "Observer" {
					t.Errorf("describe --replication: node %d %s", id, st)
				}
			}
			if len(rows) != 3 || leaders != 1 {
				t.Errorf("describe --replication: rows %v, want nodes 1-3 with one leader:\n%s", rows, out)
			}
			checkQuorumToolTimes(t, all, 3)
		})
		t.Run("dynamic", func(t *testing.T) {
			c := newTestCluster(t, backend)
			var bootstrap []string
			for _, n := range c.nodes {
				bootstrap = append(bootstrap, n.ctlAddr())
			}
			c.editProps = func(n *clusterNode, props map[string]string) {
				delete(props, "controller.quorum.voters")
				props["controller.quorum.bootstrap.servers"] = strings.Join(bootstrap, ",")
				if n.id == 1 {
					props["controller.quorum.standalone"] = "true"
				}
			}
			c.startNodes(t, c.node(1))
			c.waitReady(t)
			c.startNodes(t, c.node(2), c.node(3))
			c.waitReady(t)
			all := strings.Join(c.seeds(), ",")
			out := waitQuorumTool(t, all, []int32{1}, []int32{2, 3})
			t.Logf("describe --status, node 1 standalone:\n%s", out)

			for _, id := range []int32{2, 3} {
				cfg := writeNodeProps(t, c, c.node(id))
				out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", all, "--command-config", cfg, "add-controller")
				t.Logf("add-controller (node %d's config):\n%s", id, out)
				want := fmt.Sprintf("Added controller %d with directory id ", id)
				if !strings.Contains(out, want) || !strings.Contains(out, "CONTROLLER://"+c.node(id).ctlAddr()) {
					t.Fatalf("add-controller %d:\n%s", id, out)
				}
			}
			out = waitQuorumTool(t, all, []int32{1, 2, 3}, nil)
			t.Logf("describe --status after two add-controller:\n%s", out)
			out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", all, "describe", "--replication")
			t.Logf("describe --replication:\n%s", out)
			if rows := replicationRows(out); len(rows) != 3 {
				t.Errorf("describe --replication: rows %v, want three voters", rows)
			}
			checkQuorumToolTimes(t, all, 3)
			// Each voter's directory id is its meta.properties' (node 1's
			// from its own at the bootstrap, 2's and 3's from their join
			// and add-controller).
			for _, m := range replicationRe.FindAllStringSubmatch(out, -1) {
				id, _ := strconv.Atoi(m[1])
				if want := metaProps(t, c.node(int32(id)))["directory.id"]; m[2] != want {
					t.Errorf("describe --replication: node %d directory id %s, want %s (its meta.properties)", id, m[2], want)
				}
			}

			// Remove a voter that is not the controller, naming the
			// directory id its meta.properties holds.
			gone := c.nonController(t)
			meta := metaProps(t, gone)
			// Another directory id names another replica: refused.
			argv := []string{"-c", `"$0" "$@" 2>&1`, javaTool(t, "kafka-metadata-quorum.sh"), "--bootstrap-server", all, "remove-controller",
				"--controller-id", strconv.Itoa(int(gone.id)), "--controller-directory-id", "AAAAAAAAAAAAAAAAAAAAAQ"}
			out, err := runClient(t, javaToolTimeout, []string{"KAFKA_HEAP_OPTS=-Xmx512m"}, "/bin/sh", argv...)
			t.Logf("remove-controller %d with another directory id (%v):\n%s", gone.id, err, out)
			if err == nil || !strings.Contains(out, "VoterNotFoundException") {
				t.Fatalf("remove-controller %d with another directory id:\n%s", gone.id, out)
			}
			out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", all, "remove-controller",
				"--controller-id", strconv.Itoa(int(gone.id)), "--controller-directory-id", meta["directory.id"])
			t.Logf("remove-controller %d:\n%s", gone.id, out)
			// (Kafka 3.9 prints "Removed  KRaft": two spaces.)
			if !regexp.MustCompile(fmt.Sprintf(`Removed\s+KRaft controller %d with directory id %s`, gone.id, regexp.QuoteMeta(meta["directory.id"]))).MatchString(out) {
				t.Fatalf("remove-controller %d:\n%s", gone.id, out)
			}
			var rest []int32
			for _, n := range c.nodes {
				if n != gone {
					rest = append(rest, n.id)
				}
			}
			out = waitQuorumTool(t, all, rest, []int32{gone.id})
			t.Logf("describe --status after remove-controller %d:\n%s", gone.id, out)
			checkQuorumToolTimes(t, all, 3) // the removed voter goes on as an observer
			createTopicVia(t, gone, "dyn-java-after-remove", 3, nil, clusterStepTimeout)
			c.waitTopicsEverywhere(t, map[string]int32{"dyn-java-after-remove": 3}, clusterStepTimeout)
		})
	})
}

// metaProps reads node n's meta.properties.
func metaProps(t *testing.T, n *clusterNode) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(n.dir, "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			meta[k] = v
		}
	}
	return meta
}
