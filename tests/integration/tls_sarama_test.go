//go:build linux

package integration

// Sarama (IBM/sarama) over TLS (issue 19): over SASL_SSL with
// SCRAM-SHA-512 as User:bob and over SSL with a client certificate
// (ssl.client.auth=required) as User:alice, the authorizer on: each
// creates a topic with the cluster admin, produces with a SyncProducer and
// consumes in a consumer group, allowed by prefixed ACLs only.

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// saramaSCRAM is Sarama's SCRAMClient over franz-go's SCRAM mechanism
// (Sarama brings no SCRAM implementation of its own).
type saramaSCRAM struct {
	sha512  bool
	session sasl.Session
	first   []byte
	done    bool
}

func (c *saramaSCRAM) Begin(user, password, _ string) error {
	auth := scram.Auth{User: user, Pass: password}
	mech := auth.AsSha256Mechanism()
	if c.sha512 {
		mech = auth.AsSha512Mechanism()
	}
	var err error
	c.session, c.first, err = mech.Authenticate(context.Background(), "")
	return err
}

// Step answers the server's challenge; the first call (empty challenge)
// returns the client-first message.
func (c *saramaSCRAM) Step(challenge string) (string, error) {
	if c.first != nil {
		first := c.first
		c.first = nil
		return string(first), nil
	}
	done, resp, err := c.session.Challenge([]byte(challenge))
	c.done = done
	return string(resp), err
}

func (c *saramaSCRAM) Done() bool { return c.done }

// saramaGroupHandler collects the values of want messages, then cancels.
type saramaGroupHandler struct {
	want   int
	got    []string
	cancel context.CancelFunc
}

func (*saramaGroupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*saramaGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaGroupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.got = append(h.got, string(m.Value))
		s.MarkMessage(m, "")
		if len(h.got) >= h.want {
			h.cancel()
			return nil
		}
	}
	return nil
}

// saramaAdminProduceGroup: as cfg's principal, create topic, produce n
// records and consume them in group.
func saramaAdminProduceGroup(t *testing.T, addr string, cfg *sarama.Config, topic, group string, n int) {
	t.Helper()
	adm, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	defer adm.Close()
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("sarama CreateTopic %s: %v", topic, err)
	}
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("%s-%d", topic, i)
		want[v] = true
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatalf("sarama produce to %s: %v", topic, err)
		}
	}
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group: %v", err)
	}
	defer cg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := &saramaGroupHandler{want: n, cancel: cancel}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
			t.Fatalf("sarama group consume: %v", err)
		}
	}
	if len(h.got) < n {
		t.Fatalf("sarama group consumed %d of %d records of %s", len(h.got), n, topic)
	}
	for _, v := range h.got {
		if !want[v] {
			t.Fatalf("sarama consumed %q, never produced", v)
		}
	}
}

func TestSaramaTLS(t *testing.T) {
	saramaLog := daemontest.NewOutputBuffer(4 << 20)
	saved := sarama.Logger
	sarama.Logger = log.New(saramaLog, "[sarama] ", log.Ltime|log.Lmicroseconds)
	t.Cleanup(func() {
		sarama.Logger = saved
		if t.Failed() {
			t.Logf("sarama log:\n%s", daemontest.Tail(saramaLog.String(), 128<<10))
		}
	})
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		b := startBroker(t, backend, f.props(filepath.Join(t.TempDir(), "data")))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		adm := kadm.NewClient(admin)
		if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-secret"}}); err != nil || res["bob"].Err != nil {
			t.Fatalf("AlterUserSCRAMs: %v %+v", err, res)
		}
		for _, user := range []string{"User:bob", "User:alice"} {
			prefix := "sarama-" + user[len("User:"):] + "-"
			for _, acls := range []*kadm.ACLBuilder{
				kadm.NewACLs().Allow(user).AllowHosts("*").Topics(prefix).Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternPrefixed),
				kadm.NewACLs().Allow(user).AllowHosts("*").Groups(prefix).Operations(kadm.OpRead, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternPrefixed),
			} {
				if r, err := adm.CreateACLs(ctx, acls); err != nil || r[0].Err != nil {
					t.Fatalf("CreateACLs: %v %+v", err, r)
				}
			}
		}
		base := func(tlsCfg *tls.Config) *sarama.Config {
			cfg := sarama.NewConfig()
			cfg.Version = sarama.V3_0_0_0
			cfg.ClientID = "sarama-tls"
			cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tlsCfg
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
			cfg.Admin.Timeout = 30 * time.Second
			return cfg
		}

		// SASL_SSL, SCRAM-SHA-512, as bob.
		scramCfg := base(f.clientTLS(t, nil))
		scramCfg.Net.SASL.Enable, scramCfg.Net.SASL.Handshake = true, true
		scramCfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		scramCfg.Net.SASL.User, scramCfg.Net.SASL.Password = "bob", "bob-secret"
		scramCfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{sha512: true} }
		saramaAdminProduceGroup(t, f.saslSSLAddr, scramCfg, "sarama-bob-t", "sarama-bob-g", 20)
		// Outside his prefix bob is refused.
		badAdm, err := sarama.NewClusterAdmin([]string{f.saslSSLAddr}, scramCfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := badAdm.CreateTopic("sarama-alice-x", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err == nil {
			t.Fatal("bob created a topic outside his ACLs")
		}
		badAdm.Close()
		// A wrong password fails authentication.
		wrong := *scramCfg
		wrong.Net.SASL.Password = "not-bobs"
		if c, err := sarama.NewClient([]string{f.saslSSLAddr}, &wrong); err == nil {
			c.Close()
			t.Fatal("sarama authenticated with a wrong SCRAM password")
		}

		// SSL with a client certificate (mTLS), as alice.
		saramaAdminProduceGroup(t, f.mtlsAddr, base(f.clientTLS(t, f.client)), "sarama-alice-t", "sarama-alice-g", 20)
	})
}
