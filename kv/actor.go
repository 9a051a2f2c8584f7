package kv

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/reqid"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// Config wires a kv actor to the rest of its node.
type Config struct {
	ID            uint64                       // this member's raft id
	Raft          *actor.PID                   // the raft actor
	Snapshotter   *actor.PID                   // the snapshotter actor
	Deliver       func(msgs []*raftpb.Message) // routes apply responses back to raft
	SnapshotCount uint64                       // applied entries between snapshots; 0 disables them
	// SnapshotBytes makes a snapshot (and with it compaction) fall due
	// also when the entries applied since the last one hold this many
	// bytes, so that large values cannot pile up gigabytes of log in
	// memory; zero means DefaultSnapshotBytes.
	SnapshotBytes uint64
	// InflightBytes bounds the entry data of this member's proposals in
	// raft at once (batch.go); zero means DefaultInflightBytes.
	InflightBytes int
	// RequestTimeout bounds how long a request waits for the log. The HTTP
	// handler gives up at its own timeout; this frees what it left behind.
	RequestTimeout time.Duration
	// ConfChangeTimeout bounds the wait for the raft actor to apply a conf
	// change; the state machine cannot go on consistently without it.
	ConfChangeTimeout time.Duration
	// State is the member's db, opened and brought level with its log
	// (OpenState). The actor writes it from then on; its owner closes it
	// after the actor stopped.
	State *State
	// Log is raft's storage, where a kv actor rebuilt after a panic reads
	// again the entries applied since the db's last commit (rebuild.go);
	// nil leaves a panic nothing to rebuild from.
	Log Log
	// SnapshotDB names the file where the db received with the snapshot
	// at an index was saved (ReceiveSnapshotDB), to be installed when raft
	// hands the snapshot over.
	SnapshotDB func(index uint64) string
	// Quota bounds the bytes the data may use (keys, values and a fixed
	// overhead each): a put past it is refused with apply.ErrNoSpace, on
	// every member alike. Zero means none.
	Quota   uint64
	Fatal   func(messages.Fatal)
	Logger  *zap.Logger
	Metrics *metrics.Node // nil makes an unregistered one
	// Format is how entries and snapshots are spelled; every member of the
	// cluster must use the same one. The zero value is apply.FormatNative.
	Format apply.Format
	// ClientURLs are where this member serves clients. The actor publishes
	// them to the cluster (an opAttrs entry) until the applied state holds
	// them, so that every member can list them; the raftexample format
	// cannot carry them, and lists only this member's own.
	ClientURLs []string
	// Watch is the watch hub: it gets the changes of every apply
	// (WatchEvents), each db commit (WatchCommitted) and each state
	// replaced by a snapshot (WatchReset), in that order. Nil sends none.
	Watch *actor.PID
	// HistoryEvents and HistoryBytes bound the history of changes kept
	// for watch resumes and past-revision reads; zero means
	// store.DefaultHistoryEvents and store.DefaultHistoryBytes.
	HistoryEvents, HistoryBytes uint64

	// ElectionTimeout is raft's (election ticks × tick interval): the
	// minimum lease TTL is one and a half of it, and a new leader extends
	// every lease by it (lessor.go). Zero means 1 s, the default.
	ElectionTimeout time.Duration

	// sweepEvery replaces sweepEvery for a test that must tell a sweep's
	// work from the work it expects sooner.
	sweepEvery time.Duration
	// now replaces time.Now for the lessor's deadlines, in tests.
	now func() time.Time
}

