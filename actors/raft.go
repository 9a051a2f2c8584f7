package actors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"go.uber.org/zap"

	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/transport"
)

// RaftConfig configures the raft actor.
type RaftConfig struct {
	ID uint64
	// Storage is filled by replay and written by the wal and snapshotter
	// actors; a persistence.SnapStorage reads snapshot data from disk.
	Storage raft.Storage
	Applied uint64 // index the state machine starts at (its snapshot's)
	// Bootstrap lists the members of a brand-new cluster, with their peer
	// URLs as Context. Nil on a restart and for a member that joins.
	Bootstrap []raft.Peer
	// Members are the peer URLs known at start (from --cluster and the
	// snapshot), this member's own included.
	Members map[uint64]string
	// RemovedIDs are the ids the state machine knows were removed. The
	// transport refuses them, which tells a removed member that comes
	// back to stop.
	RemovedIDs []uint64
	WAL, KV    *actor.PID
	Transport  transport.Transport
	// ValidEntry checks the data of a normal entry a peer proposes (a
	// forwarded MsgProp) before this member, as leader, appends it: an
	// entry the state machine cannot decode would stop every member that
	// applies it. Nil accepts any.
	ValidEntry func([]byte) error

	TickInterval  time.Duration // wall time of one raft tick
	ElectionTick  int           // ticks without a leader before a campaign
	HeartbeatTick int           // ticks between leader heartbeats
	// ManualTick leaves raft's clock to the caller: no timer runs, and
	// raft ticks once per messages.Tick. For tests that must give the same
	// output on every run; a member would never elect a leader with it.
	ManualTick bool

	Logger  *zap.Logger
	Metrics *metrics.Node // nil makes an unregistered one
	// Fatal stops the member, when a raft actor rebuilt after a panic
	// cannot make its RawNode (raft_rebuild.go).
	Fatal func(messages.Fatal)
	// Removed is called once, when this member's removal is applied or a
	// peer says it was removed. The member must then stop.
	Removed func(reason error)
}

// Limits on what raft hands out at once. They bound the memory held by one
// Ready and one message, not throughput: batching comes from the mailbox.
const (
	// maxSizePerMsg caps a MsgApp's entries at 1 MiB, as etcd does, so one
	// message to a lagging follower stays well below the transport's limits.
	maxSizePerMsg = 1 << 20
	// maxInflightMsgs lets 256 MsgApps be unacknowledged per follower (etcd's
	// value): deep enough to keep a pipeline full at LAN round trips.
	maxInflightMsgs = 256
	// maxInflightBytes bounds the same window in bytes: with large values,
	// 256 full MsgApps would be 256 MiB per follower queued in memory.
	// 32 MiB still keeps a LAN link busy for a round trip at 10 GB/s.
	maxInflightBytes = 32 << 20
	// maxUncommittedSize makes a leader refuse proposals once 64 MiB of its
	// log is uncommitted, instead of growing without bound when followers
	// stall.
	maxUncommittedSize = 64 << 20
	// maxCommittedSizePerReady bounds the entries in flight to the kv actor.
	maxCommittedSizePerReady = 64 << 20
	// readBatchTimeout drops the record of a read-index round whose answer
	// never came (a lost message); its clients get 504 from their own timeout.
	readBatchTimeout = 30 * time.Second
)

// Raft is the raft core actor. See the package doc.
type Raft struct {
	cfg     RaftConfig
	m       *metrics.Node
	rn      *raft.RawNode
	members map[uint64]string

	flushing bool // a flush marker is in the mailbox

	readBatch []uint64              // ReadIndex requests not yet asked of raft
	readSeq   uint64                // tags each read-index round
	inflight  map[uint64]*readRound // rounds asked of raft, by tag
	lead      uint64                // leader as of the last Ready
	removed   bool

	// leadRemoved is the leader while its removal is applied here and no
	// other is known: nothing can be forwarded to it (hold.go).
	leadRemoved uint64
	// pendingConf is, on a leader, the highest index that may hold a conf
	// change not yet applied; leaderStart says the first append of the
	// leadership of term leadTerm, which sets it, is still to come (hold.go).
	pendingConf uint64
	leaderStart bool
	leadTerm    uint64

	guard     *guard           // turns away peer messages raft would panic on
	held      []heldProposal   // proposals raft could not place yet (hold.go)
	heldBytes int              // their data
	transfers []transferWaiter // TransferLeadership requests not yet answered
	drains    []drainWaiter    // DrainForwarded requests not yet answered
	// lastForwarded is when a peer last forwarded a proposal or a read.
	lastForwarded time.Time

	ticker *time.Timer

	// After a panic (raft_rebuild.go): left is what this actor hands its
	// successor, handoff what it was handed (nil once it has a RawNode),
	// waiting what came before it had one.
	left, handoff *raftHandoff
	waiting       []keptMsg
}

