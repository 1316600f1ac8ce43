package quorum

// Dynamic quorums (KIP-853): the voter set changes through raft's own
// configuration changes (ConfChangeV2, one voter at a time, learners for
// nodes that follow without voting), and every member's controller
// endpoint travels in the log with the change that adds it, so every node
// learns where to dial each member from the log, as Kafka's nodes learn it
// from its VotersRecord.
//
// Where the endpoints live:
//   - a configuration change entry carries, in its Context, the endpoints of
//     the members it adds (membersContext below); the bootstrap entries of a
//     dynamic quorum (raft's Bootstrap: one ConfChangeAddNode per initial
//     voter at indexes 1..n, term 1) carry the initial voters';
//   - a snapshot of a dynamic quorum carries the endpoints of every member
//     before the state machine's bytes (snapshotWithMembers), so a node that
//     catches up from a snapshot, or restarts on one, knows them too.
//
// A static quorum (controller.quorum.voters) never writes either: its
// snapshots are the state machine's bytes as before, and its endpoints
// come from the configuration.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Member is one member of a dynamic quorum: its raft id, the host:port of
// its controller listener and, when known, the directory id of its metadata
// log dir (KIP-853's replica directory id, from its meta.properties; zero:
// unknown, Kafka's NO_DIRECTORY_ID).
type Member struct {
	ID          uint64
	Addr        string
	DirectoryID [16]byte
}

// Membership is a dynamic quorum's configuration as a node applied it:
// voters, learners (Kafka's observers that raft replicates to) and every
// member's endpoint.
type Membership struct {
	Voters    []uint64
	Learners  []uint64
	Endpoints map[uint64]string
}

// membersMax bounds the members one context or snapshot header names;
// membersAddrMax the bytes of one endpoint.
const (
	membersMax     = 1024
	membersAddrMax = 1024
)

// membersContextMagic starts a configuration change's context that
// carries endpoints:
//
//	+-------+---------+-------------------------------------+
//	| "RBm1"| count   | count x (id uvarint, len uvarint,    |
//	|       | uvarint |          addr bytes)                 |
//	+-------+---------+-------------------------------------+
//
// "RBm2" is the same with each member's 16-byte directory id after its
// address; it is written only when a member's directory id is known, so a
// quorum that never learns one writes what older nodes read.
//
// A nonce (proposer incarnation and sequence) follows in a proposal's
// context, so two proposals of the same change are different entries and
// the proposer recognises its own.
var (
	membersContextMagic   = []byte("RBm1")
	membersContextMagicV2 = []byte("RBm2")
)

// withDirectoryIDs reports whether any member's directory id is known.
func withDirectoryIDs(ms []Member) bool {
	return slices.ContainsFunc(ms, func(m Member) bool { return m.DirectoryID != [16]byte{} })
}

// appendMembers appends count and members, with their directory ids when
// dirs is set.
func appendMembers(dst []byte, ms []Member, dirs bool) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ms)))
	for _, m := range ms {
		dst = binary.AppendUvarint(dst, m.ID)
		dst = binary.AppendUvarint(dst, uint64(len(m.Addr)))
		dst = append(dst, m.Addr...)
		if dirs {
			dst = append(dst, m.DirectoryID[:]...)
		}
	}
	return dst
}

// readMembers reads what appendMembers wrote and returns the rest of b.
func readMembers(b []byte, dirs bool) ([]Member, []byte, error) {
	count, k := binary.Uvarint(b)
	if k <= 0 || count > membersMax {
		return nil, nil, errors.New("quorum: malformed member list (count)")
	}
	b = b[k:]
	out := make([]Member, 0, count)
	for range count {
		id, k := binary.Uvarint(b)
		if k <= 0 || id == 0 {
			return nil, nil, errors.New("quorum: malformed member list (id)")
		}
		b = b[k:]
		l, k := binary.Uvarint(b)
		if k <= 0 || l > membersAddrMax || l > uint64(len(b)-k) {
			return nil, nil, errors.New("quorum: malformed member list (address)")
		}
		b = b[k:]
		m := Member{ID: id, Addr: string(b[:l])}
		b = b[l:]
		if dirs {
			if len(b) < len(m.DirectoryID) {
				return nil, nil, errors.New("quorum: malformed member list (directory id)")
			}
			b = b[copy(m.DirectoryID[:], b):]
		}
		out = append(out, m)
	}
	return out, b, nil
}

