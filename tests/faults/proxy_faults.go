package faults

import "context"

// link is the direction from one member to another.
type link struct{ from, to uint64 }

// faultSet is what is cut: single directions, and members cut from all.
type faultSet struct {
	cut      map[link]bool
	isolated map[uint64]bool
}

func newFaultSet() faultSet {
	return faultSet{cut: make(map[link]bool), isolated: make(map[uint64]bool)}
}

func (f faultSet) blocks(from, to uint64) bool {
	if from == to {
		return false
	}
	return f.cut[link{from, to}] || f.isolated[from] || f.isolated[to]
}

// CutOneWay stops every raft message from member from reaching member to,
// while to's messages still reach from. Streams already carrying from's
// messages to to are closed.
func (n *Net) CutOneWay(from, to uint64) {
	n.change(func(f faultSet) { f.cut[link{from, to}] = true })
}

// Cut stops raft messages between a and b in both directions.
func (n *Net) Cut(a, b uint64) {
	n.change(func(f faultSet) {
		f.cut[link{a, b}] = true
		f.cut[link{b, a}] = true
	})
}

// Isolate cuts member id from every other member, including members added
// to the Net later.
func (n *Net) Isolate(id uint64) {
	n.change(func(f faultSet) { f.isolated[id] = true })
}

// Heal removes every fault. Requests held by a fault are still dropped, as
// a partition loses what was in flight; the members' next ones pass.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = newFaultSet()
	n.wake()
}

// change applies a fault and closes the open streams it now blocks: a
// partition does not spare a connection that happened to be open.
func (n *Net) change(apply func(faultSet)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	apply(n.faults)
	for s := range n.streams {
		if n.faults.blocks(s.src, s.dst) {
			s.cancel()
			delete(n.streams, s)
		}
	}
	n.wake()
}

// wake tells held requests that the faults changed. Called with n.mu held.
func (n *Net) wake() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// hold reports whether from→to is cut and, if so, blocks until it is not,
// ctx is done or the Net closes: the caller then drops the request.
func (n *Net) hold(ctx context.Context, from, to uint64) bool {
	held := false
	for {
		n.mu.Lock()
		blocked := n.faults.blocks(from, to)
		changed := n.changed
		n.mu.Unlock()
		if !blocked {
			return held
		}
		held = true
		n.setHolding(+1)
		select {
		case <-changed:
			n.setHolding(-1)
		case <-ctx.Done():
			n.setHolding(-1)
			return true
		}
	}
}

// track registers a stream about to be forwarded, unless its direction is
// cut. Checking and registering under one lock means a Cut that races with
// the dial either refuses the stream or closes it, never misses it.
func (n *Net) track(s *openStream) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.faults.blocks(s.src, s.dst) {
		return false
	}
	n.streams[s] = struct{}{}
	return true
}

func (n *Net) untrack(s *openStream) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.streams, s)
}

// setHolding counts the requests held right now, so tests can tell a held
// request from one that has not reached the proxy yet.
func (n *Net) setHolding(d int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.holding += d
}
