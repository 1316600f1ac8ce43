package broker

import (
	"strconv"
	"testing"
	"time"
)

// TestTxnLogLimiter: one line per transactional id per interval, a bounded
// memory of ids, and a count of the ids left unlogged for lack of room.
func TestTxnLogLimiter(t *testing.T) {
	var l txnLogLimiter
	t0 := time.Unix(1_700_000_000, 0)
	if ok, _ := l.allow("a", t0); !ok {
		t.Fatal("first sight of a not logged")
	}
	if ok, _ := l.allow("a", t0.Add(txnLogInterval/2)); ok {
		t.Error("a logged twice within the interval")
	}
	if ok, _ := l.allow("b", t0); !ok {
		t.Error("b not logged")
	}
	if ok, _ := l.allow("a", t0.Add(txnLogInterval)); !ok {
		t.Error("a not logged again after the interval")
	}
	for i := range 2 * txnLogIDsMax {
		l.allow("id-"+strconv.Itoa(i), t0.Add(txnLogInterval))
	}
	if len(l.last) > txnLogIDsMax {
		t.Errorf("%d ids remembered, want at most %d", len(l.last), txnLogIDsMax)
	}
	later := t0.Add(3 * txnLogInterval)
	ok, suppressed := l.allow("fresh", later)
	if !ok || suppressed == 0 {
		t.Errorf("after the stale ids expire: logged %v, suppressed %d, want true and > 0", ok, suppressed)
	}
}
