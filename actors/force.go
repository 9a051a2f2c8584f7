package actors

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/persistence"
)

// ErrCannotForce is returned by StartNode with ForceNewCluster when the
// data dir's log cannot be turned into a one-member cluster's: the reason
// follows it.
var ErrCannotForce = errors.New("cannot force a new cluster")

// forceNewCluster rewrites the replayed log of a member whose cluster lost
// its majority for good, so that it restarts as the only voter of a
// cluster that keeps its data (etcd's --force-new-cluster):
//
//  1. Every entry of the log is taken as committed. A member applies only
//     entries its WAL made durable, but it does not sync a hard state whose
//     commit index alone moved (etcd's WAL neither), so the commit index
//     the WAL records after a crash lags what the member applied. etcd
//     cuts the log there and can lose writes the survivor had applied and
//     acknowledged; this keeps them. An entry past the true commit index
//     was never acknowledged to its client (who heard at most "unknown"),
//     so applying it breaks no answer given; and no member is left to say
//     which entries those are.
//  2. The configuration as of that index is the db's (as of its applied
//     index) with the conf changes after it replayed.
//  3. One RemoveNode entry per other member follows, in this member's last
//     term, and the hard state commits them: raft hands them to the state
//     machine at start like any committed entry, and once they are applied
//     the member is alone and elects itself. A learner surviving alone is
//     made a voter first.
//
// The new entries and hard state are written to the WAL (synced) before
// anything starts: a crash after this leaves a log that restarts the same
// way with or without the flag. The cluster id stays: members added later
// join it as usual.
func forceNewCluster(lg *zap.Logger, self uint64, rp *persistence.Replay, state *kv.State) error {
	hs := rp.HardState
	applied, _ := state.Applied()
	commit, err := rp.Storage.LastIndex()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotForce, err)
	}
	if applied > commit {
		// A db received with a snapshot whose entries after it never
		// reached the WAL: the log has a hole this member cannot fill.
		return fmt.Errorf("%w: the db holds index %d but the log ends at %d; start once without --force-new-cluster while another member can send a snapshot",
			ErrCannotForce, applied, commit)
	}
	cs, err := confStateAt(rp, state.ConfState(), applied, commit)
	if err != nil {
		return err
	}
	if len(cs.GetVotersOutgoing()) > 0 {
		return fmt.Errorf("%w: the configuration is joint (a change was under way)", ErrCannotForce)
	}
	term := hs.GetTerm()
	var ents []*raftpb.Entry
	add := func(t raftpb.ConfChangeType, id uint64) error {
		data, err := proto.Marshal(&raftpb.ConfChange{Type: t.Enum(), NodeId: new(id)})
		if err != nil {
			return err
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: new(term), Index: new(commit + uint64(len(ents)) + 1), Data: data})
		return nil
	}
	if !slices.Contains(cs.GetVoters(), self) {
		if err := add(raftpb.ConfChangeAddNode, self); err != nil {
			return err
		}
	}
	others := removedIDs(cs, self)
	for _, id := range others {
		if err := add(raftpb.ConfChangeRemoveNode, id); err != nil {
			return err
		}
	}
	if len(ents) == 0 {
		lg.Warn("--force-new-cluster: this member is already the only voter; nothing to force (start without the flag)")
		return nil
	}
	newHS := &raftpb.HardState{Term: new(term), Vote: new(hs.GetVote()), Commit: new(ents[len(ents)-1].GetIndex())}
	// The WAL takes entries that overwrite its tail: on replay, a later
	// entry at an index replaces the earlier one and everything after it.
	if err := rp.WAL.Save(newHS, ents); err != nil {
		return fmt.Errorf("%w: write the conf changes: %w", ErrCannotForce, err)
	}
	if err := rp.Storage.Append(ents); err != nil {
		return fmt.Errorf("%w: %w", ErrCannotForce, err)
	}
	if err := rp.Storage.SetHardState(newHS); err != nil {
		return fmt.Errorf("%w: %w", ErrCannotForce, err)
	}
	rp.HardState = newHS
	lg.Warn("--force-new-cluster: restarting as the only voter; the other members are removed",
		zap.Uint64s("removed", others),
		zap.Uint64("kept_through_index", commit),
		zap.Uint64("recorded_commit_index", hs.GetCommit()))
	return nil
}

// confStateAt is the configuration as of index commit: cs (as of the db's
// applied index) with the conf changes of the log after applied replayed.
func confStateAt(rp *persistence.Replay, cs *raftpb.ConfState, applied, commit uint64) (*raftpb.ConfState, error) {
	if commit == applied {
		return cs, nil
	}
	ents, err := rp.Storage.Entries(applied+1, commit+1, math.MaxUint64)
	if err != nil {
		return nil, fmt.Errorf("%w: read the log after index %d: %w", ErrCannotForce, applied, err)
	}
	voters := make(map[uint64]bool)
	for _, id := range slices.Concat(cs.GetVoters(), cs.GetLearners()) {
		voters[id] = slices.Contains(cs.GetVoters(), id)
	}
	for _, e := range ents {
		if e.GetType() == raftpb.EntryConfChangeV2 {
			return nil, fmt.Errorf("%w: the log holds a joint conf change at index %d", ErrCannotForce, e.GetIndex())
		}
		if e.GetType() != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			continue // refused alike by every member when applied
		}
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode:
			voters[cc.GetNodeId()] = true
		case raftpb.ConfChangeAddLearnerNode:
			if !voters[cc.GetNodeId()] {
				voters[cc.GetNodeId()] = false
			}
		case raftpb.ConfChangeRemoveNode:
			delete(voters, cc.GetNodeId())
		}
	}
	out := &raftpb.ConfState{}
	for _, id := range slices.Sorted(maps.Keys(voters)) {
		if voters[id] {
			out.Voters = append(out.Voters, id)
		} else {
			out.Learners = append(out.Learners, id)
		}
	}
	return out, nil
}

// removedIDs are the members of cs other than self, in order.
func removedIDs(cs *raftpb.ConfState, self uint64) []uint64 {
	var ids []uint64
	for _, id := range slices.Concat(cs.GetVoters(), cs.GetLearners()) {
		if id != self {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
