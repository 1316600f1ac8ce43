package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/netpoll"
)

// saslListener is a SASL_PLAINTEXT listener with every served mechanism
// and the PLAIN users alice and admin.
var saslListener = ListenerSecurity{Name: "SASL_PLAINTEXT", Protocol: ProtocolSASLPlaintext,
	Mechanisms: []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"},
	PlainUsers: map[string]string{"alice": "alice-secret", "admin": "admin-secret"}}

// startSecureBroker serves listener 0 as SASL_PLAINTEXT and listener 1
// as PLAINTEXT; authz, if not nil, turns the authorizer on.
func startSecureBroker(t *testing.T, backend string, delay time.Duration, authz *acl.Config) *testBroker {
	return startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) {
		o.Security = &SecurityOptions{
			Listeners:                 []ListenerSecurity{saslListener, {Name: "PLAINTEXT", Protocol: ProtocolPlaintext}},
			FailedAuthenticationDelay: delay,
			Authorizer:                authz,
		}
	})
}

func plainAuth(user, pw string) kgo.Opt {
	return kgo.SASL(plain.Auth{User: user, Pass: pw}.AsMechanism())
}

// produceConsume produces one record to topic and reads it back.
func produceConsume(t *testing.T, tb *testBroker, topic string, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := tb.client(append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	c := tb.client(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	for {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("consume: %v", e.Err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "hello" {
				t.Fatalf("consumed %q", recs[0].Value)
			}
			return
		}
	}
}

func TestSASLPlainProduceConsume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, nil)
		produceConsume(t, tb, "plain-topic", plainAuth("alice", "alice-secret"))
		// The PLAINTEXT listener serves without SASL.
		tb2 := *tb
		tb2.Addr = tb.Addrs[1]
		produceConsume(t, &tb2, "plain-topic-2")
	})
}

// saslConn is a raw connection to the SASL listener.
func saslConn(t *testing.T, tb *testBroker) *prodConn {
	return dialProd(t, tb.Addrs[0])
}

// expectClosed reads until the broker closes the connection; no response
// may arrive first.
func expectClosed(t *testing.T, rc *prodConn) {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := rc.c.Read(b[:])
	if n != 0 || !errors.Is(err, io.EOF) && !strings.Contains(errString(err), "reset") {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSASLRequestBeforeAuthentication: a Metadata request before
// authentication closes the connection and reaches no handler (the topic
// it names is not auto-created).
func TestSASLRequestBeforeAuthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, nil)
		rc := saslConn(t, tb)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		req.AllowAutoTopicCreation = true
		name := "never-created"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
		rc.corr++
		if _, err := rc.c.Write(encodeFrame(req, rc.corr, "raw")); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, rc)
		if tb.Reg.Topic(name) != nil {
			t.Fatal("the Metadata request reached its handler: topic auto-created")
		}
		// After a handshake, a non-SaslAuthenticate request gets
		// ILLEGAL_SASL_STATE in its own response, then the close.
		rc = saslConn(t, tb)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		hsResp := kmsg.NewPtrSASLHandshakeResponse()
		if err := rc.roundTrip(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
			t.Fatalf("handshake: %v, %v", err, kerr.ErrorForCode(hsResp.ErrorCode))
		}
		mresp := kmsg.NewPtrMetadataResponse()
		if err := rc.roundTrip(req, mresp); err != nil {
			t.Fatal(err)
		}
		if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("metadata during authentication: %+v", mresp.Topics)
		}
		expectClosed(t, rc)
		if tb.Reg.Topic(name) != nil {
			t.Fatal("topic auto-created")
		}
	})
}

