package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The watchdog tests run with WatchdogSec=200ms: a keep-alive period of
// 100ms. Every wait below is on a condition with a fail-safe bound; a
// loaded machine can delay a keep-alive, never invent one.
const (
	watchdogUsecTest = "200000"
	keepalivePeriod  = 100 * time.Millisecond
	watchdogFailSafe = 10 * time.Second
	// silenceWanted: four keep-alive periods without a datagram is a
	// stopped watchdog, not a late one.
	silenceWanted = 4 * keepalivePeriod
)

// watchdogEnv points NOTIFY_SOCKET at a fake and asks for a watchdog; it
// returns the socket and a logger whose lines the test can read.
func watchdogEnv(t *testing.T) (*net.UnixConn, *zap.Logger, *observer.ObservedLogs) {
	t.Helper()
	conn := fakeNotifySocket(t, false)
	t.Setenv("WATCHDOG_USEC", watchdogUsecTest)
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	core, logs := observer.New(zapcore.InfoLevel)
	return conn, zap.New(core), logs
}

// waitKeepalive waits for a WATCHDOG=1 datagram.
func waitKeepalive(t *testing.T, conn *net.UnixConn, why string) {
	t.Helper()
	deadline := time.Now().Add(watchdogFailSafe)
	for time.Now().Before(deadline) {
		if msg, ok := readDatagram(t, conn, time.Until(deadline)); ok && msg == "WATCHDOG=1" {
			return
		}
	}
	t.Fatalf("no WATCHDOG=1 within %v: %s", watchdogFailSafe, why)
}

// waitSilence waits until no datagram arrives for silenceWanted: what was
// already sent or in flight is read first. It fails when the keep-alives do
// not stop within the fail-safe bound.
func waitSilence(t *testing.T, conn *net.UnixConn, why string) {
	t.Helper()
	deadline := time.Now().Add(watchdogFailSafe)
	n := 0
	for time.Now().Before(deadline) {
		if _, ok := readDatagram(t, conn, silenceWanted); !ok {
			t.Logf("%s: silent after %d more datagrams", why, n)
			return
		}
		n++
	}
	t.Fatalf("%s: keep-alives did not stop (%d datagrams in %v)", why, n, watchdogFailSafe)
}

// stuckLogged checks the watchdog's ERROR line names what is stuck.
func stuckLogged(t *testing.T, logs *observer.ObservedLogs, want string) {
	t.Helper()
	for _, e := range logs.FilterLevelExact(zapcore.ErrorLevel).All() {
		if err, _ := e.ContextMap()["error"].(string); strings.Contains(err, want) {
			t.Logf("logged: %s: %s", e.Message, err)
			return
		}
	}
	t.Fatalf("no ERROR naming %q; logged: %v", want, logs.All())
}

// liveAgainLogged waits for the watchdog's "live again" line (it is logged
// just before the first keep-alive that follows a stall).
func liveAgainLogged(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	if logs.FilterMessageSnippet("live again").Len() == 0 {
		t.Fatalf("keep-alives resumed without the \"live again\" line: %v", logs.All())
	}
}

// blockingHandler echoes every frame; a frame "block" first waits, on the
// thread that called the handler, until release is closed.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) ServeFrame(req netpoll.Request, frame []byte) {
	if bytes.Equal(frame, []byte("block")) {
		h.entered <- struct{}{}
		<-h.release
	}
	buf := netpoll.GetBuffer()
	buf.B = append(buf.B, frame...)
	req.Reply(buf)
}