// Actor is the state machine of one member. See the package doc for the
// messages it takes and sends.
type Actor struct {
	cfg       Config
	m         *metrics.Node
	codec     apply.Codec // cfg.Format's rules
	st        *store.Store
	ap        *apply.Applier
	applied   uint64            // the store's applied index, kept here for reads
	confState *raftpb.ConfState // as of applied
	lastSnap  uint64            // index of the last snapshot taken or restored
	logBytes  uint64            // bytes of the entries applied since then
	encoder   *actor.PID        // the snapshot encoder, a child (raftexample's format)
	copier    *actor.PID        // makes compact copies of the db, a child (defrag.go)
	defrag    *defragRun        // the defragmentation in progress, if any
	encoding  bool              // the encoder holds a read transaction
	// encodingTx is that transaction, rolled back at stop if the encoder
	// stopped before it took it (a second rollback is harmless).
	encodingTx *bolt.Tx
	ids        *reqid.Gen
	// commitTimer, while set, will send a commitTick: the db's batch
	// transaction is committed at most backend.BatchInterval after its
	// first entry.
	commitTimer *time.Timer
	failed      bool // after a fatal error nothing more is applied

	writes waiters // proposals waiting to be applied
	// answers are the applied writes' answers, held until the watch hub
	// has heard of their changes (applyMsg): a client that opens a watch
	// after its answer then finds its write in the hub's revision, not
	// ahead of it.
	answers []answer

	pending       pendingBatch      // writes not yet proposed
	held          []heldWrite       // writes for the batches after pending, in order (batch.go)
	proposeQueued bool              // a flushProposals marker is in the mailbox
	inflight      map[uint64]*batch // proposals in raft, by request or batch id
	// leader and leaderTerm are the leadership the raft actor last told
	// of (messages.LeaderChanged): a proposal in flight made under
	// another is proposed again (repropose.go).
	leader, leaderTerm uint64

	reads     waiters   // linearizable reads waiting for a read index
	readReady []*waiter // reads with a read index, waiting for applied ≥ index

	publishing bool // an opAttrs of this member's client URLs is in flight

	sweep  *time.Timer
	leases lessor             // lease deadlines, while leader (lessor.go)
	root   *actor.RootContext // answers waiters while stopping

	// After a panic (rebuild.go): current is the message in hand, if it
	// carries entries or a snapshot; left is what this actor hands its
	// successor, handoff what it was handed.
	current       any
	left, handoff *handoff
}

// DefaultSnapshotBytes is the log, in bytes of entry data, after which a
// snapshot falls due whatever the count: 64 MiB is raft's bound on a
// leader's uncommitted log here, so memory holds at most a few of those.
const DefaultSnapshotBytes = 64 << 20

// sweepEvery is how often expired waiters are dropped. It only bounds memory
// held for requests whose HTTP handler already answered 504.
const sweepEvery = time.Second

type sweepTick struct{}

