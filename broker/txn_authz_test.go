package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
)

// TestACLsTransactions: with the authorizer on, a transactional id needs
// TRANSACTIONAL_ID WRITE (DESCRIBE for FindCoordinator), as in Kafka: a
// producer without it is refused TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
// every transactional API and a Produce naming the id likewise; with the
// ACL its transaction commits. TxnOffsetCommit needs TRANSACTIONAL_ID
// WRITE, GROUP READ and READ per topic.
func TestACLsTransactions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, &acl.Config{SuperUsers: []acl.Principal{acl.User("admin")}})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		adm := kadm.NewClient(tb.client(plainAuth("admin", "admin-secret")))
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "txn-acl"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("txn-acl").
			Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
			t.Fatal(err)
		}
		alice := plainAuth("alice", "alice-secret")
		run := func() error {
			cl := tb.client(alice, kgo.TransactionalID("tx-acl"), kgo.DefaultProduceTopic("txn-acl"))
			defer cl.Close()
			if err := cl.BeginTransaction(); err != nil {
				return err
			}
			if err := cl.ProduceSync(ctx, kgo.StringRecord("v")).FirstErr(); err != nil {
				return err
			}
			return cl.EndTransaction(ctx, kgo.TryCommit)
		}
		if err := run(); !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			t.Fatalf("transaction without a TRANSACTIONAL_ID ACL: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
		}

		// Raw, on the PLAINTEXT listener (User:ANONYMOUS, no ACLs).
		rc := dialProd(t, tb.Addrs[1])
		init := kmsg.NewPtrInitProducerIDRequest()
		id := "tx-acl"
		init.Version, init.TransactionalID, init.TransactionTimeoutMillis = 4, &id, 10000
		iresp := kmsg.NewPtrInitProducerIDResponse()
		if err := rc.roundTrip(init, iresp); err != nil || iresp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Errorf("InitProducerId: %v %s", err, codeName(iresp.ErrorCode))
		}
		end := kmsg.NewPtrEndTxnRequest()
		end.Version, end.TransactionalID = 3, id
		eresp := kmsg.NewPtrEndTxnResponse()
		if err := rc.roundTrip(end, eresp); err != nil || eresp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Errorf("EndTxn: %v %s", err, codeName(eresp.ErrorCode))
		}
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.Version, ao.TransactionalID, ao.Group = 3, id, "g"
		aresp := kmsg.NewPtrAddOffsetsToTxnResponse()
		if err := rc.roundTrip(ao, aresp); err != nil || aresp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Errorf("AddOffsetsToTxn: %v %s", err, codeName(aresp.ErrorCode))
		}
		ap := kmsg.NewPtrAddPartitionsToTxnRequest()
		ap.Version, ap.TransactionalID = 3, id
		ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "txn-acl", Partitions: []int32{0}}}
		apresp := kmsg.NewPtrAddPartitionsToTxnResponse()
		if err := rc.roundTrip(ap, apresp); err != nil || len(apresp.Topics) != 1 ||
			apresp.Topics[0].Partitions[0].ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Errorf("AddPartitionsToTxn: %v %+v", err, apresp.Topics)
		}
		oc := kmsg.NewPtrTxnOffsetCommitRequest()
		oc.Version, oc.TransactionalID, oc.Group, oc.Generation = 3, id, "g", -1
		oc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "txn-acl", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		oresp := kmsg.NewPtrTxnOffsetCommitResponse()
		if err := rc.roundTrip(oc, oresp); err != nil || oresp.Topics[0].Partitions[0].ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Errorf("TxnOffsetCommit: %v %+v", err, oresp.Topics)
		}

		if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").TransactionalIDs("tx-acl").
			Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
			t.Fatal(err)
		}
		if err := run(); err != nil {
			t.Fatalf("transaction with the ACL: %v", err)
		}

		// Per-topic and listing checks, raw as User:ANONYMOUS, which may
		// write the transactional id "tx-anon" and topic txn-acl only.
		anon := kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("*").ResourcePatternType(kadm.ACLPatternLiteral)
		if _, err := adm.CreateACLs(ctx, anon.TransactionalIDs("tx-anon").Topics("txn-acl").Groups("g-anon").
			Operations(kadm.OpWrite, kadm.OpRead, kadm.OpDescribe)); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "txn-other"); err != nil {
			t.Fatal(err)
		}
		ap = kmsg.NewPtrAddPartitionsToTxnRequest()
		ap.Version, ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = 3, "tx-anon", 1, 0
		ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "txn-acl", Partitions: []int32{0}},
			{Topic: "txn-other", Partitions: []int32{0}}, {Topic: "__consumer_offsets", Partitions: []int32{0}}}
		apresp = kmsg.NewPtrAddPartitionsToTxnResponse()
		if err := rc.roundTrip(ap, apresp); err != nil {
			t.Fatal(err)
		}
		want := map[string]int16{"txn-acl": kerr.OperationNotAttempted.Code, "txn-other": kerr.TopicAuthorizationFailed.Code,
			"__consumer_offsets": kerr.TopicAuthorizationFailed.Code}
		for _, rt := range apresp.Topics {
			if c := rt.Partitions[0].ErrorCode; c != want[rt.Topic] {
				t.Errorf("AddPartitionsToTxn %s: %s, want %s", rt.Topic, codeName(c), codeName(want[rt.Topic]))
			}
			delete(want, rt.Topic)
		}
		if len(want) != 0 {
			t.Errorf("AddPartitionsToTxn: no answer for %v", want)
		}
		ap4 := kmsg.NewPtrAddPartitionsToTxnRequest()
		ap4.Version = 4
		ap4.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: "tx-anon", ProducerID: 1,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "txn-acl", Partitions: []int32{0}}}}}
		ap4resp := kmsg.NewPtrAddPartitionsToTxnResponse()
		if err := rc.roundTrip(ap4, ap4resp); err != nil || ap4resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Errorf("AddPartitionsToTxn v4 without CLUSTER_ACTION: %v %s", err, codeName(ap4resp.ErrorCode))
		}
		oc = kmsg.NewPtrTxnOffsetCommitRequest()
		oc.Version, oc.TransactionalID, oc.Group, oc.Generation = 3, "tx-anon", "g-anon", -1
		oc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "txn-other", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		oresp = kmsg.NewPtrTxnOffsetCommitResponse()
		if err := rc.roundTrip(oc, oresp); err != nil || oresp.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
			t.Errorf("TxnOffsetCommit of a topic without READ: %v %+v", err, oresp.Topics)
		}
		dp := kmsg.NewPtrDescribeProducersRequest()
		dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "txn-other", Partitions: []int32{0}}, {Topic: "txn-acl", Partitions: []int32{0}}}
		dpresp := kmsg.NewPtrDescribeProducersResponse()
		if err := rc.roundTrip(dp, dpresp); err != nil || len(dpresp.Topics) != 2 ||
			dpresp.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code || dpresp.Topics[1].Partitions[0].ErrorCode != 0 {
			t.Errorf("DescribeProducers: %v %+v", err, dpresp.Topics)
		}
		// alice's committed transaction tx-acl: hidden from ANONYMOUS
		// until it may DESCRIBE the id.
		listed := func() (bool, int16) {
			lt := kmsg.NewPtrListTransactionsRequest()
			ltresp := kmsg.NewPtrListTransactionsResponse()
			if err := rc.roundTrip(lt, ltresp); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, s := range ltresp.TransactionStates {
				found = found || s.TransactionalID == id
			}
			dt := kmsg.NewPtrDescribeTransactionsRequest()
			dt.TransactionalIDs = []string{id}
			dtresp := kmsg.NewPtrDescribeTransactionsResponse()
			if err := rc.roundTrip(dt, dtresp); err != nil || len(dtresp.TransactionStates) != 1 {
				t.Fatalf("DescribeTransactions: %v %+v", err, dtresp)
			}
			return found, dtresp.TransactionStates[0].ErrorCode
		}
		if found, code := listed(); found || code != kerr.TransactionalIDAuthorizationFailed.Code {
			t.Errorf("without DESCRIBE on %s: listed %v, described %s; want hidden, TRANSACTIONAL_ID_AUTHORIZATION_FAILED", id, found, codeName(code))
		}
		if _, err := adm.CreateACLs(ctx, anon.TransactionalIDs(id).Topics().Groups().Operations(kadm.OpDescribe)); err != nil {
			t.Fatal(err)
		}
		if found, code := listed(); !found || code != 0 {
			t.Errorf("with DESCRIBE on %s: listed %v, described %s; want listed, no error", id, found, codeName(code))
		}

		// An ongoing transaction's partitions are listed only for the
		// topics the principal may DESCRIBE.
		ac := tb.client(plainAuth("admin", "admin-secret"), kgo.TransactionalID("tx-admin"))
		defer ac.Close()
		if err := ac.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, topic := range []string{"txn-other", "txn-acl"} {
			if err := ac.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := adm.CreateACLs(ctx, anon.TransactionalIDs("tx-admin").Topics().Groups().Operations(kadm.OpDescribe)); err != nil {
			t.Fatal(err)
		}
		dt := kmsg.NewPtrDescribeTransactionsRequest()
		dt.TransactionalIDs = []string{"tx-admin"}
		dtresp := kmsg.NewPtrDescribeTransactionsResponse()
		if err := rc.roundTrip(dt, dtresp); err != nil || len(dtresp.TransactionStates) != 1 || dtresp.TransactionStates[0].ErrorCode != 0 {
			t.Fatalf("DescribeTransactions tx-admin: %v %+v", err, dtresp)
		}
		if ts := dtresp.TransactionStates[0].Topics; len(ts) != 1 || ts[0].Topic != "txn-acl" {
			t.Errorf("DescribeTransactions tx-admin as ANONYMOUS: topics %+v, want txn-acl only", ts)
		}
	})
}