// TestSASLWrongPassword: SASL_AUTHENTICATION_FAILED, not before
// connection.failed.authentication.delay.ms, then the connection closes.
func TestSASLWrongPassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const delay = 300 * time.Millisecond
		tb := startSecureBroker(t, backend, delay, nil)
		rc := saslConn(t, tb)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		hsResp := kmsg.NewPtrSASLHandshakeResponse()
		if err := rc.roundTrip(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
			t.Fatalf("handshake: %v, %v", err, kerr.ErrorForCode(hsResp.ErrorCode))
		}
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version = 2
		auth.SASLAuthBytes = []byte("\x00alice\x00wrong")
		authResp := kmsg.NewPtrSASLAuthenticateResponse()
		start := time.Now()
		if err := rc.roundTrip(auth, authResp); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < delay {
			t.Fatalf("failure answered after %v, before the %v delay", took, delay)
		}
		if authResp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("error %v", kerr.ErrorForCode(authResp.ErrorCode))
		}
		if m := authResp.ErrorMessage; m == nil || strings.Contains(*m, "wrong") {
			t.Fatalf("message %v", m)
		}
		expectClosed(t, rc)

		// franz-go sees the error too.
		cl := tb.client(plainAuth("alice", "wrong"))
		cl2 := *tb
		_ = cl2
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := cl.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping with a wrong password: %v", err)
		}
	})
}

// TestSASLHandshakeV0RawTokens: after a v0 handshake the token travels as
// a bare size-prefixed frame (KIP-152), and the connection is then
// authenticated.
func TestSASLHandshakeV0RawTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, nil)
		rc := saslConn(t, tb)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 0, "PLAIN"
		hsResp := kmsg.NewPtrSASLHandshakeResponse()
		if err := rc.roundTrip(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
			t.Fatalf("handshake: %v, %v", err, kerr.ErrorForCode(hsResp.ErrorCode))
		}
		token := []byte("\x00alice\x00alice-secret")
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
		if _, err := rc.c.Write(append(frame, token...)); err != nil {
			t.Fatal(err)
		}
		var l [4]byte
		if _, err := io.ReadFull(rc.c, l[:]); err != nil || binary.BigEndian.Uint32(l[:]) != 0 {
			t.Fatalf("raw answer: %v %v", l, err)
		}
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		resp := kmsg.NewPtrMetadataResponse()
		if err := rc.roundTrip(req, resp); err != nil || len(resp.Brokers) == 0 {
			t.Fatalf("metadata after v0 authentication: %v, %+v", err, resp)
		}
	})
}

func scramAuth(mech, user, pw string) kgo.Opt {
	a := scram.Auth{User: user, Pass: pw}
	if mech == "SCRAM-SHA-512" {
		return kgo.SASL(a.AsSha512Mechanism())
	}
	return kgo.SASL(a.AsSha256Mechanism())
}

