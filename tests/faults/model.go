package faults

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// keyState is the model's state for one key. It is a comparable value so
// that porcupine's default == serves as equality; kvHash hashes every field.
//
// Revisions are raft indexes, which the model cannot predict, so it learns
// them from the answers: Rev is the revision of the key's last write (its
// mod_revision while present; the deleting write's while absent; 0 while
// never written). A write whose outcome is unknown has no answered
// revision: the state then says RevUnknown, with Rev the smallest revision
// that write can have, and the first observation of the key's revision (a
// GET's ETag, a 412, a refused transaction's read) pins it, after which
// the state holds that one value again. A later write's answered revision
// must leave room for it. This stays one state per order of operations,
// as porcupine's search needs: a revision is either known (one value) or
// bounded below, never a set of alternatives.
//
// Leases: Lease is the lease the present key is attached to (0: none), as
// the put that wrote it named it (a put without one detaches the key, as
// in etcd); Revoked lists the leases whose revocation (OpRevoke) has been
// applied to this key's history, so that a put naming one of them cannot
// write any more (the node answers 404, OpPut with Output.Refused). A
// lease is known revoked only through the OpRevoke operations of the key:
// a put may only name a lease that was granted, and every lease that
// ends must have its OpRevoke on each key that named it, as the lease
// clients record them.
type keyState struct {
	Value      string
	Present    bool
	Rev        uint64
	RevUnknown bool
	Lease      int64
	Revoked    string // the revoked leases, each as ",<id>,", in order of revocation
}

// revoked says whether lease id's revocation is in the state.
func (st keyState) revoked(id int64) bool {
	return strings.Contains(st.Revoked, ","+strconv.FormatInt(id, 10)+",")
}

// nextRev is the smallest revision the key's next write can have: writes
// of one key never share a raft entry, so its revisions strictly increase.
// While the last write's revision is unknown it is at least Rev, hence the
// next is at least Rev+1 as well.
func (st keyState) nextRev() uint64 { return st.Rev + 1 }

// observe reconciles the state of a present key with rev, its mod_revision
// as an answer showed it (0: not shown). A known revision must match; an
// unknown one is pinned, if rev is one the unknown write can have.
func (st keyState) observe(rev uint64) (keyState, bool) {
	switch {
	case rev == 0:
		return st, true
	case !st.RevUnknown:
		return st, rev == st.Rev
	case rev < st.Rev:
		return st, false
	}
	st.Rev, st.RevUnknown = rev, false
	return st, true
}

// write is the state after a write that leaves the key present with value
// (attached to lease, 0 for none), or absent, answered with revision rev
// (0: its revision is unknown).
func (st keyState) write(present bool, value string, lease int64, rev uint64) (keyState, bool) {
	next := keyState{Present: present, Revoked: st.Revoked}
	if present {
		next.Value, next.Lease = value, lease
	}
	if rev == 0 {
		next.Rev, next.RevUnknown = st.nextRev(), true
		return next, true
	}
	next.Rev = rev
	return next, rev >= st.nextRev()
}

// condition says whether a conditional write's condition holds in st;
// decided is false when it depends on a revision the model does not know
// yet: a revision compare with a revision the unknown write could have.
func (st keyState) condition(in Input) (holds, decided bool) {
	switch in.Kind {
	case OpTxnCAS:
		// A value compare on an absent key fails, as in etcd.
		return st.Present && st.Value == in.Old, true
	case OpCAS, OpCASDelete:
		if in.Rev == 0 {
			// If-None-Match: *, or a mod_revision of 0: the key is absent.
			return !st.Present, true
		}
		switch {
		case !st.Present:
			return false, true
		case !st.RevUnknown:
			return st.Rev == in.Rev, true
		case in.Rev < st.Rev:
			return false, true
		}
		return false, false
	}
	return false, true
}

