package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cockroachdb/datadriven"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/internal/testcluster"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/transport"
)

// Bounds on the waits of a scenario. None is reached when all goes well:
// each is how long to wait before calling the members stuck.
const (
	settleTimeout = 20 * time.Second // for every member to be idle
	enterTimeout  = 10 * time.Second // for a member to take a request in
	answerTimeout = 20 * time.Second // for a request's answer, in results
	probeTimeout  = 10 * time.Second // for an idle actor to answer a probe
	// busyProbe is how long settle waits for a probe's answer before it
	// takes the actor for busy. A member that stops by itself while probed
	// may never answer, and a probe behind a long fsync would wait long.
	busyProbe = 200 * time.Millisecond
	// requestTimeout is the members' own bound on a request. It is long
	// so that no request of a scenario times out, whatever the machine's
	// load: a request answered when its wall-clock deadline passes would
	// answer differently from run to run.
	requestTimeout = time.Minute
	// tickInterval is the wall time the members think a tick lasts. Their
	// raft clock is ours (ManualTick), but the raft actor still measures a
	// few waits in ticks of wall time: how long a proposal is held while no
	// leader is known, how long a transfer may take. An hour puts those
	// deadlines out of any scenario's reach, so no wait ends by the clock.
	tickInterval        = time.Hour
	defaultElectionTick = 10
)

// countedActors are the actors of a member whose every message env.settle
// follows: those on the path of raft's work (the watch hub is not, and its
// progress timer would only add noise).
var countedActors = []string{"raft", "wal", "snapshotter", "kv"}

// env is one scenario's cluster and what the commands remember.
type env struct {
	c        *testcluster.Cluster
	founding int
	election int // election tick
	// members are the metrics of each member's current run.
	members map[uint64]memberMetrics
	// why says why a member stopped by itself (its removal).
	why map[uint64]string

	reqs []*request
	wg   sync.WaitGroup
}

// memberMetrics are a member's metrics, and for each counted actor a
// registry of its message count.
type memberMetrics struct {
	*metrics.Node
	handled map[string]*prometheus.Registry
}

// request is a client request sent through a member's API.
type request struct {
	what  string
	done  chan struct{}
	reply testcluster.Reply
	err   error
	// printed says results or await printed the answer.
	printed bool
}

func newEnv(t *testing.T) *env {
	e := &env{members: make(map[uint64]memberMetrics), why: make(map[uint64]string)}
	// Registered before the cluster's cleanup, so it runs after it: the
	// cluster's stop closes the connections of requests still waiting.
	t.Cleanup(e.wg.Wait)
	return e
}

