package store

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/raftkv/node/messages"
)

// Limits of a range read, each with the reason for it.
const (
	// DefaultRangeLimit is the page a range read returns when it names
	// none: enough for most listings in one answer, small enough that a
	// careless `?prefix=` does not copy the whole store.
	DefaultRangeLimit = 1000
	// MaxRangeLimit bounds a page: the read runs on the kv actor, between
	// applies, and 10,000 keys take it a few milliseconds.
	MaxRangeLimit = 10_000
)

// RangeEndAll as a range's end means every key from its start on, as in
// etcd: no key sorts below it but the empty key, which the store refuses.
const RangeEndAll = "\x00"

// InRange says whether key is in [start, end), with end "" meaning start
// alone and RangeEndAll no upper bound.
func InRange(key, start, end string) bool {
	switch end {
	case "":
		return key == start
	case RangeEndAll:
		return key >= start
	}
	return key >= start && key < end
}

// CheckRange refuses a range that names nothing.
func CheckRange(start, end string) error {
	if start == "" && end != RangeEndAll {
		return fmt.Errorf("%w: a range needs a start key, or the end %q for every key", messages.ErrInvalidTxn, RangeEndAll)
	}
	return nil
}

// LimitOf is the page a range read returns.
func LimitOf(r messages.Range) int {
	switch {
	case r.Limit <= 0:
		return DefaultRangeLimit
	case r.Limit > MaxRangeLimit:
		return MaxRangeLimit
	}
	return r.Limit
}

// Range reads r as written, or as it was at r.Revision: the keys changed
// since are merged in as they were then. Values are copied out of the
// transaction.
func (s *Store) Range(r messages.Range) (messages.OpResult, error) {
	if err := CheckRange(r.Start, r.End); err != nil {
		return messages.OpResult{}, err
	}
	if r.Revision > s.Revision() {
		return messages.OpResult{}, fmt.Errorf("%w: %d, the store is at %d", messages.ErrFutureRevision, r.Revision, s.Revision())
	}
	var undo map[string]*record
	if r.Revision != 0 && r.Revision < s.meta.revision {
		var err error
		if undo, err = s.undoSince(r.Revision, r.Start, r.End); err != nil {
			return messages.OpResult{}, err
		}
	}
	then := slices.Sorted(maps.Keys(undo))
	var res messages.OpResult
	limit := LimitOf(r)
	emit := func(key string, rec record) bool {
		if r.CountOnly {
			res.Count++
			return true
		}
		if len(res.KVs) == limit {
			res.More = true
			return false
		}
		kv := rec.kv(key)
		kv.Value = nil
		if !r.KeysOnly {
			kv.Value = bytes.Clone(rec.value)
		}
		res.KVs = append(res.KVs, kv)
		return true
	}
	c := s.be.Tx().Bucket(bucketKV).Cursor()
	k, v := c.Seek([]byte(r.Start))
	for i := 0; ; {
		now := k != nil && InRange(string(k), r.Start, r.End)
		if !now && i == len(then) {
			break
		}
		if i < len(then) && (!now || then[i] <= string(k)) {
			key := then[i]
			i++
			if now && string(k) == key {
				k, v = c.Next() // changed since: the record of then wins
			}
			if rec := undo[key]; rec != nil && !emit(key, *rec) {
				break
			}
			continue
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return messages.OpResult{}, err
		}
		if !emit(string(k), rec) {
			break
		}
		k, v = c.Next()
	}
	if !r.CountOnly {
		res.Count = len(res.KVs)
	}
	return res, nil
}
