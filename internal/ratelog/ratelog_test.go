package ratelog

import (
	"sync"
	"testing"
	"time"
)

// Every event is counted once: the lines let through carry them all, and
// within one interval at most one line passes.
func TestEveryCountsEveryEvent(t *testing.T) {
	var e Every
	n, ok := e.Event(time.Hour)
	if !ok || n != 1 {
		t.Fatalf("first event: %d %v, want a line with 1", n, ok)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	lines := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if _, ok := e.Event(time.Hour); ok {
					mu.Lock()
					lines++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if lines != 0 {
		t.Fatalf("%d lines within one interval", lines)
	}
	// An interval of zero lets the next line through with the backlog.
	if n, ok := e.Event(0); !ok || n != 8001 {
		t.Fatalf("after the flood: %d %v, want a line with 8001", n, ok)
	}
}
