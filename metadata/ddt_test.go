package metadata

// Datadriven scripts (github.com/cockroachdb/datadriven, laid out as the
// group package's): each testdata/*.txt file is a script of commands, each
// followed by "----" and the output it must produce. Run with -rewrite to
// regenerate the expected outputs after an intended change, then review the
// diff.
//
// Every record command builds a record, sends it through Encode and Decode,
// applies it to the current image and prints the delta (or the error, the
// image then unchanged). The runner checks that applying left the previous
// image as it was. Topic ids are written as a small number N, the uuid
// whose last byte is N.
//
//	topic name=T id=N
//	remove-topic id=N
//	partition id=N p=P replicas=1,2 [isr=1,2] [leader=L] [leader-epoch=E] [epoch=E] [adding=] [removing=] [recovery=S] [elr=] [last-elr=]
//	change id=N p=P [isr=1,2] [leader=L] [replicas=] [adding=] [removing=] [recovery=S] [elr=] [last-elr=]
//	register broker=B [epoch=E] [rack=R] [fenced=true|false] [host=H] [port=P]
//	unregister broker=B epoch=E
//	fence broker=B epoch=E
//	unfence broker=B epoch=E
//	config type=topic|broker|N name=R key=K [value=V]     (no value deletes)
//	feature name=F level=L
//	pids broker=B epoch=E end=N
//	image                                                 dump the image

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if !strings.HasSuffix(path, ".txt") {
			return
		}
		var im Image
		var applied []Record // every record the script's image accepted
		defer func() { checkApplyAll(t, applied, im) }()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd == "image" {
				return dump(im)
			}
			rec := buildRecord(t, d)
			got, err := Decode(Encode(nil, rec))
			if err != nil {
				t.Fatalf("%s: codec: %v", d.Pos, err)
			}
			before := dump(im)
			beforeTopics := im.Topics()
			next, delta, err := im.Apply(got)
			if dump(im) != before || !reflect.DeepEqual(im.Topics(), beforeTopics) {
				t.Fatalf("%s: Apply changed the image it was called on", d.Pos)
			}
			if err != nil {
				if !reflect.DeepEqual(next, im) {
					t.Fatalf("%s: a failed Apply returned a changed image", d.Pos)
				}
				return "error: " + err.Error() + "\n"
			}
			im = next
			applied = append(applied, got)
			return dumpDelta(delta)
		})
	})
}

// checkApplyAll checks that ApplyAll of the records a script applied one
// by one builds the same image, in one batch and in two (the second on top
// of the first, which it must leave as it was), with the same deltas.
func checkApplyAll(t *testing.T, recs []Record, want Image) {
	t.Helper()
	var one []Delta
	var seq Image
	for _, rec := range recs {
		next, d, err := seq.Apply(rec)
		if err != nil {
			t.Fatalf("replaying %+v: %v", rec, err)
		}
		seq, one = next, append(one, d)
	}
	all, deltas, err := Image{}.ApplyAll(recs)
	if err != nil {
		t.Fatal(err)
	}
	if dump(all) != dump(want) || !reflect.DeepEqual(deltas, one) {
		t.Fatalf("ApplyAll differs from Apply one at a time:\n%s\nwant\n%s", dump(all), dump(want))
	}
	// The image's snapshot records, through the batch codec, rebuild it.
	snap, err := DecodeBatch(EncodeBatch(nil, want.Records()))
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, _, err := Image{}.ApplyAll(snap)
	if err != nil {
		t.Fatalf("applying the snapshot records: %v", err)
	}
	if dump(rebuilt) != dump(want) {
		t.Fatalf("snapshot records rebuild a different image:\n%s\nwant\n%s", dump(rebuilt), dump(want))
	}
	half, _, err := Image{}.ApplyAll(recs[:len(recs)/2])
	if err != nil {
		t.Fatal(err)
	}
	halfDump := dump(half)
	rest, _, err := half.ApplyAll(recs[len(recs)/2:])
	if err != nil {
		t.Fatal(err)
	}
	if dump(rest) != dump(want) || dump(half) != halfDump {
		t.Fatalf("ApplyAll in two batches: got\n%s\nwant\n%s (first half changed: %t)", dump(rest), dump(want), dump(half) != halfDump)
	}
}

type args map[string]string

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

func (a args) ints(t *testing.T, k string) []int32 {
	s, ok := a[k]
	if !ok {
		return nil
	}
	out := []int32{}
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			t.Fatalf("%s=%q: %v", k, s, err)
		}
		out = append(out, int32(v))
	}
	return out
}