// NewActor returns the state machine over cfg.State.
func NewActor(cfg Config) (*Actor, error) {
	if cfg.Deliver == nil || cfg.Raft == nil || cfg.State == nil {
		return nil, errors.New("kv actor needs a raft actor, a Deliver func and its state")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.ConfChangeTimeout <= 0 {
		cfg.ConfChangeTimeout = 10 * time.Second
	}
	if cfg.sweepEvery <= 0 {
		cfg.sweepEvery = sweepEvery
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = time.Second
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.SnapshotBytes == 0 {
		cfg.SnapshotBytes = DefaultSnapshotBytes
	}
	if cfg.InflightBytes <= 0 {
		cfg.InflightBytes = DefaultInflightBytes
	}
	if cfg.HistoryEvents == 0 {
		cfg.HistoryEvents = store.DefaultHistoryEvents
	}
	if cfg.HistoryBytes == 0 {
		cfg.HistoryBytes = store.DefaultHistoryBytes
	}
	codec, err := cfg.Format.Codec()
	if err != nil {
		return nil, fmt.Errorf("kv actor: %w", err)
	}
	st := cfg.State.st
	ap, err := apply.New(apply.Config{Store: st, Format: cfg.Format, Quota: cfg.Quota, Logger: cfg.Logger, Metrics: cfg.Metrics,
		HistoryEvents: cfg.HistoryEvents, HistoryBytes: cfg.HistoryBytes})
	if err != nil {
		return nil, fmt.Errorf("kv actor: %w", err)
	}
	applied, _ := st.Applied()
	a := &Actor{
		cfg:       cfg,
		m:         cfg.Metrics,
		codec:     codec,
		st:        st,
		ap:        ap,
		applied:   applied,
		lastSnap:  applied,
		confState: st.ConfState(),
		ids:       reqid.New(cfg.ID, time.Now()),
		writes:    make(waiters),
		inflight:  make(map[uint64]*batch),
		reads:     make(waiters),
	}
	if id, ok := st.DedupHigh(cfg.ID); ok {
		a.ids.SkipPast(id) // never an id the state takes for one applied (store's dedup.go)
	}
	return a, nil
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.root = ctx.ActorSystem().Root
		a.encoder = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &snapshotEncoder{codec: a.codec, snapshotter: a.cfg.Snapshotter, m: a.m}
		}))
		// Publishing waits for a leader (messages.LeaderChanged): the raft
		// actor is spawned after this one, and nothing commits before.
		a.armSweep(ctx)
		a.armLeaseTick(ctx)
		a.m.Health.Quota.Set(float64(a.cfg.Quota))
		a.noteState()
		if a.handoff != nil {
			a.rebuild(ctx)
		}
	case *actor.Restarting:
		a.handOver()
	case commitTick:
		a.commitTimer = nil
		a.commit()
	case *actor.Stopping:
		a.stopDefrag(ctx)
		a.stop()
	case *actor.Stopped:
		// The encoder has stopped too; one that never took the read
		// transaction it was handed leaves it open, and an open read
		// transaction would keep the db from closing.
		if a.encodingTx != nil {
			_ = a.encodingTx.Rollback()
			a.encodingTx = nil
		}
		if a.defrag != nil {
			_ = a.defrag.tx.Rollback() // likewise the copier's
			a.defrag = nil
		}
	case sweepTick:
		a.expire(time.Now())
		a.proposePending(ctx)
		a.publish(ctx)
		a.armSweep(ctx)
	case leaseTickMsg:
		a.expireLeases(ctx)
		a.armLeaseTick(ctx)
	case messages.Result:
		a.published(m)

	case *raftpb.Message:
		a.current = m
		a.applyMsg(ctx, m)
		a.current = nil
	case messages.RestoreSnapshot:
		a.current = m
		a.restore(ctx, m.Snapshot)
		a.current = nil
	case snapshotEncoded:
		a.snapshotEncoded(ctx, m)

	case messages.Put:
		c, err := apply.ProposePut(m.Key, m.Value, m.Lease)
		a.propose(ctx, c, []string{m.Key}, false, err)
	case messages.Delete:
		c, err := apply.ProposeDelete(m.Key)
		a.propose(ctx, c, []string{m.Key}, false, err)
	case messages.Txn:
		// A transaction that may write is an entry of its own: the keys
		// two transactions create in one entry would share a
		// create_revision, and etcd's locks and elections (clientv3's
		// concurrency, whose owner is the lowest create_revision under a
		// prefix) would then see two owners, as
		// interop/etcd/TestMutexUnderLeaderKill did. Plain puts still
		// batch: keys written by one entry share its revision, as the
		// keys of one etcd transaction do.
		c, keys, all, err := apply.ProposeTxn(m)
		a.propose(ctx, c, nil, all || len(keys) > 0, err)
	case messages.Compact:
		// It writes no key, so it may share an entry with any write.
		c, err := apply.ProposeCompact(m.Revision, a.st.Compacted())
		a.propose(ctx, c, nil, false, err)
	case messages.LeaseGrant:
		a.leaseGrant(ctx, m)
	case messages.LeaseRevoke:
		c, err := apply.ProposeLeaseRevoke(m.ID)
		a.propose(ctx, c, nil, true, err) // its keys may be any
	case messages.LeaseKeepAlive:
		a.leaseKeepAlive(ctx, m)
	case messages.LeaseQuery:
		if !a.refuse(ctx) && !a.notLeader(ctx) {
			ctx.Respond(a.leaseInfo(m))
		}
	case messages.LeaseList:
		a.read(ctx, m, false)
	case messages.Get:
		a.read(ctx, m, m.Serializable)
	case messages.Range:
		a.read(ctx, m, m.Serializable)
	case messages.AddMember:
		a.addMember(ctx, m)
	case messages.PromoteMember:
		a.promoteMember(ctx, m)
	case messages.RemoveMember:
		a.removeMember(ctx, m)
	case messages.UpdateMember:
		a.updateMember(ctx, m)
	case messages.DigestRequest:
		sum, err := a.st.Digest()
		if err != nil {
			a.fatal(fmt.Errorf("read the state for a digest: %w", err))
			ctx.Respond(err)
			return
		}
		ctx.Respond(messages.Digest{Index: a.applied, Keys: a.st.Keys(), Sum: sum})
	case messages.MembersRequest:
		ctx.Respond(messages.Result{Members: a.memberList(), Index: a.applied})
	case messages.StoreStatusRequest:
		ctx.Respond(a.storeStatus())
	case messages.CommitRequest:
		ctx.Respond(a.commitNow())
	case messages.Defragment:
		a.defragment(ctx)
	case dbCopied:
		a.dbCopied(ctx, m)

	case flushProposals:
		a.proposeQueued = false
		a.proposePending(ctx)
	case messages.ProposalFailed:
		a.proposalFailed(ctx, m)
	case messages.AppliedStateRequest:
		// A raft actor rebuilt after a panic starts here (package actors,
		// raft_rebuild.go).
		ctx.Respond(messages.AppliedState{Index: a.applied, ConfState: proto.Clone(a.confState).(*raftpb.ConfState)})
	case messages.LeaderChanged:
		a.leaderChanged(ctx, m)
		a.leadershipForLeases(m.Leader, m.Term)
		a.publish(ctx)
	case messages.ReadIndexReady:
		for _, id := range m.IDs {
			if w, ok := a.reads.take(id); ok {
				w.index = m.Index
				a.readReady = append(a.readReady, w)
			}
		}
		a.serveReads(ctx)
	case messages.ReadIndexFailed:
		for _, id := range m.IDs {
			if w, ok := a.reads.take(id); ok {
				ctx.Send(w.reply, messages.Result{Err: m.Err})
			}
		}
	}
}

