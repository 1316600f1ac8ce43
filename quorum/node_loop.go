package quorum

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/ringbroker/ringbroker/invariants"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// The node loop.
//
// A Node owns one raft.RawNode. Exactly one goroutine drives it at a time:
// either the goroutine Run starts (production), or the caller of Process
// (tests and the simulation, which tick and deliver messages themselves, one
// virtual step at a time, without goroutines). Everything else talks to the
// loop through the pending input (pendingInput, under Node.mu) and reads the
// Status it publishes.
//
// Concurrency rules:
//   - Node.mu guards pending input (ticks, inbox, proposals, reports, a
//     leadership transfer), the stop flag and the published Status. It is never
//     held while the loop calls raft, the store, the state machine, Send or a
//     callback, so those may call back into Node's exported methods.
//   - Fields marked "loop-owned" are touched only by the driving goroutine
//     (Run's goroutine, or the Process caller), and by Stop after that
//     goroutine has finished.
//
// One round of the loop (Node.process):
//
//  1. take the pending input; tick raft; step received messages; report
//     unreachable peers and snapshot outcomes; start a leadership transfer;
//     propose the queued proposals (refused with ErrNotLeader off the leader);
//  2. while raft has a Ready:
//     a. note a leader change (OnLeader);
//     b. persist, in this order, the snapshot (Store.ApplySnapshot, then
//     SM.Restore), the entries (Store.Append) and the hard state
//     (Store.SetHardState): entries before the hard state, so a crash in
//     between never leaves a commit index beyond the stored log;
//     c. only then hand the messages to Send: a vote or an append
//     acknowledgement never leaves before what it promises is stored;
//     d. apply the committed entries in order (SM.Apply, conf changes),
//     complete waiting proposals, take a snapshot every SnapshotEvery
//     applied entries and compact the log behind it;
//     e. Advance.
//  3. publish Status.
//
// Errors from the store or the state machine are fatal for the node: the
// loop stops, every waiting proposal fails with the error, and Err returns it.
// A replica that could not persist or apply an entry must not keep voting.

// process is one round of the loop. Loop-owned.
func (n *Node) process() error {
	n.mu.Lock()
	in := n.pending
	n.pending = pendingInput{}
	n.mu.Unlock()

	for range in.ticks {
		n.rn.Tick()
	}
	for _, m := range in.inbox {
		if m.GetTo() != n.cfg.ID {
			n.log.Debug("dropping a message for another node", zap.Uint64("to", m.GetTo()))
			continue
		}
		if err := n.rn.Step(m); err != nil {
			n.log.Debug("raft refused a message", zap.Stringer("type", m.GetType()),
				zap.Uint64("from", m.GetFrom()), zap.Error(err))
			continue
		}
		if t := m.GetType(); t == raftpb.MessageType_MsgAppResp || t == raftpb.MessageType_MsgHeartbeatResp {
			n.answered = append(n.answered, m.GetFrom())
		}
	}
	n.noteAnswers()
	// Reports in id order, so a replayed simulation steps raft the same way.
	for _, id := range slices.Sorted(maps.Keys(in.unreachable)) {
		n.rn.ReportUnreachable(id)
	}
	for _, id := range slices.Sorted(maps.Keys(in.snapshots)) {
		n.rn.ReportSnapshot(id, in.snapshots[id])
	}
	if in.transferTo != 0 {
		n.rn.TransferLeader(in.transferTo)
	}
	for _, p := range in.proposals {
		if p.conf != nil {
			n.proposeConf(p)
			continue
		}
		n.propose(p)
	}

	for n.rn.HasReady() {
		if err := n.handleReady(n.rn.Ready()); err != nil {
			n.log.Error("quorum node stopped", zap.Error(err))
			n.mu.Lock()
			n.err = err
			n.mu.Unlock()
			n.failAll(err)
			n.publishStatus()
			return err
		}
	}
	n.publishStatus()
	return nil
}