func (e *env) handle(t *testing.T, d *datadriven.TestData) string {
	if (e.c == nil) != (d.Cmd == "start" && d.HasArg("members")) {
		d.Fatalf(t, "a scenario starts with start members=N, once")
	}
	var out string
	switch d.Cmd {
	case "start":
		if d.HasArg("members") {
			e.startCluster(t, d)
		} else {
			e.startMember(t, d)
		}
	case "stop":
		m := e.member(t, d, "id")
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
	case "restart":
		m := e.member(t, d, "id")
		if m.Node == nil {
			d.Fatalf(t, "member %d never started: start id=%d", m.ID, m.ID)
		}
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		delete(e.why, m.ID)
		if err := m.Start(false); err != nil {
			t.Fatal(err)
		}
	case "tick":
		e.tick(t, d, intArg(t, d, "n", 1))
	case "campaign":
		// raft campaigns once its election timeout, drawn at random in
		// [election, 2×election), has passed: after 2×election-1 ticks it
		// has, once. (At 2×election it campaigns twice when the draw was
		// election: the ticks after the first campaign count again.)
		e.tick(t, d, 2*e.election-1)
	case "stabilize":
		e.stabilize(t)
	case "deliver", "drop":
		out = e.deliverOrDrop(t, d)
	case "held":
		out = e.held()
	case "isolate":
		e.c.Net.Isolate(e.member(t, d, "id").ID)
	case "cut":
		e.c.Net.Cut(e.member(t, d, "from").ID, e.member(t, d, "to").ID)
	case "heal":
		e.c.Net.Heal()
	case "put":
		e.put(t, d)
	case "get":
		e.get(t, d)
	case "add-member":
		e.addMember(t, d)
	case "promote":
		id := e.member(t, d, "id").ID
		e.send(t, e.via(t, d), fmt.Sprintf("promote %d", id), http.MethodPost, fmt.Sprintf("/v1/members/%d/promote", id), "")
	case "remove":
		id := e.member(t, d, "id").ID
		e.send(t, e.via(t, d), fmt.Sprintf("remove %d", id), http.MethodDelete, fmt.Sprintf("/v1/members/%d", id), "")
	case "transfer-leader":
		to := e.member(t, d, "to").ID
		e.send(t, e.via(t, d), fmt.Sprintf("transfer-leader to %d", to), http.MethodPost, "/v1/leader", fmt.Sprintf(`{"id":%d}`, to))
	case "results":
		out = e.results(t)
	case "await":
		out = e.await(t, d)
	case "status":
		out = e.status(t)
	case "digest":
		out = e.digest(t)
	case "snapshots":
		out = fmt.Sprintf("%d\n", e.c.SnapshotsSent())
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	// Whatever the command set going, it is over before the next one.
	e.settle(t)
	if out == "" {
		out = "ok\n"
	}
	return out
}

// intArg is d's argument key, or def.
func intArg(t *testing.T, d *datadriven.TestData, key string, def int) int {
	if !d.HasArg(key) {
		return def
	}
	var v int
	d.ScanArgs(t, key, &v)
	return v
}

// member is the member d's argument key names.
func (e *env) member(t *testing.T, d *datadriven.TestData, key string) *testcluster.Member {
	id := intArg(t, d, key, 0)
	if id < 1 || id > len(e.c.Members) {
		d.Fatalf(t, "%s=%d: the members are 1 to %d", key, id, len(e.c.Members))
	}
	return e.c.Member(uint64(id))
}

// startCluster starts the founding members with a clock and a network of
// the test's.
//
// The network holds from just after the members start, not before: a
// member sends nothing until its clock ticks or it receives a message
// (ManualTick), and it proposes nothing by itself (no client URLs to
// publish, see Tune).
func (e *env) startCluster(t *testing.T, d *datadriven.TestData) {
	e.founding = intArg(t, d, "members", 3)
	e.election = intArg(t, d, "election-tick", defaultElectionTick)
	snapshotCount := uint64(intArg(t, d, "snapshot-count", 0))
	catchUp := uint64(intArg(t, d, "catch-up-entries", 0))
	e.c = testcluster.New(t, testcluster.Config{
		Members:        e.founding,
		RequestTimeout: requestTimeout,
		Tune: func(cfg *actors.NodeConfig) {
			cfg.ManualTick = true
			cfg.TickInterval = tickInterval
			cfg.ElectionTick = e.election
			cfg.HeartbeatTick = 1
			if snapshotCount > 0 {
				cfg.SnapshotCount = snapshotCount
			}
			if catchUp > 0 {
				cfg.CatchUpEntries = catchUp
			}
			// The member's metrics, for the counts env.settle and
			// env.send read; a registry of the actors' message counts
			// alone, since a probe reads it on the actor's goroutine.
			mn := metrics.New(nil)
			mm := memberMetrics{Node: mn, handled: make(map[string]*prometheus.Registry)}
			for _, name := range countedActors {
				// Each actor's own histogram in a registry of its own:
				// reading it is then cheap.
				mm.handled[name] = prometheus.NewRegistry()
				mm.handled[name].MustRegister(mn.MessageDuration.WithLabelValues(name).(prometheus.Histogram))
			}
			cfg.Metrics = mn
			e.members[cfg.ID] = mm
			// A member publishes its client URLs (a proposal) once it is
			// a member in its own state: a fresh one only applies its
			// bootstrap entries after it started, so it publishes when
			// its state machine's sweep timer next fires, every second
			// of wall time. A proposal made by the clock, not by the
			// scenario, would land in some runs and not in others:
			// without URLs, a member publishes none.
			cfg.ClientURLs = nil
		},
	})
	e.c.Net.Hold()
}

// startMember starts a member that does not run: a member added to the
// cluster joins it on its first start.
func (e *env) startMember(t *testing.T, d *datadriven.TestData) {
	m := e.member(t, d, "id")
	join := m.Node == nil && m.ID > uint64(e.founding)
	delete(e.why, m.ID)
	if err := m.Start(join); err != nil {
		t.Fatal(err)
	}
}

// running is a running member, or fails the test.
func (e *env) running(t *testing.T, m *testcluster.Member) *testcluster.Member {
	t.Helper()
	if !m.Running() {
		t.Fatalf("member %d does not run", m.ID)
	}
	return m
}

func (e *env) tick(t *testing.T, d *datadriven.TestData, n int) {
	m := e.running(t, e.member(t, d, "id"))
	for range n {
		m.Node.Tick()
	}
}

// ---- quiescence ----

// probe is a message every actor answers by itself (protoactor's
// AutoRespond) after its Receive has seen it, on the actor's goroutine: it
// answers with the number of messages the actor had handled before it.
// Each actor handles its messages one at a time, and its metrics
// middleware counts each once handled, so that number is exact; read from
// outside the actor, the count might lack the last message, handled but
// not counted yet.
type probe struct {
	count func() (uint64, error)
}

type probeAnswer struct {
	n   uint64
	err error
}

// AutoReceiveMessage marks the probe as one of protoactor's own messages,
// which the raft actor passes over without a word (it warns of any other
// message it does not know); the other actors ignore unknown messages.
func (*probe) AutoReceiveMessage() {}

func (p *probe) GetAutoResponse(actor.Context) any {
	n, err := p.count()
	return probeAnswer{n, err}
}

// handled is how many messages the actor whose message durations reg
// holds has handled.
func handled(reg *prometheus.Registry) (uint64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		return 0, fmt.Errorf("%d metric families where one histogram was expected", len(mfs))
	}
	return mfs[0].GetMetric()[0].GetHistogram().GetSampleCount(), nil
}