func (a *Actor) armSweep(ctx actor.Context) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.sweep = time.AfterFunc(a.cfg.sweepEvery, func() { root.Send(self, sweepTick{}) })
}

func (a *Actor) stop() {
	if a.sweep != nil {
		a.sweep.Stop()
	}
	if a.commitTimer != nil {
		a.commitTimer.Stop()
	}
	if a.leases.timer != nil {
		a.leases.timer.Stop()
	}
	a.failAll(messages.ErrStopped)
	// What was applied reaches the db now rather than by replay at the
	// next start; the owner of the state closes it.
	a.commit()
}

// failAll answers every waiting request with err.
func (a *Actor) failAll(err error) {
	res := messages.Result{Err: err}
	for _, ws := range []waiters{a.writes, a.reads} {
		ws.drain(func(w *waiter) { a.send(w.reply, res) })
	}
	for _, w := range a.readReady {
		a.send(w.reply, res)
	}
	a.readReady = nil
}

// send answers a waiter from outside Receive's context (stop runs while the
// actor is stopping, when its context may no longer send).
func (a *Actor) send(to *actor.PID, res messages.Result) {
	if to != nil && a.root != nil {
		a.root.Send(to, res)
	}
}

func (a *Actor) expire(now time.Time) {
	timeout := func(w *waiter) { a.send(w.reply, messages.Result{Err: messages.ErrTimeout}) }
	a.writes.expire(now, func(w *waiter) {
		a.m.ProposalsFailed.Inc()
		timeout(w)
	})
	a.reads.expire(now, timeout)
	for id, b := range a.inflight {
		// A proposal raft lost without a word (a follower's forward
		// dropped by a leader that stepped down); its writes have timed
		// out, and it no longer holds a place in flight.
		if now.After(b.deadline) {
			delete(a.inflight, id)
		}
	}
	kept := a.readReady[:0]
	for _, w := range a.readReady {
		if now.After(w.deadline) {
			timeout(w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(a.readReady[len(kept):])
	a.readReady = kept
}

func (a *Actor) newWaiter(ctx actor.Context) *waiter {
	return &waiter{reply: ctx.Sender(), deadline: time.Now().Add(a.cfg.RequestTimeout)}
}

// propose queues a write that apply's door (ProposePut and the others)
// passed, or answers the refusal it got (checked): the API checked it too,
// and this is the last door before raft. keys are those it may write (all:
// any key), so that no two writes of one key share an entry, hence a
// revision.
func (a *Actor) propose(ctx actor.Context, c apply.Command, keys []string, all bool, checked error) {
	if a.refuse(ctx) {
		return
	}
	if checked != nil {
		ctx.Respond(messages.Result{Err: checked})
		return
	}
	c.ReqID = a.ids.ID()
	data, err := a.codec.Encode(c)
	if err != nil {
		ctx.Respond(messages.Result{Err: err})
		return
	}
	a.writes[c.ReqID] = a.newWaiter(ctx)
	a.m.Proposals.Inc()
	a.queuePropose(ctx, c.ReqID, data, keys, all)
}

// refuse answers requests that cannot be taken: no one to answer, or a state
// machine that stopped applying.
func (a *Actor) refuse(ctx actor.Context) bool {
	if ctx.Sender() == nil {
		// A bug in the caller: a request nobody can be answered for.
		a.cfg.Logger.Warn("dropped a request that came without a sender", zap.String("request", fmt.Sprintf("%T", ctx.Message())))
		return true
	}
	if a.failed {
		ctx.Respond(messages.Result{Err: messages.ErrStopped})
		return true
	}
	return false
}

// read answers a Get or a Range: at once from the applied state if
// serializable, else once a read index is known and applied.
func (a *Actor) read(ctx actor.Context, req any, serializable bool) {
	if a.refuse(ctx) {
		return
	}
	if serializable {
		ctx.Respond(a.answerRead(ctx, req))
		return
	}
	id := a.ids.ID()
	w := a.newWaiter(ctx)
	w.req = req
	a.reads[id] = w
	ctx.Send(a.cfg.Raft, messages.ReadIndex{ID: id})
}

// answerRead reads from the applied state. Values are copies: the store's
// transaction reuses its memory once it commits.
func (a *Actor) answerRead(ctx actor.Context, req any) messages.Result {
	res := messages.Result{Index: a.applied, Revision: a.st.Revision()}
	switch r := req.(type) {
	case messages.Get:
		kv, ok, err := a.st.Get(r.Key)
		if err != nil {
			a.fatal(fmt.Errorf("read a key of %d bytes: %w", len(r.Key), err))
			return messages.Result{Err: err}
		}
		res.Found = ok
		if ok {
			res.Value, res.KV = kv.Value, kv
		}
	case messages.Range:
		rr, err := a.st.Range(r)
		if errors.Is(err, store.ErrBadDB) {
			a.fatal(fmt.Errorf("read a range: %w", err))
		}
		if err != nil {
			return messages.Result{Err: err}
		}
		if r.Revision != 0 {
			res.Revision = r.Revision
		}
		res.Results = []messages.OpResult{rr}
	case messages.LeaseList:
		return a.leaseList()
	case messages.LeaseKeepAlive:
		return a.renew(ctx, r)
	default:
		res.Err = fmt.Errorf("kv actor cannot read %T", req)
	}
	return res
}

// serveReads answers the reads whose read index has been applied.
func (a *Actor) serveReads(ctx actor.Context) {
	kept := a.readReady[:0]
	for _, w := range a.readReady {
		if w.index > a.applied {
			kept = append(kept, w)
			continue
		}
		ctx.Send(w.reply, a.answerRead(ctx, w.req))
	}
	clear(a.readReady[len(kept):])
	a.readReady = kept
}

func (a *Actor) addMember(ctx actor.Context, m messages.AddMember) {
	if a.refuse(ctx) {
		return
	}
	if err := a.st.CheckAdd(m.ID, m.PeerURL, reqid.Shares); err != nil {
		ctx.Respond(messages.Result{Err: err})
		return
	}
	typ := raftpb.ConfChangeAddNode
	if m.Learner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	a.proposeConfChange(ctx, &raftpb.ConfChange{
		Type:    typ.Enum(),
		NodeId:  new(m.ID),
		Context: []byte(m.PeerURL),
	})
}

// promoteMember proposes making a learner a voter; the raft actor checks
// that it has caught up (only the leader can) before it is proposed.
func (a *Actor) promoteMember(ctx actor.Context, m messages.PromoteMember) {
	if a.refuse(ctx) {
		return
	}
	if err := a.st.CheckPromote(a.confState.GetLearners(), m.ID); err != nil {
		ctx.Respond(messages.Result{Err: err})
		return
	}
	u, _ := a.st.Member(m.ID)
	a.proposeConfChange(ctx, &raftpb.ConfChange{
		Type:    raftpb.ConfChangeAddNode.Enum(),
		NodeId:  new(m.ID),
		Context: []byte(u),
	})
}

// memberList is the member list with learners and client URLs.
func (a *Actor) memberList() []messages.Member {
	return a.st.MemberList(a.confState, a.cfg.ID, a.cfg.ClientURLs)
}

// publish proposes this member's client URLs while the applied state does
// not hold them, one proposal at a time: when a leader is known, when this
// member's own addition is applied, and at each sweep, which retries a
// failed one.
func (a *Actor) publish(ctx actor.Context) {
	urls := a.cfg.ClientURLs
	if a.publishing || a.failed || len(urls) == 0 || slices.Equal(a.st.Clients(a.cfg.ID), urls) {
		return
	}
	if _, member := a.st.Member(a.cfg.ID); !member {
		return // a joining member learns it was added from the log first
	}
	if a.leader == 0 {
		// Nothing commits before a leader is known, and the raft actor
		// would hold the proposal only an election timeout: the first
		// LeaderChanged publishes.
		return
	}
	c := apply.ProposeAttrs(a.cfg.ID, urls)
	c.ReqID = a.ids.ID()
	data, err := a.codec.Encode(c)
	if err != nil {
		return // the format cannot carry them (raftexample)
	}
	a.publishing = true
	a.m.Proposals.Inc()
	a.writes[c.ReqID] = &waiter{reply: ctx.Self(), deadline: time.Now().Add(a.cfg.RequestTimeout)}
	a.queuePropose(ctx, c.ReqID, data, nil, false)
}

// published is the answer to publish's proposal, which the actor waits for
// like any client: applied, failed or timed out.
func (a *Actor) published(res messages.Result) {
	a.publishing = false
	if res.Err != nil {
		a.cfg.Logger.Debug("client URLs not published yet; will retry", zap.Error(res.Err))
	}
}

// ValidEntry checks the data of a normal entry as this member's format
// would decode it when applying: the raft actor refuses a peer's proposal
// that would stop every member applying it.
func (a *Actor) ValidEntry(data []byte) error { return a.ap.ValidEntry(data) }

func (a *Actor) removeMember(ctx actor.Context, m messages.RemoveMember) {
	if a.refuse(ctx) {
		return
	}
	if err := a.st.CheckRemove(m.ID); err != nil {
		ctx.Respond(messages.Result{Err: err})
		return
	}
	a.proposeConfChange(ctx, &raftpb.ConfChange{
		Type:   raftpb.ConfChangeRemoveNode.Enum(),
		NodeId: new(m.ID),
	})
}

func (a *Actor) updateMember(ctx actor.Context, m messages.UpdateMember) {
	if a.refuse(ctx) {
		return
	}
	if err := a.st.CheckUpdate(m.ID, m.PeerURL); err != nil {
		ctx.Respond(messages.Result{Err: err})
		return
	}
	a.proposeConfChange(ctx, &raftpb.ConfChange{
		Type:    raftpb.ConfChangeUpdateNode.Enum(),
		NodeId:  new(m.ID),
		Context: []byte(m.PeerURL),
	})
}

func (a *Actor) proposeConfChange(ctx actor.Context, cc *raftpb.ConfChange) {
	id := a.ids.ID()
	cc.Id = new(id)
	a.writes[id] = a.newWaiter(ctx)
	a.m.Proposals.Inc()
	ctx.Send(a.cfg.Raft, messages.ProposeConfChange{ID: id, Change: cc})
}

// settle answers the write that proposed request id, if it is waiting here.
// Matching by id alone is what makes an answer mean "your entry is applied":
// see raftexampleEntry for why an equal key and value would not.
func (a *Actor) settle(ctx actor.Context, id uint64) {
	a.settleWith(ctx, id, messages.Result{})
}

// settleWith answers the write that proposed request id, if it is waiting
// here, with res, as of the applied index and the store's revision unless
// res gives them.
func (a *Actor) settleWith(ctx actor.Context, id uint64, res messages.Result) {
	if w, ok := a.writes.take(id); ok {
		a.m.ProposalsApplied.Inc()
		if res.Index == 0 { // the applier's results say their own
			res.Index, res.Revision = a.applied, a.st.Revision()
		}
		a.answers = append(a.answers, answer{w.reply, res})
	}
}

// fail answers the write that proposed request id, if it is waiting here,
// with err: its entry was applied as a no-op.
func (a *Actor) fail(ctx actor.Context, id uint64, err error) {
	if w, ok := a.writes.take(id); ok {
		a.m.ProposalsFailed.Inc()
		a.answers = append(a.answers, answer{w.reply, messages.Result{Err: err, Index: a.applied}})
	}
}

// answer is an applied write's answer, waiting in Actor.answers.
type answer struct {
	to  *actor.PID
	res messages.Result
}

// sendAnswers sends the answers settleWith and fail held. They are called
// only while applyMsg applies, which sends them.
func (a *Actor) sendAnswers(ctx actor.Context) {
	for _, w := range a.answers {
		ctx.Send(w.to, w.res)
	}
	clear(a.answers)
	a.answers = a.answers[:0]
}

func (a *Actor) fatal(err error) {
	a.failed = true
	// Nothing more may reach the db, not even at close: what the
	// transaction holds may be half a restore.
	a.st.Fail()
	a.cfg.Logger.Error("state machine stopped", redact.Error(err))
	a.failAll(messages.ErrStopped)
	if a.cfg.Fatal != nil {
		a.cfg.Fatal(messages.Fatal{Component: "kv", Err: err})
	}
}
