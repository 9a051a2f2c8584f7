package actors

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// errRefusedMessage is wrapped by every error guard.admit returns: the
// message came from a peer, and raft would panic on it, at once or later on
// the state it leaves behind, so the raft actor drops it unstepped. No
// correct cluster sends one; a member whose data dir came from another
// cluster, or a corrupt frame, does.
var errRefusedMessage = errors.New("refused a peer message raft could panic on")

// guardLimit bounds every term and log index a peer may name. raft adds one
// to both unchecked (a campaign's term, the unstable log's offset past a
// snapshot, a progress's Next past its Match): a value near 2^64 wraps to 0
// and trips an invariant later, a campaign at term 0 panicking in send and an
// unstable offset of 0 indexing out of range. No correct cluster gets near
// 2^62, a hundred thousand years at a million entries a second.
const guardLimit = 1 << 62

// guardMaxConfIDs bounds the ids a snapshot's ConfState may list. Checking
// one replays it into a tracker on the raft actor, in time quadratic in its
// length; clusters have a handful of members.
const guardMaxConfIDs = 1 << 10

// guardReadCtxLen is the length of the read-index context a leader puts on its
// heartbeats (an 8-byte little-endian position) and followers echo back.
const guardReadCtxLen = 8

// guard turns away the peer messages raft would panic on. raft trusts its
// peers: a MsgAppResp naming an index past the leader's log makes it look
// for a snapshot it does not have ("need non-empty snapshot"), a heartbeat
// committing past a follower's log panics in commitTo, and so on; each check
// below names the panic it prevents. raft does not check before it acts, so
// the guard checks first, with what the raft actor sees from outside raft:
// the message, and the log and term it routes to the wal actor.
//
// Owned by the raft actor, used only on its goroutine, and wired in three
// places of it:
//
//   - admit, for every message whose From is a peer (neither this member
//     nor a local storage thread), right before it is stepped;
//   - appended, for every MsgStorageAppend route() sends the wal actor;
//   - sent, for every message route() hands the transport, before it does;
//
// and conf may be set to leaderConfState.
//
// raft's log and term run ahead of what was routed between a Step and the
// next Ready, since the actor steps a whole mailbox wave before it asks for
// one. So the guard compares only against lower bounds of raft's state
// (lastIndex, term, commit); each check says why a correct cluster never
// trips it.
type guard struct {
	id uint64
	// validData checks the data of a normal entry a peer proposes; nil
	// accepts any.
	validData func([]byte) error
	// conf, if set, gives the configuration a conf change proposed now
	// would be applied to, or nil where this member cannot tell. On a
	// leader that is its current one: raft takes a conf change only once
	// every earlier one is applied (pendingConfIndex), and turns any other
	// into an empty entry. Whether a conf change applies depends on it
	// ("removed all voters"), so without conf the guard cannot stop a
	// peer's proposal that makes every member panic when applying it.
	conf func() *raftpb.ConfState

	// routed is raft's last index as of the latest MsgStorageAppend routed.
	routed uint64
	// lastIndex is a lower bound on raft's last index now. raft's log
	// shrinks only when it steps a peer's MsgApp (a conflict truncates it
	// to the message's last entry) or MsgSnap (a restore leaves it at the
	// snapshot's index); admit lowers lastIndex to what either may leave.
	// Every other change grows the log, and every change is in the next
	// Ready's MsgStorageAppend (entries or a snapshot): a Ready without
	// them means the log is as last routed, so appended resets lastIndex
	// to routed.
	lastIndex uint64
	// term is a lower bound on raft's term: the latest routed HardState's,
	// raised by the admitted messages raft takes the term of. A message
	// with a lower term is one raft ignores.
	term uint64
	// commit is a lower bound on raft's commit index: the latest routed
	// HardState's. raft never truncates its log at or below its commit
	// index, and ignores a snapshot there.
	commit uint64
	// initLast is the last entry of the log raft started with. While raft
	// has no term yet its log is still exactly that one: every change to
	// it comes with a term.
	initLast struct{ term, index uint64 }

	// The read-index contexts this member sent on heartbeats at hbTerm, up
	// to hbCtx, once sent has been called (hbWatched): until then the
	// guard cannot tell which contexts it issued and checks only their
	// length, so an actor that does not call sent keeps its reads working.
	hbWatched     bool
	hbTerm, hbCtx uint64
}

