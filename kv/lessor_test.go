package kv

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// fakeClock is the lessor's clock in these tests: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// leaseFixture is a kv actor (member 1) on a fake clock, with an election
// timeout of 1 s: the minimum TTL is 2 s and a new leader extends by 1 s.
func leaseFixture(t *testing.T) (*fixture, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) {
		c.now = clock.now
		c.ElectionTimeout = time.Second
	}})
	return f, clock
}

// leaseEntry is the entry at idx of a lease command made by one of
// apply's Propose functions, in the term the command names (a lessor's
// commands apply only from an entry of their term), else term 1.
func leaseEntry(t *testing.T, idx uint64) func(apply.Command, error) *raftpb.Entry {
	return func(c apply.Command, err error) *raftpb.Entry {
		t.Helper()
		if err != nil {
			t.Fatalf("lease command: %v", err)
		}
		return inTerm(max(c.Term, 1), normalEntry(idx, encodeNative(c)))
	}
}

// inTerm sets e's term: the term of the leader that appended it.
func inTerm(term uint64, e *raftpb.Entry) *raftpb.Entry {
	e.Term = new(term)
	return e
}

// histogramCount is how many observations h holds.
func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// lead tells the kv actor that member leader leads in term, and waits
// until it has heard.
func (f *fixture) lead(t *testing.T, leader, term uint64) {
	t.Helper()
	f.system.Root.Send(f.pid, messages.LeaderChanged{Leader: leader, Term: term})
	f.sync(t)
}

// tickLeases has the lessor look at its deadlines now, and waits until it
// has.
func (f *fixture) tickLeases(t *testing.T) {
	t.Helper()
	f.system.Root.Send(f.pid, leaseTickMsg{})
	f.sync(t)
}

// wantProposed takes the next proposal the kv actor made and checks that
// it is want (apply's Propose of a lease command), under its own request id.
func (f *fixture) wantProposed(t *testing.T) func(want apply.Command, err error) []byte {
	return func(want apply.Command, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		p := recv[messages.Propose](t, f.raft.got, "a lease proposal")
		want.ReqID = p.ID
		if got := p.Data; string(got) != string(encodeNative(want)) {
			c, err := decodeNative(got)
			t.Fatalf("proposed %+v (%v), want %+v", c, err, want)
		}
		return p.Data
	}
}

// Only the leader expires leases, through raft: a follower's lessor keeps
// no deadlines however late it is; a new leader extends every lease by an
// election timeout, then proposes the revocation of one past its deadline,
// once, until it is applied.
func TestLessorExpiresOnlyAsLeader(t *testing.T) {
	f, clock := leaseFixture(t)
	f.wantDelivery(t, f.apply(leaseEntry(t, 1)(apply.ProposeLeaseGrant(7, 5))))

	clock.advance(time.Hour)
	f.tickLeases(t)
	f.raftQuiet(t) // a follower proposes nothing

	f.lead(t, 1, 2)
	clock.advance(5*time.Second + 900*time.Millisecond) // the TTL, and most of the extension
	f.tickLeases(t)
	f.raftQuiet(t)

	clock.advance(200 * time.Millisecond)
	f.tickLeases(t)
	revoke := f.wantProposed(t)(apply.ProposeLeaseExpiry(7, 2))
	f.tickLeases(t)
	f.raftQuiet(t) // proposed once while its answer may still come

	// Applied: the keys went with it, and nothing more is due.
	f.wantDelivery(t, f.apply(inTerm(2, normalEntry(2, revoke))))
	m := f.act.m.Lease
	for name, got := range map[string]float64{
		"granted": promtest.ToFloat64(m.Granted), "revoked": promtest.ToFloat64(m.Revoked),
		"expired": promtest.ToFloat64(m.Expired), "lag samples": float64(histogramCount(t, m.ExpiryLag)),
	} {
		if got != 1 {
			t.Errorf("lease metric %s = %v, want 1", name, got)
		}
	}
	clock.advance(time.Hour)
	f.tickLeases(t)
	f.raftQuiet(t)

	// Leadership lost: nothing is proposed, whatever is due.
	f.wantDelivery(t, f.apply(leaseEntry(t, 3)(apply.ProposeLeaseGrant(8, 5))))
	f.lead(t, 2, 3)
	clock.advance(time.Hour)
	f.tickLeases(t)
	f.raftQuiet(t)
}