type readRound struct {
	ids   []uint64
	asked time.Time
}

// flush is the marker the raft actor sends itself: when it comes out of the
// mailbox, everything queued before it has been handled.
type flush struct{}

// tick drives raft's logical clock.
type tick struct{}

// NewRaft builds the RawNode (bootstrapping a new cluster if asked) so that
// configuration errors surface before any actor runs.
func NewRaft(cfg RaftConfig) (*Raft, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	rn, g, err := newRawNode(cfg, cfg.Applied)
	if err != nil {
		return nil, err
	}
	if len(cfg.Bootstrap) > 0 {
		if err := rn.Bootstrap(cfg.Bootstrap); err != nil {
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	return &Raft{
		cfg:      cfg,
		m:        cfg.Metrics,
		rn:       rn,
		members:  maps.Clone(cfg.Members),
		inflight: make(map[uint64]*readRound),
		guard:    g,
	}, nil
}

// newRawNode makes the RawNode, starting at applied, and the guard in front
// of it.
func newRawNode(cfg RaftConfig, applied uint64) (*raft.RawNode, *guard, error) {
	rc := rawNodeConfig(cfg.ID, cfg.Storage, cfg.ElectionTick, cfg.HeartbeatTick, cfg.Logger.Named("raft"))
	rc.Applied = applied
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("new raft node: %w", err)
	}
	g, err := newGuard(cfg.ID, cfg.Storage, cfg.ValidEntry)
	if err != nil {
		return nil, nil, err
	}
	// As leader, a peer's proposed conf change must fit the configuration
	// it will be applied to: raft takes one only once every earlier one
	// is applied, so the leader's current one is that configuration.
	g.conf = func() *raftpb.ConfState { return leaderConfState(rn) }
	return rn, g, nil
}

// rawNodeConfig is the RawNode's configuration, for the actor and for tests
// that drive RawNodes by hand as the actor would.
func rawNodeConfig(id uint64, s raft.Storage, electionTick, heartbeatTick int, lg *zap.Logger) *raft.Config {
	return &raft.Config{
		ID:                        id,
		ElectionTick:              electionTick,
		HeartbeatTick:             heartbeatTick,
		Storage:                   s,
		AsyncStorageWrites:        true,
		MaxSizePerMsg:             maxSizePerMsg,
		MaxInflightMsgs:           maxInflightMsgs,
		MaxInflightBytes:          maxInflightBytes,
		MaxUncommittedEntriesSize: maxUncommittedSize,
		MaxCommittedSizePerReady:  maxCommittedSizePerReady,
		// CheckQuorum makes a leader cut off from a majority step down, so
		// its clients get errors instead of waiting on it; PreVote keeps a
		// member returning from a partition from disrupting the leader.
		CheckQuorum:       true,
		PreVote:           true,
		ReadOnlyOption:    raft.ReadOnlySafe,
		StepDownOnRemoval: true,
		Logger:            raftLogger{lg.Sugar()},
	}
}

// Receive implements actor.Actor.
func (r *Raft) Receive(ctx actor.Context) {
	if r.handoff != nil {
		r.awaitApplied(ctx) // rebuilt after a panic, without a RawNode yet
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Restarting:
		r.handOver(ctx)
		return
	case *actor.Started:
		for id, u := range r.members {
			r.cfg.Transport.AddPeer(id, u)
		}
		for _, id := range r.cfg.RemovedIDs {
			r.cfg.Transport.RemovePeer(id)
		}
		r.m.Health.CommittedIndex.Set(float64(r.rn.BasicStatus().GetCommit()))
		r.armTick(ctx)
		r.campaignIfAlone()
	case *actor.Stopping:
		if r.ticker != nil {
			r.ticker.Stop()
		}
		return
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return // lifecycle notices the actor has no use for
	case flush:
		r.flushing = false
		r.ready(ctx)
		return
	case tick:
		r.tick(ctx)
		r.armTick(ctx)
	case messages.Tick:
		r.tick(ctx) // the timer, if any, stays as it was

	case *raftpb.Message:
		r.step(ctx, m)
	case messages.Propose:
		r.releaseHeld(ctx) // what was held goes first
		r.place(ctx, heldProposal{local: &m, bytes: len(m.Data)})
	case messages.ProposeConfChange:
		if err := r.checkConfChange(m.Change); err != nil {
			ctx.Send(r.cfg.KV, messages.ProposalFailed{ID: m.ID, Err: err})
			return
		}
		r.releaseHeld(ctx)
		r.place(ctx, heldProposal{cc: &m, bytes: len(m.Change.GetContext())})
	case messages.TransferLeadership:
		r.transfer(ctx, m)
	case messages.DrainForwarded:
		r.drains = append(r.drains, drainWaiter{reply: ctx.Sender(), quiet: m.Quiet})
		r.settleDrains(ctx, time.Now())
	case messages.ReadIndex:
		r.readBatch = append(r.readBatch, m.ID)
	case messages.ApplyConfChange:
		cs, err := r.applyConfChange(m)
		ctx.Respond(messages.ConfChangeApplied{ConfState: cs, Err: err})
	case messages.MembersRestored:
		r.restoreMembers(m.Members, m.Removed)
	case messages.ReportUnreachable:
		r.rn.ReportUnreachable(m.ID)
	case messages.ReportSnapshot:
		r.rn.ReportSnapshot(m.ID, m.Status)
		r.releaseSnapshot()
	case messages.SnapshotLoaded:
		// A snapshot's data, read back for a follower at the storage's
		// request: raft takes it when it next asks the storage, at the
		// follower's next heartbeat, so there is nothing to flush.
		if s, ok := r.cfg.Storage.(interface{ Loaded(messages.SnapshotLoaded) }); ok {
			s.Loaded(m)
		}
		return
	case messages.MemberRemoved:
		r.remove(fmt.Errorf("%w (said by member %d)", messages.ErrRemoved, m.By))
	case messages.StatusRequest:
		ctx.Respond(r.status())
		return
	default:
		r.cfg.Logger.Warn("raft actor got a message it does not handle", zap.String("type", typeName(m)))
		return
	}
	if !r.flushing {
		r.flushing = true
		ctx.Send(ctx.Self(), flush{})
	}
}

// campaignIfAlone starts an election at once when this member is the only
// voter: no one else can win, and waiting out an election timeout would only
// delay the first request of a one-member cluster by a second or two.
func (r *Raft) campaignIfAlone() {
	voters := r.rn.Status().Config.Voters.IDs()
	if _, ok := voters[r.cfg.ID]; ok && len(voters) == 1 {
		if err := r.rn.Campaign(); err != nil {
			r.cfg.Logger.Warn("could not start an election", zap.Error(err))
		}
	}
}

// step hands raft a message. A peer's message passes the guard first; a
// peer's proposal that raft cannot place now is held (hold.go).
func (r *Raft) step(ctx actor.Context, m *raftpb.Message) {
	if from := m.GetFrom(); from != r.cfg.ID && !raft.IsLocalMsgTarget(from) {
		if err := r.guard.admit(m); err != nil {
			r.m.RefusedMessages.Inc()
			r.cfg.Logger.Warn("turned away a message from a peer", zap.Uint64("from", from),
				zap.Stringer("type", m.GetType()), zap.Uint64("term", m.GetTerm()), zap.Error(err))
			return
		}
		if t := m.GetType(); t == raftpb.MsgProp || t == raftpb.MsgReadIndex {
			r.lastForwarded = time.Now()
		}
		if m.GetType() == raftpb.MsgProp && !r.canPlace(isConfChange(m)) {
			r.hold(ctx, heldProposal{peer: m, bytes: proposalBytes(m)})
			return
		}
	}
	err := r.rn.Step(m)
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrStepPeerNotFound):
		// A response from a member that is no longer in the configuration.
		r.cfg.Logger.Debug("dropped a message from an unknown member", zap.Uint64("from", m.GetFrom()), zap.Stringer("type", m.GetType()))
	default:
		r.cfg.Logger.Warn("raft refused a message", zap.Uint64("from", m.GetFrom()), zap.Stringer("type", m.GetType()), zap.Error(err))
	}
}