// newGuard starts a guard at the state raft starts from: s must be the
// storage raft was (or is about to be) built on. Bootstrapping raft after
// this is fine: its entries are routed in its first Ready.
func newGuard(id uint64, s raft.Storage, validData func([]byte) error) (*guard, error) {
	last, err := s.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("guard: last index of the log: %w", err)
	}
	hs, _, err := s.InitialState()
	if err != nil {
		return nil, fmt.Errorf("guard: initial state: %w", err)
	}
	g := &guard{id: id, validData: validData, routed: last, lastIndex: last, term: hs.GetTerm(), commit: hs.GetCommit()}
	if last > 0 {
		t, err := s.Term(last)
		if err != nil {
			return nil, fmt.Errorf("guard: term of the last entry %d: %w", last, err)
		}
		g.initLast.term, g.initLast.index = t, last
	}
	return g, nil
}

// appended notes a MsgStorageAppend as the raft actor routes it. An append
// may truncate, so the last entry it carries is raft's last index, whether
// above or below the previous one; a snapshot alone leaves the log at its
// index.
func (g *guard) appended(m *raftpb.Message) {
	if m.GetType() != raftpb.MsgStorageAppend {
		return
	}
	if n := len(m.GetEntries()); n > 0 {
		g.routed = m.GetEntries()[n-1].GetIndex()
	} else if s := m.GetSnapshot(); !raft.IsEmptySnap(s) {
		g.routed = s.GetMetadata().GetIndex()
	}
	g.lastIndex = g.routed
	// Set only when the HardState changed; neither goes down in raft.
	g.term = max(g.term, m.GetTerm())
	g.commit = max(g.commit, m.GetCommit())
}

// sent notes a message as the raft actor hands it to the transport: the
// read-index contexts of its heartbeats bound what followers may echo.
func (g *guard) sent(m *raftpb.Message) {
	g.hbWatched = true
	if m.GetType() != raftpb.MsgHeartbeat || len(m.GetContext()) != guardReadCtxLen {
		return
	}
	v := binary.LittleEndian.Uint64(m.GetContext())
	switch t := m.GetTerm(); {
	case t > g.hbTerm:
		g.hbTerm, g.hbCtx = t, v
	case t == g.hbTerm:
		g.hbCtx = max(g.hbCtx, v)
	}
}

// admit decides whether a peer's message may be stepped; an error wraps
// errRefusedMessage and means drop it. It may repair m in place where the
// repair is safe (a heartbeat's commit index, a forwarded leadership
// transfer's term; see there), and lowers lastIndex for what an admitted
// message may truncate, so it must be called right before m is stepped.
func (g *guard) admit(m *raftpb.Message) error {
	if m == nil {
		return fmt.Errorf("%w: nil message", errRefusedMessage)
	}
	if err := g.check(m); err != nil {
		return fmt.Errorf("%w: %s: %w", errRefusedMessage, m.GetType(), err)
	}
	switch m.GetType() {
	case raftpb.MsgApp, raftpb.MsgHeartbeat, raftpb.MsgSnap, raftpb.MsgTimeoutNow:
		// raft takes the term of any of these when it is above its own,
		// first thing. (Not of a response: RawNode drops those of members
		// it does not track.) Knowing it keeps the stale messages of the
		// term raft just left from lowering lastIndex.
		g.term = max(g.term, m.GetTerm())
	}
	return nil
}

func (g *guard) check(m *raftpb.Message) error {
	if !g.fromPeer(m.GetType()) {
		// The other types stand for this member's own decisions. RawNode
		// refuses most from a peer, but not MsgForgetLeader, and it lets
		// the storage responses through when From names a storage thread:
		// a MsgStorageApplyResp past the commit index panics in appliedTo.
		return errors.New("not a type peers send")
	}
	if to := m.GetTo(); to != g.id {
		return fmt.Errorf("addressed to member %d, not to this member %d", to, g.id)
	}
	switch from := m.GetFrom(); {
	case from == raft.None:
		// raft takes a MsgReadIndex from None for its own and reads its
		// Entries[0]: "index out of range" when there is none.
		return errors.New("from no member")
	case from == g.id, raft.IsLocalMsgTarget(from):
		// raft answers a message at its From: answering itself panics in
		// send ("should not be self-addressed"). The raft actor does not
		// guard such a message, taking it for its own: the transport must
		// not deliver one.
		return fmt.Errorf("from %d, a local sender", from)
	}
	if err := g.checkTerm(m); err != nil {
		return err
	}
	switch m.GetType() {
	case raftpb.MsgApp:
		return g.checkApp(m)
	case raftpb.MsgAppResp:
		return g.checkAppResp(m)
	case raftpb.MsgHeartbeat:
		g.clampCommit(m)
	case raftpb.MsgHeartbeatResp:
		return g.checkHeartbeatResp(m)
	case raftpb.MsgSnap:
		return g.checkSnap(m)
	case raftpb.MsgProp:
		return g.checkProp(m)
	case raftpb.MsgReadIndex:
		return g.checkReadIndex(m)
	case raftpb.MsgVote, raftpb.MsgPreVote:
		return g.checkVote(m)
	case raftpb.MsgTransferLeader:
		g.unsetTransferTerm(m)
	}
	return nil
}

