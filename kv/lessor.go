package kv

import (
	"math"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// The lessor: which leases are due, decided by the leader alone, as etcd's
// primary lessor decides.
//
//  1. The applied state holds each lease's TTL granted (and the remaining
//     TTL last checkpointed); every member applies the same grants and
//     revocations.
//  2. Only while this member leads does it keep deadlines. On becoming
//     leader (messages.LeaderChanged naming it) every lease's deadline is
//     set to now + an election timeout + its remaining TTL (checkpointed,
//     else granted): no lease expires sooner than its holder could expect
//     because leadership moved, and a mass of leases granted together does
//     not expire in the new leader's first instant. On losing leadership
//     the deadlines are dropped.
//  3. A keep-alive sets the deadline to now + TTL; it is answered by the
//     leader and is not a raft entry.
//  4. Every leaseTick the leader proposes the revocation of the leases past
//     their deadline, at most leaseRevokeRate a second, so that a mass
//     expiry does not stall writes; the revocation deletes the keys, and
//     is applied alike on every member. One proposed and not applied
//     within the request timeout (lost with a leader) is proposed again.
//  5. Every leaseCheckpointEvery the leader proposes the remaining TTL of
//     each lease, so that leadership that keeps moving cannot keep a dead
//     holder's lease alive for ever (etcd's lease checkpoints).
const (
	// leaseTick is how often deadlines are looked at: etcd's 500 ms. A
	// lease is revoked at most this late (plus a commit).
	leaseTick = 500 * time.Millisecond
	// leaseRevokeRate is etcd's: revocations proposed a second at most.
	leaseRevokeRate = 1000
	// leaseCheckpointEvery is etcd's checkpoint interval.
	leaseCheckpointEvery = 5 * time.Minute
)

// leaseTickMsg is the kv actor's reminder to look at the deadlines.
type leaseTickMsg struct{}

// lessor is the kv actor's view of the leases' deadlines; it runs on the
// actor's goroutine.
type lessor struct {
	primary   bool
	term      uint64              // the term it was promoted in
	deadlines map[int64]time.Time // while primary: every lease the state holds
	revoking  map[int64]time.Time // revocations proposed, when
	lastCheck time.Time           // the last checkpoint round
	timer     *time.Timer
}

// minLeaseTTL is the shortest TTL granted: one and a half election timeouts,
// rounded up to a second, as etcd's minimum: a lease must outlive the
// election that a leader's death starts.
func (a *Actor) minLeaseTTL() int64 {
	return int64(math.Ceil(1.5 * a.cfg.ElectionTimeout.Seconds()))
}

func (a *Actor) armLeaseTick(ctx actor.Context) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.leases.timer = time.AfterFunc(leaseTick, func() { root.Send(self, leaseTickMsg{}) })
}

// leadershipForLeases promotes or demotes the lessor on a change of leader
// (step 2). A leadership of this member in another term than the one it
// was promoted in is a new one, even if no other leader was named between
// (it may have stepped down for lack of a quorum, and another led
// meanwhile, renewing leases this lessor never saw): its deadlines are set
// again.
func (a *Actor) leadershipForLeases(leader, term uint64) {
	l := &a.leases
	if leader != a.cfg.ID {
		l.primary, l.deadlines, l.revoking = false, nil, nil
		return
	}
	if l.primary && l.term == term {
		return
	}
	l.term = term
	recs, err := a.st.Leases()
	if err != nil {
		a.fatal(err)
		return
	}
	now := a.now()
	l.primary, l.lastCheck = true, now
	l.deadlines, l.revoking = make(map[int64]time.Time, len(recs)), make(map[int64]time.Time)
	for _, r := range recs {
		left := r.TTL
		if r.Remaining > 0 {
			left = r.Remaining
		}
		l.deadlines[r.ID] = now.Add(a.cfg.ElectionTimeout + time.Duration(left)*time.Second)
	}
}

// leasesApplied follows the grants and revocations an entry applied.
func (a *Actor) leasesApplied(changes []apply.LeaseChange) {
	l := &a.leases
	for _, c := range changes {
		if c.Revoked {
			a.m.Lease.Revoked.Inc()
		} else {
			a.m.Lease.Granted.Inc()
		}
		if !l.primary {
			continue
		}
		if c.Revoked {
			delete(l.deadlines, c.ID)
			delete(l.revoking, c.ID)
		} else {
			l.deadlines[c.ID] = a.now().Add(time.Duration(c.TTL) * time.Second)
		}
	}
}

// expireLeases proposes the revocations due, and the checkpoints (steps 4
// and 5).
func (a *Actor) expireLeases(ctx actor.Context) {
	l := &a.leases
	if !l.primary || a.failed {
		return
	}
	now := a.now()
	var due []int64
	for id, d := range l.deadlines {
		if p, ok := l.revoking[id]; ok && now.Sub(p) < a.cfg.RequestTimeout {
			continue
		}
		if now.After(d) {
			due = append(due, id)
		}
	}
	slices.Sort(due) // the same order on every run, for the tests and the logs
	limit := int(leaseRevokeRate * leaseTick / time.Second)
	for _, id := range due[:min(len(due), limit)] {
		c, err := apply.ProposeLeaseExpiry(id, l.term)
		if err != nil {
			continue
		}
		if _, again := l.revoking[id]; !again {
			a.m.Lease.Expired.Inc()
			a.m.Lease.ExpiryLag.Observe(now.Sub(l.deadlines[id]).Seconds())
		}
		l.revoking[id] = now
		a.proposeInternal(ctx, c, true)
	}
	if len(due) > 0 {
		a.cfg.Logger.Debug("proposed the revocation of expired leases", zap.Int("due", len(due)), zap.Int("proposed", min(len(due), limit)))
	}
	if now.Sub(l.lastCheck) >= leaseCheckpointEvery {
		l.lastCheck = now
		ids := make([]int64, 0, len(l.deadlines))
		for id := range l.deadlines {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			left := int64(math.Ceil(l.deadlines[id].Sub(now).Seconds()))
			if left <= 0 {
				continue // due: its revocation is on its way
			}
			if c, err := apply.ProposeLeaseCheckpoint(id, left, l.term); err == nil {
				a.proposeInternal(ctx, c, false)
			}
		}
	}
}

