//go:build javatools

package integration

// Kafka's Java client and tools over SASL_SSL (SCRAM-SHA-512, a PEM
// truststore) on one node, both backends. Kafka 3.x's kafka-configs.sh,
// kafka-acls.sh and kafka-console-producer.sh are Scala (core), which
// scripts/build-kafka-java-tools.sh cannot build: tests/java/SecurityAdmin.java
// makes the Admin calls kafka-configs.sh and kafka-acls.sh make (SCRAM
// credentials, client quotas, ACLs) and kafka-verifiable-producer.sh
// produces. See javatools_test.go for how to run.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// javaClientConfig writes a Java client properties file for SCRAM-SHA-512
// over SASL_SSL as user/pass, trusting the fixture's CA (PEM).
func javaClientConfig(t *testing.T, f *tlsFixture, user, pass string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), user+".properties")
	body := fmt.Sprintf(`security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";
ssl.truststore.type=PEM
ssl.truststore.location=%s
`, user, pass, f.caPath)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// securityAdmin runs tests/java/SecurityAdmin.java (a single-file source
// program) with Kafka's jars: the Admin calls of kafka-configs.sh and
// kafka-acls.sh, ops run in order.
func securityAdmin(t *testing.T, clientConfig string, ops ...string) string {
	t.Helper()
	src := filepath.Join(repoRoot, "tests", "java", "SecurityAdmin.java")
	return runJava(t, "kafka-run-class.sh", append([]string{src, clientConfig}, ops...)...)
}

