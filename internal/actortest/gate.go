// Package actortest holds what tests of several packages need to drive
// protoactor actors deterministically. Only tests import it.
package actortest

import "sync"

// Gate is a protoactor dispatcher that can hold an actor's mailbox: while
// closed, the mailbox is not run, so everything sent meanwhile queues up, as
// it does under load. Spawn the actor with actor.WithDispatcher(gate).
type Gate struct {
	mu      sync.Mutex
	closed  bool
	held    []func()
	running sync.WaitGroup // mailbox runs started before Close
}

// Schedule implements protoactor's dispatcher.
func (g *Gate) Schedule(fn func()) {
	g.mu.Lock()
	if g.closed {
		g.held = append(g.held, fn)
		g.mu.Unlock()
		return
	}
	g.running.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.running.Done()
		fn()
	}()
}

// Throughput implements protoactor's dispatcher: messages per mailbox run.
func (g *Gate) Throughput() int { return 300 }

// Close holds the mailbox from now on. It waits for a run already going to
// end: that run would otherwise go on taking messages sent after Close.
func (g *Gate) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.running.Wait()
}

// Open runs the mailbox again, with everything queued while it was closed.
func (g *Gate) Open() {
	g.mu.Lock()
	g.closed = false
	held := g.held
	g.held = nil
	g.mu.Unlock()
	for _, fn := range held {
		g.Schedule(fn)
	}
}
