//go:build linux

package integration

// TLS connections on the io_uring loops (ring.ssl.loop.enable, issue 19),
// seen from outside the broker: its goroutine count (go_goroutines on
// /metrics) does not grow with TLS 1.3 connections on io_uring, where the
// portable backend spends two goroutines on each; a fetch of a large
// file region over SSL reads back every byte; and OpenSSL's s_client
// speaks each TLS 1.3 suite, KeyUpdate included.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTLSConnectionsGoroutines(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		props := f.props(filepath.Join(t.TempDir(), "data"))
		metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		props["metrics.listener"] = metricsAddr
		b := startBroker(t, backend, props)
		goroutines := func() float64 {
			m, err := scrapeMetrics(metricsAddr)
			if err != nil {
				t.Fatalf("scrape: %v", err)
			}
			return m["go_goroutines"]
		}
		dial := func(i int, cfg *tls.Config) *tls.Conn {
			c, err := tls.Dial("tcp", f.sslAddr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if err := apiVersionsOn(c, int32(i), 10*time.Second); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			return c
		}
		dial(0, f.clientTLS(t, nil))
		base := goroutines()
		const n = 50
		for i := 1; i <= n; i++ {
			dial(i, f.clientTLS(t, nil))
		}
		var grown float64
		if backend == "uring" {
			// Handshake goroutines end; nothing stays per connection.
			deadline := time.Now().Add(15 * time.Second)
			for grown = goroutines() - base; grown >= 15 && time.Now().Before(deadline); grown = goroutines() - base {
				time.Sleep(50 * time.Millisecond)
			}
			if grown >= 15 {
				t.Fatalf("io_uring: %d more TLS 1.3 connections grew the broker by %.0f goroutines", n, grown)
			}
			// A TLS 1.2 client stays on the portable machinery and works.
			cfg := f.clientTLS(t, nil)
			cfg.MaxVersion = tls.VersionTLS12
			dial(n+1, cfg)
		} else if grown = goroutines() - base; grown < 3*n/2 {
			// Two per connection (its reader and its writer), give or
			// take the goroutines that come and go between the two
			// samples (a handshake, a timer, the scrape's own): one
			// sample of 2n-1 was seen.
			t.Fatalf("portable: %d more TLS connections grew the broker by only %.0f goroutines", n, grown)
		}
		t.Logf("%s: %d more TLS connections, %.0f more goroutines", backend, n, grown)

		// A large fetch over SSL: the catch-up reads file regions the loop
		// seals record by record.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		if _, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 1, nil, "tls-large"); err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(f.sslAddr), kgo.DialTLSConfig(f.clientTLS(t, nil)), kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(1<<20), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"tls-large": {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxBytes(32<<20), kgo.FetchMaxPartitionBytes(32<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		const records = 24_000 // 24 MB of values
		value := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 500) }
		for i := 0; i < records; i++ {
			cl.Produce(ctx, &kgo.Record{Topic: "tls-large", Value: value(i)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < records {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", got, records)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				if !bytes.Equal(r.Value, value(got)) {
					t.Fatalf("record %d differs", got)
				}
				got++
			})
		}
	})
}

// TestTLSOpenSSLSuites: OpenSSL's s_client (an implementation independent
// of crypto/tls and of our record layer) speaks each TLS 1.3 suite to the
// SSL listener and gets ApiVersions answered twice, the second time after
// asking for a KeyUpdate (its "K" command: update_requested), which on
// io_uring the loop's record layer must follow and answer.
func TestTLSOpenSSLSuites(t *testing.T) {
	openssl := requireTool(t, "openssl")
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		startBroker(t, backend, f.props(filepath.Join(t.TempDir(), "data")))
		for _, suite := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} {
			t.Run(suite, func(t *testing.T) { openSSLRoundTrips(t, openssl, f, suite) })
		}
	})
}

func openSSLRoundTrips(t *testing.T, openssl string, f *tlsFixture, suite string) {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", f.sslAddr, "-tls1_3", "-ciphersuites", suite,
		"-CAfile", f.caPath, "-verify_return_error", "-quiet", "-no_ign_eof")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Process.Kill() // the s_client this test started
		_ = cmd.Wait()
	}()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "openssl", "1"
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("openssl"))
	read := func(corr int32) {
		t.Helper()
		var n [4]byte
		if _, err := io.ReadFull(stdout, n[:]); err != nil {
			t.Fatalf("%s: response %d: %v; s_client said: %s", suite, corr, err, stderr.String())
		}
		body := make([]byte, binary.BigEndian.Uint32(n[:]))
		if _, err := io.ReadFull(stdout, body); err != nil {
			t.Fatalf("%s: response %d: %v", suite, corr, err)
		}
		if got := int32(binary.BigEndian.Uint32(body)); got != corr {
			t.Fatalf("%s: correlation id %d, want %d", suite, got, corr)
		}
	}
	if _, err := stdin.Write(formatter.AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
	read(1)
	// "K\n" alone in one read of s_client's stdin: SSL_key_update(requested).
	if _, err := stdin.Write([]byte("K\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "KEYUPDATE") {
		if time.Now().After(deadline) {
			t.Fatalf("%s: s_client did not do its KeyUpdate (stderr: %q)", suite, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := stdin.Write(formatter.AppendRequest(nil, req, 2)); err != nil {
		t.Fatal(err)
	}
	read(2)
}

// lockedBuffer is an io.Writer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