// TestJavaToolsSecurity: through the PLAINTEXT listener (its ANONYMOUS
// principal a super user) the SCRAM user admin is made (also a super user);
// everything else runs over SASL_SSL as admin: bob's SCRAM credential
// (described back), user, client-id and user+client-id quotas (described
// back), two topics (kafka-topics.sh --command-config), ACLs for bob (added
// and listed). Then bob produces with kafka-verifiable-producer.sh and reads
// everything back in a group with kafka-console-consumer.sh over SASL_SSL,
// and is refused the topic his ACLs do not name.
func TestJavaToolsSecurity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		props := f.props(filepath.Join(t.TempDir(), "data"))
		props["super.users"] = "User:ANONYMOUS;User:admin"
		b := startBroker(t, backend, props)
		sasl := f.saslSSLAddr

		plain := filepath.Join(t.TempDir(), "plain.properties")
		if err := os.WriteFile(plain, []byte("bootstrap.servers="+b.Addr+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := securityAdmin(t, plain, "scram-upsert:admin:SCRAM-SHA-512:8192:admin-secret")
		if !strings.Contains(out, "Completed updating config for user admin.") {
			t.Fatalf("SCRAM admin over PLAINTEXT:\n%s", out)
		}
		admin := javaClientConfig(t, f, "admin", "admin-secret")
		adminProps, err := os.ReadFile(admin)
		if err != nil {
			t.Fatal(err)
		}
		adminBoot := filepath.Join(t.TempDir(), "admin-boot.properties")
		if err := os.WriteFile(adminBoot, append(adminProps, []byte("bootstrap.servers="+sasl+"\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
		out = securityAdmin(t, adminBoot,
			"scram-upsert:bob:SCRAM-SHA-512:4096:bob-secret",
			"scram-describe:bob",
			"quota-alter:user=bob:producer_byte_rate=1048576,consumer_byte_rate=2097152,request_percentage=50",
			"quota-alter:client-id=bob-producer:producer_byte_rate=524288",
			"quota-alter:user=bob+client-id=bob-producer:consumer_byte_rate=4194304",
			"quota-describe:user=bob",
			"quota-describe:client-id=bob-producer",
			"quota-describe:user=bob+client-id=bob-producer",
			"acl-add:bob:topic:jsec:Read,Write,Describe",
			"acl-add:bob:group:bob-group:Read",
			"acl-list:topic:jsec",
			"acl-list:group:bob-group")
		t.Logf("SecurityAdmin.java over SASL_SSL as admin:\n%s", out)
		for _, want := range []string{
			"Completed updating config for user bob.",
			"SCRAM credential configs for user-principal 'bob' are SCRAM-SHA-512=iterations=4096",
			"Quota configs for {user=bob} are consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0, request_percentage=50.0",
			"Quota configs for {client-id=bob-producer} are producer_byte_rate=524288.0",
			"Quota configs for {client-id=bob-producer, user=bob} are consumer_byte_rate=4194304.0",
			"(pattern=ResourcePattern(resourceType=TOPIC, name=jsec, patternType=LITERAL), entry=(principal=User:bob, host=*, operation=READ, permissionType=ALLOW))",
			"(pattern=ResourcePattern(resourceType=TOPIC, name=jsec, patternType=LITERAL), entry=(principal=User:bob, host=*, operation=WRITE, permissionType=ALLOW))",
			"(pattern=ResourcePattern(resourceType=TOPIC, name=jsec, patternType=LITERAL), entry=(principal=User:bob, host=*, operation=DESCRIBE, permissionType=ALLOW))",
			"(pattern=ResourcePattern(resourceType=GROUP, name=bob-group, patternType=LITERAL), entry=(principal=User:bob, host=*, operation=READ, permissionType=ALLOW))",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("SecurityAdmin.java output lacks %q", want)
			}
		}

		for _, topic := range []string{"jsec", "jsec-other"} {
			out = runJava(t, "kafka-topics.sh", "--bootstrap-server", sasl, "--command-config", admin, "--create", "--topic", topic, "--partitions", "2")
			if !strings.Contains(out, "Created topic "+topic+".") {
				t.Fatalf("kafka-topics.sh --create %s over SASL_SSL:\n%s", topic, out)
			}
		}

		// bob: kafka-verifiable-producer.sh and kafka-console-consumer.sh
		// over SASL_SSL.
		bob := javaClientConfig(t, f, "bob", "bob-secret")
		bobProducer := filepath.Join(t.TempDir(), "bob-producer.properties")
		bobProps, err := os.ReadFile(bob)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bobProducer, append(bobProps, []byte("client.id=bob-producer\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
		const n = 500
		out = runJava(t, "kafka-verifiable-producer.sh", "--bootstrap-server", sasl, "--topic", "jsec", "--max-messages", fmt.Sprint(n),
			"--acks", "-1", "--producer.config", bobProducer)
		if !regexp.MustCompile(`"name":"tool_data","sent":` + fmt.Sprint(n) + `,"acked":` + fmt.Sprint(n) + `\b`).MatchString(out) {
			t.Fatalf("kafka-verifiable-producer.sh as bob did not report %d sent and acked:\n%s", n, tail(out, 3000))
		}
		out = runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", sasl, "--topic", "jsec", "--consumer.config", bob,
			"--group", "bob-group", "--from-beginning", "--max-messages", fmt.Sprint(n), "--timeout-ms", "60000")
		m := consumedRe.FindStringSubmatch(out)
		if m == nil || m[1] != fmt.Sprint(n) {
			t.Fatalf("kafka-console-consumer.sh as bob: want %d messages:\n%s", n, tail(out, 3000))
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			if v, err := strconv.Atoi(line); err == nil && v >= 0 && v < n {
				seen[line] = true
			}
		}
		if len(seen) != n {
			t.Fatalf("kafka-console-consumer.sh as bob: %d distinct values of 0..%d, want %d:\n%s", len(seen), n-1, n, tail(out, 3000))
		}
		t.Logf("bob produced %d records with kafka-verifiable-producer.sh and read them all back in group bob-group with kafka-console-consumer.sh over SASL_SSL", n)

		// bob on a topic his ACLs do not name: refused.
		argv := []string{"-c", `"$0" "$@" 2>&1`, javaTool(t, "kafka-console-consumer.sh"), "--bootstrap-server", sasl, "--topic", "jsec-other",
			"--consumer.config", bob, "--from-beginning", "--max-messages", "1", "--timeout-ms", "20000"}
		out, _ = runClient(t, javaToolTimeout, []string{"KAFKA_HEAP_OPTS=-Xmx512m"}, "/bin/sh", argv...)
		if !strings.Contains(out, "TopicAuthorizationException") && !strings.Contains(out, "Not authorized to access topics") {
			t.Errorf("kafka-console-consumer.sh as bob on jsec-other was not refused:\n%s", tail(out, 3000))
		}
		t.Logf("bob refused jsec-other: %s", firstLineWith(out, "uthoriz"))
	})
}

func firstLineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
