package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/ringbroker/ringbroker/auth/acl"
)

// Kafka's authorized-operations bit sets, spelled out from AclOperation
// codes (READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
// CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
// IDEMPOTENT_WRITE 12) so the test does not reuse the broker's tables.
const (
	opsTopicAll   = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	opsGroupAll   = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11
	opsClusterAll = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)

// authzOpsProbe sends the four requests that carry authorized operations,
// each at a pinned version, through clients built by mk.
type authzOpsProbe struct {
	t   *testing.T
	ctx context.Context
	mk  func(opts ...kgo.Opt) *kgo.Client
}

func (p authzOpsProbe) at(key, v int16) *kgo.Client {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(key, v)
	return p.mk(kgo.MaxVersions(vs))
}

func (p authzOpsProbe) metadata(v int16, include bool, topics ...string) *kmsg.MetadataResponse {
	p.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.IncludeClusterAuthorizedOperations, req.IncludeTopicAuthorizedOperations = include, include
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(p.ctx, p.at(3, v))
	if err != nil {
		p.t.Fatalf("Metadata v%d: %v", v, err)
	}
	return resp
}

func (p authzOpsProbe) describeCluster(include bool) *kmsg.DescribeClusterResponse {
	p.t.Helper()
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeClusterAuthorizedOperations = include
	resp, err := req.RequestWith(p.ctx, p.at(60, 1))
	if err != nil {
		p.t.Fatalf("DescribeCluster: %v", err)
	}
	return resp
}

func (p authzOpsProbe) describeGroups(include bool, groups ...string) *kmsg.DescribeGroupsResponse {
	p.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups, req.IncludeAuthorizedOperations = groups, include
	// Straight to the broker: the client would first ask FindCoordinator,
	// which refuses a group the principal may not describe.
	resp, err := p.at(15, 5).SeedBrokers()[0].Request(p.ctx, req)
	if err != nil {
		p.t.Fatalf("DescribeGroups: %v", err)
	}
	return resp.(*kmsg.DescribeGroupsResponse)
}

func (p authzOpsProbe) describeTopicPartitions(topics ...string) *kmsg.DescribeTopicPartitionsResponse {
	p.t.Helper()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = 100
	for _, name := range topics {
		req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: name})
	}
	resp, err := req.RequestWith(p.ctx, p.at(75, 0))
	if err != nil {
		p.t.Fatalf("DescribeTopicPartitions: %v", err)
	}
	return resp
}

// metadataTopicOps maps each named topic of resp to (error code, ops).
func metadataTopicOps(resp *kmsg.MetadataResponse) map[string][2]int32 {
	m := make(map[string][2]int32)
	for _, t := range resp.Topics {
		if t.Topic != nil {
			m[*t.Topic] = [2]int32{int32(t.ErrorCode), t.AuthorizedOperations}
		}
	}
	return m
}

// TestAuthorizedOperationsNoAuthorizer: without an authorizer every
// operation Kafka supports for the resource type is reported, and the
// sentinel when not asked.
func TestAuthorizedOperationsNoAuthorizer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := tb.admin().CreateTopic(ctx, 1, 1, nil, "t1"); err != nil {
			t.Fatal(err)
		}
		p := authzOpsProbe{t: t, ctx: ctx, mk: tb.client}
		for _, v := range []int16{8, 10} {
			md := p.metadata(v, true, "t1", "nope")
			if md.AuthorizedOperations != opsClusterAll {
				t.Fatalf("Metadata v%d cluster ops %d, want %d", v, md.AuthorizedOperations, opsClusterAll)
			}
			got := metadataTopicOps(md)
			if got["t1"] != [2]int32{0, opsTopicAll} || got["nope"] != [2]int32{int32(kerr.UnknownTopicOrPartition.Code), opsTopicAll} {
				t.Fatalf("Metadata v%d topics %v", v, got)
			}
			md = p.metadata(v, false, "t1")
			if md.AuthorizedOperations != authorizedOpsNotRequested || md.Topics[0].AuthorizedOperations != authorizedOpsNotRequested {
				t.Fatalf("Metadata v%d not asked: %d %d", v, md.AuthorizedOperations, md.Topics[0].AuthorizedOperations)
			}
		}
		if got := metadataTopicOps(p.metadata(12, true, "t1"))["t1"]; got != [2]int32{0, opsTopicAll} {
			t.Fatalf("Metadata v12 topic %v", got)
		}
		if dc := p.describeCluster(true); dc.ErrorCode != 0 || dc.ClusterAuthorizedOperations != opsClusterAll {
			t.Fatalf("DescribeCluster: %+v", dc)
		}
		if dc := p.describeCluster(false); dc.ClusterAuthorizedOperations != authorizedOpsNotRequested {
			t.Fatalf("DescribeCluster not asked: %d", dc.ClusterAuthorizedOperations)
		}
		if dg := p.describeGroups(true, "g1"); dg.Groups[0].ErrorCode != 0 || dg.Groups[0].AuthorizedOperations != opsGroupAll {
			t.Fatalf("DescribeGroups: %+v", dg.Groups)
		}
		if dg := p.describeGroups(false, "g1"); dg.Groups[0].AuthorizedOperations != authorizedOpsNotRequested {
			t.Fatalf("DescribeGroups not asked: %+v", dg.Groups)
		}
		if dt := p.describeTopicPartitions("t1"); dt.Topics[0].ErrorCode != 0 || dt.Topics[0].AuthorizedOperations != opsTopicAll {
			t.Fatalf("DescribeTopicPartitions: %+v", dt.Topics)
		}
	})
}