// TestSCRAMCredentials: kadm's AlterUserSCRAMs creates credentials that
// franz-go then authenticates with (SHA-256 and SHA-512), Describe lists
// them, Kafka's validation errors come back, and they survive a restart.
func TestSCRAMCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		adm := kadm.NewClient(tb.client(plainAuth("admin", "admin-secret")))
		res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
			{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-256"},
			{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "carol-512"},
		})
		if err != nil || res["bob"].Err != nil || res["carol"].Err != nil {
			t.Fatalf("alter: %v %+v", err, res)
		}
		// What kadm refuses itself, sent raw: Kafka's validation.
		raw := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		raw.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
			{Name: "dave", Mechanism: 1, Iterations: 100, Salt: []byte("s"), SaltedPassword: []byte("p")},
			{Name: "erin", Mechanism: 2, Iterations: 20000, Salt: []byte("s"), SaltedPassword: []byte("p")},
			{Name: "gina", Mechanism: 3, Iterations: 4096, Salt: []byte("s"), SaltedPassword: []byte("p")},
			{Name: "", Mechanism: 1, Iterations: 4096, Salt: []byte("s"), SaltedPassword: []byte("p")},
		}
		rawResp, err := raw.RequestWith(ctx, tb.client(plainAuth("admin", "admin-secret")))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int16{"dave": kerr.UnacceptableCredential.Code, "erin": kerr.UnacceptableCredential.Code,
			"gina": kerr.UnsupportedSaslMechanism.Code, "": kerr.UnacceptableCredential.Code}
		for _, r := range rawResp.Results {
			if r.ErrorCode != want[r.User] {
				t.Fatalf("%q: %v, want %v", r.User, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(want[r.User]))
			}
			delete(want, r.User)
		}
		if len(want) != 0 {
			t.Fatalf("no result for %v", want)
		}
		// Deleting what does not exist; the same pair twice.
		res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "nobody", Mechanism: kadm.ScramSha256}},
			[]kadm.UpsertSCRAM{{User: "frank", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "a"}, {User: "frank", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "b"}})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res["nobody"].Err, kerr.ResourceNotFound) || !errors.Is(res["frank"].Err, kerr.DuplicateResource) {
			t.Fatalf("results %+v", res)
		}
		check := func() {
			described, err := adm.DescribeUserSCRAMs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(described) != 2 || described["carol"].CredInfos[0].Iterations != 8192 || described["bob"].CredInfos[0].Mechanism != kadm.ScramSha256 {
				t.Fatalf("described %+v", described)
			}
			one, err := adm.DescribeUserSCRAMs(ctx, "nobody")
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(one["nobody"].Err, kerr.ResourceNotFound) {
				t.Fatalf("nobody: %+v", one)
			}
			produceConsume(t, tb, "scram-256", scramAuth("SCRAM-SHA-256", "bob", "bob-256"))
			produceConsume(t, tb, "scram-512", scramAuth("SCRAM-SHA-512", "carol", "carol-512"))
			bad := tb.client(scramAuth("SCRAM-SHA-512", "carol", "wrong"))
			if err := bad.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("wrong SCRAM password: %v", err)
			}
		}
		check()
		tb.restart()
		adm = kadm.NewClient(tb.client(plainAuth("admin", "admin-secret")))
		check()
	})
}

// TestACLs: with the authorizer on, a principal without ACLs cannot
// produce, fetch or see the topic; ACLs granted with kadm let it through,
// survive a restart, and deleting them denies again.
func TestACLs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		authz := &acl.Config{SuperUsers: []acl.Principal{acl.User("admin")}}
		tb := startSecureBroker(t, backend, 0, authz)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		admin := func() *kadm.Client { return kadm.NewClient(tb.client(plainAuth("admin", "admin-secret"))) }
		adm := admin()
		const topic = "secured"
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		alice := plainAuth("alice", "alice-secret")
		denied := func() {
			t.Helper()
			cl := tb.client(alice, kgo.DefaultProduceTopic(topic), kgo.DisableIdempotentWrite())
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Fatalf("produce without ACLs: %v", err)
			}
			// An idempotent producer needs IDEMPOTENT_WRITE or WRITE on
			// some topic (InitProducerId).
			idem := tb.client(alice, kgo.DefaultProduceTopic(topic))
			if err := idem.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.ClusterAuthorizationFailed) && !errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Fatalf("idempotent produce without ACLs: %v", err)
			}
			md, err := kadm.NewClient(tb.client(alice)).Metadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := md.Topics[topic]; ok {
				t.Fatalf("topic visible without DESCRIBE: %+v", md.Topics)
			}
			// Fetch, raw: the partition is answered TOPIC_AUTHORIZATION_FAILED.
			f := kmsg.NewPtrFetchRequest()
			f.Version, f.MaxWaitMillis, f.MaxBytes = 12, 0, 1<<20
			amd, err := admin().Metadata(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			f.Topics = []kmsg.FetchRequestTopic{{Topic: topic, TopicID: amd.Topics[topic].ID, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}
			resp, err := f.RequestWith(ctx, tb.client(alice))
			if err != nil {
				t.Fatal(err)
			}
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
				t.Fatalf("fetch without ACLs: %v", kerr.ErrorForCode(code))
			}
		}
		denied()
		ipid := kmsg.NewPtrInitProducerIDRequest()
		ipid.Version, ipid.ProducerID, ipid.ProducerEpoch = 4, -1, -1
		ipidResp := kmsg.NewPtrInitProducerIDResponse()
		if err := dialProd(t, tb.Addrs[1]).roundTrip(ipid, ipidResp); err != nil || ipidResp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Fatalf("InitProducerId as User:ANONYMOUS: %v %v", err, kerr.ErrorForCode(ipidResp.ErrorCode))
		}
		// A non-super user may not manage ACLs.
		res, err := kadm.NewClient(tb.client(alice)).CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics(topic).Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral))
		if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("CreateACLs by alice: %v %+v", err, res)
		}
		grant := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics(topic).
			Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
		res, err = adm.CreateACLs(ctx, grant)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("CreateACLs: %v", r.Err)
			}
		}
		allowed := func() {
			t.Helper()
			produceConsume(t, tb, topic, alice) // idempotent: WRITE on the topic allows InitProducerId
			md, err := kadm.NewClient(tb.client(alice)).Metadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := md.Topics[topic]; !ok {
				t.Fatal("topic invisible with READ (implies DESCRIBE)")
			}
		}
		allowed()
		described, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics(topic).ResourcePatternType(kadm.ACLPatternAny).
			Operations(kadm.OpAny).Allow().AllowHosts())
		if err != nil || len(described) != 1 || len(described[0].Described) != 2 {
			t.Fatalf("DescribeACLs: %v %+v", err, described)
		}
		tb.restart()
		adm = admin()
		allowed()
		deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics(topic).
			Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
		if err != nil || len(deleted) != 2 || len(deleted[0].Deleted)+len(deleted[1].Deleted) != 2 {
			t.Fatalf("DeleteACLs: %v %+v", err, deleted)
		}
		denied()
		tb.restart()
		denied()
	})
}