// KVModel is the sequential specification of the node's key-value map,
// partitioned by key: operations on different keys never constrain each
// other, so each key is checked on its own, which keeps checking tractable
// for long histories. Inputs are Input and outputs Output. A lease's
// revocation, which deletes several keys at one revision, is an OpRevoke
// on each of them: the model checks each key's reads against it (absent
// once it applied, at a store revision no lower than its), not that the
// keys went together, which CheckLeases checks from the watchers' records
// and the range reads.
func KVModel() porcupine.Model {
	return porcupine.Model{
		Partition:                 partitionByKey,
		PartitionEvent:            partitionEventsByKey,
		Init:                      func() any { return keyState{} },
		Step:                      kvStep,
		Hash:                      kvHash,
		DescribeOperation:         describeKVOperation,
		DescribeState:             describeKVState,
		DescribeOperationMetadata: describeKVMetadata,
	}
}

func kvStep(state, input, output any) (bool, any) {
	st := state.(keyState)
	in := input.(Input)
	out, _ := output.(Output)
	next, ok := step(st, in, out)
	if !ok {
		return false, st
	}
	return true, next
}

func step(st keyState, in Input, out Output) (keyState, bool) {
	if in.Lease != 0 && in.Kind != OpPut && in.Kind != OpRevoke {
		// Only a put names a lease here: a conditional write with one is
		// not a history the model can judge.
		return st, false
	}
	switch in.Kind {
	case OpGet:
		if out.Found != st.Present || (out.Found && out.Value != st.Value) {
			return st, false
		}
		if !out.Found {
			return st, true
		}
		return st.observe(out.Rev)
	case OpRangeGet:
		return rangeGetStep(st, out)
	case OpPut:
		return putStep(st, in, out)
	case OpDelete:
		return deleteStep(st, out)
	case OpCAS, OpCASDelete, OpTxnCAS:
		return conditionalStep(st, in, out)
	case OpRevoke:
		return revokeStep(st, in, out)
	}
	// An input the model does not know cannot be explained by any order.
	return st, false
}

// putStep applies an unconditional put, with or without a lease. A put
// naming a revoked lease writes nothing (404): answered so, it must come
// after the revocation, and an unknown one can only have done nothing;
// acknowledged, it cannot come after it. A 404 to a put naming a lease
// not revoked yet, or to a put without a lease, is explained by no order.
func putStep(st keyState, in Input, out Output) (keyState, bool) {
	gone := in.Lease != 0 && st.revoked(in.Lease)
	switch {
	case out.Refused:
		return st, gone
	case gone && out.Unknown:
		return st, true
	case gone:
		return st, false
	}
	return st.write(true, in.Value, in.Lease, out.Rev)
}

// rangeGetStep checks a key as a range read showed it: present with its
// value, mod_revision and lease; or absent at a store revision no lower
// than the revision of the key's last write.
func rangeGetStep(st keyState, out Output) (keyState, bool) {
	if out.Found != st.Present {
		return st, false
	}
	if !out.Found {
		return st, out.Rev == 0 || out.Rev >= st.Rev
	}
	if out.Value != st.Value || out.Lease != st.Lease {
		return st, false
	}
	return st.observe(out.Rev)
}

// revokeStep applies the revocation of lease in.Lease to the key: it
// deletes the key if the key is attached to the lease, and the lease is
// revoked from then on (once: a lease is not revoked twice). With a
// known revision R (out.Rev) the answer says whether it deleted the key
// (out.Found), which must be so exactly when the key was attached, and
// R is above the key's last write either way: the revocation is an
// entry of its own, after it. Without one, an attached key is deleted
// at a revision the model does not know.
func revokeStep(st keyState, in Input, out Output) (keyState, bool) {
	if in.Lease == 0 || st.revoked(in.Lease) {
		return st, false
	}
	attached := st.Present && st.Lease == in.Lease
	next := st
	next.Revoked += "," + strconv.FormatInt(in.Lease, 10) + ","
	switch {
	case out.Rev == 0 && attached:
		return next.write(false, "", 0, 0)
	case out.Rev == 0:
		return next, true
	case out.Found != attached:
		return st, false
	case attached:
		return next.write(false, "", 0, out.Rev)
	}
	return next, out.Rev >= st.nextRev()
}

