package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantErr fails unless got is want (nil: no error).
func wantErr(t *testing.T, what string, got error, want *kerr.Error) {
	t.Helper()
	if want == nil && got != nil || want != nil && !errors.Is(got, want) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

func TestAdminCreateListDeleteTopics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.NumPartitions = 2 })
		adm, ctx := tb.admin(), testCtx(t)
		rs, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")}, "orders", "events")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"orders", "events"} {
			r := rs[name]
			if r.Err != nil || r.ID == (kadm.TopicID{}) || r.NumPartitions != 3 || r.ReplicationFactor != 1 {
				t.Fatalf("create %s: %+v", name, r)
			}
			if c := r.Configs["retention.ms"]; c.Value == nil || *c.Value != "60000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Fatalf("create %s retention.ms: %+v", name, c)
			}
			if c := r.Configs["segment.bytes"]; c.Value == nil || *c.Value != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
				t.Fatalf("create %s segment.bytes: %+v", name, c)
			}
		}
		// -1 partitions / replication factor = the broker defaults.
		r, err := adm.CreateTopic(ctx, -1, -1, nil, "defaults")
		if err != nil || r.NumPartitions != 2 || r.ReplicationFactor != 1 {
			t.Fatalf("defaults: %+v %v", r, err)
		}
		for _, tc := range []struct {
			topic string
			parts int32
			rf    int16
			cfg   map[string]*string
			want  *kerr.Error
		}{
			{"orders", 1, 1, nil, kerr.TopicAlreadyExists},
			{"../x", 1, 1, nil, kerr.InvalidTopicException},
			{"a/b", 1, 1, nil, kerr.InvalidTopicException},
			{"zero", 0, 1, nil, kerr.InvalidPartitions},
			{"rf3", 1, 3, nil, kerr.InvalidReplicationFactor},
			{"rf0", 1, 0, nil, kerr.InvalidReplicationFactor},
			{"badcfg", 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("x")}, kerr.InvalidConfig},
			{"unknowncfg", 1, 1, map[string]*string{"bogus.key": kmsg.StringPtr("1")}, kerr.InvalidConfig},
			{"nullcfg", 1, 1, map[string]*string{"retention.ms": nil}, kerr.InvalidConfig},
		} {
			_, err := adm.CreateTopic(ctx, tc.parts, tc.rf, tc.cfg, tc.topic)
			wantErr(t, "create "+tc.topic, err, tc.want)
		}
		// validate only: full answer, nothing created.
		vr, err := adm.ValidateCreateTopics(ctx, 4, 1, nil, "dry")
		if err != nil || vr["dry"].Err != nil || vr["dry"].NumPartitions != 4 {
			t.Fatalf("validate only: %+v %v", vr, err)
		}
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := td.Names(); fmt.Sprint(got) != "[defaults events orders]" {
			t.Fatalf("topics %v", got)
		}
		d := td["orders"]
		if len(d.Partitions) != 3 || d.ID != rs["orders"].ID {
			t.Fatalf("orders: %+v", d)
		}
		for _, p := range d.Partitions {
			if p.Leader != 0 || p.LeaderEpoch != 0 || fmt.Sprint(p.Replicas) != "[0]" || fmt.Sprint(p.ISR) != "[0]" || p.Err != nil {
				t.Fatalf("partition %+v", p)
			}
		}
		// Duplicate names in one request: INVALID_REQUEST.
		req := kmsg.NewPtrCreateTopicsRequest()
		for i := 0; i < 2; i++ {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "twice", 1, 1
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, tb.client())
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicate create: %+v %v", resp, err)
		}

		dr, err := adm.DeleteTopics(ctx, "events", "nope")
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, "delete events", dr["events"].Err, nil)
		wantErr(t, "delete nope", dr["nope"].Err, kerr.UnknownTopicOrPartition)
		_, err = adm.DeleteTopic(ctx, "events")
		wantErr(t, "delete again", err, kerr.UnknownTopicOrPartition)
		if td, _ := tb.admin().ListTopics(ctx); td.Has("events") { // fresh client: kadm caches metadata
			t.Fatal("events still listed")
		}
		// v6: delete by topic id.
		dreq := kmsg.NewPtrDeleteTopicsRequest()
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.TopicID = r.ID
		dreq.Topics = append(dreq.Topics, dt)
		dt2 := kmsg.NewDeleteTopicsRequestTopic()
		dt2.TopicID = [16]byte{1}
		dreq.Topics = append(dreq.Topics, dt2)
		dresp, err := dreq.RequestWith(ctx, tb.client())
		if err != nil || len(dresp.Topics) != 2 {
			t.Fatalf("delete by id: %+v %v", dresp, err)
		}
		if t0 := dresp.Topics[0]; t0.ErrorCode != 0 || t0.Topic == nil || *t0.Topic != "defaults" {
			t.Fatalf("delete by id: %+v", t0)
		}
		if dresp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
			t.Fatalf("delete unknown id: %+v", dresp.Topics[1])
		}
	})
}

func TestAdminCreatePartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		adm, ctx := tb.admin(), testCtx(t)
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, "grow"); err != nil {
			t.Fatal(err)
		}
		rs, err := adm.CreatePartitions(ctx, 3, "grow")
		if err != nil || rs["grow"].Err != nil {
			t.Fatalf("create partitions: %+v %v", rs, err)
		}
		vs, err := adm.ValidateUpdatePartitions(ctx, 10, "grow")
		if err != nil || vs["grow"].Err != nil {
			t.Fatalf("validate: %+v %v", vs, err)
		}
		td, err := tb.admin().ListTopics(ctx, "grow") // fresh client: kadm caches metadata
		if err != nil || len(td["grow"].Partitions) != 5 {
			t.Fatalf("after grow: %+v %v", td, err)
		}
		us, err := adm.UpdatePartitions(ctx, 4, "grow")
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, "shrink", us["grow"].Err, kerr.InvalidPartitions)
		us, _ = adm.UpdatePartitions(ctx, 5, "grow")
		wantErr(t, "same count", us["grow"].Err, kerr.InvalidPartitions)
		us, _ = adm.UpdatePartitions(ctx, 9, "nope")
		wantErr(t, "unknown", us["nope"].Err, kerr.UnknownTopicOrPartition)

		// Manual assignments: honoured for this broker, refused otherwise.
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "grow", 7
		rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{0}}, {Replicas: []int32{5}}}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, tb.client())
		if err != nil || resp.Topics[0].ErrorCode != kerr.InvalidReplicaAssignment.Code {
			t.Fatalf("bad assignment: %+v %v", resp, err)
		}
		req.Topics[0].Assignment[1].Replicas = []int32{0}
		resp, err = req.RequestWith(ctx, tb.client())
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("good assignment: %+v %v", resp, err)
		}
		if p := tb.Reg.Partition("grow", 6); p == nil {
			t.Fatal("partition 6 missing")
		}
	})
}

