//go:build javatools

package integration

// Kafka's Java tools over every authentication issue 19 names: SSL with a
// client certificate (mTLS), SASL_SSL with SCRAM-SHA-512, with PLAIN and
// with OAUTHBEARER (the unsecured development tokens: the Kafka 3.9 client
// built here has only the unsecured login handler). Each one admins
// (kafka-topics.sh --create and --describe), produces
// (kafka-producer-perf-test.sh, acks=all) and consumes in a group
// (kafka-console-consumer.sh --group). See javatools_test.go for how to run.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestJavaToolsAuthMechanisms: one broker per backend with the TLS
// fixture's listeners plus PLAINSSL (SASL_SSL, PLAIN) and OAUTHSSL
// (SASL_SSL, OAUTHBEARER with the unsecured validator); the four
// principals (alice by her certificate, admin by SCRAM, carol by PLAIN,
// dave by an unsecured token) are super users, and the authorizer is on,
// so a tool that authenticated as anyone else would be refused.
func TestJavaToolsAuthMechanisms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		props := f.props(filepath.Join(t.TempDir(), "data"))
		plainAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		oauthAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		props["listeners"] += ",PLAINSSL://" + plainAddr + ",OAUTHSSL://" + oauthAddr
		props["listener.security.protocol.map"] += ",PLAINSSL:SASL_SSL,OAUTHSSL:SASL_SSL"
		props["listener.name.plainssl.sasl.enabled.mechanisms"] = "PLAIN"
		props["listener.name.plainssl.plain.sasl.jaas.config"] = `org.apache.kafka.common.security.plain.PlainLoginModule required user_carol="carol-secret";`
		props["listener.name.oauthssl.sasl.enabled.mechanisms"] = "OAUTHBEARER"
		props["listener.name.oauthssl.oauthbearer.sasl.server.callback.handler.class"] = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
		props["super.users"] = "User:ANONYMOUS;User:admin;User:alice;User:carol;User:dave"
		b := startBroker(t, backend, props)

		// admin's SCRAM credential, made over PLAINTEXT (ANONYMOUS is a
		// super user there).
		plainCfg := filepath.Join(t.TempDir(), "plain.properties")
		if err := os.WriteFile(plainCfg, []byte("bootstrap.servers="+b.Addr+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out := securityAdmin(t, plainCfg, "scram-upsert:admin:SCRAM-SHA-512:4096:admin-secret"); !strings.Contains(out, "Completed updating config for user admin.") {
			t.Fatalf("SCRAM admin over PLAINTEXT:\n%s", out)
		}

		dir := t.TempDir()
		alicePEM := filepath.Join(dir, "alice.pem")
		if err := os.WriteFile(alicePEM, append(append([]byte{}, f.client.KeyPEM...), f.client.CertPEM...), 0o600); err != nil {
			t.Fatal(err)
		}
		trust := "ssl.truststore.type=PEM\nssl.truststore.location=" + f.caPath + "\n"
		modes := []struct {
			name, addr, config string
		}{
			{"mtls", f.mtlsAddr, "security.protocol=SSL\n" + trust +
				"ssl.keystore.type=PEM\nssl.keystore.location=" + alicePEM + "\n"},
			{"scram", f.saslSSLAddr, "security.protocol=SASL_SSL\n" + trust + "sasl.mechanism=SCRAM-SHA-512\n" +
				`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";` + "\n"},
			{"plain", plainAddr, "security.protocol=SASL_SSL\n" + trust + "sasl.mechanism=PLAIN\n" +
				`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="carol" password="carol-secret";` + "\n"},
			{"oauthbearer", oauthAddr, "security.protocol=SASL_SSL\n" + trust + "sasl.mechanism=OAUTHBEARER\n" +
				`sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="dave";` + "\n"},
		}
		const records = 20000
		for _, m := range modes {
			cfg := filepath.Join(dir, m.name+".properties")
			if err := os.WriteFile(cfg, []byte(m.config), 0o600); err != nil {
				t.Fatal(err)
			}
			topic := "jmech-" + m.name
			out := runJava(t, "kafka-topics.sh", "--bootstrap-server", m.addr, "--command-config", cfg,
				"--create", "--topic", topic, "--partitions", "2")
			if !strings.Contains(out, "Created topic "+topic+".") {
				t.Fatalf("%s: kafka-topics.sh --create:\n%s", m.name, tail(out, 3000))
			}
			out = runJava(t, "kafka-topics.sh", "--bootstrap-server", m.addr, "--command-config", cfg,
				"--describe", "--topic", topic)
			if !strings.Contains(out, "PartitionCount: 2") {
				t.Fatalf("%s: kafka-topics.sh --describe:\n%s", m.name, tail(out, 3000))
			}

			out = runJava(t, "kafka-producer-perf-test.sh", "--topic", topic, "--num-records", strconv.Itoa(records),
				"--record-size", "100", "--throughput", "-1", "--producer.config", cfg,
				"--producer-props", "bootstrap.servers="+m.addr, "acks=all")
			sent := perfSentRe.FindStringSubmatch(out)
			if sent == nil || sent[1] != strconv.Itoa(records) || strings.Contains(out, "Exception") {
				t.Fatalf("%s: kafka-producer-perf-test.sh: want %d records sent, no exception:\n%s", m.name, records, tail(out, 3000))
			}

			out = runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", m.addr, "--topic", topic,
				"--consumer.config", cfg, "--group", "jmech-"+m.name+"-group", "--from-beginning",
				"--max-messages", strconv.Itoa(records), "--timeout-ms", "60000")
			got := consumedRe.FindStringSubmatch(out)
			if got == nil || got[1] != strconv.Itoa(records) {
				t.Fatalf("%s: kafka-console-consumer.sh in a group: want %d messages:\n%s", m.name, records, tail(out, 3000))
			}
			t.Logf("%s on %s: created and described %s, %s, read all %d back in a group", m.name, m.addr, topic, sent[0], records)
		}
	})
}
