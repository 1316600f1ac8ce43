// Package quorum is the metadata quorum of issue 15: one Raft group on
// go.etcd.io/raft/v3 whose log holds the cluster metadata records
// (package metadata). The consensus algorithm is the library's; this package
// supplies what the library leaves to its user:
//
//   - storage (storage.go): the raft log as a Kafka-format log in
//     __cluster_metadata-0 under the first log dir, the hard state and the
//     snapshots written atomically through storage.FS, so the fault backend
//     and the power-loss tests cover them;
//   - transport (transport.go): the controller listener, raft messages and
//     controller RPCs in length-prefixed frames behind a handshake that
//     checks the cluster id and node ids, bounded queues per peer, reconnect
//     with backoff;
//   - the node loop (node.go): ticks, Ready handling (persist, send, apply),
//     proposals that return once applied, snapshots;
//   - dynamic quorums (members.go, KIP-853): raft's configuration changes
//     carry each member's endpoint, and so do the snapshots.
package quorum

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// LogStore is what the node loop needs from the raft log storage: the
// library's read side (raft.Storage) and the write side with the method set
// of raft.MemoryStorage, so the memory storage and the durable one are
// interchangeable. Every write method is durable when it returns.
type LogStore interface {
	raft.Storage
	Append(entries []*raftpb.Entry) error
	SetHardState(st *raftpb.HardState) error
	ApplySnapshot(snap *raftpb.Snapshot) error
	CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error)
	Compact(compactIndex uint64) error
}

var _ LogStore = (*raft.MemoryStorage)(nil)
