package kv

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// waiter is a client request parked until the log settles it.
type waiter struct {
	reply    *actor.PID // the HTTP handler's future
	deadline time.Time
	req      any    // reads only: the messages.Get or messages.Range
	index    uint64 // reads only: the read index, once known
}

// waiters is a registry of parked requests by id, as etcd's pkg/wait, on
// the kv actor's goroutine alone: a request is registered when proposed
// (or sent for a read index) and taken out exactly once, by its answer,
// its failure or its deadline.
type waiters map[uint64]*waiter

// take removes and returns the request of id, if it waits here.
func (ws waiters) take(id uint64) (*waiter, bool) {
	w, ok := ws[id]
	if ok {
		delete(ws, id)
	}
	return w, ok
}

// expire removes the requests past their deadline, calling fail for each.
// The HTTP handler has given up on them already; this only frees memory
// and tells a late future nothing new.
func (ws waiters) expire(now time.Time, fail func(*waiter)) {
	for id, w := range ws {
		if now.After(w.deadline) {
			fail(w)
			delete(ws, id)
		}
	}
}

// drain removes every request, calling fail for each.
func (ws waiters) drain(fail func(*waiter)) {
	for id, w := range ws {
		fail(w)
		delete(ws, id)
	}
}