func TestAdminConfigs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		adm, ctx := tb.admin(), testCtx(t)
		if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")}, "cfg"); err != nil {
			t.Fatal(err)
		}
		describe := func() map[string]kadm.Config {
			t.Helper()
			rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
			if err != nil {
				t.Fatal(err)
			}
			rc, err := rcs.On("cfg", nil)
			if err != nil || rc.Err != nil {
				t.Fatalf("describe: %+v %v", rc, err)
			}
			m := map[string]kadm.Config{}
			for _, c := range rc.Configs {
				m[c.Key] = c
			}
			return m
		}
		m := describe()
		if c := m["segment.bytes"]; cv(c) != "1048576" || c.Source != kmsg.ConfigSourceDynamicTopicConfig ||
			len(c.Synonyms) != 2 || c.Synonyms[1].Key != "log.segment.bytes" || c.Synonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("segment.bytes %+v", c)
		}
		if c := m["cleanup.policy"]; cv(c) != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("cleanup.policy %+v", c)
		}

		// Incremental: SET, DELETE, APPEND, SUBTRACT.
		alter := func(cs ...kadm.AlterConfig) error {
			t.Helper()
			rs, err := adm.AlterTopicConfigs(ctx, cs, "cfg")
			if err != nil {
				t.Fatal(err)
			}
			return rs[0].Err
		}
		wantErr(t, "set", alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("5000")},
			kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "segment.bytes"},
			kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}), nil)
		m = describe()
		if cv(m["retention.ms"]) != "5000" || m["segment.bytes"].Source != kmsg.ConfigSourceDefaultConfig || cv(m["cleanup.policy"]) != "delete,compact" {
			t.Fatalf("after incremental: %v %v %v", m["retention.ms"], m["segment.bytes"], m["cleanup.policy"])
		}
		tb.Reg.mu.RLock() // settings are swapped under the registry lock
		got := tb.Reg.topics["cfg"].settings.log.RetentionMs
		tb.Reg.mu.RUnlock()
		if got != 5000 {
			t.Fatalf("registry retention %d", got)
		}
		wantErr(t, "subtract", alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}), nil)
		if got := cv(describe()["cleanup.policy"]); got != "compact" {
			t.Fatalf("after subtract %q", got)
		}
		wantErr(t, "append non-list", alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}), kerr.InvalidConfig)
		wantErr(t, "bad value", alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("-7")}), kerr.InvalidConfig)
		wantErr(t, "unknown key", alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "nope", Value: kmsg.StringPtr("1")}), kerr.InvalidConfig)
		wantErr(t, "duplicate key", alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")},
			kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("2")}), kerr.InvalidRequest)
		vrs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}}, "cfg")
		if err != nil || vrs[0].Err != nil || cv(describe()["retention.ms"]) != "5000" {
			t.Fatalf("validate only alter: %+v %v", vrs, err)
		}
		urs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}}, "nope", "../x")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range urs {
			want := kerr.UnknownTopicOrPartition
			if r.Name == "../x" {
				want = kerr.InvalidTopicException
			}
			wantErr(t, "alter "+r.Name, r.Err, want)
		}

		// Legacy AlterConfigs replaces the whole override set.
		lrs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "flush.messages", Value: kmsg.StringPtr("1")}}, "cfg")
		if err != nil || lrs[0].Err != nil {
			t.Fatalf("legacy alter: %+v %v", lrs, err)
		}
		m = describe()
		if cv(m["flush.messages"]) != "1" || m["retention.ms"].Source != kmsg.ConfigSourceDefaultConfig || cv(m["cleanup.policy"]) != "delete" {
			t.Fatalf("after legacy alter: %v %v %v", m["flush.messages"], m["retention.ms"], m["cleanup.policy"])
		}

		// The broker resource: read-only static configs.
		brs, err := adm.DescribeBrokerConfigs(ctx, 0)
		if err != nil || len(brs) != 1 || brs[0].Err != nil {
			t.Fatalf("broker configs: %+v %v", brs, err)
		}
		bm := map[string]kadm.Config{}
		for _, c := range brs[0].Configs {
			bm[c.Key] = c
		}
		if c := bm["num.partitions"]; cv(c) != "1" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
			t.Fatalf("num.partitions %+v", c)
		}
		if c := bm["log.retention.ms"]; cv(c) != "604800000" {
			t.Fatalf("log.retention.ms %+v", c)
		}
		ars, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "num.partitions", Value: kmsg.StringPtr("3")}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, "alter broker", ars[0].Err, kerr.InvalidRequest)
		lbrs, err := adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: kmsg.StringPtr("3")}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, "legacy alter broker", lbrs[0].Err, kerr.InvalidRequest)

		// Raw DescribeConfigs: unknown topic, bad name, other broker, names filter.
		dreq := kmsg.NewPtrDescribeConfigsRequest()
		for _, res := range []struct {
			typ  kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, "nope"}, {kmsg.ConfigResourceTypeTopic, "a/b"}, {kmsg.ConfigResourceTypeBroker, "7"}, {kmsg.ConfigResourceTypeTopic, "cfg"}} {
			// Broker(0).Request: kgo would route the broker "7" resource to broker 7.
			r := kmsg.NewDescribeConfigsRequestResource()
			r.ResourceType, r.ResourceName = res.typ, res.name
			if res.name == "cfg" {
				r.ConfigNames = []string{"flush.messages", "not.a.key"}
			}
			dreq.Resources = append(dreq.Resources, r)
		}
		dreq.IncludeDocumentation = true
		raw, err := tb.client().Broker(0).Request(ctx, dreq)
		if err != nil {
			t.Fatal(err)
		}
		dresp := raw.(*kmsg.DescribeConfigsResponse)
		codes := []int16{kerr.UnknownTopicOrPartition.Code, kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code, 0}
		for i, r := range dresp.Resources {
			if r.ErrorCode != codes[i] {
				t.Errorf("resource %s: code %d, want %d", r.ResourceName, r.ErrorCode, codes[i])
			}
		}
		if cs := dresp.Resources[3].Configs; len(cs) != 1 || cs[0].Name != "flush.messages" {
			t.Fatalf("filtered configs %+v", cs)
		}
		// v3+: the key table's type and documentation.
		if c := dresp.Resources[3].Configs[0]; c.ConfigType != kmsg.ConfigTypeLong || c.Documentation == nil || *c.Documentation == "" {
			t.Fatalf("flush.messages type %v, documentation %v", c.ConfigType, c.Documentation)
		}
	})
}

func TestAdminPersistAcrossRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		adm, ctx := tb.admin(), testCtx(t)
		cr, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")}, "durable")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "dropped"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.UpdatePartitions(ctx, 4, "durable"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("99000")}}, "durable"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.DeleteTopic(ctx, "dropped"); err != nil {
			t.Fatal(err)
		}
		tb.restart()
		adm = tb.admin()
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(td.Names()) != "[durable]" || len(td["durable"].Partitions) != 4 || td["durable"].ID != cr.ID {
			t.Fatalf("after restart: %+v", td)
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, "durable")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range rcs[0].Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				got[c.Key] = cv(c)
			}
		}
		if fmt.Sprint(got) != "map[cleanup.policy:compact retention.ms:99000]" {
			t.Fatalf("overrides after restart: %v", got)
		}
	})
}

func TestAdminDescribeClusterAndLogDirs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		adm, ctx := tb.admin(), testCtx(t)
		cl := tb.client()
		for v := int16(0); v <= 1; v++ {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.IncludeClusterAuthorizedOperations = true
			resp, err := pinned(ctx, tb.Addr, 60, v, req)
			if err != nil {
				t.Fatal(err)
			}
			r := resp.(*kmsg.DescribeClusterResponse)
			if r.ErrorCode != 0 || r.ClusterID != tb.Broker.ClusterID() || len(r.Brokers) != 1 || r.Brokers[0].Port != tb.Broker.opts.AdvertisedPort || r.ClusterAuthorizedOperations != opsClusterAll {
				t.Fatalf("v%d: %+v", v, r)
			}
		}
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = 2
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
			t.Fatalf("controller endpoint: %+v %v", resp, err)
		}

		if _, err := adm.CreateTopic(ctx, 3, 1, nil, "sized"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "other"); err != nil {
			t.Fatal(err)
		}
		produceOne(t, tb, "sized", 1)
		all, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		dirs := all[0]
		if len(dirs) != 1 {
			t.Fatalf("dirs %+v", all)
		}
		for _, d := range dirs {
			if d.Err != nil || d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
				t.Fatalf("dir %+v", d)
			}
			if len(d.Topics["sized"]) != 3 || len(d.Topics["other"]) != 1 {
				t.Fatalf("topics %+v", d.Topics)
			}
			if p := d.Topics["sized"][1]; p.Size <= 0 || p.OffsetLag != 0 {
				t.Fatalf("partition 1 %+v", p)
			}
			if p := d.Topics["sized"][0]; p.Size != 0 {
				t.Fatalf("partition 0 %+v", p)
			}
		}
		var set kadm.TopicsSet
		set.Add("sized", 1)
		some, err := adm.DescribeAllLogDirs(ctx, set)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range some[0] {
			if len(d.Topics) != 1 || len(d.Topics["sized"]) != 1 {
				t.Fatalf("filtered %+v", d.Topics)
			}
		}
	})
}

