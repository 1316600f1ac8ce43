package controller

// Datadriven scripts (github.com/cockroachdb/datadriven, laid out as the
// metadata package's): each testdata/*.txt file is a script of commands,
// each followed by "----" and the output it must produce. Run with
// -rewrite to regenerate the expected outputs after an intended change,
// then review the diff.
//
// The runner keeps a clock (starting at 0), the image, and the metadata
// log's next offset (one per record applied). After every command it
// applies the records the controller emitted to the image, failing the
// test if the image refuses one, and prints them, then the response.
// Topic ids are small numbers N (the uuid whose last byte is N), handed
// out 1, 2, 3... by Config.NewUUID.
//
//	new [session=9s] [partitions=N] [rf=N] [rebalance=true|false]   a fresh controller, activated at the clock
//	activate                                    Activate at the clock (a new raft leader)
//	advance d=DUR                               move the clock
//	tick [d=DUR]                                move the clock, then Tick
//	register broker=B [inc=N] [cluster=C] [rack=R] [prev-epoch=E]   (v3; prev-epoch: PreviousBrokerEpoch, default -1)
//	feature name=F level=L                      apply a FeatureLevelRecord
//	heartbeat broker=B [epoch=E] [offset=O] [fence] [shutdown]   (epoch: the image's; offset: the log end)
//	create-topic name=T[,T2...] [partitions=N] [rf=N] [assign=1,2;2,3] [configs=k=v;k2=v2] [validate]
//	delete-topic [name=T] [id=N]
//	create-partitions name=T count=N [assign=1,2;2,3] [validate]
//	elect [unclean] [topic=T p=0,1]             no topic: all partitions
//	alter-configs type=topic|broker name=R [configs=k=v;...]
//	incremental-alter-configs type=topic|broker name=R ops=set:k=v;delete:k;append:k=v;subtract:k=v
//	alter-partition broker=B topic=T p=P isr=1,2 [epoch=E] [leader-epoch=E] [partition-epoch=E] [recovering|recovery=N]
//	                [version=V] [isr-epochs=E1,E2] [id=N]
//	                version defaults to 2 (topic by id; v0-1 by name); from v3 the ISR is sent as
//	                NewEpochISR with each broker's registered epoch unless isr-epochs gives them;
//	                id overrides the topic id sent (an unknown topic by id)
//	reassign topic=T p=P [replicas=1,2,3]       no replicas: cancel
//	list-reassignments
//	image                                       dump the image
//	leaders                                     how many partitions each broker leads

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/metadata"
)

type harness struct {
	t      *testing.T
	c      *Controller
	img    metadata.Image
	now    time.Time
	offset int64
	nextID byte
	// brokerConfigs are the broker config resources scripts touched, for
	// dump (the image has no list of them).
	brokerConfigs map[string]bool
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: time.Unix(0, 0), brokerConfigs: map[string]bool{}}
	h.c = New(h.config(DefaultConfig()))
	h.c.Activate(h.now, h.img)
	return h
}

func (h *harness) config(cfg Config) Config {
	cfg.NodeID, cfg.ClusterID = 3000, "cluster"
	cfg.NewUUID = func() metadata.UUID {
		h.nextID++
		var u metadata.UUID
		u[15] = h.nextID
		return u
	}
	return cfg
}

// apply applies recs to the image, failing the test on a refusal, and
// prints them. (ApplyAll: Apply one at a time copies a topic's
// partitions per record.)
func (h *harness) apply(recs []metadata.Record) string {
	h.t.Helper()
	next, _, err := h.img.ApplyAll(recs)
	if err != nil {
		h.t.Fatalf("records refused: %v", err)
	}
	h.img = next
	var b strings.Builder
	if len(recs) > 1000 {
		fmt.Fprintf(&b, "%d-%d: %d records\n", h.offset, h.offset+int64(len(recs))-1, len(recs))
		h.offset += int64(len(recs))
		return b.String()
	}
	for _, rec := range recs {
		fmt.Fprintf(&b, "%d: %s\n", h.offset, recordStr(rec))
		h.offset++
	}
	return b.String()
}

func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if !strings.HasSuffix(path, ".txt") {
			return
		}
		h := newHarness(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.t = t
			return h.run(d)
		})
	})
}

type args map[string]string