func (a args) id(t *testing.T) UUID {
	var u UUID
	u[15] = byte(a.int(t, "id", 0))
	return u
}

func buildRecord(t *testing.T, d *datadriven.TestData) Record {
	a := args{}
	for _, c := range d.CmdArgs {
		a[c.Key] = strings.Join(c.Vals, ",")
	}
	i32 := func(k string, def int64) int32 { return int32(a.int(t, k, def)) }
	switch d.Cmd {
	case "topic":
		return &TopicRecord{Name: a["name"], TopicID: a.id(t)}
	case "remove-topic":
		return &RemoveTopicRecord{TopicID: a.id(t)}
	case "partition":
		r := &PartitionRecord{PartitionID: i32("p", 0), TopicID: a.id(t), Replicas: a.ints(t, "replicas"),
			ISR: a.ints(t, "isr"), Leader: i32("leader", -1), LeaderEpoch: i32("leader-epoch", 0),
			PartitionEpoch: i32("epoch", 0), LeaderRecoveryState: int8(a.int(t, "recovery", 0)), AddingReplicas: a.ints(t, "adding"), RemovingReplicas: a.ints(t, "removing")}
		if !a.has("isr") {
			r.ISR = slices.Clone(r.Replicas)
		}
		if a.has("elr") || a.has("last-elr") {
			r.Ver, r.EligibleLeaderReplicas, r.LastKnownELR = 2, a.ints(t, "elr"), a.ints(t, "last-elr")
		}
		if len(r.Replicas) == 0 {
			r.Replicas = nil // the codec's form of a non-nullable empty array
		}
		for _, a := range []*[]int32{&r.ISR, &r.AddingReplicas, &r.RemovingReplicas} {
			if len(*a) == 0 {
				*a = nil
			}
		}
		return r
	case "change":
		r := &PartitionChangeRecord{PartitionID: i32("p", 0), TopicID: a.id(t), ISR: a.ints(t, "isr"),
			Leader: i32("leader", int64(NoLeaderChange)), Replicas: a.ints(t, "replicas"),
			AddingReplicas: a.ints(t, "adding"), RemovingReplicas: a.ints(t, "removing"),
			LeaderRecoveryState: int8(a.int(t, "recovery", int64(NoRecoveryStateChange)))}
		if a.has("elr") || a.has("last-elr") {
			r.Ver, r.EligibleLeaderReplicas, r.LastKnownELR = 2, a.ints(t, "elr"), a.ints(t, "last-elr")
		}
		return r
	case "register":
		r := &RegisterBrokerRecord{Ver: 3, BrokerID: i32("broker", 0), BrokerEpoch: a.int(t, "epoch", 0),
			Rack: a["rack"], Fenced: a["fenced"] != "false"}
		if a.has("host") {
			r.Endpoints = []Endpoint{{Name: "PLAINTEXT", Host: a["host"], Port: uint16(a.int(t, "port", 9092))}}
		}
		return r
	case "unregister":
		return &UnregisterBrokerRecord{BrokerID: i32("broker", 0), BrokerEpoch: a.int(t, "epoch", 0)}
	case "fence":
		return &FenceBrokerRecord{ID: i32("broker", 0), Epoch: a.int(t, "epoch", 0)}
	case "unfence":
		return &UnfenceBrokerRecord{ID: i32("broker", 0), Epoch: a.int(t, "epoch", 0)}
	case "config":
		r := &ConfigRecord{ResourceName: a["name"], Name: a["key"]}
		switch a["type"] {
		case "topic":
			r.ResourceType = ResourceTopic
		case "broker":
			r.ResourceType = ResourceBroker
		default:
			r.ResourceType = int8(a.int(t, "type", 0))
		}
		if v, ok := a["value"]; ok {
			r.Value = &v
		}
		return r
	case "feature":
		return &FeatureLevelRecord{Name: a["name"], FeatureLevel: int16(a.int(t, "level", 0))}
	case "pids":
		return &ProducerIDsRecord{BrokerID: i32("broker", 0), BrokerEpoch: a.int(t, "epoch", 0), ProducerIDsEnd: a.int(t, "end", 0)}
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return nil
}

func idStr(u UUID) string {
	if u == (UUID{15: u[15]}) {
		return strconv.Itoa(int(u[15]))
	}
	return fmt.Sprintf("%x", u)
}

func refStr(r PartitionRef) string { return fmt.Sprintf("%s/%d", idStr(r.TopicID), r.Partition) }

func resStr(r ConfigResource) string {
	switch r.Type {
	case ResourceTopic:
		return "topic:" + r.Name
	case ResourceBroker:
		return "broker:" + r.Name
	}
	return fmt.Sprintf("%d:%s", r.Type, r.Name)
}

func join[T any](xs []T, f func(T) string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = f(x)
	}
	return strings.Join(s, " ")
}

