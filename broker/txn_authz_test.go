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
// ACL its transaction commits. TxnOffsetCommit needs GROUP READ.
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
		if err := rc.roundTrip(oc, oresp); err != nil || oresp.Topics[0].Partitions[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
			t.Errorf("TxnOffsetCommit: %v %+v", err, oresp.Topics)
		}

		if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").TransactionalIDs("tx-acl").
			Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
			t.Fatal(err)
		}
		if err := run(); err != nil {
			t.Fatalf("transaction with the ACL: %v", err)
		}
	})
}