// probeActor asks actor name of m how many messages it handled before the
// probe, waiting at most wait for the answer.
func (e *env) probeActor(m *testcluster.Member, name string, wait time.Duration) (uint64, error) {
	reg := e.members[m.ID].handled[name]
	pid := actor.NewPID(m.Node.Raft().Address, name)
	res, err := m.Node.Root().RequestFuture(pid, &probe{count: func() (uint64, error) { return handled(reg) }}, wait).Result()
	if err != nil {
		return 0, fmt.Errorf("probe the %s actor of member %d: %w", name, m.ID, err)
	}
	a, ok := res.(probeAnswer)
	if !ok {
		return 0, fmt.Errorf("the %s actor of member %d answered a probe with a %T", name, m.ID, res)
	}
	return a.n, a.err
}

// settle returns once every running member is idle: none of its actors
// handles a message or has one waiting, so none will send anything until
// the test ticks a clock, delivers a message or sends a request.
//
// It probes each actor of each running member, pass after pass. Between
// two probes of one actor, the actor handled the first probe and the
// messages that came between: if their counts differ by one, it handled
// nothing else. Once a pass finds that of every actor, there was an
// instant (between the two passes) when no actor handled a message, and
// none had one waiting (it would have been handled before the second
// probe, behind which it waited). At that instant nothing moves any more:
// only an actor sends to an actor, or to the network, which delivers
// nothing while it holds; raft's clock is the test's; the requests the
// test sent were taken in before (env.send). The members' own timers
// remain, and none of them makes raft work: the state machine's batch
// commit of its db and its sweep of expired requests (none expire:
// requestTimeout), the watch hub's progress (no watches).
//
// Take a follower whose fsync is still under way: its wal actor is in the
// middle of a message, so the probe behind it waits, and the count moves
// by that message. The wal actor sends the follower's answer to the
// leader (to the network, where it is held) and the news that the entries
// are stable to its own raft actor, both before it takes its next message:
// by the time settle returns, the answer is held, and the follower's raft
// actor has handled the news (and its state machine, the entries it could
// then apply). Comparing raft's states (terms, leaders, commit and applied
// indexes) instead would not see it: the follower's commit index may
// already equal the leader's while its answer for a later entry, one that
// is not committed yet, waits on the fsync; and waiting a while to see
// whether something more is sent is a bet on the machine's speed.
//
// A member that stopped by itself (removed from the cluster) is stopped
// for good first (reap), and env.why keeps why.
func (e *env) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	var last map[string]uint64
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the members are still busy after %v", settleTimeout)
		}
		e.reap(t)
		now := make(map[string]uint64)
		var err error
	pass:
		for _, m := range e.c.Running() {
			for _, name := range countedActors {
				var n uint64
				if n, err = e.probeActor(m, name, busyProbe); err != nil {
					break pass
				}
				now[fmt.Sprintf("%d/%s", m.ID, name)] = n
			}
		}
		switch {
		case err != nil && (errors.Is(err, actor.ErrTimeout) || e.c.Stopped() != nil):
			// Busy (the probe, answered later, counts in a later pass),
			// or stopped while probed (reaped on the next pass).
			last = nil
		case err != nil:
			t.Fatal(err)
		case idle(last, now):
			return
		default:
			last = now
		}
	}
}

