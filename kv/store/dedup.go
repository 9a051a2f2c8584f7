package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/kv/reqid"
)

// Applying a command at most once.
//
// A proposal this member forwarded to a leader that died before appending
// it is lost without a word, so the kv actor proposes every proposal in
// flight again once a new leader is known (package kv, repropose.go). The copy is
// byte for byte the proposal: its batch id and each command's request id
// are the same. But the first copy may not have been lost (the old leader
// appended it, and the new one holds and commits it), so the log may hold
// a command twice, and applying it twice would write a second revision of
// a put, run a transaction twice, decide a compare twice. The state machine
// therefore applies a command only the first time its request id comes,
// by a rule every member follows alike.
//
// The rule. A request id x is a proposer prefix P (x>>48, the proposing
// member's id, low 16 bits) and a 48-bit counter (package reqid): each process
// counts up from the wall time at its start, one per id, so one
// proposer's ids come in increasing order, modulo 2^48 (serial number
// arithmetic, RFC 1982: a is behind b when (b-a) mod 2^48 < 2^47). The
// state keeps, per prefix P, hi_P, the furthest id of P applied, and the
// set S_P of the ids of P applied that are less than dedupWindow behind
// hi_P. A command of id x (native format; id 0, "no request", is always
// applied) is
//
//   - skipped if x is in S_P (a duplicate), or if x is dedupWindow or more
//     behind hi_P (too old to tell: treated as a duplicate);
//   - otherwise applied (or refused, or failed for the quota: whatever the
//     apply decides), and recorded: x joins S_P and, if it is ahead of
//     hi_P, becomes hi_P.
//
// A skipped command changes nothing and answers no one: its client, if it
// waits here, was answered when the first copy was applied (unless that
// copy came in a db received with a snapshot, which proves no outcome of a
// transaction or a delete: the applier's Replay; or the copy is a first one too old
// to tell): it hears, at its timeout, that the outcome is unknown.
//
// Why no command is applied twice. After x is applied, hi_P is x or ahead
// of it, and hi_P only moves ahead. When a copy of x comes later, x is
// either less than dedupWindow behind hi_P, and then in S_P (ids leave
// S_P only once dedupWindow behind hi_P, and their distance behind it only
// grows), or dedupWindow or more behind, and skipped as too old. Either way
// it is skipped. This holds whatever the timing, for as long as hi_P
// advances by less than 2^47 - dedupWindow ids between the two copies.
//
// Why every member decides alike. The decision reads only x and the state
// (S_P, hi_P), and S_P and hi_P are part of the replicated state: kept in
// the db's dedup bucket, written in the same transaction as the data, so
// they are as of the db's applied index at every restart, go to a follower
// with the db, and are rebuilt by the same rule when a db is rebuilt from
// the log. Entries at or below the db's applied index are not applied again
// (the applier's replay), so they do not record again either. The raftexample
// format skips nothing: its members would apply a duplicate, so ours must
// too, and it is never proposed twice (only the native format keeps
// proposals in flight to propose again).
//
// What it costs. A first copy that comes when its proposer has had
// dedupWindow later ids applied is skipped too: its client, long timed out
// (the kv actor proposes a copy only before the request's deadline), was
// told the outcome is unknown, and it is: not applied. dedupWindow (2^18)
// is more ids than one member makes in the 5 s request timeout at any rate
// this node reaches (about 50,000 writes and reads a second). Two members
// whose ids share their low 16 bits share a prefix: an id both make is
// applied once, and a member whose counter is dedupWindow behind the
// other's has its writes skipped: give members ids that differ in their
// low 16 bits (package reqid has the same rule for answers).
//
// The set is a bitmap of 64-id blocks, so a busy proposer costs about 4,100
// small keys, and each command a lookup and a put in the write
// transaction; blocks that fell out of the window are deleted when hi_P
// enters a new block (which records fall out does not change a decision:
// an id out of the window is skipped either way).
const (
	dedupWindow    = 1 << 18
	dedupBlockBits = 6 // 64 ids a block
)

// bucketDedup holds, per proposer prefix P: under the 2-byte key P (big
// endian), hi_P's counter (8 bytes); under the 8-byte key P<<48 | block
// (block = counter>>6), the bitmap (8 bytes, bit counter&63) of the ids
// of that block applied. The 2-byte key sorts before P's blocks, after the
// blocks of smaller prefixes.
var bucketDedup = []byte("dedup")