func dumpDelta(d Delta) string {
	var b strings.Builder
	line := func(name, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	line("added topics", join(d.AddedTopics, idStr))
	line("removed topics", join(d.RemovedTopics, func(t Topic) string {
		return fmt.Sprintf("%s(%s, %d partitions)", t.Name, idStr(t.ID), len(t.Partitions))
	}))
	line("added partitions", join(d.AddedPartitions, refStr))
	line("changed partitions", join(d.ChangedPartitions, refStr))
	line("changed brokers", join(d.ChangedBrokers, func(id int32) string { return strconv.Itoa(int(id)) }))
	line("changed configs", join(d.ChangedConfigs, resStr))
	line("changed features", join(d.ChangedFeatures, func(s string) string { return s }))
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

func dump(im Image) string {
	var b strings.Builder
	for _, br := range im.Brokers() {
		fmt.Fprintf(&b, "broker %d epoch=%d fenced=%t", br.ID, br.Epoch, br.Fenced)
		if br.Rack != "" {
			fmt.Fprintf(&b, " rack=%s", br.Rack)
		}
		for _, e := range br.Endpoints {
			fmt.Fprintf(&b, " %s://%s:%d", e.Name, e.Host, e.Port)
		}
		b.WriteString("\n")
	}
	for _, t := range im.Topics() {
		fmt.Fprintf(&b, "topic %s id=%s\n", t.Name, idStr(t.ID))
		for _, id := range slices.Sorted(maps.Keys(t.Partitions)) {
			p := t.Partitions[id]
			fmt.Fprintf(&b, "  p%d replicas=%v isr=%v leader=%d leader-epoch=%d epoch=%d", id, p.Replicas, p.ISR,
				p.Leader, p.LeaderEpoch, p.PartitionEpoch)
			if p.LeaderRecoveryState != 0 {
				fmt.Fprintf(&b, " recovering")
			}
			if p.AddingReplicas != nil || p.RemovingReplicas != nil {
				fmt.Fprintf(&b, " adding=%v removing=%v", p.AddingReplicas, p.RemovingReplicas)
			}
			if p.ELR != nil || p.LastKnownELR != nil {
				fmt.Fprintf(&b, " elr=%v last-elr=%v", p.ELR, p.LastKnownELR)
			}
			b.WriteString("\n")
		}
		if c := im.Configs(ConfigResource{Type: ResourceTopic, Name: t.Name}); len(c) > 0 {
			fmt.Fprintf(&b, "  configs %s\n", configStr(c))
		}
	}
	for _, res := range slices.SortedFunc(func(yield func(ConfigResource) bool) {
		for r := range im.configs {
			if r.Type != ResourceTopic && !yield(r) {
				return
			}
		}
	}, func(x, y ConfigResource) int { return strings.Compare(resStr(x), resStr(y)) }) {
		fmt.Fprintf(&b, "config %s %s\n", resStr(res), configStr(im.Configs(res)))
	}
	for _, f := range slices.Sorted(maps.Keys(im.features)) {
		l, _ := im.FeatureLevel(f)
		fmt.Fprintf(&b, "feature %s=%d\n", f, l)
	}
	if im.ProducerIDsEnd() != 0 {
		fmt.Fprintf(&b, "producer ids end=%d\n", im.ProducerIDsEnd())
	}
	for _, c := range im.ScramCredentials() {
		fmt.Fprintf(&b, "scram %s/%d iterations=%d salt=%x\n", c.Name, c.Mechanism, c.Iterations, c.Salt)
	}
	for _, a := range im.ACLs() {
		fmt.Fprintf(&b, "acl %s %d:%s/%d %s@%s op=%d perm=%d\n", idStr(a.ID), a.ResourceType, a.ResourceName, a.PatternType,
			a.Principal, a.Host, a.Operation, a.PermissionType)
	}
	if b.Len() == 0 {
		return "empty\n"
	}
	return b.String()
}

func configStr(c map[string]string) string {
	return join(slices.Sorted(maps.Keys(c)), func(k string) string { return k + "=" + c[k] })
}
