//go:build linux

package integration

// KafkaJS over TLS (issue 19): over SASL_SSL with SCRAM-SHA-512 as
// User:bob and over SSL with a client certificate as User:alice, the
// authorizer on: each creates a topic (admin), produces and consumes in a
// consumer group (tests/js/secure_roundtrip.js), allowed by prefixed ACLs.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

func TestKafkaJSTLS(t *testing.T) {
	node := requireTool(t, "node")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
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
			prefix := "kjs-" + user[len("User:"):] + "-"
			for _, acls := range []*kadm.ACLBuilder{
				kadm.NewACLs().Allow(user).AllowHosts("*").Topics(prefix).Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternPrefixed),
				kadm.NewACLs().Allow(user).AllowHosts("*").Groups(prefix).Operations(kadm.OpRead, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternPrefixed),
			} {
				if r, err := adm.CreateACLs(ctx, acls); err != nil || r[0].Err != nil {
					t.Fatalf("CreateACLs: %v %+v", err, r)
				}
			}
		}
		run := func(what, addr, topic, group string, env ...string) {
			t.Helper()
			env = append(env, "KAFKAJS_NO_PARTITIONER_WARNING=1", "RB_CA="+f.caPath)
			out, err := runClient(t, 2*time.Minute, env, node, filepath.Join(jsDir, "secure_roundtrip.js"), addr, topic, group, "20")
			if err != nil {
				t.Fatalf("KafkaJS %s: %v\n%s", what, err, out)
			}
			var got struct {
				Created  bool     `json:"created"`
				Produced int      `json:"produced"`
				Consumed []string `json:"consumed"`
			}
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
				t.Fatalf("KafkaJS %s printed %q: %v", what, out, err)
			}
			want := make([]string, 20)
			for i := range want {
				want[i] = fmt.Sprintf("v%d", i)
			}
			sort.Strings(want)
			sort.Strings(got.Consumed)
			if !got.Created || got.Produced != 20 || !slices.Equal(got.Consumed, want) {
				t.Fatalf("KafkaJS %s: %+v", what, got)
			}
			t.Logf("KafkaJS %s: created %s, produced and consumed %d in group %s", what, topic, len(got.Consumed), group)
		}
		run("SASL_SSL SCRAM-SHA-512", f.saslSSLAddr, "kjs-bob-t", "kjs-bob-g", "RB_SCRAM_USER=bob", "RB_SCRAM_PASSWORD=bob-secret")
		run("mTLS", f.mtlsAddr, "kjs-alice-t", "kjs-alice-g",
			"RB_CERT="+testpki.Write(t, f.dir, "alice.crt", f.client.CertPEM), "RB_KEY="+testpki.Write(t, f.dir, "alice.key", f.client.KeyPEM))
	})
}