// fromPeer is the allowlist of the types raft sends to other members.
func (*guard) fromPeer(t raftpb.MessageType) bool {
	switch t {
	case raftpb.MsgApp, raftpb.MsgAppResp,
		raftpb.MsgHeartbeat, raftpb.MsgHeartbeatResp,
		raftpb.MsgVote, raftpb.MsgVoteResp, raftpb.MsgPreVote, raftpb.MsgPreVoteResp,
		raftpb.MsgSnap, raftpb.MsgProp, raftpb.MsgReadIndex, raftpb.MsgReadIndexResp,
		raftpb.MsgTransferLeader, raftpb.MsgTimeoutNow:
		return true
	}
	return false
}

// checkTerm keeps term 0 for the types raft forwards and bounds every other
// term. raft's send leaves MsgProp and MsgReadIndex without a term and
// stamps every other message with its own, which is at least 1 by the time
// it talks to peers.
func (*guard) checkTerm(m *raftpb.Message) error {
	t := m.GetTerm()
	switch m.GetType() {
	case raftpb.MsgProp, raftpb.MsgReadIndex:
		// A follower forwards these to its leader, and send panics if they
		// carry a term ("term should not be set when sending"): one with
		// the follower's own term gets that far.
		if t != 0 {
			return fmt.Errorf("term %d on a forwarded type", t)
		}
		return nil
	}
	if t == 0 {
		// raft steps a message of term 0 as a local one, past its term
		// checks: it grants a MsgVote of term 0 with a response of term 0,
		// and send panics ("term should be set when sending MsgVoteResp");
		// it makes a candidate a follower at term 0 on a MsgApp, and a
		// leader counts a MsgAppResp or a candidate a vote of any old term.
		return errors.New("no term")
	}
	if t > guardLimit {
		return fmt.Errorf("term %d past %d", t, uint64(guardLimit))
	}
	return nil
}

// checkApp holds a MsgApp to the shape a leader gives it: entries numbered
// on from Index+1, their terms never decreasing from LogTerm and never above
// the message's. raft assumes that shape and panics when it does not hold
// ("entry %d conflict with committed entry", "index, %d, is out of range",
// "after(%d) is out of range"). It suffices without a term lookup: raft
// answers a MsgApp with Index below its commit index before appending
// anything, so every entry it appends has an index above Index, so above
// its commit index; and since they are contiguous, the first conflict is
// one of them and the truncation point is inside the message.
func (g *guard) checkApp(m *raftpb.Message) error {
	prev, ents := m.GetIndex(), m.GetEntries()
	if prev > guardLimit-uint64(len(ents)) {
		return fmt.Errorf("last index past %d", uint64(guardLimit))
	}
	if m.GetLogTerm() > m.GetTerm() {
		return fmt.Errorf("log term %d above the message's term %d", m.GetLogTerm(), m.GetTerm())
	}
	last := m.GetLogTerm()
	for i, e := range ents {
		if e == nil {
			return fmt.Errorf("entry %d is nil", i)
		}
		if want := prev + 1 + uint64(i); e.GetIndex() != want {
			return fmt.Errorf("entry %d has index %d, not %d", i, e.GetIndex(), want)
		}
		if t := e.GetTerm(); t == 0 || t < last || t > m.GetTerm() {
			return fmt.Errorf("entry %d has term %d, outside [%d, %d]", e.GetIndex(), t, max(last, 1), m.GetTerm())
		}
		last = e.GetTerm()
		if _, err := g.checkEntry(e); err != nil {
			return fmt.Errorf("entry %d: %w", e.GetIndex(), err)
		}
	}
	// raft answers without touching its log a message of a term below its
	// own, and one anchored below its commit index; only the others may
	// truncate it, to their last entry.
	if len(ents) > 0 && m.GetTerm() >= g.term && prev >= g.commit {
		g.lastIndex = min(g.lastIndex, prev+uint64(len(ents)))
	}
	return nil
}