// produceOne appends one record to topic/partition straight through the
// partition's log (the produce path has its own tests).
func produceOne(t *testing.T, tb *testBroker, topic string, partition int32) {
	t.Helper()
	p := tb.Reg.Partition(topic, partition)
	done := make(chan error, 1)
	if err := p.Log.Append(testBatch([]byte("hello")), storage.AppendFunc(func(r storage.AppendResult) { done <- r.Err })); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// testBatch is a v2 record batch holding one record with value v.
//
//	baseOffset int64 | length int32 | leaderEpoch int32 | magic int8 |
//	crc uint32 (CRC32C of everything after it) | attributes int16 |
//	lastOffsetDelta int32 | first/maxTimestamp int64 x2 | producerId int64 |
//	producerEpoch int16 | baseSequence int32 | records count int32 | records
func testBatch(v []byte) []byte {
	rec := []byte{0}                              // attributes
	rec = binary.AppendVarint(rec, 0)             // timestamp delta
	rec = binary.AppendVarint(rec, 0)             // offset delta
	rec = binary.AppendVarint(rec, -1)            // null key
	rec = binary.AppendVarint(rec, int64(len(v))) // value
	rec = append(rec, v...)                       //
	rec = binary.AppendVarint(rec, 0)             // no headers
	recs := binary.AppendVarint(nil, int64(len(rec)))
	recs = append(recs, rec...)
	now := time.Now().UnixMilli()
	b := make([]byte, 0, 61+len(recs))
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(49+len(recs)))
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = append(b, 2)
	b = binary.BigEndian.AppendUint32(b, 0) // crc, below
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(now))
	b = binary.BigEndian.AppendUint64(b, uint64(now))
	b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff)
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, recs...)
	recrc(b)
	return b
}

// TestAdminThousandPartitions creates a 1,000-partition topic once, on
// io_uring (creating ~1,000 log dirs costs 3-10 ms each on this disk,
// whatever the backend), then restarts the same data dir on the portable
// backend and lists and describes it there: both backends serve the big
// responses, and the topic survives a restart.
func TestAdminThousandPartitions(t *testing.T) {
	tb := startTestBroker(t, netpoll.BackendUring, nil)
	ctx := testCtx(t)
	check := func() {
		t.Helper()
		adm := tb.admin()
		td, err := adm.ListTopics(ctx, "wide")
		if err != nil || len(td["wide"].Partitions) != 1000 {
			t.Fatalf("%s list: %v", tb.backend, err)
		}
		for i, p := range td["wide"].Partitions.Sorted() {
			if p.Partition != int32(i) || p.Leader != 0 || p.Err != nil {
				t.Fatalf("%s partition %d: %+v", tb.backend, i, p)
			}
		}
		all, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range all[0] {
			if len(d.Topics["wide"]) != 1000 {
				t.Fatalf("%s log dirs: %d partitions", tb.backend, len(d.Topics["wide"]))
			}
		}
	}
	start := time.Now()
	r, err := tb.admin().CreateTopic(ctx, 1000, 1, nil, "wide")
	if err != nil || r.NumPartitions != 1000 {
		t.Fatalf("create: %+v %v", r, err)
	}
	created := time.Now()
	check()
	described := time.Now()
	tb.backend = netpoll.BackendPortable
	tb.restart()
	restarted := time.Now()
	check()
	t.Logf("1000 partitions: create %v, list+describe %v, restart %v, list+describe on portable %v",
		created.Sub(start), described.Sub(created), restarted.Sub(described), time.Since(restarted))
}

