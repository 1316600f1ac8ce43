package clock

import (
	"sync"
	"testing"
	"time"
)

var _ Clock = Real{}
var _ Clock = (*Manual)(nil)

func TestManualFiresInDeadlineOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	m := NewManual(start)
	var got []string
	var at []time.Duration
	record := func(name string) func() {
		return func() { got = append(got, name); at = append(at, m.Now().Sub(start)) }
	}
	m.AfterFunc(30*time.Millisecond, record("c"))
	m.AfterFunc(10*time.Millisecond, record("a"))
	m.AfterFunc(10*time.Millisecond, record("a2")) // same deadline: armed later, fires later
	stopped := m.AfterFunc(20*time.Millisecond, record("never"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true then false")
	}
	if n := m.Armed(); n != 3 {
		t.Fatalf("armed %d, want 3", n)
	}
	m.Advance(9 * time.Millisecond)
	if len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	m.Advance(time.Second)
	want := []string{"a", "a2", "c"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if at[0] != 10*time.Millisecond || at[2] != 30*time.Millisecond {
		t.Fatalf("Now during callbacks: %v", at)
	}
	if d := m.Now().Sub(start); d != time.Second+9*time.Millisecond {
		t.Fatalf("now = start+%v", d)
	}
	if m.Armed() != 0 {
		t.Fatalf("armed %d after firing", m.Armed())
	}
}

// A callback re-arming its own timer within the Advance fires again in it;
// a Reset moves a pending deadline.
func TestManualResetAndRearm(t *testing.T) {
	m := NewManual(time.Unix(0, 0))
	n := 0
	var tm Timer
	tm = m.AfterFunc(10*time.Millisecond, func() {
		n++
		if n < 3 {
			tm.Reset(10 * time.Millisecond)
		}
	})
	m.Advance(100 * time.Millisecond)
	if n != 3 {
		t.Fatalf("fired %d times, want 3", n)
	}
	fired := false
	tm2 := m.AfterFunc(10*time.Millisecond, func() { fired = true })
	if !tm2.Reset(50 * time.Millisecond) {
		t.Fatal("Reset of an armed timer reported false")
	}
	m.Advance(49 * time.Millisecond)
	if fired {
		t.Fatal("fired before its reset deadline")
	}
	m.Advance(time.Millisecond)
	if !fired {
		t.Fatal("did not fire at its reset deadline")
	}
	// Due at once: fires at the next Advance, even of zero.
	fired = false
	m.AfterFunc(-time.Second, func() { fired = true })
	m.Advance(0)
	if !fired {
		t.Fatal("a timer due now did not fire on Advance(0)")
	}
}

func TestManualTicker(t *testing.T) {
	start := time.Unix(0, 0)
	m := NewManual(start)
	tk := m.NewTicker(10 * time.Millisecond)
	select {
	case <-tk.C():
		t.Fatal("tick before Advance")
	default:
	}
	m.Advance(10 * time.Millisecond)
	if got := <-tk.C(); got.Sub(start) != 10*time.Millisecond {
		t.Fatalf("tick at %v", got.Sub(start))
	}
	// Ticks not received are dropped, one stays buffered.
	m.Advance(35 * time.Millisecond)
	if got := <-tk.C(); got.Sub(start) != 20*time.Millisecond {
		t.Fatalf("buffered tick at %v, want the first missed one (20ms)", got.Sub(start))
	}
	select {
	case <-tk.C():
		t.Fatal("more than one tick buffered")
	default:
	}
	tk.Reset(time.Second)
	m.Advance(999 * time.Millisecond)
	select {
	case <-tk.C():
		t.Fatal("tick before the reset period")
	default:
	}
	m.Advance(time.Millisecond)
	<-tk.C()
	tk.Stop()
	if m.Armed() != 0 {
		t.Fatalf("armed %d after Stop", m.Armed())
	}
	m.Advance(time.Hour)
	select {
	case <-tk.C():
		t.Fatal("tick after Stop")
	default:
	}
}

func TestManualWaitTimers(t *testing.T) {
	m := NewManual(time.Unix(0, 0))
	if err := m.WaitTimers(1, 10*time.Millisecond); err == nil {
		t.Fatal("WaitTimers returned with nothing armed")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.AfterFunc(time.Second, func() {})
		m.AfterFunc(time.Second, func() {})
	}()
	if err := m.WaitTimers(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestRealClock(t *testing.T) {
	c := Or(nil)
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("real AfterFunc never fired")
	}
	tk := c.NewTicker(time.Millisecond)
	defer tk.Stop()
	select {
	case <-tk.C():
	case <-time.After(10 * time.Second):
		t.Fatal("real ticker never ticked")
	}
	if Until(c, c.Now().Add(time.Hour)) <= 0 || Since(c, c.Now().Add(-time.Hour)) <= 0 {
		t.Fatal("Until/Since")
	}
}
