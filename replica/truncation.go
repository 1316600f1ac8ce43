package replica

import "encoding/binary"

// Undefined values of OffsetForLeaderEpoch answers (Kafka's
// UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET).
const (
	undefinedEpoch       int32 = -1
	undefinedEpochOffset int64 = -1
)

// truncationPoint is where a follower cuts its log given the leader's
// OffsetForLeaderEpoch answer (leaderEpoch, leaderEnd) for the follower's
// latest epoch: Kafka's AbstractFetcherThread.getOffsetTruncationState
// (KIP-101, KIP-279). logEnd is the follower's log end offset and
// endOffsetFor the follower's own epoch cache (Log.EndOffsetForEpoch).
//
// The result never exceeds logEnd (no truncation then). done is false
// when the leader answered an epoch the follower does not have: the
// follower cuts to where its largest smaller epoch ends and asks again
// with its (now older) latest epoch, until both sides agree on an epoch.
//
//   - leaderEnd undefined: the leader knows no epoch <= the one asked;
//     nothing is proven, nothing is cut (Kafka truncates to the initial
//     fetch offset, which for a follower with epochs is its log end).
//   - leaderEpoch undefined (an old leader): min(leaderEnd, logEnd).
//   - the follower has no entry for an epoch <= leaderEpoch: the leader's
//     end offset (Kafka's "None" case).
//   - the follower's largest epoch <= leaderEpoch is leaderEpoch itself:
//     both logs agree up to the end of that epoch on the shorter side,
//     min(leaderEnd, followerEnd).
//   - otherwise: cut at followerEnd, not done.
func truncationPoint(leaderEpoch int32, leaderEnd, logEnd int64, endOffsetFor func(int32) (int32, int64)) (offset int64, done bool) {
	switch {
	case leaderEnd == undefinedEpochOffset:
		return logEnd, true
	case leaderEpoch == undefinedEpoch:
		return min(leaderEnd, logEnd), true
	}
	followerEpoch, followerEnd := endOffsetFor(leaderEpoch)
	switch {
	case followerEnd == undefinedEpochOffset:
		return min(leaderEnd, logEnd), true
	case followerEpoch != leaderEpoch:
		return min(followerEnd, logEnd), false
	default:
		return min(leaderEnd, followerEnd, logEnd), true
	}
}

// wholeBatches returns the prefix of records made of whole record batches:
// a leader stops a fetch response at its byte budget, which may cut the
// last batch (Kafka's followers drop that partial batch and fetch it
// again). A v2 batch starts with its base offset (int64) and length
// (int32, the bytes after the length field).
func wholeBatches(records []byte) []byte {
	const headerBytes = 12
	p := 0
	for len(records)-p >= headerBytes {
		n := int32(uint32(records[p+8])<<24 | uint32(records[p+9])<<16 | uint32(records[p+10])<<8 | uint32(records[p+11]))
		if n <= 0 || int64(len(records)-p-headerBytes) < int64(n) {
			break
		}
		p += headerBytes + int(n)
	}
	return records[:p]
}

// firstBatchOffsets reads the base offset and the last offset (base plus
// last offset delta) of the first record batch in batches; ok is false
// when fewer bytes than its header's first 27 are there.
//
//	0            8        12             16      17    21          23                 27
//	| baseOffset | length | leader epoch | magic | crc | attributes | lastOffsetDelta |
func firstBatchOffsets(batches []byte) (base, last int64, ok bool) {
	const headerBytes = 27
	if len(batches) < headerBytes {
		return 0, 0, false
	}
	base = int64(binary.BigEndian.Uint64(batches[0:8]))
	delta := int32(binary.BigEndian.Uint32(batches[23:27]))
	return base, base + int64(delta), true
}