// membersContext is the context of a configuration change naming ms.
func membersContext(ms []Member, nonce []byte) []byte {
	magic, dirs := membersContextMagic, withDirectoryIDs(ms)
	if dirs {
		magic = membersContextMagicV2
	}
	out := appendMembers(slices.Clone(magic), ms, dirs)
	return append(out, nonce...)
}

// decodeMembersContext returns the endpoints a context names; a context
// of another kind (empty, or a static quorum's) names none.
func decodeMembersContext(ctx []byte) ([]Member, error) {
	switch {
	case bytes.HasPrefix(ctx, membersContextMagic):
		ms, _, err := readMembers(ctx[len(membersContextMagic):], false)
		return ms, err
	case bytes.HasPrefix(ctx, membersContextMagicV2):
		ms, _, err := readMembers(ctx[len(membersContextMagicV2):], true)
		return ms, err
	}
	return nil, nil
}

// snapshotMembersMagic starts the data of a dynamic quorum's snapshot. It
// is the largest uvarint (ten bytes), which the metadata snapshot format
// (a uvarint record count first) can never start with: that many records
// do not fit in memory. After it: the member list (appendMembers), then the
// state machine's bytes. snapshotMembersMagicV2 (ten bytes no uvarint
// decoder accepts: the tenth byte of a uint64 is at most 1) is the same
// with the members' directory ids, written only when one is known.
var (
	snapshotMembersMagic   = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	snapshotMembersMagicV2 = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}
)

// snapshotWithMembers wraps a state machine snapshot with the endpoints.
func snapshotWithMembers(endpoints map[uint64]string, sm []byte) []byte {
	return snapshotOfMembers(sortedMembers(endpoints, nil), sm)
}

// snapshotOfMembers wraps a state machine snapshot with the members.
func snapshotOfMembers(ms []Member, sm []byte) []byte {
	magic, dirs := snapshotMembersMagic, withDirectoryIDs(ms)
	if dirs {
		magic = snapshotMembersMagicV2
	}
	out := appendMembers(slices.Clone(magic), ms, dirs)
	return append(out, sm...)
}

// splitSnapshot returns the endpoints a snapshot carries (none for a
// static quorum's) and the state machine's bytes.
func splitSnapshot(data []byte) (map[uint64]string, []byte, error) {
	ms, rest, err := splitSnapshotMembers(data)
	if ms == nil || err != nil {
		return nil, rest, err
	}
	eps := make(map[uint64]string, len(ms))
	for _, m := range ms {
		eps[m.ID] = m.Addr
	}
	return eps, rest, nil
}

// splitSnapshotMembers returns the members a snapshot carries (nil for a
// static quorum's) and the state machine's bytes.
func splitSnapshotMembers(data []byte) ([]Member, []byte, error) {
	dirs := false
	switch {
	case bytes.HasPrefix(data, snapshotMembersMagic):
	case bytes.HasPrefix(data, snapshotMembersMagicV2):
		dirs = true
	default:
		return nil, data, nil
	}
	ms, rest, err := readMembers(data[len(snapshotMembersMagic):], dirs)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot member list: %w", err)
	}
	return ms, rest, nil
}

// sortedMembers lists endpoints in id order, with the directory ids dirs
// knows.
func sortedMembers(endpoints map[uint64]string, dirs map[uint64][16]byte) []Member {
	out := make([]Member, 0, len(endpoints))
	for _, id := range slices.Sorted(maps.Keys(endpoints)) {
		out = append(out, Member{ID: id, Addr: endpoints[id], DirectoryID: dirs[id]})
	}
	return out
}