func parseArgs(d *datadriven.TestData) args {
	a := args{}
	for _, arg := range d.CmdArgs {
		a[arg.Key] = strings.Join(arg.Vals, ",")
	}
	return a
}

func (a args) has(k string) bool { _, ok := a[k]; return ok }

func (a args) int(t *testing.T, k string, def int64) int64 {
	s, ok := a[k]
	if !ok {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, s, err)
	}
	return v
}

func (a args) dur(t *testing.T, k string) time.Duration {
	s, ok := a[k]
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, s, err)
	}
	return v
}

func int32s(t *testing.T, s string) []int32 {
	if s == "" {
		return []int32{}
	}
	var out []int32
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		out = append(out, int32(v))
	}
	return out
}

// assignment parses "1,2;2,3".
func assignment(t *testing.T, s string) [][]int32 {
	var out [][]int32
	for _, p := range strings.Split(s, ";") {
		out = append(out, int32s(t, p))
	}
	return out
}

func (h *harness) run(d *datadriven.TestData) string {
	t := h.t
	a := parseArgs(d)
	switch d.Cmd {
	case "new":
		cfg := DefaultConfig()
		if a.has("session") {
			cfg.SessionTimeout = a.dur(t, "session")
		}
		cfg.DefaultPartitions = int32(a.int(t, "partitions", 1))
		cfg.DefaultReplicationFactor = int16(a.int(t, "rf", 1))
		cfg.AutoLeaderRebalance = a["rebalance"] != "false"
		h.c = New(h.config(cfg))
		h.c.Activate(h.now, h.img)
		return "ok\n"
	case "activate":
		h.c.Activate(h.now, h.img)
		return "ok\n"
	case "advance":
		h.now = h.now.Add(a.dur(t, "d"))
		return fmt.Sprintf("now %s\n", h.now.Sub(time.Unix(0, 0)))
	case "tick":
		h.now = h.now.Add(a.dur(t, "d"))
		out := h.apply(h.c.Tick(h.now, h.img))
		if out == "" {
			return "no records\n"
		}
		return out
	case "image":
		return h.dump()
	case "feature":
		// A finalized feature level, as an UpdateFeatures would write
		// it (the controller does not answer UpdateFeatures yet).
		return h.apply([]metadata.Record{&metadata.FeatureLevelRecord{Name: a["name"], FeatureLevel: int16(a.int(t, "level", 0))}})
	case "leaders":
		return h.leaders()
	}
	resp, recs := h.request(d, a)
	return h.apply(recs) + resp
}