// resetDedup empties the dedup records, for a state restored whole from
// inline snapshot data: the records go with the state they describe. (Such
// snapshots come only from a data dir of the previous layout, whose
// binary kept no records, and the members that applied that log record
// nothing of it either.)
func resetDedup(tx *bolt.Tx) error {
	if tx.Bucket(bucketDedup) == nil {
		return nil
	}
	if err := tx.DeleteBucket(bucketDedup); err != nil {
		return fmt.Errorf("empty bucket %s: %w", bucketDedup, err)
	}
	return nil
}

// FirstApply applies the rule to request id x (native format; not 0) in
// the batch transaction: false if x must be skipped, else true, with x
// recorded. An error is the db's.
func (s *Store) FirstApply(x uint64) (bool, error) {
	tx := s.be.Tx()
	bk := tx.Bucket(bucketDedup)
	if bk == nil {
		var err error
		if bk, err = tx.CreateBucket(bucketDedup); err != nil {
			return false, fmt.Errorf("create bucket %s: %w", bucketDedup, err)
		}
	}
	prefix, n := x>>reqid.SuffixBits, x&reqid.SuffixMask
	hk := dedupHiKey(prefix)
	hv := bk.Get(hk)
	ahead := true // x is ahead of hi_P (or P has no record)
	var hi uint64
	if hv != nil {
		if len(hv) != 8 {
			return false, fmt.Errorf("%w: dedup record of prefix %d", ErrBadDB, prefix)
		}
		hi = binary.BigEndian.Uint64(hv)
		if behind := (hi - n) & reqid.SuffixMask; behind < reqid.SerialHalf {
			ahead = false
			if behind >= dedupWindow {
				return false, nil // too old to tell
			}
		}
	}
	bkey := dedupBlockKey(prefix, n>>dedupBlockBits)
	var bits uint64
	if v := bk.Get(bkey); v != nil {
		if len(v) != 8 {
			return false, fmt.Errorf("%w: dedup block of prefix %d", ErrBadDB, prefix)
		}
		bits = binary.BigEndian.Uint64(v)
	}
	bit := uint64(1) << (n & (1<<dedupBlockBits - 1))
	if bits&bit != 0 {
		return false, nil // applied before
	}
	if err := bk.Put(bkey, binary.BigEndian.AppendUint64(nil, bits|bit)); err != nil {
		return false, err
	}
	if !ahead {
		return true, nil
	}
	if err := bk.Put(hk, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return false, err
	}
	if hv == nil || hi>>dedupBlockBits != n>>dedupBlockBits {
		return true, pruneDedup(bk, prefix, n)
	}
	return true, nil
}

// pruneDedup deletes P's blocks that are wholly dedupWindow or more behind
// hi (the counter of hi_P): those serially behind the block of the oldest
// id still in the window. P's records all lie less than 2^47 behind hi, so
// those blocks are the ones 1 to 2^41-1 blocks behind it: one range of
// block numbers, or two where it wraps.
func pruneDedup(bk *bolt.Bucket, prefix, hi uint64) error {
	const blocks = 1 << (reqid.SuffixBits - dedupBlockBits) // block numbers are mod this
	oldest := ((hi - dedupWindow + 1) & reqid.SuffixMask) >> dedupBlockBits
	first := (oldest - blocks/2 + 1) & (blocks - 1)
	last := (oldest - 1) & (blocks - 1)
	ranges := [][2]uint64{{first, last}}
	if first > last {
		ranges = [][2]uint64{{first, blocks - 1}, {0, last}}
	}
	var doomed [][]byte
	for _, r := range ranges {
		c := bk.Cursor()
		end := dedupBlockKey(prefix, r[1])
		for k, _ := c.Seek(dedupBlockKey(prefix, r[0])); k != nil && len(k) == 8 && bytes.Compare(k, end) <= 0; k, _ = c.Next() {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	// Deleted after the scan: a bbolt cursor may skip a key after a
	// delete under it.
	for _, k := range doomed {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func dedupHiKey(prefix uint64) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(prefix))
}

func dedupBlockKey(prefix, block uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, prefix<<reqid.SuffixBits|block)
}

// DedupHigh is hi_P for member's prefix, from the records in the batch
// transaction, as a full request id; ok is false if there is none.
func (s *Store) DedupHigh(member uint64) (id uint64, ok bool) {
	bk := s.be.Tx().Bucket(bucketDedup)
	if bk == nil {
		return 0, false
	}
	prefix := member & 0xffff
	v := bk.Get(dedupHiKey(prefix))
	if len(v) != 8 {
		return 0, false
	}
	return prefix<<reqid.SuffixBits | binary.BigEndian.Uint64(v)&reqid.SuffixMask, true
}
