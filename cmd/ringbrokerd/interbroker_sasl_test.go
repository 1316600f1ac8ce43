package main

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

func TestReauthPoint(t *testing.T) {
	start := time.Unix(1000, 0)
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		at := reauthPoint(start, 10*time.Second, r)
		if d := at.Sub(start); d < 8500*time.Millisecond || d > 9500*time.Millisecond {
			t.Fatalf("re-authentication %v into a 10 s session, want 8.5-9.5 s", d)
		}
	}
	if !reauthPoint(start, 0, r).IsZero() {
		t.Fatal("a session without lifetime has a re-authentication point")
	}
}

// TestInterBrokerReauth: the inter-broker client's SASL session against
// a broker (in-process daemon) with connections.max.reauth.ms=1500 is
// re-authenticated in place (KIP-368) between requests, so the
// connection keeps serving past several lifetimes; the same connection
// not re-authenticated is closed by the broker once its session ended
// (what the fetchers used to see).
func TestInterBrokerReauth(t *testing.T) {
	for _, backend := range []string{"uring", "portable"} {
		t.Run(backend, func(t *testing.T) {
			notify := fakeNotifySocket(t, false)
			logs := daemontest.NewOutputBuffer(daemontest.OutputBytesMax)
			done := make(chan int, 1)
			go func() {
				done <- run([]string{
					"--set", "listeners=SASL_PLAINTEXT://127.0.0.1:0",
					"--set", "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT",
					"--set", "sasl.enabled.mechanisms=PLAIN",
					"--set", `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_broker="broker-secret";`,
					"--set", "connections.max.reauth.ms=1500",
					"--set", "log.dirs=" + t.TempDir(),
					"--set", "io.backend=" + backend,
					"--set", "metrics.listener=",
				}, io.Discard, logs)
			}()
			defer func() {
				syscall.Kill(os.Getpid(), syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(15 * time.Second):
					t.Error("daemon did not stop")
				}
			}()
			var addr string
			for addr == "" {
				msg, ok := readDatagram(t, notify, 10*time.Second)
				if !ok {
					t.Fatalf("no READY=1\n%s", logs.String())
				}
				if i := strings.Index(msg, "serving "); strings.Contains(msg, "READY=1") && i >= 0 {
					addr = strings.TrimSpace(msg[i+len("serving "):])
				}
			}
			mech, err := interBrokerMechanism("PLAIN", "broker", "broker-secret")
			if err != nil {
				t.Fatal(err)
			}
			dial := func() net.Conn {
				t.Helper()
				nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c, err := authenticateSession(ctx, nc, mech, "127.0.0.1", "broker-test")
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			metadata := func(c net.Conn) error {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				defer c.SetDeadline(time.Time{})
				sc := &saslConn{rw: bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("broker-test"))}
				req := kmsg.NewPtrMetadataRequest()
				req.Version = 9
				return sc.roundTrip(req, kmsg.NewPtrMetadataResponse())
			}

			c := dial()
			defer c.Close()
			s, ok := c.(*saslSession)
			if !ok {
				t.Fatalf("the connection is a %T: the broker's session lifetime was not seen", c)
			}
			reauths := 0
			start := time.Now()
			for time.Since(start) < 4500*time.Millisecond {
				before := s.reauthAt
				if err := s.ReauthenticateIfDue(context.Background(), 5*time.Second); err != nil {
					t.Fatalf("after %v: %v", time.Since(start), err)
				}
				if !s.reauthAt.Equal(before) {
					reauths++
				}
				if err := metadata(s); err != nil {
					t.Fatalf("Metadata %v into the connection (%d re-authentications): %v", time.Since(start), reauths, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if reauths < 2 {
				t.Fatalf("%d re-authentications in 4.5 s of 1.5 s sessions", reauths)
			}
			t.Logf("%d re-authentications in %v; the connection kept serving", reauths, time.Since(start).Round(time.Millisecond))

			// Without re-authentication the broker ends the connection.
			plain := dial()
			defer plain.Close()
			if err := metadata(plain); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1600 * time.Millisecond)
			if err := metadata(plain); err == nil {
				t.Fatal("a session past its lifetime, not re-authenticated, was still served")
			}
		})
	}
}
