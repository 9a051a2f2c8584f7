package apply

import (
	"errors"
	"fmt"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/kv/store"
)

// Snapshots of the previous layout carried the whole state inline, in a
// format of their own; a data dir that has no db yet is migrated from its
// newest one (see kv.OpenState). The layout:
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
func restoreLegacy(s *store.Store, b []byte, rev uint64) error {
	if len(b) == 0 {
		return nil
	}
	var magic string
	if len(b) >= len(legacyMagicV3) {
		magic = string(b[:len(legacyMagicV3)])
	}
	if magic != legacyMagicV3 && magic != legacyMagicV2 && magic != legacyMagicV1 {
		return fmt.Errorf("%w: bad magic", store.ErrBadSnapshot)
	}
	r := wire.Reader{B: b[len(legacyMagicV3):]}
	n := r.Uvarint()
	for i := uint64(0); i < n && r.Err == nil; i++ {
		id := r.Uvarint()
		u := string(r.Bytes())
		if r.Err == nil {
			if err := s.AddMember(id, u); err != nil {
				return err
			}
		}
	}
	if magic != legacyMagicV1 {
		n = r.Uvarint()
		for i := uint64(0); i < n && r.Err == nil; i++ {
			if id := r.Uvarint(); r.Err == nil {
				if err := s.RemoveMember(id); err != nil {
					return err
				}
			}
		}
	}
	if magic == legacyMagicV3 {
		n = r.Uvarint()
		for i := uint64(0); i < n && r.Err == nil; i++ {
			id := r.Uvarint()
			k := r.Uvarint()
			if r.Err == nil && k > uint64(len(r.B)) { // each URL takes a byte at least
				r.Err = fmt.Errorf("%d client URLs past the end", k)
			}
			urls := make([]string, 0, min(k, uint64(len(r.B))))
			for j := uint64(0); j < k && r.Err == nil; j++ {
				urls = append(urls, string(r.Bytes()))
			}
			if r.Err == nil {
				if err := s.SetClients(id, urls); err != nil {
					return err
				}
			}
		}
	}
	n = r.Uvarint()
	for i := uint64(0); i < n && r.Err == nil; i++ {
		k := string(r.Bytes())
		v := r.Bytes()
		if r.Err == nil && k == "" {
			r.Err = errors.New("an empty key")
		}
		if r.Err == nil {
			if err := s.Load(k, v, rev); err != nil {
				return err
			}
		}
	}
	if r.Err != nil {
		return fmt.Errorf("%w: %w", store.ErrBadSnapshot, r.Err)
	}
	if len(r.B) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", store.ErrBadSnapshot, len(r.B))
	}
	return nil
}