// deleteStep applies an unconditional delete. Deleting an absent key writes
// nothing: no revision, so the key's last write stays what it was.
func deleteStep(st keyState, out Output) (keyState, bool) {
	if out.Unknown || out.Rev == 0 {
		if !st.Present {
			return st, true
		}
		return st.write(false, "", 0, 0)
	}
	if !out.Found {
		// "deleted":0: the key was absent, and the answer's revision is
		// the store's, at least that of the key's last write.
		return st, !st.Present && out.Rev >= st.Rev
	}
	if !st.Present {
		return st, false
	}
	return st.write(false, "", 0, out.Rev)
}

// conditionalStep applies OpCAS, OpCASDelete or OpTxnCAS.
func conditionalStep(st keyState, in Input, out Output) (keyState, bool) {
	holds, decided := st.condition(in)
	switch {
	case out.Refused:
		// The answer shows the key as it was when the condition failed.
		if out.Found != st.Present || (out.Found && in.Kind == OpTxnCAS && out.Value != st.Value) {
			return st, false
		}
		if out.Found {
			var ok bool
			if st, ok = st.observe(out.Rev); !ok {
				return st, false
			}
		}
		holds, decided = st.condition(in)
		// Undecided only if the answer gave no revision (a hand-written
		// history): nothing then contradicts the refusal.
		return st, !(decided && holds)
	case out.Unknown:
		if !decided {
			// The unknown revision may or may not be in.Rev, and the
			// model holds one state: take the branch where the write
			// applied, which pins it. Where it did not apply, the state
			// goes on unchanged, as when porcupine places this write
			// last of all (it never returned), so no linearizable
			// history is refused; the check loses only that the
			// revision then is not in.Rev. The workers never reach this
			// branch: a client's expected revision comes from an answer
			// it had before, which is linearized before this write, so
			// an unknown write since then has a revision above it.
			st.Rev, st.RevUnknown = in.Rev, false
			holds = true
		}
		if !holds {
			return st, true
		}
		return st.write(in.Kind != OpCASDelete, in.Value, 0, 0)
	}
	// The write succeeded: its condition held.
	if !decided {
		// Only in.Rev made it hold: that pins the unknown revision.
		st.Rev, st.RevUnknown = in.Rev, false
		holds = true
	}
	if !holds {
		return st, false
	}
	return st.write(in.Kind != OpCASDelete, in.Value, 0, out.Rev)
}

func kvHash(state any) uint64 {
	st := state.(keyState)
	h := fnv.New64a()
	var b [10]byte
	if st.Present {
		b[0] = 1
	}
	if st.RevUnknown {
		b[1] = 1
	}
	binary.LittleEndian.PutUint64(b[2:], st.Rev)
	_, _ = h.Write(b[:])
	if st.Present {
		_, _ = h.Write([]byte(st.Value))
	}
	if st.Lease != 0 || st.Revoked != "" {
		var l [9]byte
		l[0] = 0xff // apart from any value's bytes
		binary.LittleEndian.PutUint64(l[1:], uint64(st.Lease))
		_, _ = h.Write(l[:])
		_, _ = h.Write([]byte(st.Revoked))
	}
	return h.Sum64()
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	return groupByKey(history, func(op porcupine.Operation) string { return op.Input.(Input).Key })
}

// partitionEventsByKey groups events by the key of their call; a return
// carries no key, so it follows its call through the shared Id.
func partitionEventsByKey(history []porcupine.Event) [][]porcupine.Event {
	keyOf := make(map[int]string)
	return groupByKey(history, func(ev porcupine.Event) string {
		if ev.Kind == porcupine.CallEvent {
			keyOf[ev.Id] = ev.Value.(Input).Key
		}
		return keyOf[ev.Id]
	})
}

// groupByKey splits items into groups of equal key, each in its original
// order, the groups in the order their keys first appear. key is called
// once per item, in order.
func groupByKey[T any](items []T, key func(T) string) [][]T {
	index := make(map[string]int)
	var groups [][]T
	for _, it := range items {
		k := key(it)
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], it)
	}
	return groups
}

