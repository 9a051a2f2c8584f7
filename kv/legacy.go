package kv

import (
	"fmt"
)

// Snapshots of the previous layout carried the whole state inline, in a
// format of their own; a data dir that has no db yet is migrated from its
// newest one (see OpenState). The layout:
//
//	magic | n members | (id | url length | url)… | n removed | id… |
//	n published | (id | n urls | (url length | url)…)… | n keys | (key length | key | value length | value)…
//
// with every integer a uvarint. Version 2 lacks the client URLs, version 1
// the removed ids too.
const (
	legacyMagicV3 = "RKV3"
	legacyMagicV2 = "RKV2"
	legacyMagicV1 = "RKV1"
)

// restoreLegacy writes a snapshot of the previous layout into s, which is
// empty, with every key at revision rev. Empty data is an empty state.
func restoreLegacy(s *store, b []byte, rev uint64) error {
	if len(b) == 0 {
		return nil
	}
	var magic string
	if len(b) >= len(legacyMagicV3) {
		magic = string(b[:len(legacyMagicV3)])
	}
	if magic != legacyMagicV3 && magic != legacyMagicV2 && magic != legacyMagicV1 {
		return fmt.Errorf("%w: bad magic", ErrBadSnapshot)
	}
	r := reader{b: b[len(legacyMagicV3):]}
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.uvarint()
		u := string(r.bytes())
		if r.err == nil {
			if err := s.addMember(id, u); err != nil {
				return err
			}
		}
	}
	if magic != legacyMagicV1 {
		n = r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			if id := r.uvarint(); r.err == nil {
				if err := s.removeMember(id); err != nil {
					return err
				}
			}
		}
	}
	if magic == legacyMagicV3 {
		n = r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			id := r.uvarint()
			k := r.uvarint()
			if r.err == nil && k > uint64(len(r.b)) { // each URL takes a byte at least
				r.err = fmt.Errorf("%w: %d client URLs past the end", ErrBadSnapshot, k)
			}
			urls := make([]string, 0, min(k, uint64(len(r.b))))
			for j := uint64(0); j < k && r.err == nil; j++ {
				urls = append(urls, string(r.bytes()))
			}
			if _, ok := s.members[id]; ok && r.err == nil {
				if err := s.setClients(id, urls); err != nil {
					return err
				}
			}
		}
	}
	n = r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := string(r.bytes())
		v := r.bytes()
		if r.err == nil && k == "" {
			r.err = fmt.Errorf("%w: an empty key", ErrBadSnapshot)
		}
		if r.err == nil {
			if err := s.be.load(k, v, rev); err != nil {
				return err
			}
		}
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(r.b))
	}
	return nil
}
