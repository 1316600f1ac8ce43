package quorum

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/ringbroker/ringbroker/storage"
)

// seedFor returns the seed of a randomized test: RAFTLOG_SEED when set
// (to replay a failure), else the clock. It is logged either way.
func seedFor(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv("RAFTLOG_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (replay with RAFTLOG_SEED=%d)", seed, seed)
	return seed
}

func openTest(t testing.TB, dir string, fs storage.FS, segmentBytes int64) *DiskStorage {
	t.Helper()
	s, err := OpenDiskStorageOptions(dir, DiskStorageOptions{FS: fs, SegmentBytes: segmentBytes})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entry builds an entry the way raft does (Type left nil for a normal one).
func entry(index, term uint64, typ raftpb.EntryType, data []byte) *raftpb.Entry {
	e := &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Data: data}
	if typ != raftpb.EntryType_EntryNormal {
		e.Type = typ.Enum()
	}
	return e
}

func entries(from, n, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i < from+n; i++ {
		out = append(out, entry(i, term, raftpb.EntryType_EntryNormal, []byte(fmt.Sprintf("entry-%d-%d", i, term))))
	}
	return out
}

// modelState is what a LogStore answers, for comparing two of them.
func readAll(s LogStore) (string, error) {
	var b strings.Builder
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	fmt.Fprintf(&b, "first %d last %d\n", first, last)
	hs, cs, err := s.InitialState()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "hs %v cs %v\n", hs, cs)
	snap, err := s.Snapshot()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "snap %v data %x\n", snap.GetMetadata(), snap.GetData())
	for i := first - 1; i <= last; i++ {
		t, err := s.Term(i)
		fmt.Fprintf(&b, "term(%d) %d %v\n", i, t, err)
	}
	if first > 1 {
		_, err := s.Term(first - 2)
		fmt.Fprintf(&b, "term(%d) %v\n", first-2, err)
	}
	_, err = s.Term(last + 1)
	fmt.Fprintf(&b, "term(%d) %v\n", last+1, err)
	ents, err := s.Entries(first, last+1, 1<<62)
	fmt.Fprintf(&b, "entries %v\n", err)
	for _, e := range ents {
		fmt.Fprintf(&b, "  %v\n", e)
	}
	return b.String(), nil
}

// compare checks every read method of got against want, with the random
// Entries windows and size limits rng picks.
func compare(t *testing.T, rng *rand.Rand, got, want LogStore, what string) {
	t.Helper()
	a, err := readAll(got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b, _ := readAll(want)
	if a != b {
		t.Fatalf("%s: disk storage differs from memory storage\n--- disk\n%s--- memory\n%s", what, a, b)
	}
	first, _ := want.FirstIndex()
	last, _ := want.LastIndex()
	for k := 0; k < 8; k++ {
		lo := first - 1 + uint64(rng.Intn(int(last-first+3)))
		hi := lo + uint64(rng.Intn(int(last+2-min(lo, last+1))))
		if hi > last+1 {
			hi = last + 1
		}
		if lo > hi {
			lo = hi
		}
		maxSize := uint64(rng.Intn(200))
		if rng.Intn(4) == 0 {
			maxSize = 1 << 62
		}
		ge, gerr := got.Entries(lo, hi, maxSize)
		we, werr := want.Entries(lo, hi, maxSize)
		if !errors.Is(gerr, werr) || len(ge) != len(we) {
			t.Fatalf("%s: Entries(%d, %d, %d): disk %d entries, %v; memory %d entries, %v", what, lo, hi, maxSize, len(ge), gerr, len(we), werr)
		}
		for i := range ge {
			if !proto.Equal(ge[i], we[i]) {
				t.Fatalf("%s: Entries(%d, %d, %d)[%d]: disk %v, memory %v", what, lo, hi, maxSize, i, ge[i], we[i])
			}
		}
	}
}

// modelOp is one write applied to both stores; it returns a description.
type modelOp func(s LogStore) error

// randomOp picks a valid write for the current state of the model (the
// cases where MemoryStorage panics are left out) and applies it to both.
type modelRun struct {
	rng          *rand.Rand
	mem          *raft.MemoryStorage
	compactIndex uint64 // mirrors what DiskStorage refuses ApplySnapshot below
}

func (m *modelRun) randomData() []byte {
	switch m.rng.Intn(5) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, m.rng.Intn(120))
	m.rng.Read(b)
	return b
}