// checkAppResp keeps a follower from acknowledging entries the leader does
// not have. raft would set Match past its own log, fail to find the term of
// Next-1 and send a snapshot instead: "need non-empty snapshot" if it has
// none (the incident). A follower acknowledges only entries it got from this
// leader, or its commit index, which every leader's log holds (leader
// completeness). Those reached its log before the MsgApp carrying them went
// out, and the actor routes a Ready's MsgStorageAppend before its messages
// leave; a leader's log does not shrink in its term. So lastIndex covers every
// acknowledgement of the current term. Rejections only move Next down, to
// Match+1 at the lowest, and responses of a term below raft's are ignored:
// neither is bounded.
func (g *guard) checkAppResp(m *raftpb.Message) error {
	if m.GetReject() || m.GetTerm() < g.term {
		return nil
	}
	if m.GetIndex() > g.lastIndex {
		return fmt.Errorf("acknowledges index %d past this member's last index %d", m.GetIndex(), g.lastIndex)
	}
	return nil
}

// clampCommit repairs a heartbeat that commits past this member's log, which
// panics in commitTo ("tocommit(%d) is out of range"). A leader's heartbeat
// carries min(Match, its commit index), where Match is what this member
// acknowledged in the leader's term; it acknowledged only after routing the
// entries, and the leader's own MsgApps never truncate below it, so a correct
// heartbeat is never clamped, but when an older MsgApp of the leader's,
// delayed or duplicated, arrives in the same wave and lowers lastIndex.
// Clamping is safe in every case: raft only commits less, and learns the rest
// from the next heartbeat or MsgApp.
func (g *guard) clampCommit(m *raftpb.Message) {
	if m.GetCommit() > g.lastIndex {
		m.Commit = new(g.lastIndex)
	}
}

// checkHeartbeatResp bounds the read-index context a follower echoes. raft
// decodes it with binary.LittleEndian.Uint64, which panics on fewer than 8
// bytes, and confirms the reads a quorum acknowledged up to the position it
// names, which slices out of range past the reads the leader holds. A leader
// starts counting reads afresh each term, so a correct echo names at most
// the highest position this member sent at the response's term; a response
// of a term below hbTerm is below raft's term too, and ignored.
func (g *guard) checkHeartbeatResp(m *raftpb.Message) error {
	ctx := m.GetContext()
	switch {
	case len(ctx) == 0:
		return nil
	case len(ctx) != guardReadCtxLen:
		return fmt.Errorf("read-index context of %d bytes, not %d", len(ctx), guardReadCtxLen)
	case !g.hbWatched || m.GetTerm() < g.hbTerm:
		return nil
	case m.GetTerm() > g.hbTerm:
		return fmt.Errorf("echoes a read-index context at term %d, where this member sent none", m.GetTerm())
	}
	if v := binary.LittleEndian.Uint64(ctx); v > g.hbCtx {
		return fmt.Errorf("echoes read-index position %d, past the %d this member sent", v, g.hbCtx)
	}
	return nil
}

// checkSnap holds a MsgSnap to what a leader's storage hands out: a
// snapshot at an index and term the leader had, whose ConfState raft can
// restore. raft panics when confchange.Restore fails on it ("unable to
// restore config") and when the configuration it restores differs from the
// ConfState (duplicate or zero ids, a learner also a voter, LearnersNext
// outside the outgoing voters), so the guard restores it first on a scratch
// tracker, as raft would.
func (g *guard) checkSnap(m *raftpb.Message) error {
	md := m.GetSnapshot().GetMetadata()
	if md == nil {
		return errors.New("no snapshot")
	}
	idx, t := md.GetIndex(), md.GetTerm()
	if idx == 0 || idx > guardLimit {
		return fmt.Errorf("snapshot index %d outside [1, %d]", idx, uint64(guardLimit))
	}
	if t == 0 || t > m.GetTerm() {
		return fmt.Errorf("snapshot term %d outside [1, %d]", t, m.GetTerm())
	}
	if err := g.checkConfState(md.GetConfState(), idx); err != nil {
		return err
	}
	// raft ignores a snapshot of a term below its own or at or below its
	// commit index; it may restore any other, whatever its log holds.
	if m.GetTerm() >= g.term && idx > g.commit {
		g.lastIndex = min(g.lastIndex, idx)
	}
	return nil
}

