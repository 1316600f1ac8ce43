//go:build quarantine

package storage

import (
	"fmt"
	"testing"
)

// TestMetamorphicQuarantine replays seeds of TestMetamorphic that fail on
// the current code and are not fixed yet, so each suspected bug stays a
// failing test instead of a seed that make test's random draw meets now
// and then. Each entry says what fails; fixing it means removing it from
// here, after its seed passes. Run:
//
//	go test -tags quarantine -count=1 -run TestMetamorphicQuarantine ./storage/
//
// (make test does not build this file.)
var metamorphicQuarantine = []struct {
	seed int64
	what string
}{
	// Found 2026-12-07 by a clean-clone make test (the draw of random
	// seeds); fails the same way at e2a7e3a and 72bf0fa, before that
	// session's changes. Op 75 (retention, on a compacted seed, after an
	// append whose write failed and a Clean): in the small-sync/uring run,
	// Read at offset 366, below the high watermark, returns an empty
	// region with no error.
	{880484547, "small-sync/uring: read at 366 below the high watermark returns nothing"},
}

func TestMetamorphicQuarantine(t *testing.T) {
	for _, q := range metamorphicQuarantine {
		t.Run(fmt.Sprintf("seed=%d", q.seed), func(t *testing.T) {
			t.Logf("quarantined: %s", q.what)
			runMetaSeed(t, q.seed)
		})
	}
}