// noteAnswers stamps the members that answered this round (n.answered)
// with the time, as a KRaft leader stamps a follower's Fetch: see
// ReplicaTimes. It runs after the round's messages were stepped and before
// its proposals, so the leader's last index is its persisted log's end,
// which the followers' match indexes are compared with. Loop-owned.
func (n *Node) noteAnswers() {
	answered := n.answered
	n.answered = n.answered[:0]
	basic := n.rn.BasicStatus()
	if basic.RaftState != raft.StateLeader {
		n.replicas, n.replicasTerm = nil, 0
		return
	}
	if n.replicasTerm != basic.GetTerm() || n.replicas == nil {
		// Kafka's LeaderState starts empty in every epoch.
		n.replicas, n.replicasTerm = make(map[uint64]ReplicaTimes), basic.GetTerm()
	}
	if len(answered) == 0 {
		return
	}
	nowMs := n.cfg.Now().UnixMilli()
	var leaderLast uint64
	match := make(map[uint64]uint64, len(answered))
	n.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == n.cfg.ID {
			leaderLast = pr.Match
		}
		match[id] = pr.Match
	})
	for id := range n.replicas {
		if _, ok := match[id]; !ok {
			delete(n.replicas, id) // no longer a member
		}
	}
	for _, id := range answered {
		m, ok := match[id]
		if !ok || id == n.cfg.ID {
			continue // removed from the configuration meanwhile
		}
		r, seen := n.replicas[id]
		if !seen {
			r = ReplicaTimes{LastFetchMs: -1, LastCaughtUpMs: -1}
		}
		if m >= leaderLast {
			r.LastCaughtUpMs = max(r.LastCaughtUpMs, nowMs)
		} else if r.leaderLastAtFetch > 0 && m >= r.leaderLastAtFetch {
			r.LastCaughtUpMs = max(r.LastCaughtUpMs, r.LastFetchMs)
		}
		r.leaderLastAtFetch = leaderLast
		r.LastFetchMs = max(r.LastFetchMs, nowMs)
		n.replicas[id] = r
	}
}

// propose hands p to raft. Loop-owned.
func (n *Node) propose(p *Proposal) {
	if err := n.rn.Propose(p.data); err != nil {
		basic := n.rn.BasicStatus()
		if basic.RaftState != raft.StateLeader {
			n.finish(p, 0, &NotLeaderError{Leader: basic.Lead})
			return
		}
		n.finish(p, 0, fmt.Errorf("%w: %w", ErrProposalDropped, err))
		return
	}
	// With forwarding disabled, raft accepts a proposal only as leader, and
	// appends it to its log at once in its current term.
	p.term = n.rn.BasicStatus().GetTerm()
	n.waiting[p.sequence] = p
}

// proposeConf hands a configuration change to raft. Loop-owned.
func (n *Node) proposeConf(p *Proposal) {
	if n.confWaiting != nil {
		n.finish(p, 0, ErrConfChangePending)
		return
	}
	if err := n.rn.ProposeConfChange(p.conf); err != nil {
		basic := n.rn.BasicStatus()
		if basic.RaftState != raft.StateLeader {
			n.finish(p, 0, &NotLeaderError{Leader: basic.Lead})
			return
		}
		n.finish(p, 0, fmt.Errorf("%w: %w", ErrProposalDropped, err))
		return
	}
	p.term = n.rn.BasicStatus().GetTerm()
	p.data, _ = proto.Marshal(p.conf)
	n.confWaiting = p
}

// applyConfChange applies a committed configuration change and learns the
// endpoints its context carries. Loop-owned.
func (n *Node) applyConfChange(index uint64, cc raftpb.ConfChangeI, context, data []byte) error {
	members, err := decodeMembersContext(context)
	if err != nil {
		return fmt.Errorf("quorum: conf change entry %d: %w", index, err)
	}
	n.confState = n.rn.ApplyConfChange(cc)
	v2 := cc.AsV2()
	if len(members) > 0 || len(n.endpoints) > 0 {
		if n.endpoints == nil {
			n.endpoints = make(map[uint64]string)
		}
		for _, m := range members {
			n.endpoints[m.ID] = m.Addr
			// A change that names no directory id (an endpoint update from
			// a node that sent none) leaves the known one.
			if m.DirectoryID != [16]byte{} {
				if n.directoryIDs == nil {
					n.directoryIDs = make(map[uint64][16]byte)
				}
				n.directoryIDs[m.ID] = m.DirectoryID
			}
		}
		for _, c := range v2.GetChanges() {
			switch c.GetType() {
			case raftpb.ConfChangeRemoveNode:
				delete(n.endpoints, c.GetNodeId())
				delete(n.directoryIDs, c.GetNodeId())
			case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
				// raft refuses to restore a snapshot whose configuration
				// does not name the restoring node, so a member added after
				// the log was compacted could never catch up from the
				// snapshot taken before it was added: take one now.
				n.snapshotNow = true
			}
		}
		n.notifyMembers()
	}
	if p := n.confWaiting; p != nil && bytes.Equal(p.data, data) {
		n.confWaiting = nil
		n.finish(p, index, nil)
	}
	return nil
}

