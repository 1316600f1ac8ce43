package storage

import (
	"bytes"
	"slices"
	"testing"
)

func cacheOf(es ...EpochEntry) *epochCache { return &epochCache{entries: slices.Clone(es)} }

func TestEpochCacheAssign(t *testing.T) {
	for _, tc := range []struct {
		name    string
		start   []EpochEntry
		epoch   int32
		offset  int64
		changed bool
		want    []EpochEntry
	}{
		{"first", nil, 2, 10, true, []EpochEntry{{2, 10}}},
		{"same epoch later offset", []EpochEntry{{2, 10}}, 2, 15, false, []EpochEntry{{2, 10}}},
		{"same epoch same offset", []EpochEntry{{2, 10}}, 2, 10, false, []EpochEntry{{2, 10}}},
		{"higher epoch", []EpochEntry{{2, 10}}, 3, 15, true, []EpochEntry{{2, 10}, {3, 15}}},
		// A leader elected that never wrote: the next epoch starts at the
		// same offset and replaces it.
		{"higher epoch same offset", []EpochEntry{{2, 10}, {3, 15}}, 4, 15, true, []EpochEntry{{2, 10}, {4, 15}}},
		// Same epoch at an earlier offset: moved back (Kafka's
		// isUpdateNeeded is true, the old entry goes as non-monotonic).
		{"same epoch earlier offset", []EpochEntry{{2, 10}, {3, 15}}, 3, 12, true, []EpochEntry{{2, 10}, {3, 12}}},
		// A lower epoch after a higher one removes every entry it conflicts with.
		{"lower epoch", []EpochEntry{{2, 10}, {3, 15}, {5, 20}}, 4, 30, true, []EpochEntry{{2, 10}, {3, 15}, {4, 30}}},
		{"lower epoch lower offset", []EpochEntry{{2, 10}, {3, 15}, {5, 20}}, 3, 12, true, []EpochEntry{{2, 10}, {3, 12}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cacheOf(tc.start...)
			if got := c.assign(tc.epoch, tc.offset); got != tc.changed {
				t.Fatalf("changed=%v, want %v", got, tc.changed)
			}
			if !slices.Equal(c.entries, tc.want) {
				t.Fatalf("entries %v, want %v", c.entries, tc.want)
			}
		})
	}
}