// TestAuthorizedOperationsACLs: with the authorizer on, the bit sets are
// what alice's ACLs allow, implications included (READ and WRITE grant
// DESCRIBE, ALTER_CONFIGS grants DESCRIBE_CONFIGS), prefixed patterns
// counted, DENY winning; refused resources keep the sentinel; the cluster's
// is 0 without DESCRIBE on it; a super user gets everything.
func TestAuthorizedOperationsACLs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, &acl.Config{SuperUsers: []acl.Principal{acl.User("admin")}})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		adm := kadm.NewClient(tb.client(plainAuth("admin", "admin-secret")))
		for _, topic := range []string{"t1", "t2", "t3"} {
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
		}
		grant := func(b *kadm.ACLBuilder) {
			t.Helper()
			res, err := adm.CreateACLs(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					t.Fatalf("CreateACLs: %v", r.Err)
				}
			}
		}
		grant(kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("t1").
			Operations(kadm.OpRead, kadm.OpAlterConfigs).ResourcePatternType(kadm.ACLPatternLiteral))
		grant(kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("t").
			Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed))
		grant(kadm.NewACLs().Deny("User:alice").DenyHosts("*").Topics("t3").
			Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
		grant(kadm.NewACLs().Allow("User:alice").AllowHosts("*").Groups("g1").
			Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))

		const (
			t1Ops = 1<<3 | 1<<4 | 1<<8 | 1<<10 | 1<<11 // READ WRITE DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
			t2Ops = 1<<4 | 1<<8                        // WRITE DESCRIBE (prefixed)
			g1Ops = 1<<3 | 1<<8                        // READ DESCRIBE
		)
		alice := authzOpsProbe{t: t, ctx: ctx, mk: func(opts ...kgo.Opt) *kgo.Client {
			return tb.client(append([]kgo.Opt{plainAuth("alice", "alice-secret")}, opts...)...)
		}}
		refused := [2]int32{int32(kerr.TopicAuthorizationFailed.Code), authorizedOpsNotRequested}
		checkTopics := func(what string, got map[string][2]int32, unknownOK bool) {
			t.Helper()
			want := map[string][2]int32{"t1": {0, t1Ops}, "t2": {0, t2Ops}, "t3": refused,
				"t9": {int32(kerr.UnknownTopicOrPartition.Code), t2Ops}}
			for name, w := range want {
				if name == "t9" && !unknownOK {
					continue
				}
				if got[name] != w {
					t.Fatalf("%s: topic %s (code, ops) %v, want %v (all %v)", what, name, got[name], w, got)
				}
			}
		}
		for _, v := range []int16{8, 10, 12} {
			md := alice.metadata(v, true, "t1", "t2", "t3", "t9")
			checkTopics(fmt.Sprintf("Metadata v%d", v), metadataTopicOps(md), true)
			if v <= 10 && md.AuthorizedOperations != 0 {
				t.Fatalf("Metadata v%d cluster ops without DESCRIBE: %d", v, md.AuthorizedOperations)
			}
		}
		if dc := alice.describeCluster(true); dc.ErrorCode != 0 || dc.ClusterAuthorizedOperations != 0 || len(dc.Brokers) != 1 {
			t.Fatalf("DescribeCluster without DESCRIBE: %+v", dc)
		}
		dg := alice.describeGroups(true, "g1", "g2")
		if dg.Groups[0].ErrorCode != 0 || dg.Groups[0].AuthorizedOperations != g1Ops {
			t.Fatalf("DescribeGroups g1: %+v", dg.Groups[0])
		}
		if dg.Groups[1].ErrorCode != kerr.GroupAuthorizationFailed.Code || dg.Groups[1].AuthorizedOperations != authorizedOpsNotRequested {
			t.Fatalf("DescribeGroups g2: %+v", dg.Groups[1])
		}
		dt := alice.describeTopicPartitions("t1", "t2", "t3")
		dtOps := map[string][2]int32{}
		for _, tp := range dt.Topics {
			dtOps[*tp.Topic] = [2]int32{int32(tp.ErrorCode), tp.AuthorizedOperations}
		}
		checkTopics("DescribeTopicPartitions", dtOps, false)

		// DESCRIBE and IDEMPOTENT_WRITE on the cluster.
		grant(kadm.NewACLs().Allow("User:alice").AllowHosts("*").Clusters().
			Operations(kadm.OpDescribe, kadm.OpIdempotentWrite).ResourcePatternType(kadm.ACLPatternLiteral))
		const clusterOps = 1<<8 | 1<<12
		if md := alice.metadata(10, true, "t1"); md.AuthorizedOperations != clusterOps {
			t.Fatalf("Metadata v10 cluster ops %d, want %d", md.AuthorizedOperations, clusterOps)
		}
		if dc := alice.describeCluster(true); dc.ClusterAuthorizedOperations != clusterOps {
			t.Fatalf("DescribeCluster cluster ops %d, want %d", dc.ClusterAuthorizedOperations, clusterOps)
		}

		// The super user may do everything.
		admin := authzOpsProbe{t: t, ctx: ctx, mk: func(opts ...kgo.Opt) *kgo.Client {
			return tb.client(append([]kgo.Opt{plainAuth("admin", "admin-secret")}, opts...)...)
		}}
		md := admin.metadata(10, true, "t3")
		if md.AuthorizedOperations != opsClusterAll || md.Topics[0].AuthorizedOperations != opsTopicAll {
			t.Fatalf("super user: cluster %d topic %d", md.AuthorizedOperations, md.Topics[0].AuthorizedOperations)
		}
	})
}