// setMembers replaces the members' endpoints and directory ids with what
// a snapshot names. Loop-owned (or NewNode).
func (n *Node) setMembers(ms []Member) {
	if ms == nil {
		n.endpoints, n.directoryIDs = nil, nil
		return
	}
	n.endpoints, n.directoryIDs = make(map[uint64]string, len(ms)), nil
	for _, m := range ms {
		n.endpoints[m.ID] = m.Addr
		if m.DirectoryID != [16]byte{} {
			if n.directoryIDs == nil {
				n.directoryIDs = make(map[uint64][16]byte)
			}
			n.directoryIDs[m.ID] = m.DirectoryID
		}
	}
}

// notifyMembers tells OnMembers the configuration. Loop-owned.
func (n *Node) notifyMembers() {
	if n.cfg.OnMembers == nil {
		return
	}
	cs := n.confState
	n.cfg.OnMembers(Membership{
		Voters:    slices.Clone(cs.GetVoters()),
		Learners:  slices.Clone(cs.GetLearners()),
		Endpoints: maps.Clone(n.endpoints),
	})
}

// handleReady persists, sends and applies one Ready, in that order, then
// advances raft. Loop-owned.
func (n *Node) handleReady(rd raft.Ready) error {
	// Not only when rd.SoftState is set: a round that steps many messages
	// may take a leader through another role back to leader in a new term,
	// which SoftState, compared between Readys, does not show.
	n.noteLeadership(n.rn.BasicStatus())
	store := n.cfg.Store
	if invariants.Enabled {
		for i, e := range rd.Entries {
			invariants.Check(e.GetIndex() == rd.Entries[0].GetIndex()+uint64(i),
				"raft %d: Ready entries not contiguous at %d", n.cfg.ID, e.GetIndex())
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.restoreSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := store.Append(rd.Entries); err != nil {
		return fmt.Errorf("quorum: append %d entries: %w", len(rd.Entries), err)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := store.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("quorum: store the hard state: %w", err)
		}
	}
	if len(rd.Messages) > 0 {
		n.cfg.Send(rd.Messages)
	}
	for _, e := range rd.CommittedEntries {
		if err := n.apply(e); err != nil {
			return err
		}
	}
	if err := n.maybeSnapshot(); err != nil {
		return err
	}
	n.rn.Advance(rd)
	return nil
}

// noteLeadership records the role and term, and calls OnLeader when the
// leader or its term changed. Loop-owned.
func (n *Node) noteLeadership(basic raft.BasicStatus) {
	n.role, n.term = basic.RaftState, basic.GetTerm()
	if basic.Lead == n.leader && (basic.Lead == raft.None || n.term == n.leaderTerm) {
		return
	}
	n.leader, n.leaderTerm = basic.Lead, n.term
	n.log.Info("raft leader changed", zap.Uint64("leader", basic.Lead), zap.Uint64("term", n.term),
		zap.Stringer("role", basic.RaftState))
	if n.cfg.OnLeader != nil {
		n.cfg.OnLeader(n.term, basic.Lead)
	}
}

// restoreSnapshot stores a snapshot the leader sent and restores the state
// machine from it. Loop-owned.
func (n *Node) restoreSnapshot(snap *raftpb.Snapshot) error {
	meta := snap.GetMetadata()
	if err := n.cfg.Store.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("quorum: store the snapshot at %d: %w", meta.GetIndex(), err)
	}
	members, data, err := splitSnapshotMembers(snap.GetData())
	if err != nil {
		return fmt.Errorf("quorum: the snapshot at %d: %w", meta.GetIndex(), err)
	}
	if err := n.cfg.SM.Restore(data, meta.GetIndex()); err != nil {
		return fmt.Errorf("quorum: restore the state machine from the snapshot at %d: %w", meta.GetIndex(), err)
	}
	n.confState = proto.Clone(raftpb.EnsureConfState(meta.GetConfState())).(*raftpb.ConfState)
	if members != nil {
		n.setMembers(members)
		n.notifyMembers()
	}
	n.applied, n.snapshotIndex = meta.GetIndex(), meta.GetIndex()
	// The snapshot stands for entries this node never applies one by one; a
	// waiting proposal of a term up to the snapshot's may be among them or
	// not. This comes before noteAppliedTerm, which would call them dropped.
	for seq, p := range n.waiting {
		if p.term <= meta.GetTerm() {
			delete(n.waiting, seq)
			n.finish(p, 0, ErrOutcomeUnknown)
		}
	}
	n.noteAppliedTerm(meta.GetTerm())
	n.log.Info("restored a snapshot from the leader", zap.Uint64("index", meta.GetIndex()),
		zap.Uint64("term", meta.GetTerm()))
	return nil
}