// checkConfState restores cs on a scratch tracker as raft's restore does.
// A nil ConfState passes: raft finds no member in it, this one included,
// and ignores the snapshot.
func (*guard) checkConfState(cs *raftpb.ConfState, lastIndex uint64) error {
	if cs == nil {
		return nil
	}
	lists := [][]uint64{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext()}
	n := 0
	for _, ids := range lists {
		n += len(ids)
		for _, id := range ids {
			if raft.IsLocalMsgTarget(id) {
				return fmt.Errorf("conf state names %d, a local sender", id)
			}
		}
	}
	if n > guardMaxConfIDs {
		return fmt.Errorf("conf state lists %d ids, more than %d", n, guardMaxConfIDs)
	}
	trk := tracker.MakeProgressTracker(1, 0)
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: trk, LastIndex: lastIndex}, cs)
	if err != nil {
		return fmt.Errorf("conf state cannot be restored: %w", err)
	}
	trk.Config, trk.Progress = cfg, prs
	if err := cs.Equivalent(trk.ConfState()); err != nil {
		return fmt.Errorf("conf state restores to another: %w", err)
	}
	return nil
}

// checkProp holds a forwarded proposal to what RawNode.Propose and
// ProposeConfChange build. The leader panics on one without entries
// ("stepped empty MsgProp"), on a nil entry (it clones and numbers each),
// and on a conf change whose data does not unmarshal (panic(err) in
// stepLeader). validData stops normal entries the state machine could not
// apply, conf stops conf changes raft could not: either would stop every
// member applying them.
func (g *guard) checkProp(m *raftpb.Message) error {
	ents := m.GetEntries()
	if len(ents) == 0 {
		return errors.New("no entries")
	}
	for i, e := range ents {
		if e == nil {
			return fmt.Errorf("entry %d is nil", i)
		}
		cc, err := g.checkEntry(e)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if cc != nil && g.conf != nil {
			if cs := g.conf(); cs != nil {
				if err := confChangeFits(cs, cc); err != nil {
					return fmt.Errorf("entry %d: %w", i, err)
				}
			}
		}
		if e.GetType() == raftpb.EntryNormal && g.validData != nil {
			if err := g.validData(e.GetData()); err != nil {
				return fmt.Errorf("entry %d: data: %w", i, err)
			}
		}
	}
	return nil
}

// checkEntry keeps the entry types a log holds, and conf changes a member
// can apply whatever its configuration; it returns the conf change an entry
// carries. raft unmarshals a proposed conf change on the leader and every
// member unmarshals it again to apply it: one that fails stops them all.
func (*guard) checkEntry(e *raftpb.Entry) (*raftpb.ConfChangeV2, error) {
	var cc *raftpb.ConfChangeV2
	switch e.GetType() {
	case raftpb.EntryNormal:
		return nil, nil
	case raftpb.EntryConfChange:
		var v1 raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &v1); err != nil {
			return nil, fmt.Errorf("conf change: %w", err)
		}
		cc = v1.AsV2()
	case raftpb.EntryConfChangeV2:
		cc = &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			return nil, fmt.Errorf("conf change v2: %w", err)
		}
	default:
		// The kv actor stops on it.
		return nil, fmt.Errorf("unknown entry type %d", e.GetType())
	}
	if err := wellFormedConfChange(cc); err != nil {
		return nil, err
	}
	return cc, nil
}

// wellFormedConfChange refuses what no configuration can apply. raftpb's
// enums are open: a type or transition raft does not know unmarshals as
// itself, and applying it panics, "unexpected conf type" in the changer or
// "unknown transition" in ConfChangeV2.EnterJoint. An id naming a local
// storage thread would have raft address this member's own threads as a
// peer.
func wellFormedConfChange(cc *raftpb.ConfChangeV2) error {
	switch t := cc.GetTransition(); t {
	case raftpb.ConfChangeTransitionAuto, raftpb.ConfChangeTransitionJointImplicit, raftpb.ConfChangeTransitionJointExplicit:
	default:
		return fmt.Errorf("unknown conf change transition %d", t)
	}
	for _, c := range cc.GetChanges() {
		switch t := c.GetType(); t {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeRemoveNode, raftpb.ConfChangeUpdateNode, raftpb.ConfChangeAddLearnerNode:
		default:
			return fmt.Errorf("unknown conf change type %d", t)
		}
		if id := c.GetNodeId(); raft.IsLocalMsgTarget(id) {
			return fmt.Errorf("conf change names %d, a local sender", id)
		}
	}
	return nil
}

