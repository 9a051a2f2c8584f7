package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// pinned is a protoactor dispatcher that runs one actor's mailbox on a
// goroutine of its own, kept for the member's life, instead of protoactor's
// default of a new goroutine each time the mailbox turns non-empty.
//
// Why: the raft, kv, wal, snapshotter and watch hub actors run thousands of
// times a second under load, and each run on a fresh goroutine started on a
// small stack and grew it again (runtime.newstack and copystack, then
// goexit): 10 % of the leader's CPU at 64 clients (BENCHMARKS.md, "Where the
// time goes"). A goroutine that stays keeps the stack it grew.
//
// A mailbox schedules at most one run at a time (it swaps idle for running
// before it calls Schedule), and a run ends by going idle, so at most one run
// is ever waiting while another finishes: a buffer of one means Schedule
// never blocks the sender.
type pinned struct {
	runs   chan func()
	closed atomic.Bool
}

// pinnedThroughput is how many messages a run handles before it yields the
// processor, protoactor's default (actor.defaultDispatcher).
const pinnedThroughput = 300

func newPinned() *pinned {
	p := &pinned{runs: make(chan func(), 1)}
	go p.loop()
	return p
}

// loop runs the mailbox until close sends it nil.
func (p *pinned) loop() {
	for run := range p.runs {
		if run == nil {
			return
		}
		run()
	}
}

// Schedule implements actor.Dispatcher. After close, a run is dropped: the
// actor has stopped, and what reaches its mailbox then is not read.
func (p *pinned) Schedule(run func()) {
	if p.closed.Load() {
		return
	}
	p.runs <- run
}

// Throughput implements actor.Dispatcher.
func (p *pinned) Throughput() int { return pinnedThroughput }

// close ends the goroutine once the run it holds, if any, is over; its
// actor must have stopped, so that no run is scheduled meanwhile.
func (p *pinned) close() {
	if p.closed.CompareAndSwap(false, true) {
		p.runs <- nil
	}
}

var _ actor.Dispatcher = (*pinned)(nil)
