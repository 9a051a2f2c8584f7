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

// expired drops the waiters past their deadline from m, calling fail for each.
// The HTTP handler has given up on them already; this only frees memory and
// tells a late future nothing new.
func expired(m map[uint64]*waiter, now time.Time, fail func(*waiter)) {
	for id, w := range m {
		if now.After(w.deadline) {
			fail(w)
			delete(m, id)
		}
	}
}
