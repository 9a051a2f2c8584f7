package main

import (
	"sync/atomic"
	"time"
)

// control is the little state the clients share: whether to go on, and
// running totals for the progress bar. Everything else a client measures
// stays its own until the run is over.
type control struct {
	total    uint64    // requests to issue; 0 means until the deadline
	deadline time.Time // zero when total is set
	issued   atomic.Uint64
	stopped  atomic.Bool
	ok       atomic.Uint64 // acknowledged so far
	failed   atomic.Uint64 // errors so far
}

// claim reports whether the client may issue one more request; now is the
// caller's latest clock reading. With a total, the counter hands out exactly
// total claims however many clients race for them.
func (c *control) claim(now time.Time) bool {
	if c.stopped.Load() {
		return false
	}
	if c.total > 0 {
		return c.issued.Add(1) <= c.total
	}
	return now.Before(c.deadline)
}

// stop ends the run early: clients finish the request they are in, since
// its answer may be an acknowledged write that must be counted.
func (c *control) stop() { c.stopped.Store(true) }

func (c *control) done(o outcome) {
	if o == outcomeOK {
		c.ok.Add(1)
	} else {
		c.failed.Add(1)
	}
}
