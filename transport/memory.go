package transport

import (
	"fmt"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// Network is an in-memory network joining the members of one cluster in a
// process. Each message is marshalled and unmarshalled on the way, as on a
// wire, so members never share memory. Faults are set explicitly (Cut,
// Isolate, DropType) and stay until Heal: nothing is random.
type Network struct {
	mu      sync.Mutex
	members map[uint64]*Memory
	cut     map[link]bool
	drop    map[raftpb.MessageType]bool
	counts  map[raftpb.MessageType]int // messages delivered, by type
	// holding keeps every message sent in held, in the order sent, until
	// the test delivers or drops it (Hold).
	holding bool
	held    []heldMessage
}

// heldMessage is a message sent while the network holds them.
type heldMessage struct {
	from *Memory
	m    *raftpb.Message
}

type link struct{ from, to uint64 }

// NewNetwork returns a network with no members and no faults.
func NewNetwork() *Network {
	return &Network{
		members: make(map[uint64]*Memory),
		cut:     make(map[link]bool),
		drop:    make(map[raftpb.MessageType]bool),
		counts:  make(map[raftpb.MessageType]int),
	}
}

// Delivered counts the messages of type t the network has delivered.
func (n *Network) Delivered(t raftpb.MessageType) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.counts[t]
}

// Join attaches member id with its inbox and returns its transport. A member
// that joins again (a restart) replaces its earlier self.
func (n *Network) Join(id uint64, inbox Inbox) *Memory {
	return n.JoinWith(id, inbox, MemoryOptions{})
}

// MemoryOptions are what a member of a Network may have besides its inbox.
type MemoryOptions struct {
	// SnapshotSource and SnapshotSink are the HTTPConfig fields of the
	// same names. A MsgSnap carries data from its sender's source to its
	// receiver's sink when both members have theirs; otherwise it goes
	// alone, as it does by pipeline.
	SnapshotSource SnapshotSource
	SnapshotSink   SnapshotSink
}

// JoinWith is Join with options.
func (n *Network) JoinWith(id uint64, inbox Inbox, opts MemoryOptions) *Memory {
	t := &Memory{net: n, id: id, inbox: inbox, opts: opts, joined: time.Now(), peers: make(map[uint64]string), removed: make(map[uint64]bool)}
	n.mu.Lock()
	n.members[id] = t
	n.mu.Unlock()
	return t
}

// Cut drops every message between a and b, both ways.
func (n *Network) Cut(a, b uint64) {
	n.CutOneWay(a, b)
	n.CutOneWay(b, a)
}

// CutOneWay drops every message from `from` to `to`.
func (n *Network) CutOneWay(from, to uint64) {
	n.mu.Lock()
	n.cut[link{from, to}] = true
	n.mu.Unlock()
}

// Isolate cuts member id off from every other member, current or future.
func (n *Network) Isolate(id uint64) {
	n.mu.Lock()
	n.cut[link{id, 0}] = true
	n.cut[link{0, id}] = true
	n.mu.Unlock()
}

// DropType drops every message of type t, on every link.
func (n *Network) DropType(t raftpb.MessageType) {
	n.mu.Lock()
	n.drop[t] = true
	n.mu.Unlock()
}

// Heal removes every fault.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.cut)
	clear(n.drop)
	n.mu.Unlock()
}

func (n *Network) blocked(from, to uint64, t raftpb.MessageType) bool {
	return n.drop[t] || n.cut[link{from, to}] || n.cut[link{from, 0}] || n.cut[link{0, to}]
}

// Hold makes the network keep every message sent, in the order sent,
// until DeliverHeld or DropHeld says what becomes of it: a test then
// decides each message's fate and order, as etcd-io/raft's interaction
// tests do. Cuts and drops still apply when a held message is delivered.
func (n *Network) Hold() {
	n.mu.Lock()
	n.holding = true
	n.mu.Unlock()
}

// Held describes one message the network holds.
type Held struct {
	From, To uint64
	Type     raftpb.MessageType
}

// Held lists the messages held, in the order sent.
func (n *Network) Held() []Held {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Held, len(n.held))
	for i, h := range n.held {
		out[i] = Held{From: h.from.id, To: h.m.GetTo(), Type: h.m.GetType()}
	}
	return out
}

// DeliverHeld delivers, in the order sent, the held messages that match
// (all if nil), and returns how many it delivered; the others stay held.
// Messages sent meanwhile are held too.
func (n *Network) DeliverHeld(match func(Held) bool) int {
	taken := n.takeHeld(match)
	for _, h := range taken {
		n.deliverNow(h.from, h.m)
	}
	return len(taken)
}

// DropHeld drops the held messages that match (all if nil), as a lossy
// link would, and returns how many.
func (n *Network) DropHeld(match func(Held) bool) int {
	return len(n.takeHeld(match))
}

// takeHeld removes and returns the held messages that match.
func (n *Network) takeHeld(match func(Held) bool) []heldMessage {
	n.mu.Lock()
	defer n.mu.Unlock()
	var taken, kept []heldMessage
	for _, h := range n.held {
		if match == nil || match(Held{From: h.from.id, To: h.m.GetTo(), Type: h.m.GetType()}) {
			taken = append(taken, h)
		} else {
			kept = append(kept, h)
		}
	}
	n.held = kept
	return taken
}

