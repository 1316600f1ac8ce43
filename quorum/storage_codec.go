package quorum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	kproto "github.com/ringbroker/ringbroker/proto"
)

// The encoders and decoders of the files DiskStorage writes (the layout is
// drawn in storage.go). Every decoder takes bytes read from disk and trusts
// no length in them past the bytes present; FuzzDecodeSegment,
// FuzzDecodeState and FuzzDecodeCheckpoint hold them to that.

// entryTypeHeader is the record header key that carries a raft entry's type
// when it is not EntryNormal (one byte, the raftpb.EntryType value).
const entryTypeHeader = "raft.type"

// errCorruptEntry: a batch that frames and checksums but is not an entry
// this package writes (wrong record count, codec, header...).
var errCorruptEntry = errors.New("record batch is not a raft entry")

// encodeEntry appends e as one record batch v2: baseOffset = index,
// partitionLeaderEpoch = term, one record whose value is the data (null
// when Data is nil) and, for a type other than EntryNormal, a "raft.type"
// header. A term past MaxInt32 or an index past MaxInt64 does not fit the
// batch header and is refused.
func encodeEntry(dst []byte, e *raftpb.Entry) ([]byte, error) {
	if e.GetTerm() > math.MaxInt32 {
		return dst, fmt.Errorf("raft entry %d: term %d does not fit a record batch's partitionLeaderEpoch (max %d)", e.GetIndex(), e.GetTerm(), math.MaxInt32)
	}
	if e.GetIndex() > math.MaxInt64 {
		return dst, fmt.Errorf("raft entry index %d does not fit a record batch's baseOffset", e.GetIndex())
	}
	rec := kmsg.NewRecord()
	rec.Key = nil
	rec.Value = e.Data
	if e.Type != nil && e.GetType() != raftpb.EntryType_EntryNormal {
		rec.Headers = []kmsg.Header{{Key: entryTypeHeader, Value: []byte{byte(e.GetType())}}}
	}
	records := kproto.AppendRecord(nil, &rec)
	b := kmsg.NewRecordBatch()
	b.FirstOffset = int64(e.GetIndex())
	b.PartitionLeaderEpoch = int32(e.GetTerm())
	b.LastOffsetDelta = 0
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.NumRecords = 1
	b.Records = records
	return kproto.AppendRecordBatch(dst, &b), nil
}

// decodeEntry decodes the whole batch b (framing, CRC32C, one record) into
// the entry it holds. The entry's Data aliases b.
func decodeEntry(b []byte) (*raftpb.Entry, error) {
	rb, rest, err := kproto.ParseRecordBatch(b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the batch", errCorruptEntry, len(rest))
	}
	if !rb.CheckCRC() {
		return nil, errBadCRC
	}
	if rb.BaseOffset() < 0 || rb.PartitionLeaderEpoch() < 0 {
		return nil, fmt.Errorf("%w: negative offset %d or epoch %d", errCorruptEntry, rb.BaseOffset(), rb.PartitionLeaderEpoch())
	}
	if rb.Attributes() != 0 || rb.RecordCount() != 1 || rb.LastOffsetDelta() != 0 {
		return nil, fmt.Errorf("%w: attributes %#x, %d records, last offset delta %d", errCorruptEntry, rb.Attributes(), rb.RecordCount(), rb.LastOffsetDelta())
	}
	it := rb.RecordIter()
	var r kproto.Record
	if !it.Next(&r) {
		return nil, fmt.Errorf("%w: %v", errCorruptEntry, it.Err())
	}
	if it.Next(&kproto.Record{}) || it.Err() != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptEntry, it.Err())
	}
	if r.OffsetDelta != 0 || r.Key != nil {
		return nil, fmt.Errorf("%w: offset delta %d or a key", errCorruptEntry, r.OffsetDelta)
	}
	e := &raftpb.Entry{
		Index: proto.Uint64(uint64(rb.BaseOffset())),
		Term:  proto.Uint64(uint64(rb.PartitionLeaderEpoch())),
		Data:  r.Value,
	}
	switch r.HeaderCount {
	case 0:
	case 1:
		var h kmsg.Header
		if err := h.ReadFrom(r.Headers); err != nil || h.Key != entryTypeHeader || len(h.Value) != 1 {
			return nil, fmt.Errorf("%w: bad header", errCorruptEntry)
		}
		t := raftpb.EntryType(h.Value[0])
		if _, known := raftpb.EntryType_name[int32(t)]; !known || t == raftpb.EntryType_EntryNormal {
			return nil, fmt.Errorf("%w: entry type %d", errCorruptEntry, t)
		}
		e.Type = t.Enum()
	default:
		return nil, fmt.Errorf("%w: %d headers", errCorruptEntry, r.HeaderCount)
	}
	return e, nil
}