func (m *modelRun) next() (string, modelOp) {
	rng := m.rng
	first, _ := m.mem.FirstIndex()
	last, _ := m.mem.LastIndex()
	offset := first - 1
	snap, _ := m.mem.Snapshot()
	snapIndex := snap.GetMetadata().GetIndex()
	switch k := rng.Intn(20); {
	case k < 10: // append, sometimes overlapping the tail or below the start
		// Never replacing entries at or below the snapshot (raft
		// snapshots applied entries, which are never replaced; DiskStorage
		// refuses it).
		lo := max(offset, snapIndex) + 1
		if snapIndex <= offset && offset > 3 && rng.Intn(10) == 0 {
			lo = offset - 3
		}
		start := lo + uint64(rng.Intn(int(last+2-lo)))
		if rng.Intn(2) == 0 {
			start = last + 1
		}
		if start == 0 {
			start = 1
		}
		n := 1 + rng.Intn(6)
		term := uint64(1 + rng.Intn(50))
		var ents []*raftpb.Entry
		for i := 0; i < n; i++ {
			typ := raftpb.EntryType_EntryNormal
			if rng.Intn(5) == 0 {
				typ = raftpb.EntryType(1 + rng.Intn(2))
			}
			ents = append(ents, entry(start+uint64(i), term, typ, m.randomData()))
		}
		return fmt.Sprintf("Append(%d..%d term %d)", start, start+uint64(n)-1, term), func(s LogStore) error { return s.Append(ents) }
	case k < 13:
		hs := &raftpb.HardState{Term: proto.Uint64(uint64(rng.Intn(100))), Vote: proto.Uint64(uint64(rng.Intn(4))), Commit: proto.Uint64(uint64(rng.Intn(int(offset + 1))))}
		return fmt.Sprintf("SetHardState(%v)", hs), func(s LogStore) error { return s.SetHardState(hs) }
	case k < 15 && last > max(snapIndex, offset):
		lo := max(snapIndex+1, offset)
		i := lo + uint64(rng.Intn(int(last-lo+1)))
		var cs *raftpb.ConfState
		if rng.Intn(3) > 0 {
			cs = &raftpb.ConfState{Voters: []uint64{1, uint64(2 + rng.Intn(3))}, Learners: []uint64{7}}
		}
		data := m.randomData()
		return fmt.Sprintf("CreateSnapshot(%d)", i), func(s LogStore) error { _, err := s.CreateSnapshot(i, cs, data); return err }
	case k < 17 && last > offset:
		i := offset + 1 + uint64(rng.Intn(int(last-offset)))
		return fmt.Sprintf("Compact(%d)", i), func(s LogStore) error {
			if s == LogStore(m.mem) {
				m.compactIndex = i
			}
			return s.Compact(i)
		}
	case k < 18:
		i := max(snapIndex+1, m.compactIndex) + uint64(rng.Intn(int(last+5-min(last, snapIndex))))
		sn := &raftpb.Snapshot{Data: m.randomData(), Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(i), Term: proto.Uint64(uint64(1 + rng.Intn(50))),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		}}
		return fmt.Sprintf("ApplySnapshot(%d)", i), func(s LogStore) error { return s.ApplySnapshot(proto.Clone(sn).(*raftpb.Snapshot)) }
	default:
		return "", nil // reopen
	}
}

