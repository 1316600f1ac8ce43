//go:build linux

package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// A single node with topics, records and a config override upgrades in
// place to a one-voter quorum (process.roles set, itself the only voter):
// its topics become the first metadata records with their ids, configs
// and data, and it keeps serving them and creating new ones.
func TestClusterUpgradeInPlace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const parts = 3
		single := startBroker(t, backend, nil)
		dir := single.Dir
		createTopic(t, single.Addr, safetyTopic, parts, map[string]string{"retention.ms": "123456789"})
		recs := spreadRecords(safetyTopic, 300, parts, 200, false)
		cl := newClient(t, single.Addr)
		produceSync(t, cl, safetyTopic, recs)
		cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		before := topicID(ctx, t, single.Addr, safetyTopic)
		single.Stop(t)

		ctlPort := freePort(t)
		clustered := startBroker(t, backend, oneVoterProps(dir, ctlPort))
		// The topic is served once the quorum elected this node and it
		// adopted its topics: wait for it with a bound.
		adm := kadm.NewClient(newClient(t, clustered.Addr))
		deadline := time.Now().Add(30 * time.Second)
		for {
			md, err := adm.Metadata(ctx, safetyTopic)
			if err == nil && md.Topics[safetyTopic].Err == nil && allLed(md.Topics[safetyTopic], parts) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the single node's topic is not served after the upgrade: %v %+v\n%s", err, md.Topics, clustered.Logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if after := topicID(ctx, t, clustered.Addr, safetyTopic); after != before {
			t.Errorf("topic id changed by the upgrade: %x, was %x", after, before)
		}
		rc, err := adm.DescribeTopicConfigs(ctx, safetyTopic)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := rc.On(safetyTopic, nil); err != nil || !hasConfig(v, "retention.ms", "123456789") {
			t.Errorf("retention.ms override lost by the upgrade: %v %+v", err, v)
		}
		verifyServed(t, "after the upgrade", clustered, parts, recs)
		if !strings.Contains(clustered.Logs(), "adding a local topic to the cluster metadata") {
			t.Errorf("the upgrade did not say it adopted the topic")
		}
		// New topics go through the controller now.
		r, err := adm.CreateTopic(ctx, 2, -1, nil, "born-clustered")
		if err != nil || r.Err != nil {
			t.Fatalf("create after the upgrade: %v %v", err, r.Err)
		}
		// And a restart replays the metadata log: nothing adopted twice.
		clustered.Stop(t)
		again := startBroker(t, backend, oneVoterProps(dir, ctlPort))
		deadline = time.Now().Add(30 * time.Second)
		for {
			md, err := kadm.NewClient(newClient(t, again.Addr)).Metadata(ctx)
			if err == nil && allLed(md.Topics[safetyTopic], parts) && allLed(md.Topics["born-clustered"], 2) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topics not served after the restart: %v\n%s", err, again.Logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
		verifyServed(t, "after the clustered restart", again, parts, recs)
		if strings.Contains(again.Logs(), "adding a local topic") {
			t.Errorf("a registered node adopted local topics again")
		}
	})
}

// allLed says whether td has parts partitions, each with a leader. The
// waits above ask for leaders, not just partitions: a consumer that first
// sees a partition without one waits for kgo's next metadata refresh
// (seconds) before it fetches.
func allLed(td kadm.TopicDetail, parts int) bool {
	if len(td.Partitions) != parts {
		return false
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

func topicID(ctx context.Context, t *testing.T, addr, topic string) [16]byte {
	t.Helper()
	md, err := kadm.NewClient(newClient(t, addr)).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return md.Topics[topic].ID
}

func hasConfig(rc kadm.ResourceConfig, key, value string) bool {
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// oneVoterProps are the keys of node 0 as the only voter of its quorum, on
// log dir dir with its CONTROLLER listener on ctlPort.
func oneVoterProps(dir string, ctlPort int) map[string]string {
	return map[string]string{
		"log.dirs":                       dir,
		"listeners":                      "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:" + strconv.Itoa(ctlPort),
		"process.roles":                  "broker,controller",
		"node.id":                        "0",
		"controller.quorum.voters":       "0@127.0.0.1:" + strconv.Itoa(ctlPort),
		"controller.listener.names":      "CONTROLLER",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
	}
}