// confChangeFits applies cc to the configuration cs on a scratch tracker, as
// raft's applyConfChange would, and returns the error raft panics with there:
// "removed all voters", "config is already joint", "can't leave a non-joint
// config", and those of wellFormedConfChange. raft lets an application turn
// down a committed conf change by not applying it, so the raft actor can
// check one with this before it calls ApplyConfChange; every member turns
// down the same ones, as each applies the log to the same configuration.
func confChangeFits(cs *raftpb.ConfState, cc *raftpb.ConfChangeV2) error {
	if err := wellFormedConfChange(cc); err != nil {
		return err
	}
	trk := tracker.MakeProgressTracker(1, 0)
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: trk}, cs)
	if err != nil {
		return fmt.Errorf("configuration %v: %w", cs, err)
	}
	trk.Config, trk.Progress = cfg, prs
	chg := confchange.Changer{Tracker: trk}
	if cc.LeaveJoint() {
		_, _, err = chg.LeaveJoint()
	} else if autoLeave, ok := cc.EnterJoint(); ok {
		_, _, err = chg.EnterJoint(autoLeave, cc.GetChanges()...)
	} else {
		_, _, err = chg.Simple(cc.GetChanges()...)
	}
	if err != nil {
		return fmt.Errorf("conf change does not apply to %v: %w", cs, err)
	}
	return nil
}

// checkReadIndex holds a forwarded read request to what RawNode.ReadIndex
// builds: one entry carrying the request's context, which the leader hands
// back in its MsgReadIndexResp and the follower reads as Entries[0].
func (*guard) checkReadIndex(m *raftpb.Message) error {
	if ents := m.GetEntries(); len(ents) != 1 || ents[0] == nil {
		return fmt.Errorf("%d entries, not one", len(ents))
	}
	return nil
}

// checkVote holds a (pre-)vote request to a candidate's shape, and keeps
// pre-votes from a member that has a log but no term yet (one seeded from a
// snapshot without a HardState): raft rejects a pre-vote from a candidate
// whose log is behind with a response of its own term, 0, and send panics
// ("term should be set when sending MsgPreVoteResp"). While raft's term is
// 0 its log is the one it started with, so initLast says which pre-votes it
// would reject; one it would grant passes. A MsgVote raises raft's term
// before it answers.
func (g *guard) checkVote(m *raftpb.Message) error {
	if m.GetLogTerm() > m.GetTerm() {
		return fmt.Errorf("last log term %d above the campaign's term %d", m.GetLogTerm(), m.GetTerm())
	}
	if m.GetType() != raftpb.MsgPreVote || g.term != 0 {
		return nil
	}
	upToDate := m.GetLogTerm() > g.initLast.term ||
		m.GetLogTerm() == g.initLast.term && m.GetIndex() >= g.initLast.index
	if !upToDate {
		return errors.New("this member has no term yet to reject a pre-vote with")
	}
	return nil
}

// unsetTransferTerm repairs a forwarded leadership transfer. raft forwards
// a MsgTransferLeader it gets as a follower to its leader, and send panics
// on one that carries a term ("term should not be set when sending
// MsgTransferLeader"), while the follower that forwarded it to this member
// stamped it with its term: it panics whenever it reaches a follower that
// knows a leader in the same term. Without a term raft steps it as it would
// the local request it stands for: a leader starts the transfer to From
// (the transport vouches for From), a follower forwards it. A message whose
// term is below the guard's, so below raft's, is left alone: raft ignores
// it without forwarding it.
func (g *guard) unsetTransferTerm(m *raftpb.Message) {
	if m.GetTerm() >= g.term {
		m.Term = nil
	}
}

// leaderConfState is guard.conf for a member whose raft is rn: its
// configuration while it leads, nil otherwise.
func leaderConfState(rn *raft.RawNode) *raftpb.ConfState {
	if rn.BasicStatus().RaftState != raft.StateLeader {
		return nil
	}
	return currentConfState(rn)
}

// currentConfState is rn's current configuration.
func currentConfState(rn *raft.RawNode) *raftpb.ConfState {
	return (&tracker.ProgressTracker{Config: rn.Status().Config}).ConfState()
}