// TestDiskStorageModel: random operation sequences on DiskStorage and
// raft.MemoryStorage give the same answers to every read method, across
// Close and reopen, with small segments so that appends roll, truncate and
// compact across segment boundaries.
func TestDiskStorageModel(t *testing.T) {
	seed := seedFor(t)
	rounds, ops := 6, 300
	if testing.Short() {
		rounds, ops = 2, 150
	}
	for round := 0; round < rounds; round++ {
		rng := rand.New(rand.NewSource(seed + int64(round)))
		dir := filepath.Join(t.TempDir(), MetadataLogDir)
		segBytes := int64(100 + rng.Intn(600))
		ds := openTest(t, dir, nil, segBytes)
		m := &modelRun{rng: rng, mem: raft.NewMemoryStorage()}
		var history []string
		for i := 0; i < ops; i++ {
			name, op := m.next()
			if op == nil {
				history = append(history, "reopen")
				if err := ds.Close(); err != nil {
					t.Fatal(err)
				}
				var err error
				if ds, err = OpenDiskStorageOptions(dir, DiskStorageOptions{SegmentBytes: segBytes}); err != nil {
					t.Fatalf("round %d op %d reopen: %v\nhistory: %s", round, i, err, strings.Join(history, ", "))
				}
			} else {
				history = append(history, name)
				werr := op(m.mem)
				gerr := op(ds)
				if !errors.Is(gerr, werr) && !(werr == nil && gerr == nil) {
					t.Fatalf("round %d op %d %s: disk %v, memory %v\nhistory: %s", round, i, name, gerr, werr, strings.Join(history, ", "))
				}
			}
			compare(t, rng, ds, m.mem, fmt.Sprintf("round %d op %d %s", round, i, history[len(history)-1]))
		}
		if err := ds.Close(); err != nil {
			t.Fatal(err)
		}
		ds = openTest(t, dir, nil, segBytes)
		compare(t, rng, ds, m.mem, fmt.Sprintf("round %d final reopen", round))
		ds.Close()
	}
}

// TestDiskStorageReopen: entries, hard state and snapshot survive a close,
// the directory holds the files the layout names, and the segments are
// Kafka batches (baseOffset = index, leader epoch = term).
func TestDiskStorageReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), MetadataLogDir)
	s := openTest(t, dir, nil, 300)
	if err := s.Append(entries(1, 20, 2)); err != nil {
		t.Fatal(err)
	}
	hs := &raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(15)}
	if err := s.SetHardState(hs); err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	if _, err := s.CreateSnapshot(10, cs, []byte("state at 10")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(10); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names := dirNames(t, dir)
	if !strings.Contains(names, "quorum-state") || !strings.Contains(names, checkpointFileName(10, 2)) ||
		!strings.Contains(names, ".log") || strings.Contains(names, segmentName(1)) {
		t.Fatalf("unexpected directory: %s", names)
	}
	s = openTest(t, dir, nil, 300)
	defer s.Close()
	gotHS, gotCS, _ := s.InitialState()
	if !proto.Equal(gotHS, hs) || !proto.Equal(gotCS, raftpb.EnsureConfState(cs)) {
		t.Fatalf("initial state %v %v", gotHS, gotCS)
	}
	if f, _ := s.FirstIndex(); f != 11 {
		t.Fatalf("first index %d, want 11", f)
	}
	if term, err := s.Term(10); term != 2 || err != nil {
		t.Fatalf("term(10) = %d, %v", term, err)
	}
	ents, err := s.Entries(11, 21, 1<<30)
	if err != nil || len(ents) != 10 || string(ents[9].GetData()) != "entry-20-2" {
		t.Fatalf("entries: %v %v", ents, err)
	}
	snap, _ := s.Snapshot()
	if string(snap.GetData()) != "state at 10" || snap.GetMetadata().GetIndex() != 10 {
		t.Fatalf("snapshot %v", snap)
	}
}

// TestDiskStorageEntryTypesAndTerms: every entry type round-trips; a term
// past MaxInt32 is refused and changes nothing.
func TestDiskStorageEntryTypesAndTerms(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil, 0)
	defer s.Close()
	in := []*raftpb.Entry{
		entry(1, 1, raftpb.EntryType_EntryNormal, nil),
		entry(2, 1, raftpb.EntryType_EntryConfChange, []byte("cc")),
		entry(3, 1, raftpb.EntryType_EntryConfChangeV2, []byte{}),
	}
	if err := s.Append(in); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]*raftpb.Entry{entry(4, 1<<31, raftpb.EntryType_EntryNormal, nil)}); err == nil {
		t.Fatal("term 1<<31 accepted")
	}
	if last, _ := s.LastIndex(); last != 3 {
		t.Fatalf("last index %d after a refused append", last)
	}
	got, err := s.Entries(1, 4, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(got[i], in[i]) {
			t.Fatalf("entry %d: got %v want %v", i, got[i], in[i])
		}
	}
}

