package main

import "time"

// result is a finished run.
type result struct {
	cfg       config
	endpoints []string // where the clients sent their requests
	elapsed   time.Duration
	reads     *opStats // nil when the command does not read
	writes    *opStats // nil when the command does not write
}

// all is the reads and writes together.
func (r *result) all() *opStats {
	s := newOpStats()
	s.merge(r.reads)
	s.merge(r.writes)
	return s
}
