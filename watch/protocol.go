package watch

import (
	"sync/atomic"

	"github.com/raftkv/node/metrics"
)

// The messages between a Stream and the hub. A stream asks with a future
// from its own goroutine; the hub answers in mailbox order, so a request
// sees every event the kv actor sent before it.

// openWatch asks for a watch of filter from revision start (0: after the
// hub's revision), its events with their previous records if prevKV.
// Answered with opened, or an error: ErrTooManyWatchers,
// messages.ErrStopped.
type openWatch struct {
	q      *queue
	filter Filter
	start  uint64
	prevKV bool
}

// opened answers openWatch. Live says the hub already gives the watcher
// the events after revision after; otherwise the stream first reads the
// db's history from after+1 through at least committed, then sends goLive.
type opened struct {
	revision  uint64 // the hub's: what the stream starts after, without a start
	after     uint64
	committed uint64
	live      bool
	metrics   *metrics.Watch
	watchers  *atomic.Int64 // the hub's count of open watches
}

// goLive asks the hub to give the watcher everything after through: the
// stream read the db's history that far.
type goLive struct {
	q       *queue
	through uint64
}

// wentLive answers goLive. Not ok: the db committed past through since
// (the hub no longer holds the events between): read it through committed
// first. A watcher the hub ended meanwhile is answered ok: its queue holds
// the end.
type wentLive struct {
	ok        bool
	committed uint64
}

// closeWatch tells the hub a stream is done (its client left, or it ended).
type closeWatch struct{ q *queue }

// progressRequest asks the hub for a progress mark in each queue's watcher
// (Progress). Answered with the hub's revision (uint64).
type progressRequest struct{ qs []*queue }

// progressTick is the hub's timer: time to give each live watcher a
// progress mark.
type progressTick struct{}

// StopWatches ends every watch with ReasonStopping and refuses new ones
// (messages.ErrStopped). The node sends it before it shuts the client API
// down: a stream otherwise lives as long as its client, and would hold the
// HTTP server's graceful shutdown up. Answered with WatchesStopped.
type StopWatches struct{}

// WatchesStopped answers StopWatches.
type WatchesStopped struct{}