// pinned issues req at exactly version v through a client capped at v.
func pinned(ctx context.Context, addr string, key int16, v int16, req kmsg.Request) (kmsg.Response, error) {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(key, v)
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(vs))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Request(ctx, req)
}

func TestMetadataTopicsAndAutoCreate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.NumPartitions = 3 })
		ctx := testCtx(t)
		meta := func(v int16, topics []string, null, allow bool) *kmsg.MetadataResponse {
			t.Helper()
			req := kmsg.NewPtrMetadataRequest()
			req.AllowAutoTopicCreation = allow
			if !null {
				req.Topics = []kmsg.MetadataRequestTopic{}
			}
			for _, name := range topics {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(name)
				req.Topics = append(req.Topics, rt)
			}
			resp, err := pinned(ctx, tb.Addr, 3, v, req)
			if err != nil {
				t.Fatal(err)
			}
			mr := resp.(*kmsg.MetadataResponse)
			if mr.Version != v {
				t.Fatalf("asked v%d, got v%d", v, mr.Version)
			}
			return mr
		}
		names := func(mr *kmsg.MetadataResponse) string {
			var s []string
			for _, t := range mr.Topics {
				s = append(s, fmt.Sprintf("%s:%d:%d", *t.Topic, t.ErrorCode, len(t.Partitions)))
			}
			sort.Strings(s)
			return fmt.Sprint(s)
		}
		// kafka-python: Metadata v1 auto-creates, and the answer carries the
		// new topic's partitions at once.
		if got := names(meta(1, []string{"auto1"}, false, false)); got != "[auto1:0:3]" {
			t.Fatalf("v1 auto-create: %s", got)
		}
		if tb.Reg.Topic("auto1") == nil {
			t.Fatal("auto1 not in registry")
		}
		// v4+ only when allowed.
		if got := names(meta(4, []string{"auto4"}, false, false)); got != "[auto4:3:0]" {
			t.Fatalf("v4 not allowed: %s", got)
		}
		if got := names(meta(12, []string{"auto12"}, false, true)); got != "[auto12:0:3]" {
			t.Fatalf("v12 allowed: %s", got)
		}
		// Invalid names are never created.
		if got := names(meta(1, []string{"../x"}, false, false)); got != "[../x:17:0]" {
			t.Fatalf("invalid name: %s", got)
		}
		// v0 empty list and v1+ null list = all topics; v1+ empty = none.
		if got := names(meta(0, nil, false, false)); got != "[auto12:0:3 auto1:0:3]" {
			t.Fatalf("v0 all: %s", got)
		}
		if got := names(meta(9, nil, true, false)); got != "[auto12:0:3 auto1:0:3]" {
			t.Fatalf("v9 null: %s", got)
		}
		if got := names(meta(9, nil, false, false)); got != "[]" {
			t.Fatalf("v9 empty: %s", got)
		}
		// v10+: topic ids.
		mr := meta(12, []string{"auto1"}, false, false)
		if mr.Topics[0].TopicID != tb.Reg.Topic("auto1").ID {
			t.Fatal("topic id mismatch")
		}
		p := mr.Topics[0].Partitions[2]
		if p.Leader != 0 || p.LeaderEpoch != 0 || len(p.Replicas) != 1 || len(p.ISR) != 1 || len(p.OfflineReplicas) != 0 {
			t.Fatalf("partition %+v", p)
		}

		// Auto-creation off: UNKNOWN_TOPIC_OR_PARTITION.
		off := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.AutoCreateTopics = false })
		resp, err := pinned(ctx, off.Addr, 3, 1, &kmsg.MetadataRequest{Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("nope")}}})
		if err != nil {
			t.Fatal(err)
		}
		if mr := resp.(*kmsg.MetadataResponse); mr.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || off.Reg.Topic("nope") != nil {
			t.Fatalf("auto-create off: %+v", mr.Topics[0])
		}
	})
}

// cv is a described config's value ("" for null).
func cv(c kadm.Config) string {
	if c.Value == nil {
		return ""
	}
	return *c.Value
}