// keepAlive sends a keep-alive of lease id and plays the raft actor's part:
// the read index that confirms leadership is granted (ok) or fails.
func (f *fixture) keepAlive(t *testing.T, id int64, ok bool) messages.Result {
	t.Helper()
	c := f.request(messages.LeaseKeepAlive{ID: id})
	ri := recv[messages.ReadIndex](t, f.raft.got, "the read index that confirms leadership")
	if ok {
		f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: f.act.applied})
	} else {
		f.system.Root.Send(f.pid, messages.ReadIndexFailed{IDs: []uint64{ri.ID}, Err: messages.ErrNoLeader})
	}
	return c.result(t)
}

// A keep-alive is answered by the leader alone, once a read index has
// confirmed its leadership, and moves the deadline to now + TTL; a
// follower answers ErrNotLeader (its API hands the request to the
// leader), a leader whose read index fails renews nothing, an unknown
// lease is ErrLeaseNotFound, one past its deadline ErrLeaseExpiring until
// its revocation is applied, and renewing a lease whose remaining TTL was
// checkpointed clears the checkpoint.
func TestLessorKeepAlive(t *testing.T) {
	f, clock := leaseFixture(t)
	f.wantDelivery(t, f.apply(leaseEntry(t, 1)(apply.ProposeLeaseGrant(7, 10))))
	f.request(messages.LeaseKeepAlive{ID: 7}).wantErr(t, messages.ErrNotLeader)
	f.request(messages.LeaseQuery{ID: 7}).wantErr(t, messages.ErrNotLeader)
	f.raftQuiet(t)

	f.lead(t, 1, 2)
	if r := f.keepAlive(t, 9, true); !errors.Is(r.Err, messages.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of an unknown lease: %+v", r)
	}
	clock.advance(10 * time.Second) // within TTL + extension
	if r := f.keepAlive(t, 7, false); !errors.Is(r.Err, messages.ErrNoLeader) {
		t.Fatalf("keep-alive whose leadership is not confirmed: %+v", r)
	}
	clock.advance(900 * time.Millisecond) // the deadline left by the extension: 11 s
	f.tickLeases(t)
	f.raftQuiet(t)
	clock.advance(-900 * time.Millisecond)
	if r := f.keepAlive(t, 7, true); r.Err != nil || r.Lease == nil || r.Lease.Remaining != 10 {
		t.Fatalf("keep-alive: %+v, want 10 s remaining", r)
	}
	clock.advance(9 * time.Second)
	if r := f.request(messages.LeaseQuery{ID: 7, Keys: true}).result(t); r.Err != nil || r.Lease == nil || r.Lease.TTL != 10 || r.Lease.Remaining != 1 {
		t.Fatalf("query: %+v, want TTL 10 and 1 s remaining", r.Lease)
	}
	f.tickLeases(t)
	f.raftQuiet(t)

	// A checkpoint applied: the next renewal clears it.
	f.wantDelivery(t, f.apply(leaseEntry(t, 2)(apply.ProposeLeaseCheckpoint(7, 3, 2))))
	if r := f.keepAlive(t, 7, true); r.Err != nil {
		t.Fatalf("keep-alive: %+v", r)
	}
	f.wantProposed(t)(apply.ProposeLeaseCheckpoint(7, 0, 2))

	// Past its deadline, a lease is not renewed; until its revocation is
	// applied (its keys are still there) the holder is told to retry, and
	// then that it is gone.
	clock.advance(10100 * time.Millisecond)
	if r := f.keepAlive(t, 7, true); !errors.Is(r.Err, messages.ErrLeaseExpiring) {
		t.Fatalf("keep-alive past the deadline: %+v", r)
	}
	f.tickLeases(t)
	revoke := f.wantProposed(t)(apply.ProposeLeaseExpiry(7, 2))
	f.wantDelivery(t, f.apply(inTerm(2, normalEntry(3, revoke))))
	if r := f.keepAlive(t, 7, true); !errors.Is(r.Err, messages.ErrLeaseNotFound) {
		t.Fatalf("keep-alive after the revocation: %+v", r)
	}
}

