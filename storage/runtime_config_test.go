package storage

import (
	"sync"
	"testing"
	"time"
)

// TestSetConfigIdle: an idle log takes every setting at once, and the new
// flush.messages and segment.bytes drive the next appends.
func TestSetConfigIdle(t *testing.T) {
	l, err := Open(t.TempDir(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	syncAppend(t, l, makeBatch(1, 100, 1, 'a'))
	want := testConfig()
	want.SegmentBytes, want.RetentionMs, want.RetentionBytes = 4096, 1234, 99999
	want.FlushMessages, want.FlushMs, want.LogAppendTime = 1, 500, true
	if err := l.SetConfig(want); err != nil {
		t.Fatal(err)
	}
	l.mu.RLock()
	got, pol := l.cfg, l.pol
	l.mu.RUnlock()
	if got.SegmentBytes != 4096 || got.RetentionMs != 1234 || got.RetentionBytes != 99999 || got.FlushMessages != 1 || got.FlushMs != 500 || !got.LogAppendTime {
		t.Fatalf("cfg %+v", got)
	}
	if pol.flushMessages != 1 || pol.flushIntervalNs != 500*int64(time.Millisecond) {
		t.Fatalf("policy %+v", pol)
	}
	// flush.messages=1: every append is synced (recovery point follows);
	// segment.bytes=4096: 2 KiB batches roll every other append.
	for i := 0; i < 4; i++ {
		syncAppend(t, l, makeBatch(1, 2000, 1, 'b'))
	}
	if rp, hw := l.RecoveryPoint(), l.HighWatermark(); rp != hw {
		t.Fatalf("recovery point %d, high watermark %d: flush.messages=1 not applied", rp, hw)
	}
	if n := l.NumSegments(); n < 3 {
		t.Fatalf("%d segments: segment.bytes not applied", n)
	}
}

// TestSetConfigBusy changes settings while appenders keep the writer busy
// (run with -race: the writer's unlocked reads must not race SetConfig).
func TestSetConfigBusy(t *testing.T) {
	l, err := Open(t.TempDir(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := makeBatch(4, 200, 1, 'c')
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan struct{})
				if err := l.Append(b, AppendFunc(func(AppendResult) { close(done) })); err != nil {
					continue // backlog: retry
				}
				<-done
			}
		}()
	}
	for i := 0; i < 20; i++ {
		c := testConfig()
		c.FlushMessages = int64(1 + i%3)
		c.IndexIntervalBytes = 1024 * (1 + i%2)
		c.RetentionMs = int64(1000 + i)
		if err := l.SetConfig(c); err != nil && err != ErrConfigPending {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	final := testConfig()
	final.FlushMessages = 7
	if err := l.SetConfig(final); err != nil { // idle now
		t.Fatal(err)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.cfg.FlushMessages != 7 || l.pol.flushMessages != 7 {
		t.Fatalf("final cfg %+v", l.cfg)
	}
}

// TestSetConfigWhileFlushWaiting: a writer parked on its flush.ms timer
// (nothing queued) is a safe point, so SetConfig applies at once instead of
// waiting out flush.ms, and the writer re-arms for the new interval.
func TestSetConfigWhileFlushWaiting(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMs = 10_000
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := syncAppend(t, l, makeBatch(1, 10, 1, 'a'))
	cfg.FlushMs = 10
	start := time.Now()
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("SetConfig took %v behind a flush.ms=10000 timer", d)
	}
	deadline := time.Now().Add(2 * time.Second)
	for l.RecoveryPoint() <= r.LastOffset {
		if time.Now().After(deadline) {
			t.Fatalf("recovery point %d: new flush.ms=10 not followed", l.RecoveryPoint())
		}
		time.Sleep(2 * time.Millisecond)
	}
}