// proposalError tells a client whether raft refused a proposal for lack of a
// leader (retry after an election) or for another reason.
func (r *Raft) proposalError(err error) error {
	if errors.Is(err, raft.ErrProposalDropped) {
		if r.rn.BasicStatus().Lead == raft.None {
			return messages.ErrNoLeader
		}
		return messages.ErrProposalDropped
	}
	return fmt.Errorf("%w: %w", messages.ErrProposalDropped, err)
}

// tick moves raft's clock, and with it the deadlines the actor keeps.
func (r *Raft) tick(ctx actor.Context) {
	r.rn.Tick()
	now := time.Now()
	r.expireReads(now)
	r.expireHeld(ctx, now)
	r.settleTransfers(ctx, now)
	r.settleDrains(ctx, now)
}

func (r *Raft) armTick(ctx actor.Context) {
	if r.cfg.ManualTick {
		return
	}
	// One timer re-armed per tick handled: ticks never pile up behind a busy
	// mailbox the way a fixed-rate scheduler's do.
	self, root := ctx.Self(), ctx.ActorSystem().Root
	r.ticker = time.AfterFunc(r.cfg.TickInterval, func() { root.Send(self, tick{}) })
}

// ready asks raft for read indexes batched since the last flush, then routes
// every Ready fragment.
func (r *Raft) ready(ctx actor.Context) {
	r.releaseHeld(ctx)
	r.askReadIndex(ctx)
	for r.rn.HasReady() {
		// A failpoint (scripts/build-failpoints.sh); `return` leaves the
		// Ready to the next round.
		// gofail: var raftBeforeReady struct{}
		// return

		rd := r.rn.Ready()
		r.m.ReadyEntries.Observe(float64(len(rd.Entries)))
		r.m.ReadyMessages.Observe(float64(len(rd.Messages)))
		r.m.CommittedEntries.Add(float64(len(rd.CommittedEntries)))
		if rd.HardState != nil { // nil when unchanged
			r.m.Health.CommittedIndex.Set(float64(rd.HardState.GetCommit()))
		}
		newLead := raft.None // a leader named by this Ready, to tell the kv actor
		if rd.SoftState != nil && rd.SoftState.Lead != r.lead {
			r.leaderChanged(ctx, rd.SoftState.Lead)
			newLead = rd.SoftState.Lead
		}
		for _, rs := range rd.ReadStates {
			r.readDone(ctx, rs)
		}
		if st := r.rn.BasicStatus(); st.Lead == r.cfg.ID && st.GetTerm() != r.leadTerm {
			// Leading a new term (maybe with no change of leader seen):
			// its first append sets pendingConf.
			r.leadTerm, r.leaderStart = st.GetTerm(), true
		}
		r.route(ctx, rd.Messages)
		if newLead != raft.None {
			// After the Ready's committed entries: see the message.
			ctx.Send(r.cfg.KV, messages.LeaderChanged{Leader: newLead, Term: r.rn.BasicStatus().GetTerm()})
		}
		if rd.SoftState != nil {
			// A leader may be known now: what was held can go, and
			// transfers may be settled.
			r.releaseHeld(ctx)
			r.settleTransfers(ctx, time.Now())
		}
	}
}