// TestDiskStorageTornTail: a partial last batch (or junk after the last
// one) is cut at open, and appends continue after it.
func TestDiskStorageTornTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		last   uint64
	}{
		{"partial-batch", func(b []byte) []byte { return b[:len(b)-5] }, 9},
		{"junk-after", func(b []byte) []byte { return append(b, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) }, 10},
		{"half-header", func(b []byte) []byte { return append(b, make([]byte, 30)...) }, 10},
		{"flipped-last", func(b []byte) []byte { b[len(b)-2] ^= 0x40; return b }, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, nil, 0)
			if err := s.Append(entries(1, 10, 1)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			path := filepath.Join(dir, segmentName(1))
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, nil, 0)
			defer s.Close()
			if last, _ := s.LastIndex(); last != tc.last {
				t.Fatalf("last index %d after recovery, want %d", last, tc.last)
			}
			if err := s.Append(entries(tc.last+1, 3, 2)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openTest(t, dir, nil, 0)
			ents, err := s.Entries(1, tc.last+4, 1<<30)
			if err != nil || len(ents) != int(tc.last+3) {
				t.Fatalf("entries after recovery and append: %d, %v", len(ents), err)
			}
		})
	}
}

// snapshotDir returns every file's name and content under dir.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[de.Name()] = string(b)
	}
	return out
}