// A TTL under the minimum (1.5 election timeouts, rounded up) is raised
// to it; an id of 0 gets one made by the member.
func TestLessorGrantRaisesTTL(t *testing.T) {
	f, _ := leaseFixture(t)
	f.request(messages.LeaseGrant{TTL: 1})
	p := recv[messages.Propose](t, f.raft.got, "the grant")
	c, err := decodeNative(p.Data)
	if err != nil || c.Op != apply.OpLeaseGrant || c.Lease <= 0 {
		t.Fatalf("proposed %+v (%v), want a grant of an id > 0", c, err)
	}
	want, _ := apply.ProposeLeaseGrant(c.Lease, 2)
	want.ReqID = p.ID
	if string(p.Data) != string(encodeNative(want)) {
		t.Fatalf("proposed %+v, want a TTL of 2 s (the minimum)", c)
	}
	f.request(messages.LeaseGrant{ID: 9, TTL: 60})
	f.wantProposed(t)(apply.ProposeLeaseGrant(9, 60))
}

// Every leaseCheckpointEvery the leader proposes each lease's remaining
// TTL; a new leader takes a checkpointed remaining TTL, not the TTL
// granted, so that leadership churn does not keep a lease alive.
func TestLessorCheckpoints(t *testing.T) {
	f, clock := leaseFixture(t)
	f.wantDelivery(t, f.apply(leaseEntry(t, 1)(apply.ProposeLeaseGrant(7, 1000))))
	f.lead(t, 1, 2)
	clock.advance(leaseCheckpointEvery)
	f.tickLeases(t)
	checkpoint := f.wantProposed(t)(apply.ProposeLeaseCheckpoint(7, int64(1000+1-leaseCheckpointEvery/time.Second), 2))

	// Another member's checkpoint, applied after it, is what this member
	// takes when it next becomes leader: 10 s (+1 s extension), not 1000.
	f.wantDelivery(t, f.apply(inTerm(2, normalEntry(2, checkpoint)), leaseEntry(t, 3)(apply.ProposeLeaseCheckpoint(7, 10, 0))))
	f.lead(t, 2, 3)
	f.lead(t, 1, 4)
	clock.advance(10900 * time.Millisecond)
	f.tickLeases(t)
	f.raftQuiet(t)
	clock.advance(200 * time.Millisecond)
	f.tickLeases(t)
	f.wantProposed(t)(apply.ProposeLeaseExpiry(7, 4))
}

// Leading again in a later term, with no other leader named between (this
// member stepped down for lack of a quorum, and another may have led and
// renewed leases meanwhile), is a new leadership: every deadline is set
// again from the state, and what it proposes names the new term.
func TestLessorRepromotesInANewTerm(t *testing.T) {
	f, clock := leaseFixture(t)
	f.wantDelivery(t, f.apply(leaseEntry(t, 1)(apply.ProposeLeaseGrant(7, 5))))
	f.lead(t, 1, 2) // deadline: 6 s from now
	clock.advance(5500 * time.Millisecond)
	f.lead(t, 1, 5) // deadline: 6 s from now again
	clock.advance(600 * time.Millisecond)
	f.tickLeases(t)
	f.raftQuiet(t) // the first leadership's deadline has passed; it no longer counts
	clock.advance(5500 * time.Millisecond)
	f.tickLeases(t)
	f.wantProposed(t)(apply.ProposeLeaseExpiry(7, 5))
}
