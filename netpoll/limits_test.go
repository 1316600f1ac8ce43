package netpoll

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// dialFrom connects to s from local IP src (any 127/8 address works on
// loopback), so one test can be several clients.
func dialFrom(t *testing.T, s *Server, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: failSafe}
	c, err := d.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoes reports whether c answers a frame (it was admitted).
func echoes(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(failSafe))
	defer c.SetDeadline(time.Time{})
	if err := writeFrame(c, []byte("ping")); err != nil {
		return err
	}
	b, err := readFrame(c)
	if err != nil {
		return err
	}
	if string(b) != "ping" {
		return errors.New("wrong echo " + string(b))
	}
	return nil
}

// refused reports nil when c was closed by the server without an answer.
func refused(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(failSafe))
	_ = writeFrame(c, []byte("ping")) // may fail: the server may have closed already
	var b [16]byte
	n, err := c.Read(b[:])
	switch {
	case n > 0:
		return errors.New("server answered a connection over the limit")
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return nil
	default:
		return err
	}
}

// waitConns polls until the server counts want open connections.
func waitConns(t *testing.T, s *Server, want int64) {
	t.Helper()
	deadline := time.Now().Add(failSafe)
	for s.Stats().Conns != want {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %d, want %d", s.Stats().Conns, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// max.connections: the connection over the limit is closed at accept, the
// ones within keep working, and closing one makes room for a new one.
func TestMaxConns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const limit = 5
		s := startServer(t, backend, echo, func(o *Options) { o.MaxConns = limit })
		var conns []net.Conn
		for i := 0; i < limit; i++ {
			c := dialFrom(t, s, "127.0.0."+string(rune('1'+i%3)))
			if err := echoes(c); err != nil {
				t.Fatalf("connection %d within the limit: %v", i, err)
			}
			conns = append(conns, c)
		}
		over := dialFrom(t, s, "127.0.0.9")
		if err := refused(over); err != nil {
			t.Fatalf("connection %d over max.connections=%d: %v", limit+1, limit, err)
		}
		for i, c := range conns {
			if err := echoes(c); err != nil {
				t.Fatalf("connection %d after a refusal: %v", i, err)
			}
		}
		if st := s.Stats(); st.Refused != 1 {
			t.Errorf("Stats.Refused = %d, want 1", st.Refused)
		}
		conns[0].Close()
		waitConns(t, s, limit-1)
		if err := echoes(dialFrom(t, s, "127.0.0.1")); err != nil {
			t.Fatalf("new connection after one closed: %v", err)
		}
	})
}

// max.connections.per.ip counts each client address on its own.
func TestMaxConnsPerIP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const perIP = 3
		s := startServer(t, backend, echo, func(o *Options) { o.MaxConnsPerIP = perIP })
		var first []net.Conn
		for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
			for i := 0; i < perIP; i++ {
				c := dialFrom(t, s, src)
				if err := echoes(c); err != nil {
					t.Fatalf("%s connection %d within the limit: %v", src, i, err)
				}
				if src == "127.0.0.1" {
					first = append(first, c)
				}
			}
			if err := refused(dialFrom(t, s, src)); err != nil {
				t.Fatalf("%s connection %d over max.connections.per.ip=%d: %v", src, perIP+1, perIP, err)
			}
		}
		if err := echoes(dialFrom(t, s, "127.0.0.3")); err != nil {
			t.Fatalf("a third client: %v", err)
		}
		first[0].Close()
		waitConns(t, s, 2*perIP)
		if err := echoes(dialFrom(t, s, "127.0.0.1")); err != nil {
			t.Fatalf("127.0.0.1 after one of its connections closed: %v", err)
		}
		if st := s.Stats(); st.Refused != 2 {
			t.Errorf("Stats.Refused = %d, want 2", st.Refused)
		}
	})
}