// route sends each message of a Ready where it belongs: storage writes to the
// wal actor, committed entries to the kv actor, the rest to the network.
func (r *Raft) route(ctx actor.Context, msgs []*raftpb.Message) {
	var out []*raftpb.Message
	for _, m := range msgs {
		switch m.GetTo() {
		case raft.LocalAppendThread:
			r.guard.appended(m)
			r.noteAppended(m)
			ctx.Send(r.cfg.WAL, m)
		case raft.LocalApplyThread:
			ctx.Send(r.cfg.KV, m)
		case r.cfg.ID:
			ctx.Send(ctx.Self(), m)
		default:
			r.guard.sent(m)
			out = append(out, m)
		}
	}
	if len(out) > 0 {
		r.cfg.Transport.Send(out)
	}
}

func (r *Raft) leaderChanged(ctx actor.Context, lead uint64) {
	r.cfg.Logger.Info("leader changed", zap.Uint64("from", r.lead), zap.Uint64("to", lead), zap.Uint64("term", r.rn.BasicStatus().GetTerm()))
	r.lead = lead
	r.leadRemoved = raft.None
	r.m.LeaderChanges.Inc()
	r.m.Term.Set(float64(r.rn.BasicStatus().GetTerm()))
	if lead == r.cfg.ID {
		r.m.IsLeader.Set(1)
	} else {
		r.m.IsLeader.Set(0)
	}
	if lead != raft.None {
		r.m.Health.HasLeader.Set(1)
	} else {
		r.m.Health.HasLeader.Set(0)
	}
	// raft forgets pending read-index rounds when leadership moves; fail them
	// now so their clients can retry at once.
	for tag, rr := range r.inflight {
		ctx.Send(r.cfg.KV, messages.ReadIndexFailed{IDs: rr.ids, Err: messages.ErrProposalDropped})
		delete(r.inflight, tag)
	}
}

