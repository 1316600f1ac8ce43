//go:build linux

package integration

// TLS connections on the io_uring loops (ring.ssl.loop.enable, issue 19),
// seen from outside the broker: its goroutine count (go_goroutines on
// /metrics) does not grow with TLS 1.3 connections on io_uring, where the
// portable backend spends two goroutines on each; and a fetch of a large
// file region over SSL reads back every byte.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsOver sends one ApiVersions request on c and reads its answer.
func apiVersionsOver(c *tls.Conn, corr int32) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "tlsloop-test", "1"
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("tlsloop")).AppendRequest(nil, req, corr)
	if _, err := c.Write(frame); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(n[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	return nil
}

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
			if err := apiVersionsOver(c, int32(i)); err != nil {
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
		} else if grown = goroutines() - base; grown < 2*n {
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
