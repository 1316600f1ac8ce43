//go:build linux

package integration

// librdkafka (kcat) with SASL/PLAIN (issue 19): the JAAS user of the
// listener produces and consumes; a wrong password is refused.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestKcatSASLPlain(t *testing.T) {
	kcat := requireTool(t, "kcat")
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, saslProps(filepath.Join(t.TempDir(), "data")))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		const topic = "kcat-plain"
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		args := func(pw string, more ...string) []string {
			return append([]string{"-b", b.Addr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
				"-X", "sasl.username=admin", "-X", "sasl.password=" + pw}, more...)
		}
		in := filepath.Join(t.TempDir(), "in.txt")
		if err := os.WriteFile(in, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runClient(t, clientTimeout, nil, kcat, args("admin-secret", "-P", "-t", topic, "-p", "0", "-l", in)...); err != nil {
			t.Fatalf("kcat PLAIN produce: %v %s", err, out)
		}
		out, err := runClient(t, clientTimeout, nil, kcat, args("admin-secret", "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "3", "-e")...)
		if got := strings.Fields(out); err != nil || len(got) != 3 || got[0] != "one" || got[2] != "three" {
			t.Fatalf("kcat PLAIN consume: %q %v", out, err)
		}
		// -m 1: kcat says so at its first attempt, then retries until its
		// metadata timeout (5 s by default) ends.
		if out, err := runClient(t, clientTimeout, nil, kcat, args("wrong", "-L", "-t", topic, "-m", "1")...); err == nil {
			t.Fatalf("kcat PLAIN with a wrong password listed metadata: %s", out)
		} else if !strings.Contains(strings.ToLower(err.Error()+out), "authentication") {
			t.Fatalf("kcat PLAIN with a wrong password: %v %s", err, out)
		}
	})
}