// deliver carries m from member `from`, or holds it (Hold).
func (n *Network) deliver(from *Memory, m *raftpb.Message) {
	n.mu.Lock()
	if n.holding {
		// A copy: the sender's message is its own once Send returns.
		n.held = append(n.held, heldMessage{from: from, m: proto.Clone(m).(*raftpb.Message)})
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	n.deliverNow(from, m)
}

// deliverNow carries m from member `from` and reports the outcome to it.
func (n *Network) deliverNow(from *Memory, m *raftpb.Message) {
	to := m.GetTo()
	n.mu.Lock()
	dst, ok := n.members[to]
	if ok && dst.closed {
		ok = false
	}
	if ok && n.blocked(from.id, to, m.GetType()) {
		ok = false
	}
	refused := ok && dst.refuses(from.id)
	n.mu.Unlock()

	switch {
	case !ok:
		from.unreachable(m)
	case refused:
		// A member that removed the sender tells it so, as rafthttp's 410
		// does, so a removed member learns it must stop.
		from.inbox(messages.MemberRemoved{By: to})
	default:
		b, err := proto.Marshal(m)
		if err != nil {
			from.unreachable(m)
			return
		}
		var c raftpb.Message
		if err := proto.Unmarshal(b, &c); err != nil {
			from.unreachable(m)
			return
		}
		if c.GetType() == raftpb.MsgProp {
			c.From = new(from.id) // as HTTP delivers it: see checkAddressing
		}
		if c.GetType() == raftpb.MsgSnap && from.opts.SnapshotSource != nil && dst.opts.SnapshotSink != nil {
			// Outside net.mu: a transfer may take long, and the other
			// members go on sending meanwhile.
			if err := transferSnapshot(from.opts.SnapshotSource, dst.opts.SnapshotSink, m, &c); err != nil {
				from.unreachable(m)
				return
			}
		}
		n.mu.Lock()
		n.counts[m.GetType()]++
		n.mu.Unlock()
		dst.inbox(&c)
		if m.GetType() == raftpb.MsgSnap {
			from.inbox(messages.ReportSnapshot{ID: to, Status: raft.SnapshotFinish})
		}
	}
}

// transferSnapshot carries the data of a MsgSnap from the sender's source,
// as sent, to the receiver's sink, with the message as delivered.
func transferSnapshot(source SnapshotSource, sink SnapshotSink, sent, delivered *raftpb.Message) error {
	rc, err := source(sent)
	if err != nil {
		return fmt.Errorf("open the snapshot data: %w", err)
	}
	if rc == nil {
		return errNoSnapshotData
	}
	// The sink has the data or failed: a failed Close changes neither.
	defer func() { _ = rc.Close() }()
	r := &countingReader{r: rc}
	if err := sink(delivered, r); err != nil {
		return fmt.Errorf("save the snapshot data: %w", err)
	}
	if r.err != nil {
		return fmt.Errorf("the sink succeeded on a failed read: %w", r.err)
	}
	return checkDrained(r)
}

// Memory is one member's transport on a Network.
type Memory struct {
	net    *Network
	id     uint64
	inbox  Inbox
	opts   MemoryOptions
	joined time.Time

	// guarded by net.mu
	peers   map[uint64]string
	removed map[uint64]bool
	closed  bool
}

var _ Transport = (*Memory)(nil)

// Send implements Transport. Delivery happens before Send returns, into the
// peers' mailboxes, so it never waits on a peer's processing.
func (t *Memory) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		t.net.mu.Lock()
		_, known := t.peers[m.GetTo()]
		closed := t.closed
		t.net.mu.Unlock()
		if closed {
			return
		}
		if !known {
			t.unreachable(m)
			continue
		}
		t.net.deliver(t, m)
	}
}

func (t *Memory) unreachable(m *raftpb.Message) {
	t.inbox(messages.ReportUnreachable{ID: m.GetTo()})
	if m.GetType() == raftpb.MsgSnap {
		t.inbox(messages.ReportSnapshot{ID: m.GetTo(), Status: raft.SnapshotFailure})
	}
}

// refuses tells whether this member removed `from`. Called with net.mu held.
func (t *Memory) refuses(from uint64) bool { return t.removed[from] }

// AddPeer implements Transport.
func (t *Memory) AddPeer(id uint64, peerURL string) {
	if id == t.id {
		return
	}
	t.net.mu.Lock()
	t.peers[id] = peerURL
	delete(t.removed, id)
	t.net.mu.Unlock()
}

// RemovePeer implements Transport.
func (t *Memory) RemovePeer(id uint64) {
	t.net.mu.Lock()
	delete(t.peers, id)
	t.removed[id] = true
	t.net.mu.Unlock()
}

// ActiveSince implements Transport: a peer is active from the moment it
// joined the network for as long as it stays on it and no fault stops its
// messages reaching this member or this member's reaching it.
func (t *Memory) ActiveSince(id uint64) time.Time {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	p, ok := t.net.members[id]
	if !ok || p.closed || t.closed || t.net.cut[link{id, t.id}] || t.net.cut[link{t.id, id}] ||
		t.net.cut[link{id, 0}] || t.net.cut[link{0, id}] || t.net.cut[link{t.id, 0}] || t.net.cut[link{0, t.id}] {
		return time.Time{}
	}
	return p.joined
}

// Close implements Transport: the member leaves the network.
func (t *Memory) Close() error {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	t.closed = true
	if t.net.members[t.id] == t {
		delete(t.net.members, t.id)
	}
	return nil
}

func (t *Memory) String() string { return fmt.Sprintf("memory transport of member %d", t.id) }