// TestACLsGroups: group APIs need GROUP ACLs (GROUP_AUTHORIZATION_FAILED,
// groups hidden from ListGroups), and a consumer group works once READ
// on the group is granted.
func TestACLsGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		authz := &acl.Config{SuperUsers: []acl.Principal{acl.User("admin")}}
		tb := startSecureBroker(t, backend, 0, authz)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		adm := kadm.NewClient(tb.client(plainAuth("admin", "admin-secret")))
		const topic, grp = "grouped", "g1"
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics(topic).
			Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
			t.Fatal(err)
		}
		alice := plainAuth("alice", "alice-secret")
		p := tb.client(alice, kgo.DefaultProduceTopic(topic), kgo.DisableIdempotentWrite())
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		aadm := kadm.NewClient(tb.client(alice))
		if _, err := aadm.FetchOffsets(ctx, grp); !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("OffsetFetch without a group ACL: %v", err)
		}
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group, commit.Generation = grp, -1
		commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		commit.Version = 8
		// Raw, on the PLAINTEXT listener (User:ANONYMOUS, no ACLs): a
		// client would stop at FindCoordinator's GROUP_AUTHORIZATION_FAILED.
		cresp := kmsg.NewPtrOffsetCommitResponse()
		if err := dialProd(t, tb.Addrs[1]).roundTrip(commit, cresp); err != nil {
			t.Fatal(err)
		}
		if code := cresp.Topics[0].Partitions[0].ErrorCode; code != kerr.GroupAuthorizationFailed.Code {
			t.Fatalf("OffsetCommit without a group ACL: %v", kerr.ErrorForCode(code))
		}
		if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Groups(grp).
			Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
			t.Fatal(err)
		}
		c := tb.client(alice, kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		for {
			fs := c.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			for _, e := range fs.Errors() {
				t.Fatalf("group consume: %v", e.Err)
			}
			if len(fs.Records()) > 0 {
				break
			}
		}
		if err := c.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit with READ on the group: %v", err)
		}
		// Another group stays hidden from alice's ListGroups.
		other := tb.client(plainAuth("admin", "admin-secret"), kgo.ConsumerGroup("hidden"), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		for len(other.PollFetches(ctx).Records()) == 0 && ctx.Err() == nil {
		}
		listed, err := aadm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := listed["hidden"]; ok || len(listed) != 1 {
			t.Fatalf("alice lists %v", listed.Groups())
		}
		all, err := adm.ListGroups(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("admin lists %v %v", all.Groups(), err)
		}
	})
}