// idle reports whether between two passes each actor handled only the
// first pass's probe.
func idle(before, after map[string]uint64) bool {
	if before == nil || len(before) != len(after) {
		return false
	}
	for k, n := range after {
		if b, ok := before[k]; !ok || n != b+1 {
			return false
		}
	}
	return true
}

// reap stops for good the members that stopped by themselves, and keeps
// why.
func (e *env) reap(t *testing.T) {
	for _, m := range e.c.Running() {
		if err := m.Stopped(); err != nil {
			e.why[m.ID] = err.Error()
			if err := m.Stop(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ---- network ----

// stabilize delivers the held messages round by round: a round delivers
// what was held when it began, then waits for the members to be idle,
// which leaves what they sent in answer held for the next round. It ends
// when a round begins with nothing held. Faults (isolate, cut) drop
// messages as they are delivered, so it ends under them too.
func (e *env) stabilize(t *testing.T) {
	for round := 0; ; round++ {
		e.settle(t)
		if len(e.c.Net.Held()) == 0 {
			return
		}
		if round > 1000 {
			t.Fatalf("messages still held after %d rounds: %s", round, e.held())
		}
		e.deliverRound(nil)
	}
}

// deliverRound delivers the held messages that match, those of the
// lowest sender first: each sender's in the order it sent them, since the
// order between two members' messages is only the order in which their
// goroutines happened to send. It returns how many it delivered.
func (e *env) deliverRound(match func(transport.Held) bool) int {
	held := e.c.Net.Held()
	var senders []uint64
	for _, h := range held {
		if !slices.Contains(senders, h.From) {
			senders = append(senders, h.From)
		}
	}
	slices.Sort(senders)
	// The messages of this round are the first `left` held: what the
	// members send while it goes is held after them.
	left, total := len(held), 0
	for _, from := range senders {
		i, window := 0, left
		n := e.c.Net.DeliverHeld(func(h transport.Held) bool {
			i++
			return i <= window && h.From == from && (match == nil || match(h))
		})
		left -= n
		total += n
	}
	return total
}

// matcher is the filter of deliver and drop.
func matcher(t *testing.T, d *datadriven.TestData) func(transport.Held) bool {
	from := uint64(intArg(t, d, "from", 0))
	to := uint64(intArg(t, d, "to", 0))
	typ := raftpb.MessageType(-1)
	if d.HasArg("type") {
		var s string
		d.ScanArgs(t, "type", &s)
		v, ok := raftpb.MessageType_value[s]
		if !ok {
			d.Fatalf(t, "no message type %q", s)
		}
		typ = raftpb.MessageType(v)
	}
	return func(h transport.Held) bool {
		return (from == 0 || h.From == from) && (to == 0 || h.To == to) && (typ < 0 || h.Type == typ)
	}
}

func (e *env) deliverOrDrop(t *testing.T, d *datadriven.TestData) string {
	match := matcher(t, d)
	if d.Cmd == "drop" {
		return fmt.Sprintf("dropped %d\n", e.c.Net.DropHeld(match))
	}
	return fmt.Sprintf("delivered %d\n", e.deliverRound(match))
}

// held lists the held messages counted by sender, receiver and type: as a
// set, not in the order sent, which between members is the goroutines'.
func (e *env) held() string {
	type key struct {
		from, to uint64
		typ      raftpb.MessageType
	}
	counts := make(map[key]int)
	for _, h := range e.c.Net.Held() {
		counts[key{h.From, h.To, h.Type}]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.from != b.from {
			return a.from < b.from
		}
		if a.to != b.to {
			return a.to < b.to
		}
		return a.typ < b.typ
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d->%d %s x%d\n", k.from, k.to, k.typ, counts[k])
	}
	if b.Len() == 0 {
		return "none\n"
	}
	return b.String()
}

// ---- client requests ----

// via is the member a request goes through: d's via=, or the leader.
func (e *env) via(t *testing.T, d *datadriven.TestData) *testcluster.Member {
	if d.HasArg("via") {
		return e.running(t, e.member(t, d, "via"))
	}
	var lead *testcluster.Member
	var term uint64
	for _, m := range e.c.Running() {
		st, err := e.c.Status(m)
		if err != nil {
			t.Fatal(err)
		}
		if st.RaftState == "StateLeader" && st.Term > term {
			lead, term = m, st.Term
		}
	}
	if lead == nil {
		d.Fatalf(t, "no member leads: say via=N")
	}
	return lead
}

// taken is what moves when member m takes a request in: the proposals of
// its state machine (writes and membership changes, which it may keep a
// while before it hands them to raft) and the messages its raft actor
// handled (reads, leadership transfers). Neither moves by itself while the
// member is idle.
func (e *env) taken(m *testcluster.Member) (proposals float64, raft uint64, err error) {
	mm := e.members[m.ID]
	raft, err = handled(mm.handled["raft"])
	return promtest.ToFloat64(mm.Proposals), raft, err
}

// send sends a request through m's API and returns once m has taken it
// in, or answered it; its answer is for results. The members are idle
// when it is called (every command ends so), and they are when it
// returns.
func (e *env) send(t *testing.T, m *testcluster.Member, what, method, path, body string) {
	t.Helper()
	m = e.running(t, m)
	// The raft actor's exact count: read from outside, the count could
	// still lack the last probe settle sent it, which would then look
	// like the request. This probe is counted too, once handled.
	raft0, err := e.probeActor(m, "raft", probeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	raft0++
	proposals0, _, err := e.taken(m)
	if err != nil {
		t.Fatal(err)
	}
	r := &request{what: fmt.Sprintf("%s via %d", what, m.ID), done: make(chan struct{})}
	e.reqs = append(e.reqs, r)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(r.done)
		r.reply, r.err = e.c.Do(m, method, path, body)
	}()
	err = testutil.Poll(enterTimeout, time.Millisecond, func() error {
		select {
		case <-r.done:
			return nil
		default:
		}
		proposals, raft, err := e.taken(m)
		if err != nil {
			return err
		}
		if proposals > proposals0 || raft > raft0 {
			return nil
		}
		return errors.New("not taken in yet")
	})
	if err != nil {
		t.Fatalf("%s: %v", r.what, err)
	}
}

func (e *env) put(t *testing.T, d *datadriven.TestData) {
	m := e.member(t, d, "id")
	type kv struct{ k, v string }
	var kvs []kv
	if d.HasArg("key") {
		var k, v string
		d.ScanArgs(t, "key", &k)
		d.ScanArgs(t, "value", &v)
		kvs = append(kvs, kv{k, v})
	}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			d.Fatalf(t, "put: %q is not key=value", line)
		}
		kvs = append(kvs, kv{k, v})
	}
	if len(kvs) == 0 {
		d.Fatalf(t, "put: no key=value")
	}
	for _, p := range kvs {
		e.send(t, m, fmt.Sprintf("put %s=%s", p.k, p.v), http.MethodPut, "/v1/kv/"+p.k, p.v)
		e.settle(t) // the next write must not join this one's batch
	}
}

func (e *env) get(t *testing.T, d *datadriven.TestData) {
	m := e.member(t, d, "id")
	var k string
	d.ScanArgs(t, "key", &k)
	path, what := "/v1/kv/"+k, "get "+k
	if d.HasArg("serializable") {
		path += "?consistency=serializable"
		what += " (serializable)"
	}
	e.send(t, m, what, http.MethodGet, path, "")
}

// addMember proposes a member to the cluster: the next one, which it
// names, or one named before (to add it twice). The member is started by
// start id=N.
func (e *env) addMember(t *testing.T, d *datadriven.TestData) {
	id := intArg(t, d, "id", 0)
	if id < 1 || id > len(e.c.Members)+1 {
		d.Fatalf(t, "add-member: the next member is %d", len(e.c.Members)+1)
	}
	via := e.via(t, d)
	if id == len(e.c.Members)+1 {
		if _, err := e.c.NewMember(); err != nil {
			t.Fatal(err)
		}
	}
	m := e.c.Member(uint64(id))
	learner := false
	if d.HasArg("learner") {
		d.ScanArgs(t, "learner", &learner)
	}
	body, err := json.Marshal(map[string]any{"peer_url": m.PeerURL, "learner": learner})
	if err != nil {
		t.Fatal(err)
	}
	what := fmt.Sprintf("add-member %d", m.ID)
	if learner {
		what += " (learner)"
	}
	e.send(t, via, what, http.MethodPost, fmt.Sprintf("/v1/members/%d", m.ID), string(body))
}

// results waits for the answer to every request not printed yet, and
// prints them in the order sent.
func (e *env) results(t *testing.T) string {
	var b strings.Builder
	deadline := time.Now().Add(answerTimeout)
	for i, r := range e.reqs {
		if !r.printed {
			e.answer(t, &b, i, deadline)
		}
	}
	if b.Len() == 0 {
		return "none\n"
	}
	return b.String()
}

// await waits for the answer to request d's req= (numbered from 1 in the
// order sent), and prints it: for a request answered while one sent before
// it is not.
func (e *env) await(t *testing.T, d *datadriven.TestData) string {
	n := intArg(t, d, "req", 0)
	if n < 1 || n > len(e.reqs) || e.reqs[n-1].printed {
		d.Fatalf(t, "await: no request %d waiting to be printed", n)
	}
	var b strings.Builder
	e.answer(t, &b, n-1, time.Now().Add(answerTimeout))
	return b.String()
}

// answer waits for request i's answer until deadline, and prints it.
func (e *env) answer(t *testing.T, b *strings.Builder, i int, deadline time.Time) {
	r := e.reqs[i]
	select {
	case <-r.done:
	case <-time.After(time.Until(deadline)):
		t.Fatalf("request %d (%s): no answer after %v", i+1, r.what, answerTimeout)
	}
	r.printed = true
	if r.err != nil {
		// The member stopped before it answered, closing the connection
		// (the error names its port, which differs from run to run).
		fmt.Fprintf(b, "%d %s: no answer\n", i+1, r.what)
		return
	}
	fmt.Fprintln(b, strings.TrimSpace(fmt.Sprintf("%d %s: %d %s", i+1, r.what, r.reply.Code, strings.TrimSpace(r.reply.Body))))
}

// ---- observations ----

func (e *env) status(t *testing.T) string {
	var b strings.Builder
	for _, m := range e.c.Members {
		if !m.Running() {
			switch {
			case m.Node == nil:
				fmt.Fprintf(&b, "%d: not started\n", m.ID)
			case e.why[m.ID] != "":
				fmt.Fprintf(&b, "%d: stopped: %s\n", m.ID, e.why[m.ID])
			default:
				fmt.Fprintf(&b, "%d: stopped\n", m.ID)
			}
			continue
		}
		st, err := e.c.Status(m)
		if err != nil {
			t.Fatal(err)
		}
		members := make([]uint64, 0, len(st.Members))
		for id := range st.Members {
			members = append(members, id)
		}
		slices.Sort(members)
		fmt.Fprintf(&b, "%d: %s term=%d leader=%d commit=%d applied=%d members=%s learners=%s\n",
			m.ID, strings.TrimPrefix(st.RaftState, "State"), st.Term, st.Leader, st.Commit, st.Applied, ids(members), ids(st.Learners))
	}
	return b.String()
}

func ids(s []uint64) string {
	parts := make([]string, len(s))
	for i, id := range s {
		parts[i] = fmt.Sprint(id)
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// digest says whether the running members hold the same state: equal
// digests at one applied index. The digest's sum is not printed: the
// state holds the members' client URLs, whose ports differ from run to
// run.
func (e *env) digest(t *testing.T) string {
	running := e.c.Running()
	var b strings.Builder
	equal := true
	for i, m := range running {
		d, err := e.c.Digest(m)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d: index=%d keys=%d\n", m.ID, d.Index, d.Keys)
		if i > 0 {
			d0, err := e.c.Digest(running[0])
			if err != nil {
				t.Fatal(err)
			}
			equal = equal && d == d0
		}
	}
	if equal {
		return "equal\n" + b.String()
	}
	return "not equal\n" + b.String()
}
