package storage

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test: a child process (this test binary re-executed, running
// TestCrashChild) appends with flush.messages=1 and prints every
// acknowledged batch; the parent SIGKILLs it at a random moment, reopens
// the log (recovery) and checks that every acknowledged batch is present,
// intact and in order, followed only by batches that were in flight.
// 50 rounds by default, seeded: LOG_CRASH_SEED=n replays, LOG_CRASH_ROUNDS=n
// changes the count.

const (
	envCrashDir   = "LOG_CRASH_CHILD_DIR"
	envCrashIO    = "LOG_CRASH_CHILD_IO"
	envCrashSeed  = "LOG_CRASH_SEED"
	envCrashRound = "LOG_CRASH_ROUNDS"
	// envCrashInline: the child appends inline (append.inline) with
	// Kafka's default flush policy (no fdatasync): a SIGKILL keeps the page
	// cache, so every acknowledged batch must still be there.
	envCrashInline = "LOG_CRASH_CHILD_INLINE"
)

func crashConfig() Config {
	c := testConfig()
	c.FlushMessages = 1
	c.SegmentBytes = 48 << 10
	return c
}

// TestCrashChild is the child side; it does nothing unless re-executed by
// TestCrashSIGKILL.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("crash child: only runs re-executed by TestCrashSIGKILL")
	}
	var io IO = NewPortableIO()
	if os.Getenv(envCrashIO) == "uring" {
		var err error
		if io, err = NewUringIO(); err != nil {
			io = NewPortableIO()
		}
	}
	cfg := crashConfig()
	if os.Getenv(envCrashInline) == "1" {
		cfg.FlushMessages = DefaultConfig().FlushMessages
		cfg.AppendInline = true
		testAppendInline = true
	}
	l, err := Open(dir, cfg, Options{IO: io})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	// Continue the sequence after what survived.
	seq := int64(0)
	if got := readAll(t, l, 0); len(got) > 0 {
		seq = tsOf(got[len(got)-1]) + 1
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var mu sync.Mutex
	write := func(s string) { // every line flushed: the parent sees acks as they happen
		mu.Lock()
		out.WriteString(s)
		out.Flush()
		mu.Unlock()
	}
	write("ready\n")
	sem := make(chan struct{}, 8) // appends in flight
	rng := rand.New(rand.NewSource(seq))
	for i := 0; i < 100000; i++ {
		sem <- struct{}{}
		s := seq
		write(fmt.Sprintf("sent %d\n", s))
		err := l.Append(makeBatch(1+rng.Intn(4), 100+rng.Intn(2000), s, byte(s)), AppendFunc(func(r AppendResult) {
			if r.Err == nil {
				write(fmt.Sprintf("ack %d %d\n", s, r.BaseOffset))
			}
			<-sem
		}))
		if err != nil {
			write(fmt.Sprintf("error %v\n", err))
			os.Exit(2)
		}
		seq++
	}
	os.Exit(0)
}

func TestCrashSIGKILL(t *testing.T) {
	rounds := 50
	if v, err := strconv.Atoi(os.Getenv(envCrashRound)); err == nil {
		rounds = v
	}
	seed := time.Now().UnixNano()
	if v, err := strconv.ParseInt(os.Getenv(envCrashSeed), 10, 64); err == nil {
		seed = v
	}
	t.Logf("crash test seed %d (replay with %s=%d)", seed, envCrashSeed, seed)
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	_, uerr := NewUringIO()
	acked := map[int64]int64{} // seq -> base offset, across all rounds
	start := time.Now()
	for round := 0; round < rounds; round++ {
		ioName := "portable"
		if uerr == nil && round%2 == 1 {
			ioName = "uring"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		inline := "0"
		if round%3 == 2 { // every third round, on both backends
			inline = "1"
		}
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashIO+"="+ioName, envCrashInline+"="+inline)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill while recovering (1 in 10) or 0-40 ms after the child is ready.
		early := rng.Intn(10) == 0
		delay := time.Duration(rng.Intn(40)) * time.Millisecond
		var got []string
		if early {
			time.Sleep(delay)
		} else {
			for l := range lines {
				got = append(got, l)
				if l == "ready" {
					break
				}
			}
			time.Sleep(delay)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for l := range lines {
			got = append(got, l)
		}
		cmd.Wait()
		maxSent := int64(-1)
		for _, l := range got {
			f := strings.Fields(l)
			switch f[0] {
			case "ack":
				s, _ := strconv.ParseInt(f[1], 10, 64)
				o, _ := strconv.ParseInt(f[2], 10, 64)
				acked[s] = o
			case "sent":
				s, _ := strconv.ParseInt(f[1], 10, 64)
				maxSent = max(maxSent, s)
			case "error":
				t.Fatalf("round %d: child: %s", round, l)
			}
		}
		// Reopen (recovery) and check.
		l, err := Open(dir, crashConfig(), Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		batches := readAll(t, l, 0)
		l.Close()
		for i, b := range batches {
			if tsOf(b) != int64(i) {
				t.Fatalf("round %d (seed %d): batch %d carries seq %d: hole or reorder", round, seed, i, tsOf(b))
			}
			if o, ok := acked[int64(i)]; ok && o != b.info.baseOffset {
				t.Fatalf("round %d: acked seq %d at offset %d now at %d", round, i, o, b.info.baseOffset)
			}
		}
		for s := range acked {
			if s >= int64(len(batches)) {
				t.Fatalf("round %d (seed %d): acknowledged seq %d lost; log has %d batches", round, seed, s, len(batches))
			}
		}
		if maxSent >= 0 && int64(len(batches)) > maxSent+1 {
			t.Fatalf("round %d: %d batches but only up to seq %d was sent", round, len(batches), maxSent)
		}
	}
	t.Logf("%d rounds, %d acknowledged batches, %v", rounds, len(acked), time.Since(start).Round(time.Millisecond))
}