func (r *Raft) askReadIndex(ctx actor.Context) {
	if len(r.readBatch) == 0 {
		return
	}
	ids := r.readBatch
	r.readBatch = nil
	if r.rn.BasicStatus().Lead == raft.None {
		ctx.Send(r.cfg.KV, messages.ReadIndexFailed{IDs: ids, Err: messages.ErrNoLeader})
		return
	}
	// Every request in the batch arrived before this round began, so the
	// round's read index is a valid read point for all of them.
	r.readSeq++
	r.m.ReadIndexRounds.Inc()
	r.inflight[r.readSeq] = &readRound{ids: ids, asked: time.Now()}
	r.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, r.readSeq))
}

func (r *Raft) readDone(ctx actor.Context, rs raft.ReadState) {
	if len(rs.RequestCtx) != 8 {
		return
	}
	tag := binary.BigEndian.Uint64(rs.RequestCtx)
	rr, ok := r.inflight[tag]
	if !ok {
		return
	}
	delete(r.inflight, tag)
	ctx.Send(r.cfg.KV, messages.ReadIndexReady{IDs: rr.ids, Index: rs.Index})
}

func (r *Raft) expireReads(now time.Time) {
	for tag, rr := range r.inflight {
		if now.Sub(rr.asked) > readBatchTimeout {
			delete(r.inflight, tag)
		}
	}
}

// duplicateAdd refuses a member add this node's API proposed (it carries a
// request id) for a member the configuration already has in that role: a
// second add of one id, proposed through a member that had not yet
// applied the first. The API refuses it before proposing where the first
// is applied; here the log decides, alike on every member, so the second
// is answered 409 wherever it went, as etcd decides at apply. raft would
// take it as a no-op (or a demotion, for a learner add of a voter).
// Entries without a request id (raft's bootstrap, raftexample's members)
// are left to raft.
func duplicateAdd(cs *raftpb.ConfState, cci raftpb.ConfChangeI) error {
	cc, ok := cci.AsV1()
	if !ok || cc.GetId() == 0 {
		return nil
	}
	id := cc.GetNodeId()
	voter, learner := slices.Contains(cs.GetVoters(), id), slices.Contains(cs.GetLearners(), id)
	switch {
	case cc.GetType() == raftpb.ConfChangeAddNode && voter,
		cc.GetType() == raftpb.ConfChangeAddLearnerNode && (voter || learner):
		return fmt.Errorf("%w: %d", messages.ErrMemberExists, id)
	}
	return nil
}