var errBadCRC = errors.New("record batch CRC32C mismatch")

// decodedEntry is what a segment scan keeps of one entry: where its batch
// is and what Entries needs to know without reading it.
type decodedEntry struct {
	index, term uint64
	pos         int64
	length      int32
	size        uint32 // proto.Size of the entry as Entries returns it
}

// decodeSegment walks the batches of a segment whose first entry is base:
// each must decode (decodeEntry) and hold the next index. It returns the
// entries of the valid prefix, its length in bytes, and why it stopped
// before the end (nil when all of b was valid).
func decodeSegment(b []byte, base uint64) (ents []decodedEntry, valid int, stop error) {
	next := base
	for valid < len(b) {
		rb, _, err := kproto.ParseRecordBatch(b[valid:])
		if err != nil {
			return ents, valid, fmt.Errorf("batch at byte %d: %w", valid, err)
		}
		e, err := decodeEntry(rb.Bytes())
		if err != nil {
			return ents, valid, fmt.Errorf("batch at byte %d: %w", valid, err)
		}
		if e.GetIndex() != next {
			return ents, valid, fmt.Errorf("batch at byte %d: entry %d where %d was expected", valid, e.GetIndex(), next)
		}
		ents = append(ents, decodedEntry{
			index: next, term: e.GetTerm(), pos: int64(valid),
			length: int32(len(rb.Bytes())), size: uint32(proto.Size(e)),
		})
		valid += len(rb.Bytes())
		next++
	}
	return ents, valid, nil
}

// entryBatchAfter reports whether some position after from in b starts a
// whole batch that decodes as an entry at index minIndex or later: the sign
// that the bytes at from are damage inside acknowledged data, not a torn
// tail (a torn write leaves a prefix of what was written, so nothing valid
// follows it). Cheap checks of the fixed header run before the CRC, so
// random bytes cost about one comparison per position.
func entryBatchAfter(b []byte, from int, minIndex uint64) (int, bool) {
	for q := from + 1; q+kproto.RecordBatchHeaderSize <= len(b); q++ {
		h := b[q:]
		if h[kproto.BatchPosMagic] != 2 || binary.BigEndian.Uint16(h[kproto.BatchPosAttributes:]) != 0 ||
			binary.BigEndian.Uint32(h[kproto.BatchPosRecordCount:]) != 1 {
			continue
		}
		off := binary.BigEndian.Uint64(h)
		if off < minIndex || off > math.MaxInt64 {
			continue
		}
		rb, _, err := kproto.ParseRecordBatch(h)
		if err != nil || !rb.CheckCRC() {
			continue
		}
		if _, err := decodeEntry(rb.Bytes()); err == nil {
			return q, true
		}
	}
	return 0, false
}

