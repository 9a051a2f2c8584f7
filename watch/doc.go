// Package watch serves a member's watches: streams of the changes to one
// key or to the keys under a prefix, from a past revision or from now on.
//
// The Hub actor (spawned by the node as "watch") owns the live watchers,
// the store revision it has seen, the revision the db holds durably, and
// the events it received after that revision (its tail). It takes, from
// the kv actor, in apply order:
//
//   - messages.WatchEvents after each apply: it groups the events by
//     revision, encodes each revision's JSON once (once more with the
//     keys' previous records, for watchers that ask for them: prev_kv) and
//     hands it to every watcher whose filter takes all of it (a filtered
//     copy to one that takes only part), without ever waiting on a
//     watcher: a watcher whose queue is full is ended ("overflow");
//   - messages.WatchCommitted after each db commit: the tail is trimmed;
//   - messages.WatchReset when a snapshot replaced the state: every watch
//     ends ("reset").
//
// From the node it takes StopWatches, before the client API shuts down:
// every watch ends ("stopping") and no new one opens, so that open streams
// do not hold the HTTP server's graceful shutdown up. It sends nothing to
// other actors: what it has for a watcher goes into that watcher's queue.
//
// A Stream (Open) is one watch, read from the goroutine that serves it.
// Catching up from a past revision reads the db's history (History) on that
// goroutine, never in the hub, so that a slow reader stalls neither the hub
// nor the kv actor; then the stream asks the hub to go live from the
// revision it read through, and the hub hands it the tail after that
// revision and the live events from then on, in one step of its mailbox, so
// that nothing is missed or sent twice. Every ProgressInterval the hub puts
// a progress mark, its revision, in each live watcher's queue behind what
// is already there; Progress asks for one now (etcd's progress request).
//
// An item of events carries, beside their JSON, the events themselves
// (Events), shared as the JSON is, so that another door (etcd's gRPC API)
// encodes a revision once for all its watchers too (Events.Encoding).
//
// Files: hub.go (the actor), config.go, protocol.go (the messages between
// streams and the hub), queue.go (a watcher's bounded queue), group.go
// (revisions and their JSON), events.go (a revision's events shared among
// watchers), index.go (which watcher takes which key), stream.go (Open,
// Next, Close, Progress), filter.go, history.go, item.go, errors.go.
package watch
