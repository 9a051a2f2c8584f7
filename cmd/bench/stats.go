package main

import "time"

// outcome is how one request ended. Only outcomeOK is an acknowledged
// operation; every other outcome is an error of its own kind.
type outcome uint8

const (
	outcomeOK          outcome = iota // 2xx, with the answer asked for
	outcomeUnavailable                // 503: no leader, nothing proposed
	outcomeTimeout                    // 504: the node gave up; a write may still land
	outcomeStatus                     // any other status, e.g. 404 for a preloaded key
	outcomeTransport                  // no answer: refused, reset, client-side timeout
	outcomeBadReply                   // 2xx whose body is not the answer asked for
	outcomeConflict                   // the write's condition did not hold: a 412, a failed compare
	outcomeShort                      // a range answer with fewer keys than the range holds
	numOutcomes
)

func (o outcome) String() string {
	return [...]string{"ok", "503 no leader", "504 timeout", "unexpected status", "no answer", "bad reply",
		"precondition failed", "short range"}[o]
}

// uncertain says whether a write that ended with o may still have been
// applied, so that the revision the client knows may no longer be its
// key's. A 503 proposed nothing; a 412 or a failed compare wrote nothing.
func (o outcome) uncertain() bool {
	return o != outcomeOK && o != outcomeUnavailable && o != outcomeConflict
}

// opStats is what one client measured for one kind of operation: requests
// by outcome, and the latency of the acknowledged ones only, since a 504
// after the node's own timeout says nothing about how fast they are.
type opStats struct {
	n        [numOutcomes]uint64
	byStatus map[int]uint64 // the statuses behind outcomeStatus
	items    uint64         // range: keys read by the acknowledged operations
	lat      *histogram
}

func newOpStats() *opStats { return &opStats{lat: newHistogram()} }

// add records one request; only a status error allocates (byStatus).
func (s *opStats) add(o outcome, status int, lat time.Duration) {
	s.n[o]++
	switch o {
	case outcomeOK:
		s.lat.record(lat)
	case outcomeStatus:
		s.countStatus(status, 1)
	}
}

func (s *opStats) countStatus(status int, n uint64) {
	if s.byStatus == nil {
		s.byStatus = make(map[int]uint64)
	}
	s.byStatus[status] += n
}

func (s *opStats) ok() uint64     { return s.n[outcomeOK] }
func (s *opStats) errors() uint64 { return s.requests() - s.ok() }

func (s *opStats) requests() (n uint64) {
	for _, c := range s.n {
		n += c
	}
	return n
}

// merge adds o to s; either may be nil, a kind the command does not count.
func (s *opStats) merge(o *opStats) {
	if s == nil || o == nil {
		return
	}
	for i, c := range o.n {
		s.n[i] += c
	}
	for status, c := range o.byStatus {
		s.countStatus(status, c)
	}
	s.items += o.items
	s.lat.merge(o.lat)
}