// TestACLsAdmin: admin APIs answer their authorization errors to a
// principal without ACLs, and work for a super user.
func TestACLsAdmin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		authz := &acl.Config{SuperUsers: []acl.Principal{acl.User("admin")}}
		tb := startSecureBroker(t, backend, 0, authz)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		adm := kadm.NewClient(tb.client(plainAuth("admin", "admin-secret")))
		const topic = "admin-only"
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		alice := kadm.NewClient(tb.client(plainAuth("alice", "alice-secret")))
		if res, err := alice.CreateTopic(ctx, 1, 1, nil, "alices"); !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(res.Err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("CreateTopics: %v %v", err, res.Err)
		}
		del, err := alice.DeleteTopics(ctx, topic)
		if !errors.Is(err, kerr.TopicAuthorizationFailed) && (err != nil || !errors.Is(del[topic].Err, kerr.TopicAuthorizationFailed)) {
			t.Fatalf("DeleteTopics: %v %+v", err, del)
		}
		cfgs, err := alice.DescribeTopicConfigs(ctx, topic)
		if !errors.Is(err, kerr.TopicAuthorizationFailed) && (err != nil || len(cfgs) != 1 || !errors.Is(cfgs[0].Err, kerr.TopicAuthorizationFailed)) {
			t.Fatalf("DescribeConfigs: %v %+v", err, cfgs)
		}
		bcfgs, err := alice.DescribeBrokerConfigs(ctx)
		if !errors.Is(err, kerr.ClusterAuthorizationFailed) && (err != nil || len(bcfgs) != 1 || !errors.Is(bcfgs[0].Err, kerr.ClusterAuthorizationFailed)) {
			t.Fatalf("DescribeConfigs broker: %v %+v", err, bcfgs)
		}
		// DescribeCluster needs no ACL (as Kafka); the cluster's authorized
		// operations are 0 without DESCRIBE on it.
		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.IncludeClusterAuthorizedOperations = true
		dcResp, err := dc.RequestWith(ctx, tb.client(plainAuth("alice", "alice-secret")))
		if err != nil || dcResp.ErrorCode != 0 || dcResp.ClusterAuthorizedOperations != 0 {
			t.Fatalf("DescribeCluster: %v %+v", err, dcResp)
		}
		if _, err := alice.DescribeAllLogDirs(ctx, nil); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("DescribeLogDirs: %v", err)
		}
		// The super user may.
		if cfgs, err := adm.DescribeTopicConfigs(ctx, topic); err != nil || cfgs[0].Err != nil {
			t.Fatalf("admin DescribeConfigs: %v %+v", err, cfgs)
		}
		if del, err := adm.DeleteTopics(ctx, topic); err != nil || del[topic].Err != nil {
			t.Fatalf("admin DeleteTopics: %v %+v", err, del)
		}
	})
}

// TestSASLMaxAuthenticating: connections mid-authentication are bounded
// per process (ring.conn.max.authenticating); one over the bound is
// closed at its first request, and a slot frees when a connection
// authenticates.
func TestSASLMaxAuthenticating(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) {
			o.Security = &SecurityOptions{Listeners: []ListenerSecurity{saslListener}, MaxAuthenticating: 1}
		})
		first := saslConn(t, tb) // holds the one slot, unauthenticated
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		if err := first.roundTrip(hs, kmsg.NewPtrSASLHandshakeResponse()); err != nil {
			t.Fatal(err)
		}
		second := saslConn(t, tb)
		second.corr++
		if _, err := second.c.Write(encodeFrame(hs, second.corr, "raw")); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, second)
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version, auth.SASLAuthBytes = 1, []byte("\x00alice\x00alice-secret")
		authResp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := first.roundTrip(auth, authResp); err != nil || authResp.ErrorCode != 0 {
			t.Fatalf("authenticate: %v %v", err, kerr.ErrorForCode(authResp.ErrorCode))
		}
		third := saslConn(t, tb) // the slot is free again
		if err := third.roundTrip(hs, kmsg.NewPtrSASLHandshakeResponse()); err != nil {
			t.Fatalf("after a slot freed: %v", err)
		}
	})
}