// applyConfChange applies a committed conf change, or declines one that
// does not fit the configuration (raft would panic on it; the guard keeps
// them out of proposals this member leads, but a leader may still commit
// one). raft lets the application decline by not applying it, and every
// member declines alike, since all apply the same log to the same
// configuration.
func (r *Raft) applyConfChange(m messages.ApplyConfChange) (*raftpb.ConfState, error) {
	if err := duplicateAdd(currentConfState(r.rn), m.Change); err != nil {
		// The client's answer (409) says it; nothing for an operator.
		r.cfg.Logger.Debug("declined a committed conf change", zap.Uint64("index", m.Index), zap.Error(err))
		return currentConfState(r.rn), fmt.Errorf("%w: %w", messages.ErrConfChangeDeclined, err)
	}
	if err := confChangeFits(currentConfState(r.rn), m.Change.AsV2()); err != nil {
		r.cfg.Logger.Warn("declined a committed conf change", zap.Uint64("index", m.Index), zap.Error(err))
		return currentConfState(r.rn), fmt.Errorf("%w: %w", messages.ErrConfChangeDeclined, err)
	}
	cs := r.rn.ApplyConfChange(m.Change)
	if cc, ok := m.Change.AsV1(); ok {
		id := cc.GetNodeId()
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
			// raftexample bootstraps with conf changes that carry no
			// URL: the one from --cluster stays.
			u := membership.KeepURL(m.PeerURL, r.members[id])
			r.members[id] = u
			if id != r.cfg.ID {
				r.cfg.Transport.AddPeer(id, u)
			}
		case raftpb.ConfChangeRemoveNode:
			delete(r.members, id)
			if id == r.cfg.ID {
				r.remove(messages.ErrRemoved)
			} else {
				r.cfg.Transport.RemovePeer(id)
			}
			if id == r.lead {
				r.leadRemoved = id
			}
		}
	}
	r.cfg.Logger.Info("applied conf change", zap.Uint64("index", m.Index), confStateField(cs))
	if r.rn.BasicStatus().Lead == raft.None {
		// A new one-member cluster cannot campaign before its bootstrap
		// conf change is applied: this is the first moment it can.
		r.campaignIfAlone()
	}
	return cs, nil
}

func (r *Raft) restoreMembers(members map[uint64]string, removed []uint64) {
	for id := range r.members {
		if _, ok := members[id]; !ok && id != r.cfg.ID {
			r.cfg.Transport.RemovePeer(id)
			delete(r.members, id)
		}
	}
	for id, u := range members {
		// A snapshot that names the member without its URL (the
		// raftexample format): keep the URL we know.
		u = membership.KeepURL(u, r.members[id])
		r.members[id] = u
		if id != r.cfg.ID {
			r.cfg.Transport.AddPeer(id, u)
		}
	}
	// Removed ids this member still knew left r.members above; this also
	// covers those it never knew, so the transport refuses them too.
	for _, id := range removed {
		if _, ok := members[id]; !ok && id != r.cfg.ID {
			r.cfg.Transport.RemovePeer(id)
		}
	}
}

func (r *Raft) remove(reason error) {
	if r.removed {
		return
	}
	r.removed = true
	r.cfg.Logger.Warn("stopping: removed from the cluster", zap.Error(reason))
	if r.cfg.Removed != nil {
		r.cfg.Removed(reason)
	}
}

func (r *Raft) status() messages.Status {
	st := r.rn.Status()
	learners := slices.Sorted(maps.Keys(st.Config.Learners))
	if learners == nil {
		learners = []uint64{}
	}
	return messages.Status{
		ID:        st.ID,
		Leader:    st.Lead,
		Term:      st.GetTerm(),
		RaftState: st.RaftState.String(),
		Commit:    st.GetCommit(),
		Applied:   st.Applied,
		Members:   maps.Clone(r.members),
		Learners:  learners,
	}
}

// releaseSnapshot lets the storage drop a snapshot's data read back for
// followers once none of them is waiting for a snapshot.
func (r *Raft) releaseSnapshot() {
	rel, ok := r.cfg.Storage.(interface{ Release() })
	if !ok {
		return
	}
	for _, pr := range r.rn.Status().Progress {
		if pr.State == tracker.StateSnapshot {
			return
		}
	}
	rel.Release()
}