// apply applies one committed entry. Loop-owned.
func (n *Node) apply(e *raftpb.Entry) error {
	index, term := e.GetIndex(), e.GetTerm()
	if index <= n.applied {
		return nil // covered by a snapshot restored in this Ready
	}
	if invariants.Enabled {
		invariants.Check(index == n.applied+1, "raft %d: committed entry %d after applied %d", n.cfg.ID, index, n.applied)
		invariants.Check(term >= n.appliedTerm, "raft %d: entry %d of term %d after term %d", n.cfg.ID, index, term, n.appliedTerm)
	}
	switch e.GetType() {
	case raftpb.EntryNormal:
		if len(e.GetData()) == 0 {
			break // a new leader's empty entry
		}
		env, err := decodeEnvelope(e.GetData())
		if err != nil {
			return fmt.Errorf("quorum: committed entry %d (term %d): %w", index, term, err)
		}
		if err := n.cfg.SM.Apply(index, term, env.payload); err != nil {
			return fmt.Errorf("quorum: apply entry %d (term %d): %w", index, term, err)
		}
		if env.proposer == n.cfg.ID && env.incarnation == n.incarnation {
			if p, ok := n.waiting[env.sequence]; ok {
				delete(n.waiting, env.sequence)
				n.finish(p, index, nil)
			}
		}
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("quorum: conf change entry %d: %w", index, err)
		}
		if err := n.applyConfChange(index, &cc, cc.GetContext(), e.GetData()); err != nil {
			return err
		}
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("quorum: conf change entry %d: %w", index, err)
		}
		if err := n.applyConfChange(index, &cc, cc.GetContext(), e.GetData()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("quorum: committed entry %d of unknown type %v", index, e.GetType())
	}
	n.applied = index
	n.noteAppliedTerm(term)
	if n.role == raft.StateLeader && term == n.term && n.leaderReadyTerm != term {
		n.leaderReadyTerm = term
		n.log.Info("leader applied every entry of previous terms", zap.Uint64("term", term),
			zap.Uint64("index", index))
		if n.cfg.OnLeaderReady != nil {
			n.cfg.OnLeaderReady(term)
		}
	}
	return nil
}

// noteAppliedTerm fails the waiting proposals of terms before term: log terms
// never decrease along the log, so once an entry of a later term is applied
// an entry of an earlier term that has not been applied never will be.
// Loop-owned.
func (n *Node) noteAppliedTerm(term uint64) {
	if term <= n.appliedTerm {
		return
	}
	n.appliedTerm = term
	for seq, p := range n.waiting {
		if p.term < term {
			delete(n.waiting, seq)
			n.finish(p, 0, ErrProposalDropped)
		}
	}
	if p := n.confWaiting; p != nil && p.term < term {
		n.confWaiting = nil
		n.finish(p, 0, ErrProposalDropped)
	}
}

// maybeSnapshot takes a snapshot once SnapshotEvery entries were applied
// since the last one, and compacts the log to SnapshotKeep entries below it.
// Loop-owned.
func (n *Node) maybeSnapshot() error {
	if n.snapshotNow {
		n.snapshotNow = false
		if first, err := n.cfg.Store.FirstIndex(); err != nil {
			return fmt.Errorf("quorum: store first index: %w", err)
		} else if first > 1 && n.applied > n.snapshotIndex {
			return n.takeSnapshot()
		}
	}
	if n.applied < n.snapshotIndex+n.cfg.SnapshotEvery {
		return nil
	}
	return n.takeSnapshot()
}