// The limiter's counts stay exact under concurrent admit/release from many
// goroutines (as from several loops), and the per-IP map empties.
func TestConnLimiterConcurrent(t *testing.T) {
	l := newConnLimiter(1000, 10, nil, zap.NewNop())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := peerKeyOf(net.IPv4(10, 0, byte(g), byte(i%4)))
				if ok, _ := l.admit(k); ok {
					l.release(k)
				}
			}
		}(g)
	}
	wg.Wait()
	if n := l.total.Load(); n != 0 {
		t.Errorf("total %d after balanced admit/release, want 0", n)
	}
	for i := range l.shards {
		if n := len(l.shards[i].counts); n != 0 {
			t.Errorf("shard %d keeps %d addresses with no connection", i, n)
		}
	}
	if newConnLimiter(0, 1<<31-1, nil, nil) != nil {
		t.Errorf("unlimited settings must give a nil limiter (nothing on the accept path)")
	}
}

// BenchmarkConnLimiterAdmit is the accept path's cost with both limits set.
func BenchmarkConnLimiterAdmit(b *testing.B) {
	l := newConnLimiter(1<<20, 1<<20, nil, zap.NewNop())
	k := peerKeyOf(net.IPv4(127, 0, 0, 1))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _ := l.admit(k); ok {
				l.release(k)
			}
		}
	})
}

// max.connection.creation.rate: past the rate in one second, a new
// connection is closed at accept; once the second is over one is admitted
// again.
func TestMaxConnCreationRate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const rate = 3
		s := startServer(t, backend, echo, func(o *Options) { o.MaxConnCreationRate = rate })
		start := time.Now()
		var admitted, refusedN int
		for i := 0; i < rate+2; i++ {
			c := dialFrom(t, s, "127.0.0.1")
			if echoes(c) == nil {
				admitted++
			} else {
				refusedN++
			}
		}
		if time.Since(start) < time.Second && (admitted != rate || refusedN != 2) {
			t.Fatalf("%d admitted and %d refused within a second, want %d and 2", admitted, refusedN, rate)
		}
		waitUntil(t, "a new second of connections", failSafe, func() bool {
			return time.Since(start) > 1100*time.Millisecond
		})
		if err := echoes(dialFrom(t, s, "127.0.0.1")); err != nil {
			t.Fatalf("connection in the next second: %v", err)
		}
	})
}

func TestCreationRateWindow(t *testing.T) {
	now := time.Unix(100, 0)
	l := (*connLimiter)(nil).withCreationRate(2, zap.NewNop(), func() time.Time { return now })
	for i, want := range []bool{true, true, false, false} {
		if ok, _ := l.admit(peerKey{}); ok != want {
			t.Fatalf("admit %d: %v, want %v", i, ok, want)
		}
	}
	now = now.Add(time.Second)
	if ok, _ := l.admit(peerKey{}); !ok {
		t.Fatal("refused in a new second")
	}
	if (*connLimiter)(nil).withCreationRate(1<<31-1, zap.NewNop(), time.Now) != nil {
		t.Fatal("Kafka's default rate made a limiter")
	}
}

// max.connections.per.ip.overrides: an address with an override has its
// own limit (0: none), the others max.connections.per.ip.
func TestConnLimiterOverrides(t *testing.T) {
	l := newConnLimiter(0, 2, map[string]int{"127.0.0.2": 3, "127.0.0.3": 0}, zap.NewNop())
	count := func(ip string) int {
		n := 0
		for i := 0; i < 5; i++ {
			if ok, _ := l.admit(peerKeyOf(net.ParseIP(ip))); ok {
				n++
			}
		}
		return n
	}
	for ip, want := range map[string]int{"127.0.0.1": 2, "127.0.0.2": 3, "127.0.0.3": 0} {
		if got := count(ip); got != want {
			t.Errorf("%s: %d admitted, want %d", ip, got, want)
		}
	}
	// Overrides alone turn per-IP counting on; other addresses are free.
	l = newConnLimiter(0, 0, map[string]int{"127.0.0.2": 1}, zap.NewNop())
	if got := count("127.0.0.1"); got != 5 {
		t.Errorf("no override: %d admitted, want 5", got)
	}
	if got := count("127.0.0.2"); got != 1 {
		t.Errorf("override 1: %d admitted, want 1", got)
	}
	l.release(peerKeyOf(net.ParseIP("127.0.0.2")))
	if got := count("127.0.0.2"); got != 1 {
		t.Errorf("after a release: %d admitted, want 1", got)
	}
}
