package watch

import "github.com/raftkv/node/messages"

// History reads the events the member's db holds durably (committed).
// *kv.State implements it.
type History interface {
	// ReadEvents calls fn for every event with revision >= from, in order,
	// whole revisions at a time, stopping once at least maxEvents were passed
	// (a revision is never split). through is the last revision covered: every
	// event with from <= revision <= through was passed; through >= from-1,
	// and when through equals the db's committed revision the history is read
	// to its end. from at or below the history's compacted revision fails with
	// a *messages.CompactedError. The Event's Value is a copy, safe to keep.
	ReadEvents(from uint64, maxEvents int, fn func(messages.Event)) (through uint64, err error)
}