// takeSnapshot snapshots the state machine at the applied index and
// compacts the log to SnapshotKeep entries below it. Loop-owned.
func (n *Node) takeSnapshot() error {
	data, err := n.cfg.SM.Snapshot()
	if err != nil {
		return fmt.Errorf("quorum: state machine snapshot at %d: %w", n.applied, err)
	}
	if len(n.endpoints) > 0 {
		data = snapshotOfMembers(sortedMembers(n.endpoints, n.directoryIDs), data)
	}
	if _, err := n.cfg.Store.CreateSnapshot(n.applied, n.confState, data); err != nil {
		return fmt.Errorf("quorum: store a snapshot at %d: %w", n.applied, err)
	}
	n.snapshotIndex = n.applied
	if n.applied > n.cfg.SnapshotKeep {
		compactIndex := n.applied - n.cfg.SnapshotKeep
		first, err := n.cfg.Store.FirstIndex()
		if err != nil {
			return fmt.Errorf("quorum: store first index: %w", err)
		}
		if compactIndex > first {
			if err := n.cfg.Store.Compact(compactIndex); err != nil {
				return fmt.Errorf("quorum: compact the log to %d: %w", compactIndex, err)
			}
		}
	}
	n.log.Debug("took a snapshot", zap.Uint64("index", n.applied), zap.Int("bytes", len(data)))
	return nil
}

// publishStatus refreshes the Status the node shows. Loop-owned.
func (n *Node) publishStatus() {
	rs := n.rn.Status()
	st := Status{
		ID:            n.cfg.ID,
		Leader:        rs.Lead,
		Term:          rs.GetTerm(),
		Commit:        rs.GetCommit(),
		Applied:       n.applied,
		SnapshotIndex: n.snapshotIndex,
		LeaderReady:   rs.RaftState == raft.StateLeader && n.leaderReadyTerm == rs.GetTerm(),
	}
	if len(n.endpoints) > 0 {
		st.Endpoints = maps.Clone(n.endpoints)
	}
	if len(n.directoryIDs) > 0 {
		st.DirectoryIDs = maps.Clone(n.directoryIDs)
	}
	for id := range rs.Config.Voters.IDs() {
		st.Voters = append(st.Voters, id)
	}
	slices.Sort(st.Voters)
	for id := range rs.Config.Learners {
		st.Learners = append(st.Learners, id)
	}
	slices.Sort(st.Learners)
	switch rs.RaftState {
	case raft.StateLeader:
		st.Role = RoleLeader
		st.Match = make(map[uint64]uint64, len(rs.Progress))
		st.RecentActive = make(map[uint64]bool, len(rs.Progress))
		for id, pr := range rs.Progress {
			st.Match[id] = pr.Match
			st.RecentActive[id] = pr.RecentActive || id == n.cfg.ID
		}
		if n.replicasTerm == rs.GetTerm() && len(n.replicas) > 0 {
			st.Replicas = maps.Clone(n.replicas)
		}
	case raft.StateCandidate:
		st.Role = RoleCandidate
	case raft.StatePreCandidate:
		st.Role = RolePreCandidate
	default:
		st.Role = RoleFollower
	}
	n.mu.Lock()
	n.status = st
	n.mu.Unlock()
}

// raftLogger sends raft's log lines to zap. Fatal maps to Panic: raft calls
// it only for broken invariants, and a panic keeps the stack (and lets a test
// report it) where zap's Fatal would exit the process.
type raftLogger struct{ s *zap.SugaredLogger }

func (l raftLogger) Debug(v ...any)                   { l.s.Debug(v...) }
func (l raftLogger) Debugf(format string, v ...any)   { l.s.Debugf(format, v...) }
func (l raftLogger) Error(v ...any)                   { l.s.Error(v...) }
func (l raftLogger) Errorf(format string, v ...any)   { l.s.Errorf(format, v...) }
func (l raftLogger) Info(v ...any)                    { l.s.Info(v...) }
func (l raftLogger) Infof(format string, v ...any)    { l.s.Infof(format, v...) }
func (l raftLogger) Warning(v ...any)                 { l.s.Warn(v...) }
func (l raftLogger) Warningf(format string, v ...any) { l.s.Warnf(format, v...) }
func (l raftLogger) Fatal(v ...any)                   { l.s.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...any)   { l.s.Panicf(format, v...) }
func (l raftLogger) Panic(v ...any)                   { l.s.Panic(v...) }
func (l raftLogger) Panicf(format string, v ...any)   { l.s.Panicf(format, v...) }