// Small files: quorum-state and the snapshot checkpoints.
//
// quorum-state (fixed header, then the hard state, then the checksum):
//
//	offset  size  field
//	     0     4  magic "RBQS"
//	     4     1  version (1)
//	     5     1  flags: bit 0 = a hard state was set
//	     6     8  compactIndex  (the log's first index is compactIndex+1
//	    14     8  compactTerm    unless a snapshot is newer)
//	    22     2  n = length of the hard state
//	    24     n  raftpb.HardState, protobuf
//	  24+n     4  CRC32C of bytes [0, 24+n)
//
// <index>-<term>.checkpoint:
//
//	offset  size  field
//	     0     4  magic "RBQC"
//	     4     1  version (1)
//	     5     4  n = length of the snapshot
//	     9     n  raftpb.Snapshot, protobuf (metadata: index, term,
//	              ConfState; and the data)
//	   9+n     4  CRC32C of bytes [0, 9+n)
const (
	stateMagic      = "RBQS"
	checkpointMagic = "RBQC"
	formatVersion   = 1
	stateHeaderSize = 24
	hardStateMax    = 1 << 10 // three varints and their tags need ~33 bytes
	checkpointHead  = 9
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// quorumState is the content of quorum-state.
type quorumState struct {
	hardState    *raftpb.HardState // nil: never set
	compactIndex uint64
	compactTerm  uint64
}

func encodeState(st quorumState) ([]byte, error) {
	var hs []byte
	var flags byte
	if st.hardState != nil {
		var err error
		if hs, err = proto.Marshal(st.hardState); err != nil {
			return nil, err
		}
		flags |= 1
	}
	if len(hs) > hardStateMax {
		return nil, fmt.Errorf("hard state of %d bytes is past the %d bytes quorum-state holds", len(hs), hardStateMax)
	}
	b := make([]byte, stateHeaderSize, stateHeaderSize+len(hs)+4)
	copy(b, stateMagic)
	b[4] = formatVersion
	b[5] = flags
	binary.BigEndian.PutUint64(b[6:], st.compactIndex)
	binary.BigEndian.PutUint64(b[14:], st.compactTerm)
	binary.BigEndian.PutUint16(b[22:], uint16(len(hs)))
	b = append(b, hs...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

func decodeState(b []byte) (quorumState, error) {
	var st quorumState
	if len(b) < stateHeaderSize+4 || string(b[:4]) != stateMagic {
		return st, errors.New("not a quorum-state file (short or bad magic)")
	}
	if b[4] != formatVersion {
		return st, fmt.Errorf("quorum-state version %d, want %d", b[4], formatVersion)
	}
	n := int(binary.BigEndian.Uint16(b[22:]))
	if n > hardStateMax || len(b) != stateHeaderSize+n+4 {
		return st, fmt.Errorf("quorum-state is %d bytes, its header says %d", len(b), stateHeaderSize+n+4)
	}
	body := b[:stateHeaderSize+n]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return st, errors.New("quorum-state checksum mismatch")
	}
	if b[5]&^1 != 0 || b[5] == 0 && n != 0 {
		return st, fmt.Errorf("quorum-state flags %#x with %d bytes of hard state", b[5], n)
	}
	st.compactIndex = binary.BigEndian.Uint64(b[6:])
	st.compactTerm = binary.BigEndian.Uint64(b[14:])
	if b[5]&1 != 0 {
		st.hardState = &raftpb.HardState{}
		if err := proto.Unmarshal(b[stateHeaderSize:stateHeaderSize+n], st.hardState); err != nil {
			return st, fmt.Errorf("quorum-state hard state: %w", err)
		}
	}
	return st, nil
}

func encodeCheckpoint(snap *raftpb.Snapshot) ([]byte, error) {
	body, err := proto.Marshal(snap)
	if err != nil {
		return nil, err
	}
	if len(body) > math.MaxUint32-checkpointHead-4 {
		return nil, fmt.Errorf("snapshot of %d bytes is too large for a checkpoint", len(body))
	}
	b := make([]byte, checkpointHead, checkpointHead+len(body)+4)
	copy(b, checkpointMagic)
	b[4] = formatVersion
	binary.BigEndian.PutUint32(b[5:], uint32(len(body)))
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// decodeCheckpoint decodes a checkpoint file.
func decodeCheckpoint(b []byte) (*raftpb.Snapshot, error) {
	if len(b) < checkpointHead+4 || !bytes.Equal(b[:4], []byte(checkpointMagic)) {
		return nil, errors.New("not a checkpoint (short or bad magic)")
	}
	if b[4] != formatVersion {
		return nil, fmt.Errorf("checkpoint version %d, want %d", b[4], formatVersion)
	}
	n := uint64(binary.BigEndian.Uint32(b[5:]))
	if uint64(len(b)) != checkpointHead+n+4 {
		return nil, fmt.Errorf("checkpoint is %d bytes, its header says %d", len(b), checkpointHead+n+4)
	}
	body := b[:checkpointHead+n]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return nil, errors.New("checkpoint checksum mismatch")
	}
	snap := &raftpb.Snapshot{}
	if err := (proto.UnmarshalOptions{}).Unmarshal(body[checkpointHead:], snap); err != nil {
		return nil, fmt.Errorf("checkpoint snapshot: %w", err)
	}
	// Written EnsureSnapshot'd; not Ensure'd here, which would add an
	// AutoLeave the snapshot did not have.
	if md := snap.GetMetadata(); md == nil || md.Index == nil || md.Term == nil || md.ConfState == nil {
		return nil, errors.New("checkpoint snapshot without its metadata")
	}
	return snap, nil
}