func listenTest(t *testing.T, backend string, h netpoll.Handler) *netpoll.Server {
	t.Helper()
	srv, err := netpoll.Listen(netpoll.Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Loops: 2, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Backend() != backend {
		t.Fatalf("backend %s, want %s (%s)", srv.Backend(), backend, srv.FallbackReason())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

func openTestManager(t *testing.T, fio *storage.FaultIO) *storage.Manager {
	t.Helper()
	m, err := storage.OpenManager(t.TempDir(), storage.ManagerOptions{NewIO: func() (storage.IO, error) { return fio, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// An io_uring event loop blocked on purpose (a handler that waits on its
// ring thread) stops the keep-alives, and the ERROR names the loop; once it
// returns, keep-alives resume. On the portable backend the same handler
// holds only its connection's goroutine and keep-alives continue.
func TestWatchdogStopsWhileALoopIsBlocked(t *testing.T) {
	for _, backend := range []string{netpoll.BackendUring, netpoll.BackendPortable} {
		t.Run(backend, func(t *testing.T) {
			notify, logger, logs := watchdogEnv(t)
			h := &blockingHandler{entered: make(chan struct{}, 1), release: make(chan struct{})}
			srv := listenTest(t, backend, h)
			released := false
			release := func() {
				if !released {
					released = true
					close(h.release)
				}
			}
			t.Cleanup(release) // runs before the server's shutdown
			stop := startWatchdog(daemonLiveness(srv, openTestManager(t, storage.NewFaultIO(nil))), logger)
			t.Cleanup(stop)
			waitKeepalive(t, notify, "healthy loops")

			c, err := net.Dial("tcp", srv.Addrs()[0].String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(append([]byte{0, 0, 0, 5}, "block"...)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-h.entered:
			case <-time.After(watchdogFailSafe):
				t.Fatal("handler never called")
			}
			if backend == netpoll.BackendPortable {
				for i := 0; i < 3; i++ {
					waitKeepalive(t, notify, "portable: a blocked handler holds one connection, not a loop")
				}
				return
			}
			waitSilence(t, notify, "event loop blocked in a handler")
			stuckLogged(t, logs, "has not answered")

			release()
			c.SetReadDeadline(time.Now().Add(watchdogFailSafe))
			var resp [9]byte
			if _, err := c.Read(resp[:]); err != nil {
				t.Fatalf("no response after release: %v", err)
			}
			waitKeepalive(t, notify, "the loop returned from the handler")
			liveAgainLogged(t, logs)
		})
	}
}

// A log writer held in fdatasync (flush.messages=1: the ack waits for it)
// stops the keep-alives, and the ERROR names the partition; when the sync
// returns, keep-alives resume.
func TestWatchdogStopsWhileALogWriterIsStuck(t *testing.T) {
	notify, logger, logs := watchdogEnv(t)
	srv := listenTest(t, netpoll.BackendPortable, &blockingHandler{})
	fio := storage.NewFaultIO(nil)
	fio.SetScratchDir(t.TempDir())
	m := openTestManager(t, fio)
	cfg := storage.DefaultConfig()
	cfg.FlushMessages = 1
	l, err := m.OpenLog("stuck", 3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := startWatchdog(daemonLiveness(srv, m), logger)
	t.Cleanup(stop)
	waitKeepalive(t, notify, "idle log writer")

	gate, entered := make(chan struct{}), make(chan string, 1)
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
			fio.SetSyncGate(nil, nil)
		}
	}
	fio.SetSyncGate(gate, entered)
	t.Cleanup(release) // before the manager's Close
	acked := make(chan error, 1)
	if err := l.Append(oneRecordBatch(), storage.AppendFunc(func(r storage.AppendResult) { acked <- r.Err })); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(watchdogFailSafe):
		t.Fatal("the append's fdatasync never started")
	}
	waitSilence(t, notify, "log writer held in fdatasync")
	stuckLogged(t, logs, "stuck-3 (busy ")

	release()
	select {
	case err := <-acked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(watchdogFailSafe):
		t.Fatal("append not acked after the sync returned")
	}
	waitKeepalive(t, notify, "the fdatasync returned")
	liveAgainLogged(t, logs)
}

// oneRecordBatch is a v2 record batch of one 100-byte record, laid out by
// hand (61-byte header, then the record) with its CRC32C.
func oneRecordBatch() []byte {
	b := make([]byte, 61)
	var rec []byte
	rec = append(rec, 0)                    // attributes
	rec = binary.AppendVarint(rec, 0)       // timestampDelta
	rec = binary.AppendVarint(rec, 0)       // offsetDelta
	rec = binary.AppendVarint(rec, -1)      // key: null
	rec = binary.AppendVarint(rec, 100)     // value length
	rec = append(rec, make([]byte, 100)...) // value
	rec = binary.AppendVarint(rec, 0)       // headers
	b = binary.AppendVarint(b, int64(len(rec)))
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12)) // batchLength
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)       // partitionLeaderEpoch
	b[16] = 2                                            // magic
	binary.BigEndian.PutUint64(b[27:], uint64(time.Now().UnixMilli()))
	binary.BigEndian.PutUint64(b[35:], uint64(time.Now().UnixMilli()))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producerId -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)     // producerEpoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff) // baseSequence -1
	binary.BigEndian.PutUint32(b[57:], 1)          // recordCount
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
