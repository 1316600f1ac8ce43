//go:build linux

package integration

// SASL and ACLs end to end (issue 19): ringbrokerd with a SASL_PLAINTEXT
// listener and the authorizer on, driven by franz-go (kadm, for SCRAM
// credentials and ACLs), kcat and confluent-kafka-python.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// saslProps serves one SASL_PLAINTEXT listener (PLAIN user admin, a super
// user; SCRAM users from AlterUserScramCredentials) with the authorizer on.
func saslProps(dir string) map[string]string {
	return map[string]string{
		"listeners":                      "SASL_PLAINTEXT://127.0.0.1:{port}",
		"listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config":  `org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";`,
		"authorizer.class.name":                                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                                          "User:admin",
		"connection.failed.authentication.delay.ms":            "50",
		"log.dirs": dir,
	}
}

func TestSASLClients(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "/usr/bin/python3")
	script := filepath.Join(repoRoot, "tests", "python", "confluent_sasl.py")
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		b := startBroker(t, backend, saslProps(dir))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
			{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "bob-secret"},
			{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "carol-secret"},
		})
		if err != nil || res["bob"].Err != nil || res["carol"].Err != nil {
			t.Fatalf("AlterUserSCRAMs: %v %+v", err, res)
		}
		const topic = "sasl-clients"
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		kcatArgs := func(user, pw string, args ...string) []string {
			return append([]string{"-b", b.Addr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
				"-X", "sasl.username=" + user, "-X", "sasl.password=" + pw}, args...)
		}
		in := filepath.Join(t.TempDir(), "in.txt")
		if err := os.WriteFile(in, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Without ACLs bob may not write.
		if out, err := runClient(t, clientTimeout, nil, kcat, kcatArgs("bob", "bob-secret", "-P", "-t", topic, "-p", "0", "-l", in)...); err == nil {
			t.Fatalf("kcat produced without an ACL: %s", out)
		} else if !strings.Contains(strings.ToLower(err.Error()), "authoriz") {
			t.Fatalf("kcat produce without an ACL: %v", err)
		}
		for _, user := range []string{"User:bob", "User:carol"} {
			r, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow(user).AllowHosts("*").Topics(topic).
				Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
			if err != nil || r[0].Err != nil || r[1].Err != nil {
				t.Fatalf("CreateACLs: %v %+v", err, r)
			}
		}
		if _, err := runClient(t, clientTimeout, nil, kcat, kcatArgs("bob", "bob-secret", "-P", "-t", topic, "-p", "0", "-l", in)...); err != nil {
			t.Fatalf("kcat produce: %v", err)
		}
		consume := func() {
			t.Helper()
			out, err := runClient(t, clientTimeout, nil, kcat, kcatArgs("bob", "bob-secret", "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "3", "-e")...)
			if err != nil {
				t.Fatalf("kcat consume: %v", err)
			}
			if got := strings.Fields(out); len(got) != 3 || got[0] != "one" || got[2] != "three" {
				t.Fatalf("kcat consumed %q", out)
			}
		}
		consume()
		// A wrong password: kcat fails to authenticate (and says so at its
		// first attempt; -m bounds how long it retries before it gives up).
		if out, err := runClient(t, clientTimeout, nil, kcat, kcatArgs("bob", "wrong", "-L", "-m", "1")...); err == nil {
			t.Fatalf("kcat -L with a wrong password succeeded: %s", out)
		} else if !strings.Contains(err.Error(), "uthentication") {
			t.Fatalf("kcat -L with a wrong password: %v", err)
		}
		// confluent-kafka-python with SCRAM-SHA-256 (its consumer looks up
		// the coordinator of its group.id even with assign()).
		if r, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:carol").AllowHosts("*").Groups("unused").
			Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || r[0].Err != nil {
			t.Fatalf("CreateACLs group: %v %+v", err, r)
		}
		out, err := runClient(t, clientTimeout, nil, python, script, b.Addr, topic, "SCRAM-SHA-256", "carol", "carol-secret", "5")
		t.Logf("confluent_sasl.py: %s", strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("confluent_sasl.py: %v", err)
		}
		var summary struct{ Produced, Consumed int }
		if err := json.Unmarshal([]byte(out), &summary); err != nil || summary.Produced != 5 || summary.Consumed < 5 {
			t.Fatalf("confluent_sasl.py summary %+v (%v)", summary, err)
		}
		// Credentials and ACLs survive a restart.
		cl.Close()
		b.Stop(t)
		b = startBroker(t, backend, saslProps(dir))
		consume()
		wrong, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.SASL(plain.Auth{User: "admin", Pass: "nope"}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer wrong.Close()
		if err := wrong.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("franz-go with a wrong password: %v", err)
		}
	})
}