func dirNames(t *testing.T, dir string) string {
	var names []string
	for n := range snapshotDir(t, dir) {
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

// TestDiskStorageOpenRefuses: damage that is not a torn tail, an unknown
// file, or an inconsistent state fails the open, names the file, and
// leaves the directory byte for byte as it was.
func TestDiskStorageOpenRefuses(t *testing.T) {
	build := func(t *testing.T) string {
		dir := t.TempDir()
		s := openTest(t, dir, nil, 200)
		if err := s.Append(entries(1, 30, 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetHardState(&raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(20)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateSnapshot(12, &raftpb.ConfState{Voters: []uint64{1}}, []byte("s")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		return dir
	}
	flip := func(name func(dir string) string, at func(n int) int) func(t *testing.T, dir string) string {
		return func(t *testing.T, dir string) string {
			path := name(dir)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[at(len(b))] ^= 0x10
			os.WriteFile(path, b, 0o644)
			return filepath.Base(path)
		}
	}
	segments := func(dir string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		return m
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file the error must name
	}{
		{"first-segment-middle", flip(func(dir string) string { return segments(dir)[0] }, func(n int) int { return n / 2 })},
		{"first-segment-end", flip(func(dir string) string { return segments(dir)[0] }, func(n int) int { return n - 1 })},
		{"last-segment-start-valid-after", flip(func(dir string) string { s := segments(dir); return s[len(s)-1] }, func(n int) int { return 30 })},
		{"quorum-state", flip(func(dir string) string { return filepath.Join(dir, stateFile) }, func(n int) int { return n / 2 })},
		{"checkpoint", flip(func(dir string) string { return filepath.Join(dir, checkpointFileName(12, 1)) }, func(n int) int { return n / 2 })},
		{"unknown-file", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
			return "notes.txt"
		}},
		{"gap", func(t *testing.T, dir string) string {
			s := segments(dir)
			os.Remove(s[1])
			return filepath.Base(s[2])
		}},
		{"segment-name-mismatch", func(t *testing.T, dir string) string {
			s := segments(dir)
			os.Rename(s[len(s)-1], filepath.Join(dir, segmentName(1000)))
			return segmentName(1000)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := build(t)
			want := tc.damage(t, dir)
			before := snapshotDir(t, dir)
			_, err := OpenDiskStorage(dir, nil)
			if err == nil {
				t.Fatal("open succeeded")
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %s", err, want)
			}
			after := snapshotDir(t, dir)
			if len(before) != len(after) {
				t.Fatalf("failed open changed the directory: %v -> %v", keys(before), keys(after))
			}
			for n, b := range before {
				if after[n] != b {
					t.Fatalf("failed open changed %s", n)
				}
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDiskStorageCheckpointsKept: only the newest two checkpoints stay, and
// open loads the newest.
func TestDiskStorageCheckpointsKept(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil, 0)
	if err := s.Append(entries(1, 10, 3)); err != nil {
		t.Fatal(err)
	}
	for i := uint64(2); i <= 8; i += 2 {
		if _, err := s.CreateSnapshot(i, nil, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	cps, _ := filepath.Glob(filepath.Join(dir, "*"+checkpointSuffix))
	if len(cps) != 2 || filepath.Base(cps[1]) != checkpointFileName(8, 3) {
		t.Fatalf("checkpoints %v", cps)
	}
	s = openTest(t, dir, nil, 0)
	defer s.Close()
	snap, _ := s.Snapshot()
	if snap.GetMetadata().GetIndex() != 8 || !bytes.Equal(snap.GetData(), []byte{8}) {
		t.Fatalf("loaded snapshot %v", snap)
	}
}

// TestDiskStorageBootstrapSnapshot: the node bootstraps a configuration
// with a snapshot at index 0 term 0; it survives a reopen and the log
// starts at 1.
func TestDiskStorageBootstrapSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil, 0)
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, Index: proto.Uint64(0), Term: proto.Uint64(0),
	}}
	if err := s.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(entries(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, nil, 0)
	defer s.Close()
	_, cs, _ := s.InitialState()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if len(cs.GetVoters()) != 3 || first != 1 || last != 3 {
		t.Fatalf("after reopen: conf state %v, log [%d, %d]", cs, first, last)
	}
}

// TestSegmentIsKafkaLog: a segment reads as Kafka record batches with
// franz-go's kmsg: baseOffset = index, partitionLeaderEpoch = term, a valid
// CRC32C, one record with the data as its value and the type header.
func TestSegmentIsKafkaLog(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil, 0)
	if err := s.Append([]*raftpb.Entry{
		entry(1, 4, raftpb.EntryType_EntryNormal, []byte("value")),
		entry(2, 4, raftpb.EntryType_EntryConfChange, []byte("cc")),
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; len(b) > 0; i++ {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		size := int(rb.Length) + 12
		if crc32.Checksum(b[21:size], crc32.MakeTable(crc32.Castagnoli)) != uint32(rb.CRC) {
			t.Fatalf("batch %d: bad CRC", i)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(rb.Records); err != nil {
			t.Fatal(err)
		}
		if rb.Magic != 2 || rb.FirstOffset != int64(i+1) || rb.PartitionLeaderEpoch != 4 || rb.NumRecords != 1 || rec.Key != nil {
			t.Fatalf("batch %d: %+v record %+v", i, rb, rec)
		}
		switch i {
		case 0:
			if string(rec.Value) != "value" || len(rec.Headers) != 0 {
				t.Fatalf("record %+v", rec)
			}
		case 1:
			if string(rec.Value) != "cc" || len(rec.Headers) != 1 || rec.Headers[0].Key != "raft.type" ||
				!bytes.Equal(rec.Headers[0].Value, []byte{byte(raftpb.EntryType_EntryConfChange)}) {
				t.Fatalf("record %+v", rec)
			}
		}
		b = b[size:]
	}
}

// TestDiskStorageLocked: a second open of the same directory fails while
// the first holds it, and succeeds after Close.
func TestDiskStorageLocked(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil, 0)
	if _, err := OpenDiskStorage(dir, nil); !errors.Is(err, storage.ErrDirLocked) {
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	s = openTest(t, dir, nil, 0)
	s.Close()
}

// BenchmarkDiskStorageAppend: one small entry per Append, each fsynced.
func BenchmarkDiskStorageAppend(b *testing.B) {
	s := openTest(b, b.TempDir(), nil, 0)
	defer s.Close()
	data := make([]byte, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if err := s.Append([]*raftpb.Entry{entry(uint64(i+1), 1, raftpb.EntryType_EntryNormal, data)}); err != nil {
			b.Fatal(err)
		}
	}
}
