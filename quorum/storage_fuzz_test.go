package quorum

import (
	"bytes"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Fuzz targets of the decoders that read DiskStorage's files. Each never
// panics, allocates in proportion to its input only (every length is
// checked against the bytes present), and what decodes re-encodes to
// something that decodes the same.

func segmentSeed(t testing.TB) []byte {
	var seg []byte
	var err error
	for i, e := range []*raftpb.Entry{
		entry(5, 1, raftpb.EntryType_EntryNormal, []byte("hello")),
		entry(6, 1, raftpb.EntryType_EntryConfChange, nil),
		entry(7, 2, raftpb.EntryType_EntryConfChangeV2, []byte{}),
	} {
		if seg, err = encodeEntry(seg, e); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
	return seg
}

// FuzzDecodeSegment: the segment scan's valid prefix is within the input
// and re-scans clean to the same entries; each entry re-encodes to a batch
// that decodes to the same entry; the damage check after a stop stays in
// bounds.
func FuzzDecodeSegment(f *testing.F) {
	seg := segmentSeed(f)
	torn := seg[:len(seg)-3]
	flipped := bytes.Clone(seg)
	flipped[len(flipped)/2] ^= 4
	junk := append(bytes.Clone(seg), 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 200, 0, 0, 0, 0, 2)
	for _, s := range [][]byte{seg, torn, flipped, junk, {}, make([]byte, 61)} {
		f.Add(s, uint64(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, base uint64) {
		ents, valid, stop := decodeSegment(data, base)
		if valid < 0 || valid > len(data) || (stop == nil) != (valid == len(data)) {
			t.Fatalf("valid %d of %d, stop %v", valid, len(data), stop)
		}
		again, valid2, stop2 := decodeSegment(data[:valid], base)
		if stop2 != nil || valid2 != valid || len(again) != len(ents) {
			t.Fatalf("re-scan of the valid prefix: %d bytes, %d entries, %v", valid2, len(again), stop2)
		}
		for i, de := range ents {
			if de != again[i] || de.index != base+uint64(i) || de.pos+int64(de.length) > int64(valid) {
				t.Fatalf("entry %d: %+v (re-scan %+v)", i, de, again[i])
			}
			e, err := decodeEntry(data[de.pos : de.pos+int64(de.length)])
			if err != nil {
				t.Fatal(err)
			}
			b, err := encodeEntry(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := decodeEntry(b)
			if err != nil || !proto.Equal(e, e2) || uint32(proto.Size(e)) != de.size {
				t.Fatalf("entry %d does not round-trip: %v -> %v, %v", i, e, e2, err)
			}
		}
		if stop != nil {
			if q, ok := entryBatchAfter(data, valid, base+uint64(len(ents))); ok && (q <= valid || q >= len(data)) {
				t.Fatalf("damage check found a batch at %d, outside (%d, %d)", q, valid, len(data))
			}
		}
	})
}

// FuzzDecodeState: quorum-state decodes or fails; what decodes re-encodes
// to the same state.
func FuzzDecodeState(f *testing.F) {
	for _, st := range []quorumState{
		{},
		{hardState: &raftpb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(1), Commit: proto.Uint64(99)}, compactIndex: 50, compactTerm: 2},
	} {
		b, err := encodeState(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data)
		if err != nil {
			return
		}
		b, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := decodeState(b)
		if err != nil || !proto.Equal(st.hardState, st2.hardState) || (st.hardState == nil) != (st2.hardState == nil) ||
			st.compactIndex != st2.compactIndex || st.compactTerm != st2.compactTerm {
			t.Fatalf("state does not round-trip: %+v -> %+v, %v", st, st2, err)
		}
	})
}

// FuzzDecodeCheckpoint: a checkpoint decodes or fails; what decodes has its
// metadata and re-encodes to the same snapshot.
func FuzzDecodeCheckpoint(f *testing.F) {
	snap := raftpb.EnsureSnapshot(&raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(10), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
	}})
	b, err := encodeCheckpoint(snap)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-2])
	empty, _ := encodeCheckpoint(raftpb.EnsureSnapshot(nil))
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeCheckpoint(data)
		if err != nil {
			return
		}
		if s.GetMetadata().GetConfState() == nil {
			t.Fatal("decoded a checkpoint without a ConfState")
		}
		b, err := encodeCheckpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeCheckpoint(b)
		if err != nil || !proto.Equal(s, s2) {
			t.Fatalf("checkpoint does not round-trip: %v", err)
		}
	})
}
