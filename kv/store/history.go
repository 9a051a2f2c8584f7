package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/messages"
)

// The history is the recent changes, in the db with the data they changed
// (the same transaction writes both), so that it survives restarts and goes
// to a follower with a snapshot's db. It serves two readers: watches that
// resume from a past revision, and reads of a range as it was at a past
// revision (continuations of a paged range), which undo the changes made
// since. For the second, and for watches that ask for prev_kv, each event
// keeps the key's previous record too.
//
//	key:   revision (8 bytes, big-endian) | sequence within it (4 bytes)
//	value: type | key | the record written (a put's) | the previous one
//
// It is bounded: once it holds more than DefaultHistoryEvents events or
// DefaultHistoryBytes bytes, its oldest revisions are dropped, whole, and
// the compacted revision says which it no longer holds.

// Bounds of the history, each with the reason for it.
const (
	// DefaultHistoryEvents is how many events are kept: about ten
	// minutes of a heavy write load (200 writes a second), long enough for a
	// watcher cut off by a restart or an overflow to resume.
	DefaultHistoryEvents = 100_000
	// DefaultHistoryBytes bounds the same in bytes, so that large values
	// cannot make it grow the db without bound: 64 MiB is the log bound
	// (the kv actor's DefaultSnapshotBytes) again.
	DefaultHistoryBytes = 64 << 20
)

// change is one key's change: the record written (a put's; a delete's has
// only modRev) and the one it replaced, if the key existed.
type change struct {
	typ     messages.EventType
	key     string
	cur     record
	prev    record
	existed bool
}

// event is the change as watchers see it, with the key's previous record
// when it existed. Its value aliases the change's; the previous value is
// copied, since it aliases the db's pages (Put and del read it from the
// write transaction), which are reused once the transaction commits while
// the watch hub may still hold the event.
func (c change) event() messages.Event {
	var e messages.Event
	if c.typ == messages.EventDelete {
		e = messages.Event{Type: messages.EventDelete, KV: messages.KV{Key: c.key, ModRevision: c.cur.modRev}}
	} else {
		e = messages.Event{Type: messages.EventPut, KV: c.cur.kv(c.key)}
	}
	if c.existed {
		p := c.prev.kv(c.key)
		p.Value = bytes.Clone(p.Value)
		e.Prev = &p
	}
	return e
}

func histKey(rev uint64, seq uint32) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 12), rev)
	return binary.BigEndian.AppendUint32(k, seq)
}

func histRev(k []byte) uint64 { return binary.BigEndian.Uint64(k[:8]) }

// encode writes the records in place, not through record.encode: every
// put on every member pays for it, and the two copies were two of its
// allocations. A delete's record (only its mod revision) is kept in the
// plain form whatever the key's lease was, as every layout kept it: its
// create revision is 0, which in front of a record marks the extended
// form.
func (c change) encode() []byte {
	cur := c.cur.size()
	if c.typ == messages.EventDelete {
		cur = c.cur.plainSize()
	}
	n := 2 + wire.UvarintLen(uint64(len(c.key))) + len(c.key) + wire.UvarintLen(uint64(cur)) + cur
	if c.existed {
		n += c.prev.size()
	}
	b := make([]byte, 0, n)
	b = append(b, byte(c.typ))
	b = binary.AppendUvarint(b, uint64(len(c.key)))
	b = append(b, c.key...)
	b = binary.AppendUvarint(b, uint64(cur))
	if c.typ == messages.EventDelete {
		b = c.cur.appendPlain(b)
	} else {
		b = c.cur.appendTo(b)
	}
	if c.existed {
		b = append(b, 1)
		return c.prev.appendTo(b)
	}
	return append(b, 0)
}

// errBadChange is decodeChange's error, made once: history reads decode
// every event, and an error value built per call cost watchers catching
// up a tenth of their CPU.
var errBadChange = fmt.Errorf("%w: history event", ErrBadDB)

// decodeChange parses a history value; its values alias b.
func decodeChange(b []byte) (change, error) {
	if len(b) < 1 {
		return change{}, errBadChange
	}
	c := change{typ: messages.EventType(b[0])}
	if c.typ != messages.EventPut && c.typ != messages.EventDelete {
		return change{}, errBadChange
	}
	r := wire.Reader{B: b[1:]}
	c.key = string(r.Bytes())
	cur := r.Bytes()
	if r.Err != nil || len(r.B) < 1 {
		return change{}, errBadChange
	}
	var err error
	if c.typ == messages.EventDelete {
		c.cur, err = decodePlainRecord(cur)
	} else {
		c.cur, err = decodeRecord(cur)
	}
	if err != nil {
		return change{}, err
	}
	if c.existed = r.B[0] == 1; c.existed {
		if c.prev, err = decodeRecord(r.B[1:]); err != nil {
			return change{}, err
		}
	} else if len(r.B) != 1 {
		return change{}, errBadChange
	}
	return c, nil
}

// recordChange appends a change made at revision rev to the history.
func (s *Store) recordChange(rev uint64, c change) error {
	if rev != s.histRev {
		s.histRev, s.histSeq = rev, 0
	}
	v := c.encode()
	if err := s.be.Tx().Bucket(bucketHistory).Put(histKey(rev, s.histSeq), v); err != nil {
		return fmt.Errorf("write the history: %w", err)
	}
	s.histSeq++
	s.meta.histEvents++
	s.meta.histBytes += uint64(len(v))
	return nil
}