func describeKVOperation(input, output any) string {
	in := input.(Input)
	out, _ := output.(Output)
	var call string
	switch in.Kind {
	case OpPut:
		call = fmt.Sprintf("put(%q, %q)", in.Key, in.Value)
		if in.Lease != 0 {
			call = fmt.Sprintf("put(%q, %q, lease %d)", in.Key, in.Value, in.Lease)
		}
		if out.Refused {
			return call + " -> lease not found"
		}
	case OpRangeGet:
		switch {
		case !out.Found:
			return fmt.Sprintf("range(%q) -> absent%s", in.Key, storeAt(out.Rev))
		case out.Lease != 0:
			return fmt.Sprintf("range(%q) -> %q%s, lease %d", in.Key, out.Value, atRev(out.Rev), out.Lease)
		}
		return fmt.Sprintf("range(%q) -> %q%s", in.Key, out.Value, atRev(out.Rev))
	case OpRevoke:
		call = fmt.Sprintf("revoke(lease %d: %q)", in.Lease, in.Key)
		switch {
		case out.Rev == 0:
			return call
		case out.Found:
			return fmt.Sprintf("%s -> deleted @%d", call, out.Rev)
		}
		return fmt.Sprintf("%s -> not attached, revoked @%d", call, out.Rev)
	case OpDelete:
		call = fmt.Sprintf("delete(%q)", in.Key)
	case OpGet:
		if !out.Found {
			return fmt.Sprintf("get(%q) -> absent", in.Key)
		}
		return fmt.Sprintf("get(%q) -> %q%s", in.Key, out.Value, atRev(out.Rev))
	case OpCAS:
		if in.Rev == 0 {
			call = fmt.Sprintf("put(%q, %q) if absent", in.Key, in.Value)
		} else {
			call = fmt.Sprintf("put(%q, %q) if @%d", in.Key, in.Value, in.Rev)
		}
	case OpCASDelete:
		call = fmt.Sprintf("delete(%q) if @%d", in.Key, in.Rev)
	case OpTxnCAS:
		call = fmt.Sprintf("txn(%q: %q -> %q)", in.Key, in.Old, in.Value)
	default:
		return fmt.Sprintf("%v -> %v", input, output)
	}
	switch {
	case out.Unknown:
		return call
	case out.Refused && !out.Found:
		return call + " -> refused: absent"
	case out.Refused && in.Kind == OpTxnCAS:
		return fmt.Sprintf("%s -> refused: %q%s", call, out.Value, atRev(out.Rev))
	case out.Refused:
		return fmt.Sprintf("%s -> refused: at%s", call, atRev(out.Rev))
	case in.Kind == OpDelete && out.Rev != 0 && !out.Found:
		return fmt.Sprintf("%s -> nothing deleted, store at %d", call, out.Rev)
	}
	return call + atRev(out.Rev)
}

// storeAt shows the store's revision of a read, or nothing.
func storeAt(rev uint64) string {
	if rev == 0 {
		return ""
	}
	return fmt.Sprintf(", store at %d", rev)
}

// atRev shows a revision, or nothing when none was observed.
func atRev(rev uint64) string {
	if rev == 0 {
		return ""
	}
	return fmt.Sprintf(" @%d", rev)
}

func describeKVState(state any) string {
	st := state.(keyState)
	s := "absent"
	if st.Present {
		s = fmt.Sprintf("%q", st.Value)
	}
	switch {
	case st.RevUnknown:
		s = fmt.Sprintf("%s @>=%d", s, st.Rev)
	case st.Rev != 0:
		s = fmt.Sprintf("%s @%d", s, st.Rev)
	}
	if st.Present && st.Lease != 0 {
		s += fmt.Sprintf(", lease %d", st.Lease)
	}
	if st.Revoked != "" {
		ids := strings.Split(strings.Trim(strings.ReplaceAll(st.Revoked, ",,", ","), ","), ",")
		s += fmt.Sprintf(", revoked lease %s", strings.Join(ids, ", "))
	}
	return s
}

func describeKVMetadata(meta any) string {
	s, _ := meta.(string)
	return s
}
