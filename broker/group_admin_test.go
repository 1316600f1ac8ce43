package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestGroupAdmin: simple (non-member) commits, OffsetFetch across groups
// (v8), ListGroups with a state filter, DescribeGroups, OffsetDelete,
// removal of a deleted topic's offsets, DeleteGroups, and tombstones
// surviving a restart.
func TestGroupAdmin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, groupTestOptions)
		createTopic(t, tb, "a", 2)
		createTopic(t, tb, "b", 1)
		createTopic(t, tb, "c", 1)
		adm := tb.admin()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		commit := func(group string, offs map[string]map[int32]int64) {
			t.Helper()
			os := make(kadm.Offsets)
			for topic, ps := range offs {
				for p, at := range ps {
					os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
				}
			}
			resp, err := adm.CommitOffsets(ctx, group, os)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				t.Fatalf("commit %s: %v", group, err)
			}
		}
		commit("x", map[string]map[int32]int64{"a": {0: 5, 1: 6}, "b": {0: 1}, "c": {0: 3}})
		commit("y", map[string]map[int32]int64{"a": {0: 9}})

		many := adm.FetchManyOffsets(ctx, "x", "y")
		if err := many.Error(); err != nil {
			t.Fatal(err)
		}
		if o, _ := many["x"].Fetched.Lookup("a", 1); o.At != 6 {
			t.Fatalf("x a-1 = %+v", o)
		}
		if o, _ := many["y"].Fetched.Lookup("a", 0); o.At != 9 {
			t.Fatalf("y a-0 = %+v", o)
		}
		if lg, err := adm.ListGroups(ctx, "Empty"); err != nil || len(lg) != 2 {
			t.Fatalf("ListGroups Empty: %v %v", lg, err)
		}
		if lg, err := adm.ListGroups(ctx, "Stable"); err != nil || len(lg) != 0 {
			t.Fatalf("ListGroups Stable: %v %v", lg, err)
		}
		dg, err := adm.DescribeGroups(ctx, "x")
		if err != nil || dg["x"].State != "Empty" {
			t.Fatalf("DescribeGroups: %+v %v", dg, err)
		}

		del, err := adm.DeleteOffsets(ctx, "x", kadm.TopicsSet{"b": {0: {}}})
		if err != nil || del.Error() != nil {
			t.Fatalf("DeleteOffsets: %v %v", del, err)
		}
		if _, err := adm.DeleteTopics(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		tb.Broker.groups.onSweep() // what the periodic sweep does
		fo, err := adm.FetchOffsets(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := fo.Lookup("a", 0); ok {
			t.Fatalf("offsets of deleted topic a still there: %v", fo)
		}
		if _, ok := fo.Lookup("b", 0); ok {
			t.Fatalf("deleted offset b-0 still there: %v", fo)
		}
		if o, ok := fo.Lookup("c", 0); !ok || o.At != 3 {
			t.Fatalf("c-0 = %+v", o)
		}
		lg, err := adm.ListGroups(ctx)
		if err != nil || len(lg) != 1 {
			t.Fatalf("y (only offsets of a) should be gone: %v %v", lg, err)
		}

		dr, err := adm.DeleteGroups(ctx, "x", "nope")
		if err != nil {
			t.Fatal(err)
		}
		if dr["x"].Err != nil || !errors.Is(dr["nope"].Err, kerr.GroupIDNotFound) {
			t.Fatalf("DeleteGroups: %+v", dr)
		}
		tb.restart()
		adm = tb.admin()
		if lg, err := adm.ListGroups(ctx); err != nil || len(lg) != 0 {
			t.Fatalf("after restart, deleted groups are back: %v %v", lg, err)
		}
	})
}

// TestRecordBatchRoundTrip: the batches group_coordinator.go writes parse back
// (keys, values and tombstones in order) and pass the log's validation.
func TestRecordBatchRoundTrip(t *testing.T) {
	recs := [][2][]byte{{[]byte("k1"), []byte("v1")}, {[]byte("k2"), nil}, {[]byte("k3"), []byte{}}}
	buf := appendRecordBatch(nil, 1234, recs)
	buf = appendRecordBatch(buf, 1235, recs[:1])
	if _, err := validateBatch(buf[:len(buf)-len(appendRecordBatch(nil, 1235, recs[:1]))], 1<<20, 9); err != nil {
		t.Fatalf("our batch fails produce validation: %v", err.err)
	}
	var got [][2][]byte
	next, err := forEachRecord(buf, func(_ int64, k, v []byte) { got = append(got, [2][]byte{k, v}) }, func(base int64, why error) {
		t.Errorf("batch at %d skipped: %v", base, why)
	})
	if err != nil || len(got) != 4 {
		t.Fatalf("parsed %d records, err %v", len(got), err)
	}
	if string(got[0][0]) != "k1" || string(got[0][1]) != "v1" || got[1][1] != nil || got[2][1] == nil || string(got[3][0]) != "k1" {
		t.Fatalf("records %q", got)
	}
	// Both batches were written with base offset 0: next is after the last.
	if next != 1 {
		t.Fatalf("next offset %d", next)
	}
	if _, err := forEachRecord(buf[:len(buf)-3], func(int64, []byte, []byte) {}, func(int64, error) {}); err == nil {
		t.Fatal("truncated batch parsed")
	}
}