// CompactHistory drops the oldest revisions, whole, while the history holds
// more than maxEvents events or maxBytes bytes.
func (s *Store) CompactHistory(maxEvents, maxBytes uint64) error {
	if err := s.trimCompacted(); err != nil {
		return err
	}
	if s.meta.histEvents <= maxEvents && s.meta.histBytes <= maxBytes {
		return nil
	}
	c := s.be.Tx().Bucket(bucketHistory).Cursor()
	k, v := s.oldestEvent(c)
	for k != nil && (s.meta.histEvents > maxEvents || s.meta.histBytes > maxBytes) {
		rev := histRev(k)
		for ; k != nil && histRev(k) == rev; k, v = s.oldestEvent(c) {
			if err := s.deleteEvent(c, k, v); err != nil {
				return err
			}
		}
		s.meta.compacted = rev
	}
	return nil
}

// oldestEvent positions c at the history's oldest event. Not Next after a
// Delete: bbolt's cursor skips an element when moved so; a Seek to the
// key just deleted lands on the one after it.
func (s *Store) oldestEvent(c *bolt.Cursor) (k, v []byte) {
	if s.histFloor == nil {
		return c.First()
	}
	return c.Seek(s.histFloor)
}

// deleteEvent deletes the event (k, v) under c, the oldest, and counts it
// out.
func (s *Store) deleteEvent(c *bolt.Cursor, k, v []byte) error {
	s.meta.histEvents--
	s.meta.histBytes -= uint64(len(v))
	s.histFloor = append(s.histFloor[:0], k...) // k is the page's, which the delete may reuse
	if err := c.Delete(); err != nil {
		return fmt.Errorf("compact the history: %w", err)
	}
	return nil
}

// Compact drops the history through rev, as etcd's Compact does: a read at
// rev or later is still served, one below it fails with a
// *messages.CompactedError, and a watch can resume from rev+1. It comes
// from a compaction entry (package apply), so every member compacts at the
// same point of the log. A rev at or below the compacted revision is a
// *messages.CompactedError, one past the store's revision
// messages.ErrFutureRevision (etcd's ErrCompacted and ErrFutureRev), and
// nothing changes. The events are deleted a batch at a time
// (trimCompacted), here and after each apply.
func (s *Store) Compact(rev uint64) error {
	switch {
	case rev <= s.meta.compacted:
		return &messages.CompactedError{Revision: rev, Compacted: s.meta.compacted}
	case rev > s.Revision():
		return fmt.Errorf("%w: compaction at %d, the store is at %d", messages.ErrFutureRevision, rev, s.Revision())
	}
	s.meta.compacted = rev
	return s.trimCompacted()
}

// trimBatch bounds the history events one apply deletes for an explicit
// compaction: the compacted revision moves at once (reads and watches
// below it are refused from then on), and the events below it are deleted
// a batch an apply, so that compacting a long history never holds the
// state machine, and every request behind it, for long: 1,000 deletes
// take about a millisecond, and bbolt rebalances what they emptied when
// the batch commits.
const trimBatch = 1_000

// trimCompacted deletes up to trimBatch of the events at or below the
// compacted revision.
func (s *Store) trimCompacted() error {
	c := s.be.Tx().Bucket(bucketHistory).Cursor()
	n := 0
	for k, v := s.oldestEvent(c); k != nil && histRev(k) <= s.meta.compacted && n < trimBatch; k, v = s.oldestEvent(c) {
		if err := s.deleteEvent(c, k, v); err != nil {
			return err
		}
		n++
	}
	return nil
}

// readEvents calls fn for the events of tx's history with revision ≥ from,
// whole revisions at a time, until at least maxEvents were passed. through
// is the last revision covered; see Store.ReadEvents.
func readEvents(tx *bolt.Tx, m meta, from uint64, maxEvents int, fn func(messages.Event)) (through uint64, err error) {
	maxEvents = max(maxEvents, 1) // progress on every call
	if from <= m.compacted {
		return 0, &messages.CompactedError{Revision: from, Compacted: m.compacted}
	}
	bk := tx.Bucket(bucketHistory)
	if bk == nil {
		// A db of layout raftkv-1 not yet upgraded: no history, its
		// revision is its compacted one, so there is nothing after it.
		return max(from-1, m.revision, FirstRevision), nil
	}
	through = from - 1
	n := 0
	c := bk.Cursor()
	for k, v := c.Seek(histKey(from, 0)); k != nil; k, v = c.Next() {
		rev := histRev(k)
		if rev != through && n >= maxEvents {
			return through, nil
		}
		ch, err := decodeChange(v)
		if err != nil {
			return 0, err
		}
		ev := ch.event() // its Prev is a copy already
		ev.KV.Value = bytes.Clone(ev.KV.Value)
		fn(ev)
		n++
		through = rev
	}
	// Read to the end: every revision up to the db's is covered, those
	// without an event included.
	return max(through, m.revision, FirstRevision), nil
}

// undoSince returns, for each key in [start, end) changed after revision
// rev, the record it had at rev (absent: ok false), by walking the history
// after rev and keeping the previous record of each key's first change.
func (s *Store) undoSince(rev uint64, start, end string) (map[string]*record, error) {
	if rev < s.meta.compacted {
		return nil, &messages.CompactedError{Revision: rev, Compacted: s.meta.compacted}
	}
	undo := make(map[string]*record)
	c := s.be.Tx().Bucket(bucketHistory).Cursor()
	for k, v := c.Seek(histKey(rev+1, 0)); k != nil; k, v = c.Next() {
		ch, err := decodeChange(v)
		if err != nil {
			return nil, err
		}
		if !InRange(ch.key, start, end) {
			continue
		}
		if _, seen := undo[ch.key]; seen {
			continue
		}
		if !ch.existed {
			undo[ch.key] = nil
			continue
		}
		p := ch.prev
		p.value = bytes.Clone(p.value)
		undo[ch.key] = &p
	}
	return undo, nil
}
