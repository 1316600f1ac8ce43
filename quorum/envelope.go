package quorum

import (
	"encoding/binary"
	"errors"
)

// The proposal envelope wraps every payload the node proposes, so that the
// proposer can recognise its own entry when it is applied and complete the
// waiting Propose call with the entry's index:
//
//	+---------+----------+-------------+----------+---------------+
//	| version | proposer | incarnation | sequence | payload ...   |
//	| uvarint | uvarint  | uvarint     | uvarint  | rest of entry |
//	+---------+----------+-------------+----------+---------------+
//
//   - version is envelopeVersion (1); any other value is refused.
//   - proposer is the raft node id that proposed the entry.
//   - incarnation is a random 64-bit value chosen when the Node is built, so a
//     restarted node, whose sequence starts again at 1, never mistakes an
//     entry of its previous life (which may still be committed after the
//     restart) for one of its own waiting proposals.
//   - sequence numbers the proposals of one incarnation from 1.
//
// Every uvarint must be in its shortest form, so decoding and re-encoding give
// the same bytes (FuzzEnvelope checks it). An entry with no data at all is
// never an envelope: raft appends such an empty entry when a leader takes
// office, and the node does not hand it to the state machine.
//
// Rejected: a fixed-width header (24 bytes per entry where the uvarints take
// about 14), and matching proposals by log index (the proposer does not learn
// the index until raft appends the entry, and a follower's forwarded proposal
// never learns it).

// envelopeVersion is the only envelope version.
const envelopeVersion = 1

// envelopeHeaderMax is the largest header: four uvarints of at most ten bytes.
const envelopeHeaderMax = 4 * binary.MaxVarintLen64

type envelope struct {
	proposer    uint64
	incarnation uint64
	sequence    uint64
	payload     []byte // aliases the decoded bytes
}

var errEnvelope = errors.New("quorum: malformed proposal envelope")

// appendEnvelope appends the encoding of e to dst.
func appendEnvelope(dst []byte, e envelope) []byte {
	dst = binary.AppendUvarint(dst, envelopeVersion)
	dst = binary.AppendUvarint(dst, e.proposer)
	dst = binary.AppendUvarint(dst, e.incarnation)
	dst = binary.AppendUvarint(dst, e.sequence)
	return append(dst, e.payload...)
}

// decodeEnvelope decodes b. The payload aliases b. It reads only the bytes of
// b and allocates nothing.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	version, b, err := canonicalUvarint(b)
	if err != nil {
		return e, err
	}
	if version != envelopeVersion {
		return e, errEnvelope
	}
	if e.proposer, b, err = canonicalUvarint(b); err != nil {
		return e, err
	}
	if e.incarnation, b, err = canonicalUvarint(b); err != nil {
		return e, err
	}
	if e.sequence, b, err = canonicalUvarint(b); err != nil {
		return e, err
	}
	e.payload = b
	return e, nil
}

// canonicalUvarint reads one uvarint in its shortest form from the front of b
// and returns it with the rest of b.
func canonicalUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, errEnvelope
	}
	// A longer than needed encoding ends in a zero byte (e.g. 0x80 0x00).
	if n > 1 && b[n-1] == 0 {
		return 0, b, errEnvelope
	}
	return v, b[n:], nil
}