func TestEpochCacheEndOffsetFor(t *testing.T) {
	c := cacheOf(EpochEntry{2, 10}, EpochEntry{4, 20}, EpochEntry{7, 35})
	const leo = 50
	for _, tc := range []struct {
		requested int32
		epoch     int32
		offset    int64
	}{
		{-1, -1, -1},  // UNDEFINED_EPOCH asked
		{7, 7, leo},   // the latest epoch: log end offset
		{8, -1, -1},   // above every epoch
		{100, -1, -1}, // far above
		{0, 0, 10},    // below every epoch: the requested epoch, first start
		{1, 1, 10},    //
		{2, 2, 20},    // a known epoch: ends where the next begins
		{3, 2, 20},    // unknown, between: the largest epoch below it
		{4, 4, 35},    //
		{5, 4, 35},    //
		{6, 4, 35},    //
	} {
		e, o := c.endOffsetFor(tc.requested, leo)
		if e != tc.epoch || o != tc.offset {
			t.Errorf("endOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.requested, e, o, tc.epoch, tc.offset)
		}
	}
	var empty epochCache
	if e, o := empty.endOffsetFor(0, leo); e != -1 || o != -1 {
		t.Errorf("empty cache: (%d, %d), want (-1, -1)", e, o)
	}
}

func TestEpochCacheTruncate(t *testing.T) {
	base := []EpochEntry{{2, 10}, {4, 20}, {7, 35}}
	for _, tc := range []struct {
		name    string
		fromEnd bool
		offset  int64
		changed bool
		want    []EpochEntry
	}{
		{"end past all", true, 50, false, base},
		{"end at last start", true, 35, true, []EpochEntry{{2, 10}, {4, 20}}},
		{"end inside", true, 21, true, []EpochEntry{{2, 10}, {4, 20}}},
		{"end at first", true, 10, true, nil},
		{"end below first", true, 3, true, nil},
		{"end negative", true, -1, false, base},
		{"start below first", false, 5, false, base},
		{"start at first", false, 10, false, base},
		{"start inside first", false, 15, true, []EpochEntry{{2, 15}, {4, 20}, {7, 35}}},
		// Exclusive: an entry starting exactly at the new start stays as it is.
		{"start at second", false, 20, true, []EpochEntry{{4, 20}, {7, 35}}},
		{"start past last", false, 40, true, []EpochEntry{{7, 40}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cacheOf(base...)
			var changed bool
			if tc.fromEnd {
				changed = c.truncateFromEnd(tc.offset)
			} else {
				changed = c.truncateFromStart(tc.offset)
			}
			if changed != tc.changed || !slices.Equal(c.entries, tc.want) {
				t.Fatalf("changed=%v entries %v, want %v %v", changed, c.entries, tc.changed, tc.want)
			}
		})
	}
}

func TestLeaderEpochCheckpointCodec(t *testing.T) {
	good := map[string][]EpochEntry{
		"0\n0\n":                             {},
		"0\n1\n0 0\n":                        {{0, 0}},
		"0\n2\n0 0\n3 1234\n":                {{0, 0}, {3, 1234}},
		"0\n1\n2147483647 9\n":               {{2147483647, 9}},
		"0\n1\n1 " + "9223372036854775807\n": {{1, 9223372036854775807}},
	}
	for in, want := range good {
		got, err := decodeLeaderEpochCheckpoint([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: %v, want %v", in, got, want)
		}
		if out := encodeLeaderEpochCheckpoint(got); string(out) != in {
			t.Fatalf("%q re-encodes as %q", in, out)
		}
	}
	for _, in := range []string{
		"", "0", "0\n", "0\n0", "1\n0\n", "0\n1\n", "0\n0\n1 2\n", "0\n2\n1 2\n", "0\n1\n1 2", // framing, count
		"0\n1\n1  2\n", "0\n1\n 1 2\n", "0\n1\n1 2 \n", "0\n1\n1\t2\n", "0\n1\n01 2\n", "0\n1\n+1 2\n", // canonical numbers
		"0\n1\n-1 2\n", "0\n1\n1 -2\n", "0\n1\n2147483648 0\n", "0\n1\n0 9223372036854775808\n", // ranges
		"0\n2\n1 5\n1 6\n", "0\n2\n1 5\n2 5\n", "0\n2\n2 5\n1 6\n", // ordering
		"0\n01\n1 2\n", "0\n1\n1 2\n\n",
	} {
		if got, err := decodeLeaderEpochCheckpoint([]byte(in)); err == nil {
			t.Errorf("%q decoded as %v, want an error", in, got)
		}
	}
}

// FuzzLeaderEpochCheckpoint: the decoder never panics; what it accepts
// satisfies the cache's invariant and re-encodes to the same bytes.
func FuzzLeaderEpochCheckpoint(f *testing.F) {
	for _, s := range []string{"0\n0\n", "0\n2\n0 0\n3 1234\n", "0\n1\n1 2", "0\n1\n01 2\n", "0\n3\n1 1\n2 2\n3 3\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := decodeLeaderEpochCheckpoint(data)
		if err != nil {
			return
		}
		for i, e := range entries {
			if e.Epoch < 0 || e.StartOffset < 0 || i > 0 && (e.Epoch <= entries[i-1].Epoch || e.StartOffset <= entries[i-1].StartOffset) {
				t.Fatalf("accepted entries break the invariant: %v", entries)
			}
		}
		if out := encodeLeaderEpochCheckpoint(entries); !bytes.Equal(out, data) {
			t.Fatalf("%q re-encodes as %q", data, out)
		}
	})
}
