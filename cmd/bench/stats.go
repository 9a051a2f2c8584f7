package main

import "time"

// errorCounts counts failed requests by kind.
type errorCounts struct {
	unavailable uint64 // 503
	timeout     uint64 // 504
	otherStatus uint64 // any other non-2xx
	transport   uint64
	badReply    uint64
	conflict    uint64         // cas: 412 with one writer per key; txn: compare failed
	short       uint64         // range: fewer keys than asked for
	byStatus    map[int]uint64 // the statuses behind otherStatus
}

func (e *errorCounts) total() uint64 {
	return e.unavailable + e.timeout + e.otherStatus + e.transport + e.badReply + e.conflict + e.short
}

func (e *errorCounts) merge(o *errorCounts) {
	e.unavailable += o.unavailable
	e.timeout += o.timeout
	e.otherStatus += o.otherStatus
	e.transport += o.transport
	e.badReply += o.badReply
	e.conflict += o.conflict
	e.short += o.short
	for s, n := range o.byStatus {
		if e.byStatus == nil {
			e.byStatus = make(map[int]uint64)
		}
		e.byStatus[s] += n
	}
}

// opStats is what one client measured for one kind of operation. The
// latency of failed requests is left out: a 504 after the node's own
// timeout says nothing about how fast acknowledged operations are.
type opStats struct {
	ok     uint64
	items  uint64 // range: keys read by the acknowledged operations
	errors errorCounts
	lat    *histogram
}

func newOpStats() *opStats { return &opStats{lat: newHistogram()} }

// add records one request. Only the error path may allocate (byStatus).
func (s *opStats) add(o outcome, status int, lat time.Duration) {
	switch o {
	case outcomeOK:
		s.ok++
		s.lat.record(lat)
	case outcomeUnavailable:
		s.errors.unavailable++
	case outcomeTimeout:
		s.errors.timeout++
	case outcomeStatus:
		s.errors.otherStatus++
		if s.errors.byStatus == nil {
			s.errors.byStatus = make(map[int]uint64)
		}
		s.errors.byStatus[status]++
	case outcomeTransport:
		s.errors.transport++
	case outcomeBadReply:
		s.errors.badReply++
	case outcomeConflict:
		s.errors.conflict++
	case outcomeShort:
		s.errors.short++
	}
}

func (s *opStats) requests() uint64 { return s.ok + s.errors.total() }

func (s *opStats) merge(o *opStats) {
	if o == nil {
		return
	}
	s.ok += o.ok
	s.items += o.items
	s.errors.merge(&o.errors)
	s.lat.merge(o.lat)
}