func errName(code int16) string {
	if code == 0 {
		return "ok"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}

func msgStr(m *string) string {
	if m == nil {
		return ""
	}
	return " (" + *m + ")"
}

func idStr(u metadata.UUID) string {
	if u == (metadata.UUID{}) {
		return "0"
	}
	if slices.Equal(u[:15], make([]byte, 15)) {
		return strconv.Itoa(int(u[15]))
	}
	return fmt.Sprintf("%x", u)
}

func recordStr(rec metadata.Record) string {
	switch r := rec.(type) {
	case *metadata.RegisterBrokerRecord:
		s := fmt.Sprintf("register broker=%d epoch=%d inc=%s fenced=%t", r.BrokerID, r.BrokerEpoch, idStr(r.IncarnationID), r.Fenced)
		if r.Rack != "" {
			s += " rack=" + r.Rack
		}
		return s
	case *metadata.FenceBrokerRecord:
		return fmt.Sprintf("fence broker=%d epoch=%d", r.ID, r.Epoch)
	case *metadata.UnfenceBrokerRecord:
		return fmt.Sprintf("unfence broker=%d epoch=%d", r.ID, r.Epoch)
	case *metadata.TopicRecord:
		return fmt.Sprintf("topic %s id=%s", r.Name, idStr(r.TopicID))
	case *metadata.RemoveTopicRecord:
		return fmt.Sprintf("remove-topic id=%s", idStr(r.TopicID))
	case *metadata.PartitionRecord:
		return fmt.Sprintf("partition id=%s p=%d replicas=%v isr=%v leader=%d", idStr(r.TopicID), r.PartitionID, r.Replicas, r.ISR, r.Leader)
	case *metadata.PartitionChangeRecord:
		s := fmt.Sprintf("change id=%s p=%d", idStr(r.TopicID), r.PartitionID)
		if r.Leader != metadata.NoLeaderChange {
			s += fmt.Sprintf(" leader=%d", r.Leader)
		}
		for _, f := range []struct {
			name string
			v    []int32
		}{{"isr", r.ISR}, {"replicas", r.Replicas}, {"adding", r.AddingReplicas}, {"removing", r.RemovingReplicas},
			{"elr", r.EligibleLeaderReplicas}, {"last-elr", r.LastKnownELR}} {
			if f.v != nil {
				s += fmt.Sprintf(" %s=%v", f.name, f.v)
			}
		}
		if r.LeaderRecoveryState != metadata.NoRecoveryStateChange {
			s += fmt.Sprintf(" recovery=%d", r.LeaderRecoveryState)
		}
		return s
	case *metadata.FeatureLevelRecord:
		return fmt.Sprintf("feature %s=%d", r.Name, r.FeatureLevel)
	case *metadata.ConfigRecord:
		typ := "topic"
		if r.ResourceType == metadata.ResourceBroker {
			typ = "broker"
		}
		if r.Value == nil {
			return fmt.Sprintf("config %s=%q delete %s", typ, r.ResourceName, r.Name)
		}
		return fmt.Sprintf("config %s=%q %s=%s", typ, r.ResourceName, r.Name, *r.Value)
	}
	return fmt.Sprintf("%T %+v", rec, rec)
}

func (h *harness) dump() string {
	var b strings.Builder
	for _, br := range h.img.Brokers() {
		fmt.Fprintf(&b, "broker %d epoch=%d fenced=%t", br.ID, br.Epoch, br.Fenced)
		if br.Rack != "" {
			fmt.Fprintf(&b, " rack=%s", br.Rack)
		}
		if s := h.c.sessions[br.ID]; s != nil {
			fmt.Fprintf(&b, " deadline=%s", s.deadline.Sub(time.Unix(0, 0)))
			if s.shuttingDown {
				b.WriteString(" shutting-down")
			}
		}
		b.WriteString("\n")
	}
	for _, t := range h.img.Topics() {
		fmt.Fprintf(&b, "topic %s id=%s\n", t.Name, idStr(t.ID))
		for _, id := range partitionIDs(t) {
			p := t.Partitions[id]
			fmt.Fprintf(&b, "  p%d replicas=%v isr=%v leader=%d leader-epoch=%d epoch=%d", id, p.Replicas, p.ISR,
				p.Leader, p.LeaderEpoch, p.PartitionEpoch)
			if p.LeaderRecoveryState != 0 {
				b.WriteString(" recovering")
			}
			if p.AddingReplicas != nil || p.RemovingReplicas != nil {
				fmt.Fprintf(&b, " adding=%v removing=%v", p.AddingReplicas, p.RemovingReplicas)
			}
			if p.ELR != nil || p.LastKnownELR != nil {
				fmt.Fprintf(&b, " elr=%v last-elr=%v", p.ELR, p.LastKnownELR)
			}
			b.WriteString("\n")
		}
		if c := h.img.Configs(metadata.ConfigResource{Type: metadata.ResourceTopic, Name: t.Name}); len(c) > 0 {
			fmt.Fprintf(&b, "  configs %s\n", configStr(c))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.brokerConfigs)) {
		if c := h.img.Configs(metadata.ConfigResource{Type: metadata.ResourceBroker, Name: name}); len(c) > 0 {
			fmt.Fprintf(&b, "broker config %q %s\n", name, configStr(c))
		}
	}
	if b.Len() == 0 {
		return "empty\n"
	}
	return b.String()
}

func configStr(c map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, k+"="+c[k])
	}
	return strings.Join(parts, " ")
}

func (h *harness) leaders() string {
	led, preferred := map[int32]int{}, map[int32]int{}
	offline := 0
	for _, t := range h.img.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == metadata.NoLeader {
				offline++
			} else {
				led[p.Leader]++
			}
			preferred[p.Replicas[0]]++
		}
	}
	var b strings.Builder
	for _, br := range h.img.Brokers() {
		fmt.Fprintf(&b, "broker %d leads %d (preferred for %d)\n", br.ID, led[br.ID], preferred[br.ID])
	}
	fmt.Fprintf(&b, "offline %d\n", offline)
	return b.String()
}
