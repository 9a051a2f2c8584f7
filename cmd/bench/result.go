package main

import "time"

// result is a finished run.
type result struct {
	cfg       config
	endpoints []string // where the clients sent their requests
	elapsed   time.Duration
	reads     *opStats // nil when the command does not read
	writes    *opStats // nil when the command does not write
	// refused is cas's 412s under --contention: completed operations,
	// counted apart from the writes; nil otherwise.
	refused *opStats
	watch   *watchStats // of a watch run
}

// all is the reads and writes together.
func (r *result) all() *opStats {
	s := newOpStats()
	s.merge(r.reads)
	s.merge(r.writes)
	s.merge(r.refused)
	return s
}
