//go:build linux

package integration

// SCRAM credentials and ACLs in a cluster (issue 19): they live in the
// metadata log, so a SCRAM user and an ACL created through node 2 let that
// user authenticate and be authorized (and denied) on node 3, and survive a
// full cluster restart. Each node serves a SASL_PLAINTEXT listener (SASL)
// beside its PLAINTEXT one; the PLAINTEXT principal, User:ANONYMOUS, is a
// super user, as the inter-broker principal must be in Kafka.

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestClusterSCRAMAndACLs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		saslPort := map[int32]int{}
		for _, n := range c.nodes {
			saslPort[n.id] = freePortOn(t, n.host)
		}
		saslAddr := func(n *clusterNode) string { return net.JoinHostPort(n.host, strconv.Itoa(saslPort[n.id])) }
		c.moreProps = map[string]string{
			"listener.security.protocol.map":               "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT",
			"listener.name.sasl.sasl.enabled.mechanisms":   "SCRAM-SHA-512",
			"authorizer.class.name":                        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"super.users":                                  "User:ANONYMOUS",
			"connection.failed.authentication.delay.ms":    "20",
			"allow.everyone.if.no.acl.found":               "false",
			"listener.name.sasl.connections.max.reauth.ms": "0",
		}
		c.nodeProps = func(n *clusterNode) map[string]string {
			return map[string]string{"listeners": fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s,SASL://%s", n.addr(), n.ctlAddr(), saslAddr(n))}
		}
		c.start(t)
		n1, n2, n3 := c.node(1), c.node(2), c.node(3)
		createTopicVia(t, n1, "cs-bob", 3, nil, clusterReadyTimeout)
		createTopicVia(t, n1, "cs-other", 1, nil, clusterReadyTimeout)
		c.waitTopicsEverywhere(t, map[string]int32{"cs-bob": 3, "cs-other": 1}, clusterReadyTimeout)

		// Through node 2 alone: bob's SCRAM-SHA-512 credential (the salted
		// password as kafka-configs.sh computes it) and his ACL.
		ctx := context.Background()
		salt := make([]byte, 24)
		if _, err := rand.Read(salt); err != nil {
			t.Fatal(err)
		}
		salted, err := pbkdf2.Key(sha512.New, "bob-secret", salt, 4096, sha512.Size)
		if err != nil {
			t.Fatal(err)
		}
		alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		alter.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{Name: "bob", Mechanism: 2, Iterations: 4096, Salt: salt, SaltedPassword: salted}}
		resp, err := n2.request(ctx, alter)
		if err != nil || resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode != 0 {
			t.Fatalf("AlterUserScramCredentials via node 2: %v %+v", err, resp)
		}
		create := kmsg.NewPtrCreateACLsRequest()
		for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite} {
			create.Creations = append(create.Creations, kmsg.CreateACLsRequestCreation{ResourceType: kmsg.ACLResourceTypeTopic,
				ResourceName: "cs-", ResourcePatternType: kmsg.ACLResourcePatternTypePrefixed, Principal: "User:bob", Host: "*",
				Operation: op, PermissionType: kmsg.ACLPermissionTypeAllow})
		}
		create.Creations = append(create.Creations, kmsg.CreateACLsRequestCreation{ResourceType: kmsg.ACLResourceTypeGroup,
			ResourceName: "cs-", ResourcePatternType: kmsg.ACLResourcePatternTypePrefixed, Principal: "User:bob", Host: "*",
			Operation: kmsg.ACLOperationRead, PermissionType: kmsg.ACLPermissionTypeAllow})
		create.Creations = append(create.Creations, kmsg.CreateACLsRequestCreation{ResourceType: kmsg.ACLResourceTypeTopic,
			ResourceName: "cs-other", ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:bob", Host: "*",
			Operation: kmsg.ACLOperationAll, PermissionType: kmsg.ACLPermissionTypeDeny})
		resp, err = n2.request(ctx, create)
		if err != nil {
			t.Fatalf("CreateAcls via node 2: %v", err)
		}
		for _, r := range resp.(*kmsg.CreateACLsResponse).Results {
			if r.ErrorCode != 0 {
				t.Fatalf("CreateAcls via node 2: %s %v", codeName(r.ErrorCode), r.ErrorMessage)
			}
		}

		// Node 3: bob authenticates, sees and uses cs-bob, is refused
		// cs-other (the DENY wins over the prefixed ALLOW); a wrong
		// password fails. Bounded: node 3 may apply the records a moment
		// after node 2 answered.
		enforced := func(n *clusterNode) func() error {
			return func() error {
				cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				bob, err := kgo.NewClient(kgo.SeedBrokers(saslAddr(n)), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism()),
					kgo.RequestRetries(0), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0))
				if err != nil {
					return err
				}
				defer bob.Close()
				md := kmsg.NewPtrMetadataRequest()
				for _, topic := range []string{"cs-bob", "cs-other"} {
					rt := kmsg.NewMetadataRequestTopic()
					rt.Topic = kmsg.StringPtr(topic)
					md.Topics = append(md.Topics, rt)
				}
				mr, err := bob.SeedBrokers()[0].Request(cctx, md) // node n alone
				if err != nil {
					return fmt.Errorf("bob's Metadata on node %d: %w", n.id, err)
				}
				codes := map[string]int16{}
				for _, tp := range mr.(*kmsg.MetadataResponse).Topics {
					codes[*tp.Topic] = tp.ErrorCode
				}
				if codes["cs-bob"] != 0 || codes["cs-other"] != kerr.TopicAuthorizationFailed.Code {
					return fmt.Errorf("bob's Metadata on node %d: cs-bob %s, cs-other %s", n.id, codeName(codes["cs-bob"]), codeName(codes["cs-other"]))
				}
				if err := bob.ProduceSync(cctx, &kgo.Record{Topic: "cs-bob", Value: []byte("hello")}).FirstErr(); err != nil {
					return fmt.Errorf("bob's produce to cs-bob via node %d: %w", n.id, err)
				}
				if err := bob.ProduceSync(cctx, &kgo.Record{Topic: "cs-other", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
					return fmt.Errorf("bob's produce to cs-other via node %d: %v, want TOPIC_AUTHORIZATION_FAILED", n.id, err)
				}
				wrong, err := kgo.NewClient(kgo.SeedBrokers(saslAddr(n)), kgo.SASL(scram.Auth{User: "bob", Pass: "nope"}.AsSha512Mechanism()), kgo.RequestRetries(0))
				if err != nil {
					return err
				}
				defer wrong.Close()
				if _, err := wrong.SeedBrokers()[0].Request(cctx, kmsg.NewPtrMetadataRequest()); err == nil {
					return fmt.Errorf("a wrong password authenticated on node %d", n.id)
				}
				return nil
			}
		}
		waitFor(t, "bob authenticated and authorized on node 3", clusterReadyTimeout, enforced(n3))

		// Every node describes the same user and ACLs.
		for _, n := range c.nodes {
			adm := kadm.NewClient(newClient(t, n.addr()))
			users, err := adm.DescribeUserSCRAMs(ctx, "bob")
			if err != nil || users["bob"].Err != nil || len(users["bob"].CredInfos) != 1 {
				t.Fatalf("DescribeUserScramCredentials on node %d: %v %+v", n.id, err, users)
			}
			d := kmsg.NewPtrDescribeACLsRequest()
			d.ResourceType, d.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			d.Operation, d.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			dr, err := n.request(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for _, r := range dr.(*kmsg.DescribeACLsResponse).Resources {
				got += len(r.ACLs)
			}
			if got != 4 {
				t.Fatalf("DescribeAcls on node %d: %d ACLs, want 4", n.id, got)
			}
		}

		// A full restart: all three stop, all three start.
		c.stopAll(t)
		c.start(t)
		waitFor(t, "bob authenticated and authorized on node 3 after a full restart", clusterReadyTimeout, enforced(n3))
		waitFor(t, "bob authenticated and authorized on node 1 after a full restart", clusterReadyTimeout, enforced(n1))

		// bob consumes what he produced in a group through node 3's SASL
		// listener: FindCoordinator sends him to the coordinator's SASL
		// listener, and the group ACL is the cluster's.
		func() {
			gctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
			defer cancel()
			consumer := newClient(t, saslAddr(n3), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism()),
				kgo.ConsumerGroup("cs-group"), kgo.ConsumeTopics("cs-bob"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := 0
			for got < 3 { // one record per successful enforced() run, three runs
				fs := consumer.PollFetches(gctx)
				if gctx.Err() != nil {
					t.Fatalf("bob's group consumer via node 3: %d of 3 records: %v", got, fs.Errors())
				}
				fs.EachError(func(topic string, p int32, err error) { t.Logf("bob's group consumer: %s/%d: %v", topic, p, err) })
				got += fs.NumRecords()
			}
			if err := consumer.CommitUncommittedOffsets(gctx); err != nil {
				t.Fatalf("bob's offset commit via node 3: %v", err)
			}
		}()

		// Deleting the ACL through node 1 takes bob's rights away on node 3.
		del := kmsg.NewPtrDeleteACLsRequest()
		del.Filters = []kmsg.DeleteACLsRequestFilter{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: kmsg.StringPtr("cs-"),
			ResourcePatternType: kmsg.ACLResourcePatternTypePrefixed, Principal: kmsg.StringPtr("User:bob"),
			Operation: kmsg.ACLOperationAny, PermissionType: kmsg.ACLPermissionTypeAny}}
		dresp, err := n1.request(ctx, del)
		if err != nil || dresp.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode != 0 || len(dresp.(*kmsg.DeleteACLsResponse).Results[0].MatchingACLs) != 2 { // the topic ones
			t.Fatalf("DeleteAcls via node 1: %v %+v", err, dresp)
		}
		waitFor(t, "bob refused cs-bob on node 3 once his ACLs are deleted", clusterReadyTimeout, func() error {
			bob := newClient(t, saslAddr(n3), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism()))
			md := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("cs-bob")
			md.Topics = []kmsg.MetadataRequestTopic{rt}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			mr, err := bob.SeedBrokers()[0].Request(cctx, md)
			bob.Close()
			if err != nil {
				return err
			}
			if code := mr.(*kmsg.MetadataResponse).Topics[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
				return fmt.Errorf("cs-bob: %s", codeName(code))
			}
			return nil
		})
	})
}