// TestAuthorizeDoesNotAllocate: the per-request authorization the hot
// paths (Produce, Fetch) make allocates nothing.
func TestAuthorizeDoesNotAllocate(t *testing.T) {
	b := &Broker{sec: &security{authz: acl.New(acl.Config{})}}
	var bindings []acl.Binding
	for _, name := range []string{"a", "b", "orders"} {
		bindings = append(bindings, acl.Binding{
			Pattern: acl.ResourcePattern{Type: acl.ResourceTopic, Name: name, PatternType: acl.PatternLiteral},
			Entry:   acl.Entry{Principal: "User:ANONYMOUS", Host: "*", Operation: acl.OpWrite, Permission: acl.Allow}})
	}
	if err := b.sec.authz.Load(bindings); err != nil {
		t.Fatal(err)
	}
	var req netpoll.Request
	if !b.authorize(req, acl.OpWrite, acl.ResourceTopic, "orders") || b.authorize(req, acl.OpRead, acl.ResourceTopic, "orders") {
		t.Fatal("wrong answers")
	}
	if n := testing.AllocsPerRun(1000, func() {
		b.authorize(req, acl.OpWrite, acl.ResourceTopic, "orders")
		b.authorize(req, acl.OpRead, acl.ResourceTopic, "other")
	}); n != 0 {
		t.Fatalf("%v allocations per authorization", n)
	}
}

// TestSASLReauthentication (KIP-368): with connections.max.reauth.ms the
// last SaslAuthenticate carries the session lifetime; a SaslHandshake
// within it re-authenticates; after it the next request closes the
// connection. Time is the broker's manual clock, stepped.
func TestSASLReauthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		clk := clock.NewManual(time.Unix(1_700_000_000, 0))
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) {
			o.Clock = clk
			o.Security = &SecurityOptions{Listeners: []ListenerSecurity{saslListener}, MaxReauth: time.Minute}
		})
		rc := saslConn(t, tb)
		login := func() {
			t.Helper()
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 1, "PLAIN"
			hsResp := kmsg.NewPtrSASLHandshakeResponse()
			if err := rc.roundTrip(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
				t.Fatalf("handshake: %v %v", err, kerr.ErrorForCode(hsResp.ErrorCode))
			}
			auth := kmsg.NewPtrSASLAuthenticateRequest()
			auth.Version, auth.SASLAuthBytes = 1, []byte("\x00alice\x00alice-secret")
			authResp := kmsg.NewPtrSASLAuthenticateResponse()
			if err := rc.roundTrip(auth, authResp); err != nil || authResp.ErrorCode != 0 {
				t.Fatalf("authenticate: %v %v", err, kerr.ErrorForCode(authResp.ErrorCode))
			}
			if authResp.SessionLifetimeMillis != 60_000 {
				t.Fatalf("session lifetime %d ms, want 60000", authResp.SessionLifetimeMillis)
			}
		}
		metadata := func() error {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 9
			return rc.roundTrip(req, kmsg.NewPtrMetadataResponse())
		}
		login()
		if err := metadata(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(30 * time.Second)
		login() // re-authentication within the session
		if err := metadata(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(61 * time.Second)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		rc.corr++
		if _, err := rc.c.Write(encodeFrame(req, rc.corr, "raw")); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, rc)
	})
}