// proposeInternal proposes a command of the member's own (a revocation,
// a checkpoint): nobody waits for it; its outcome shows in the state.
func (a *Actor) proposeInternal(ctx actor.Context, c apply.Command, all bool) {
	c.ReqID = a.ids.ID()
	data, err := a.codec.Encode(c)
	if err != nil {
		return
	}
	a.queuePropose(ctx, c.ReqID, data, nil, all)
}

// leaseGrant proposes a grant; an id of 0 gets one made like a request id,
// unique in the cluster.
func (a *Actor) leaseGrant(ctx actor.Context, m messages.LeaseGrant) {
	ttl := max(m.TTL, a.minLeaseTTL())
	id := m.ID
	if id == 0 {
		id = int64(a.ids.ID() & math.MaxInt64)
	}
	c, err := apply.ProposeLeaseGrant(id, ttl)
	a.propose(ctx, c, nil, false, err)
}

// leaseKeepAlive renews a lease, on the leader (step 3). Leadership is
// confirmed first, by a read index, as etcd's lessor does before it
// renews: a leader deposed without knowing it (paused, cut off) would
// otherwise answer for deadlines the new leader does not keep. The
// renewal itself is renew, once the read index is applied.
func (a *Actor) leaseKeepAlive(ctx actor.Context, m messages.LeaseKeepAlive) {
	if a.refuse(ctx) || a.notLeader(ctx) {
		return
	}
	a.read(ctx, m, false)
}

// renew sets a lease's deadline to now + TTL, on the leader whose
// leadership a read index just confirmed. A lease past its deadline is
// not renewed: its revocation is on its way, and until it is applied the
// holder hears ErrLeaseExpiring (retry), not "not found", since its keys
// are still there for everyone to read; etcd's lessor likewise answers
// only once the revocation is done. Renewing a lease whose remaining TTL
// was checkpointed clears the checkpoint, so that a new leader gives it
// its whole TTL.
func (a *Actor) renew(ctx actor.Context, m messages.LeaseKeepAlive) messages.Result {
	l := &a.leases
	if !l.primary {
		return messages.Result{Err: messages.ErrNotLeader}
	}
	rec, ok, err := a.st.Lease(m.ID)
	if err != nil {
		a.fatal(err)
		return messages.Result{Err: err}
	}
	now := a.now()
	if !ok {
		return messages.Result{Err: messages.ErrLeaseNotFound}
	}
	if d, held := l.deadlines[m.ID]; held && now.After(d) {
		return messages.Result{Err: messages.ErrLeaseExpiring}
	}
	l.deadlines[m.ID] = now.Add(time.Duration(rec.TTL) * time.Second)
	a.m.Lease.KeepAlives.Inc()
	if rec.Remaining > 0 {
		if c, err := apply.ProposeLeaseCheckpoint(m.ID, 0, l.term); err == nil {
			a.proposeInternal(ctx, c, false)
		}
	}
	return messages.Result{Lease: &messages.Lease{ID: m.ID, TTL: rec.TTL, Remaining: rec.TTL}}
}

// notLeader answers ErrNotLeader to a request only the leader can answer,
// on a follower: the API hands it to the leader.
func (a *Actor) notLeader(ctx actor.Context) bool {
	if a.leases.primary {
		return false
	}
	ctx.Respond(messages.Result{Err: messages.ErrNotLeader})
	return true
}

// leaseInfo reads a lease as applied; remaining is the leader's deadline.
func (a *Actor) leaseInfo(q messages.LeaseQuery) messages.Result {
	rec, ok, err := a.st.Lease(q.ID)
	if err == nil && !ok {
		err = messages.ErrLeaseNotFound
	}
	if err != nil {
		return messages.Result{Err: err}
	}
	info := &messages.Lease{ID: q.ID, TTL: rec.TTL, Remaining: -1}
	if d, ok := a.leases.deadlines[q.ID]; ok {
		info.Remaining = max(0, int64(math.Ceil(d.Sub(a.now()).Seconds())))
	}
	if q.Keys {
		if info.Keys, err = a.st.LeaseKeys(q.ID); err != nil {
			return messages.Result{Err: err}
		}
	}
	return messages.Result{Index: a.applied, Revision: a.st.Revision(), Lease: info}
}

// leaseList lists the leases as applied.
func (a *Actor) leaseList() messages.Result {
	recs, err := a.st.Leases()
	if err != nil {
		return messages.Result{Err: err}
	}
	out := make([]messages.Lease, 0, len(recs))
	for _, r := range recs {
		out = append(out, messages.Lease{ID: r.ID, TTL: r.TTL, Remaining: -1})
	}
	return messages.Result{Index: a.applied, Revision: a.st.Revision(), Leases: out}
}

func (a *Actor) now() time.Time { return a.cfg.now() }
