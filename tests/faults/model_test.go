package faults

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Helpers to write histories by hand: times are abstract ticks.

func put(client int, key, value string, call, ret int, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpPut, Key: key, Value: value},
		Call: tick(call), Return: tick(ret), Status: st}
}

func del(client int, key string, call, ret int, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpDelete, Key: key},
		Call: tick(call), Return: tick(ret), Status: st}
}

func get(client int, key, value string, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpGet, Key: key},
		Output: Output{Value: value, Found: true}, Call: tick(call), Return: tick(ret), Status: StatusOK}
}

func getAbsent(client int, key string, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpGet, Key: key},
		Call: tick(call), Return: tick(ret), Status: StatusOK}
}

func tick(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// Helpers with revisions: rev is what the node's answer gave.

// putAt is an acknowledged put answered with revision rev.
func putAt(client int, key, value string, rev uint64, call, ret int) Op {
	op := put(client, key, value, call, ret, ok)
	op.Output = Output{Rev: rev}
	return op
}

// getAt is a read that found value with ETag rev.
func getAt(client int, key, value string, rev uint64, call, ret int) Op {
	op := get(client, key, value, call, ret)
	op.Output.Rev = rev
	return op
}

// delAt is an acknowledged delete answered "deleted":1 (deleted) or 0, at
// revision rev.
func delAt(client int, key string, deleted bool, rev uint64, call, ret int) Op {
	op := del(client, key, call, ret, ok)
	op.Output = Output{Found: deleted, Rev: rev}
	return op
}

// cas is a PUT of value if the key is at revision expect (0: absent); out
// is its answer, for an unknown one the status says so.
func cas(client int, key, value string, expect uint64, call, ret int, out Output, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpCAS, Key: key, Value: value, Rev: expect},
		Output: out, Call: tick(call), Return: tick(ret), Status: st}
}

// casDel is a DELETE if the key is at revision expect.
func casDel(client int, key string, expect uint64, call, ret int, out Output, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpCASDelete, Key: key, Rev: expect},
		Output: out, Call: tick(call), Return: tick(ret), Status: st}
}

// txnCAS is a transaction putting value if the key holds old.
func txnCAS(client int, key, old, value string, call, ret int, out Output, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpTxnCAS, Key: key, Old: old, Value: value},
		Output: out, Call: tick(call), Return: tick(ret), Status: st}
}

// Answers of conditional writes.
func wrote(rev uint64) Output { return Output{Rev: rev} }

// refusedAt is a 412 showing the key present at mod_revision rev.
func refusedAt(rev uint64) Output { return Output{Refused: true, Found: true, Rev: rev} }

// refusedAbsent is a 412, or a refused transaction, showing the key absent.
var refusedAbsent = Output{Refused: true}

// refusedValue is a refused transaction whose failure branch read value
// at rev.
func refusedValue(value string, rev uint64) Output {
	return Output{Refused: true, Found: true, Value: value, Rev: rev}
}

// Helpers for leased keys.

// leasePut is a put of value attaching key to lease, answered with rev (0:
// no revision), or 404 when gone.
func leasePut(client int, key, value string, lease int64, rev uint64, call, ret int, st Status) Op {
	return Op{Client: client, Input: Input{Kind: OpPut, Key: key, Value: value, Lease: lease},
		Output: Output{Rev: rev}, Call: tick(call), Return: tick(ret), Status: st}
}

// leasePutGone is a put naming lease answered 404: the lease does not exist.
func leasePutGone(client int, key, value string, lease int64, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpPut, Key: key, Value: value, Lease: lease},
		Output: Output{Refused: true}, Call: tick(call), Return: tick(ret), Status: StatusOK}
}

// rangeGet is key as a range read showed it: value at mod_revision rev,
// attached to lease.
func rangeGet(client int, key, value string, rev uint64, lease int64, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpRangeGet, Key: key},
		Output: Output{Found: true, Value: value, Rev: rev, Lease: lease}, Call: tick(call), Return: tick(ret), Status: StatusOK}
}

// rangeAbsent is a range read without key, at store revision rev.
func rangeAbsent(client int, key string, rev uint64, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpRangeGet, Key: key},
		Output: Output{Rev: rev}, Call: tick(call), Return: tick(ret), Status: StatusOK}
}

// revoke is lease's revocation on key, at revision rev (0: not known),
// deleting it or not.
func revoke(client int, key string, lease int64, rev uint64, deleted bool, call, ret int) Op {
	return Op{Client: client, Input: Input{Kind: OpRevoke, Key: key, Lease: lease},
		Output: Output{Rev: rev, Found: deleted}, Call: tick(call), Return: tick(ret), Status: StatusOK}
}

// noAnswer is the output of an operation whose outcome is unknown.
var noAnswer = Output{}

const (
	ok      = StatusOK
	failed  = StatusFailed
	unknown = StatusUnknown
)

// modelCases are hand-written histories with their known verdict; both the
// Operation and the Event form of the checker must agree with it.
var modelCases = []struct {
	name         string
	ops          []Op
	linearizable bool
}{
	{"read of a never-written key is absent", []Op{getAbsent(0, "k", 0, 1)}, true},
	{"read of a value nobody wrote", []Op{get(0, "k", "x", 0, 1)}, false},
	{"read after acknowledged put", []Op{put(0, "k", "a", 0, 1, ok), get(1, "k", "a", 2, 3)}, true},
	{"stale read after acknowledged write", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok), get(1, "k", "a", 4, 5),
	}, false},
	{"absent read after acknowledged put", []Op{put(0, "k", "a", 0, 1, ok), getAbsent(1, "k", 2, 3)}, false},
	{"read sees a value whose write failed with 503", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, failed), get(1, "k", "b", 4, 5),
	}, false},
	{"failed write is not required to be seen", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, failed), get(1, "k", "a", 4, 5),
	}, true},
	{"unknown write seen later", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, unknown), get(1, "k", "a", 4, 5), get(1, "k", "b", 6, 7),
	}, true},
	{"unknown write never seen", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, unknown), get(1, "k", "a", 10, 11),
	}, true},
	{"unknown write seen then unseen", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, unknown), get(1, "k", "b", 4, 5), get(1, "k", "a", 6, 7),
	}, false},
	{"unknown write cannot take effect before it was invoked", []Op{
		get(1, "k", "b", 0, 1), put(0, "k", "b", 2, 3, unknown),
	}, false},
	{"concurrent puts, first order", []Op{
		put(0, "k", "a", 0, 10, ok), put(1, "k", "b", 0, 10, ok), get(2, "k", "a", 11, 12),
	}, true},
	{"concurrent puts, second order", []Op{
		put(0, "k", "a", 0, 10, ok), put(1, "k", "b", 0, 10, ok), get(2, "k", "b", 11, 12),
	}, true},
	{"concurrent puts seen in both orders", []Op{
		put(0, "k", "a", 0, 10, ok), put(1, "k", "b", 0, 10, ok), get(2, "k", "a", 11, 12), get(2, "k", "b", 13, 14),
	}, false},
	{"read concurrent with a put may see the old value", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 10, ok), get(1, "k", "a", 3, 4),
	}, true},
	{"read concurrent with a put may see the new value", []Op{
		put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 10, ok), get(1, "k", "b", 3, 4),
	}, true},
	{"touching intervals are concurrent", []Op{
		put(0, "k", "a", 0, 5, ok), get(1, "k", "a", 5, 6), getAbsent(2, "k", 0, 5),
	}, true},
	{"read after acknowledged delete", []Op{
		put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok), getAbsent(1, "k", 4, 5),
	}, true},
	{"deleted value comes back", []Op{
		put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok), get(1, "k", "a", 4, 5),
	}, false},
	{"delete of an absent key", []Op{del(0, "k", 0, 1, ok), getAbsent(0, "k", 2, 3)}, true},
	{"unknown delete seen", []Op{
		put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, unknown), getAbsent(1, "k", 4, 5),
	}, true},
	{"keys are independent", []Op{
		put(0, "k1", "a", 0, 1, ok), getAbsent(1, "k2", 2, 3), get(1, "k1", "a", 4, 5),
	}, true},
	{"violation on one key among many", []Op{
		put(0, "k1", "a", 0, 1, ok), put(0, "k2", "b", 0, 1, ok), get(1, "k1", "a", 2, 3), getAbsent(1, "k2", 2, 3),
	}, false},

	// Revision CAS (If-Match, If-None-Match: *).
	{"CAS with the right revision after a put", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(0, "k", "b", 5, 2, 3, wrote(7), ok), getAt(1, "k", "b", 7, 4, 5),
	}, true},
	{"CAS answered a revision not above the one it replaced", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(0, "k", "b", 5, 2, 3, wrote(5), ok),
	}, false},
	{"CAS with a stale revision succeeded", []Op{
		putAt(0, "k", "a", 5, 0, 1), putAt(1, "k", "b", 6, 2, 3), cas(0, "k", "c", 5, 4, 5, wrote(7), ok),
	}, false},
	{"revisions order concurrent writes: CAS before the put", []Op{
		putAt(0, "k", "a", 5, 0, 1), putAt(1, "k", "b", 8, 2, 10), cas(0, "k", "c", 5, 3, 4, wrote(7), ok),
	}, true},
	{"revisions order concurrent writes: the put's revision forbids it", []Op{
		putAt(0, "k", "a", 5, 0, 1), putAt(1, "k", "b", 6, 2, 10), cas(0, "k", "c", 5, 3, 4, wrote(7), ok),
	}, false},
	{"412 showing the key's revision", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 4, 2, 3, refusedAt(5), ok), getAt(1, "k", "a", 5, 4, 5),
	}, true},
	{"412 showing a revision the model does not hold", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 4, 2, 3, refusedAt(6), ok),
	}, false},
	{"412 although the condition held", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 5, 2, 3, refusedAt(5), ok),
	}, false},
	{"412 showing a present key absent", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 5, 2, 3, refusedAbsent, ok),
	}, false},
	{"create of an absent key", []Op{
		cas(0, "k", "a", 0, 0, 1, wrote(3), ok), getAt(1, "k", "a", 3, 2, 3),
	}, true},
	{"create succeeded over a present key", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 0, 2, 3, wrote(7), ok),
	}, false},
	{"create refused, the key present at its revision", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 0, 2, 3, refusedAt(5), ok),
	}, true},
	{"create refused although the key was absent", []Op{
		cas(0, "k", "a", 0, 0, 1, refusedAbsent, ok),
	}, false},
	{"two CAS with the same expected revision both succeeded", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 5, 2, 10, wrote(7), ok), cas(2, "k", "c", 5, 2, 10, wrote(8), ok),
	}, false},
	{"two CAS with the same expected revision: the loser sees the winner", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 5, 2, 10, wrote(7), ok), cas(2, "k", "c", 5, 2, 10, refusedAt(7), ok),
	}, true},
	{"two CAS with the same expected revision: the loser sees the old revision", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 5, 2, 10, wrote(7), ok), cas(2, "k", "c", 5, 2, 10, refusedAt(5), ok),
	}, false},

	// Revisions of writes whose outcome is unknown.
	{"unknown put, then a GET pins its revision", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), getAt(1, "k", "b", 9, 4, 5),
		cas(1, "k", "c", 9, 6, 7, wrote(11), ok), getAt(1, "k", "c", 11, 8, 9),
	}, true},
	{"a pinned revision cannot change", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), getAt(1, "k", "b", 9, 4, 5), getAt(1, "k", "b", 10, 6, 7),
	}, false},
	{"an unknown put's revision is above the last known", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), getAt(1, "k", "b", 5, 4, 5),
	}, false},
	{"a 412 pins the revision of an unknown put", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), cas(1, "k", "c", 5, 4, 5, refusedAt(8), ok),
		getAt(1, "k", "b", 8, 6, 7),
	}, true},
	{"a 412 pins the revision of an unknown put, a GET contradicts it", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), cas(1, "k", "c", 5, 4, 5, refusedAt(8), ok),
		getAt(1, "k", "b", 9, 6, 7),
	}, false},
	{"a CAS pins the revision of an unknown put it expected", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), cas(1, "k", "c", 8, 4, 5, wrote(10), ok),
		getAt(1, "k", "c", 10, 6, 7),
	}, true},
	{"an unknown write needs a revision between its neighbours", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), get(1, "k", "b", 4, 5), putAt(1, "k", "c", 6, 6, 7),
	}, false},
	{"an unknown write fits between revisions 5 and 7", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(0, "k", "b", 2, 3, unknown), get(1, "k", "b", 4, 5), putAt(1, "k", "c", 7, 6, 7),
	}, true},
	{"unknown CAS applied", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(0, "k", "b", 5, 2, 3, noAnswer, unknown), getAt(1, "k", "b", 8, 4, 5),
	}, true},
	{"unknown CAS not applied", []Op{
		putAt(0, "k", "a", 5, 0, 1), cas(0, "k", "b", 5, 2, 3, noAnswer, unknown), getAt(1, "k", "a", 5, 4, 5),
	}, true},
	{"unknown CAS whose revision went stale cannot apply", []Op{
		putAt(0, "k", "a", 5, 0, 1), putAt(1, "k", "c", 6, 2, 3), cas(0, "k", "b", 5, 4, 5, noAnswer, unknown),
		get(1, "k", "b", 6, 7),
	}, false},
	{"unknown CAS on an unknown revision it may hold", []Op{
		putAt(0, "k", "a", 5, 0, 1), put(1, "k", "b", 2, 3, unknown), cas(0, "k", "c", 7, 4, 5, noAnswer, unknown),
		getAt(1, "k", "c", 9, 6, 7),
	}, true},

	// Value CAS through /v1/txn.
	{"txn value-CAS pair: both won", []Op{
		putAt(0, "k", "a", 5, 0, 1), txnCAS(1, "k", "a", "b", 2, 10, wrote(7), ok), txnCAS(2, "k", "a", "c", 2, 10, wrote(8), ok),
	}, false},
	{"txn value-CAS pair: the loser read the winner's value", []Op{
		putAt(0, "k", "a", 5, 0, 1), txnCAS(1, "k", "a", "b", 2, 10, wrote(7), ok),
		txnCAS(2, "k", "a", "c", 2, 10, refusedValue("b", 7), ok),
	}, true},
	{"txn value-CAS pair: the loser read the value it expected", []Op{
		putAt(0, "k", "a", 5, 0, 1), txnCAS(1, "k", "a", "b", 2, 10, wrote(7), ok),
		txnCAS(2, "k", "a", "c", 2, 10, refusedValue("a", 5), ok),
	}, false},
	{"txn refusal shows a value nobody wrote", []Op{
		putAt(0, "k", "a", 5, 0, 1), txnCAS(1, "k", "z", "b", 2, 3, refusedValue("q", 5), ok),
	}, false},
	{"txn on an absent key is refused", []Op{
		txnCAS(0, "k", "", "b", 0, 1, refusedAbsent, ok), getAbsent(1, "k", 2, 3),
	}, true},
	{"txn on an absent key succeeded", []Op{
		txnCAS(0, "k", "", "b", 0, 1, wrote(4), ok),
	}, false},
	{"unknown txn applied", []Op{
		putAt(0, "k", "a", 5, 0, 1), txnCAS(0, "k", "a", "b", 2, 3, noAnswer, unknown), getAt(1, "k", "b", 6, 4, 5),
	}, true},

	// Conditional delete (If-Match).
	{"conditional delete with the right revision", []Op{
		putAt(0, "k", "a", 5, 0, 1), casDel(0, "k", 5, 2, 3, wrote(6), ok), getAbsent(1, "k", 4, 5),
		cas(1, "k", "b", 0, 6, 7, wrote(8), ok),
	}, true},
	{"conditional delete with a stale revision succeeded", []Op{
		putAt(0, "k", "a", 5, 0, 1), putAt(1, "k", "b", 6, 2, 3), casDel(0, "k", 5, 4, 5, wrote(7), ok),
	}, false},
	{"conditional delete refused at the key's revision", []Op{
		putAt(0, "k", "a", 5, 0, 1), putAt(1, "k", "b", 6, 2, 3), casDel(0, "k", 5, 4, 5, refusedAt(6), ok),
		getAt(0, "k", "b", 6, 6, 7),
	}, true},

	// What an unconditional delete's answer shows.
	{"delete answered deleted:1 on an absent key", []Op{delAt(0, "k", true, 3, 0, 1)}, false},
	{"delete answered deleted:0 on a present key", []Op{
		putAt(0, "k", "a", 5, 0, 1), delAt(0, "k", false, 9, 2, 3),
	}, false},
	{"delete answered deleted:0 on an absent key", []Op{
		putAt(0, "k", "a", 5, 0, 1), delAt(0, "k", true, 6, 2, 3), delAt(1, "k", false, 6, 4, 5),
	}, true},
	{"deleted:0 at a store revision below the key's last write", []Op{
		putAt(0, "k", "a", 5, 0, 1), delAt(0, "k", true, 6, 2, 3), delAt(1, "k", false, 4, 4, 5),
	}, false},
	{"a write after a delete is above the delete's revision", []Op{
		putAt(0, "k", "a", 5, 0, 1), delAt(0, "k", true, 6, 2, 3), putAt(1, "k", "b", 6, 4, 5),
	}, false},

	// Leased keys (ids 7 and 8).
	{"a leased key reads with its lease", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), rangeGet(1, "k", "a", 5, 7, 2, 3),
	}, true},
	{"a leased key reads with another lease", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), rangeGet(1, "k", "a", 5, 8, 2, 3),
	}, false},
	{"a key put without a lease reads with one", []Op{
		putAt(0, "k", "a", 5, 0, 1), rangeGet(1, "k", "a", 5, 7, 2, 3),
	}, false},
	{"a put without a lease detaches the key", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), putAt(0, "k", "b", 6, 2, 3), rangeGet(1, "k", "b", 6, 0, 4, 5),
		revoke(2, "k", 7, 9, false, 0, 7), rangeGet(1, "k", "b", 6, 0, 8, 9),
	}, true},
	{"the revocation deletes the key", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 0, 5), rangeAbsent(1, "k", 9, 6, 7), getAbsent(1, "k", 8, 9),
	}, true},
	{"a leased key read after its revocation", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 0, 5), rangeGet(1, "k", "a", 5, 7, 6, 7),
	}, false},
	{"a leased key read after its revocation by a plain GET", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 0, 5), get(1, "k", "a", 6, 7),
	}, false},
	{"a leased key absent, then present again", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 0, false, 0, 100),
		rangeAbsent(1, "k", 9, 6, 7), rangeGet(1, "k", "a", 5, 7, 8, 9),
	}, false},
	{"a revocation of unknown revision, seen by a read", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 0, false, 0, 100),
		rangeGet(1, "k", "a", 5, 7, 2, 3), rangeAbsent(1, "k", 9, 6, 7),
	}, true},
	{"the revocation said it did not delete an attached key", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, false, 2, 3),
	}, false},
	{"the revocation said it deleted a key attached to no lease", []Op{
		putAt(0, "k", "a", 5, 0, 1), revoke(2, "k", 7, 9, true, 2, 3),
	}, false},
	{"the revocation's revision is not above the put's", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 5, true, 2, 3),
	}, false},
	{"a read absent at a store revision below its revocation's", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 0, 5), rangeAbsent(1, "k", 8, 6, 7),
	}, false},
	{"a lease revoked twice", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 2, 3), revoke(2, "k", 7, 0, false, 4, 5),
	}, false},
	{"a put with a revoked lease acknowledged", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 2, 3), leasePut(0, "k", "b", 7, 11, 4, 5, ok),
	}, false},
	{"a put with a revoked lease answered 404", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 2, 3), leasePutGone(0, "k", "b", 7, 4, 5),
		rangeAbsent(1, "k", 9, 6, 7),
	}, true},
	{"a put answered 404 before its lease was revoked", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), leasePutGone(0, "k", "b", 7, 2, 3), revoke(2, "k", 7, 9, true, 4, 5),
	}, false},
	{"a put without a lease answered 404", []Op{
		{Client: 0, Input: Input{Kind: OpPut, Key: "k", Value: "a"}, Output: Output{Refused: true}, Call: tick(0), Return: tick(1), Status: ok},
	}, false},
	{"an unknown put with a revoked lease cannot apply", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 2, 3), leasePut(0, "k", "b", 7, 0, 4, 5, unknown),
		rangeGet(1, "k", "b", 11, 7, 6, 7),
	}, false},
	{"an unknown put applied before the revocation goes with it", []Op{
		leasePut(0, "k", "b", 7, 0, 0, 1, unknown), rangeGet(1, "k", "b", 6, 7, 2, 3),
		revoke(2, "k", 7, 9, true, 0, 5), rangeAbsent(1, "k", 9, 6, 7),
	}, true},
	{"an unknown put never applied, and the revocation deleted nothing", []Op{
		leasePut(0, "k", "b", 7, 0, 0, 1, unknown), revoke(2, "k", 7, 9, false, 0, 5), rangeAbsent(1, "k", 9, 6, 7),
	}, true},
	{"a conditional write naming a lease", []Op{
		{Client: 0, Input: Input{Kind: OpCAS, Key: "k", Value: "a", Lease: 7}, Output: wrote(5), Call: tick(0), Return: tick(1), Status: ok},
	}, false},
	{"a new lease after the revoked one", []Op{
		leasePut(0, "k", "a", 7, 5, 0, 1, ok), revoke(2, "k", 7, 9, true, 0, 3), leasePut(0, "k", "b", 8, 11, 4, 5, ok),
		rangeGet(1, "k", "b", 11, 8, 6, 7), revoke(2, "k", 8, 13, true, 4, 9), leasePutGone(0, "k", "c", 7, 10, 11),
		rangeAbsent(1, "k", 13, 12, 13),
	}, true},

	{"failed reads are left out", []Op{
		put(0, "k", "a", 0, 1, ok),
		{Client: 1, Input: Input{Kind: OpGet, Key: "k"}, Output: Output{Value: "zzz", Found: true},
			Call: tick(2), Return: tick(3), Status: StatusFailed},
	}, true},
}

func TestModelOperations(t *testing.T) {
	for _, tc := range modelCases {
		t.Run(tc.name, func(t *testing.T) {
			got := porcupine.CheckOperations(KVModel(), Operations(tc.ops))
			if got != tc.linearizable {
				t.Fatalf("linearizable = %v, want %v", got, tc.linearizable)
			}
		})
	}
}

// TestModelEvents runs the same histories through the event form, which
// partitions with PartitionEvent instead of Partition.
func TestModelEvents(t *testing.T) {
	for _, tc := range modelCases {
		t.Run(tc.name, func(t *testing.T) {
			got := porcupine.CheckEvents(KVModel(), toEvents(Operations(tc.ops)))
			if got != tc.linearizable {
				t.Fatalf("linearizable = %v, want %v", got, tc.linearizable)
			}
		})
	}
}

// toEvents turns operations into a time-ordered event list, calls before
// returns at equal times, as porcupine treats intervals as closed.
func toEvents(ops []porcupine.Operation) []porcupine.Event {
	type stamped struct {
		at  int64
		ret bool
		ev  porcupine.Event
		seq int
	}
	var all []stamped
	for id, op := range ops {
		all = append(all,
			stamped{at: op.Call, ev: porcupine.Event{ClientId: op.ClientId, Kind: porcupine.CallEvent, Value: op.Input, Id: id}},
			stamped{at: op.Return, ret: true, ev: porcupine.Event{ClientId: op.ClientId, Kind: porcupine.ReturnEvent, Value: op.Output, Id: id}})
	}
	for i := range all {
		all[i].seq = i
	}
	slices.SortStableFunc(all, func(a, b stamped) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if a.ret != b.ret {
			if a.ret {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.seq, b.seq)
	})
	evs := make([]porcupine.Event, len(all))
	for i, s := range all {
		evs[i] = s.ev
	}
	return evs
}

func TestModelDescriptions(t *testing.T) {
	m := KVModel()
	ops := []struct {
		in   Input
		out  Output
		want string
	}{
		{Input{Kind: OpPut, Key: "k", Value: "v"}, Output{}, `put("k", "v")`},
		{Input{Kind: OpDelete, Key: "k"}, Output{}, `delete("k")`},
		{Input{Kind: OpGet, Key: "k"}, Output{Value: "v", Found: true}, `get("k") -> "v"`},
		{Input{Kind: OpGet, Key: "k"}, Output{}, `get("k") -> absent`},
		{Input{Kind: OpGet, Key: "k"}, Output{Value: "v", Found: true, Rev: 4}, `get("k") -> "v" @4`},
		{Input{Kind: OpPut, Key: "k", Value: "v"}, Output{Rev: 4}, `put("k", "v") @4`},
		{Input{Kind: OpDelete, Key: "k"}, Output{Found: true, Rev: 4}, `delete("k") @4`},
		{Input{Kind: OpDelete, Key: "k"}, Output{Rev: 4}, `delete("k") -> nothing deleted, store at 4`},
		{Input{Kind: OpCAS, Key: "k", Value: "v", Rev: 3}, Output{Rev: 4}, `put("k", "v") if @3 @4`},
		{Input{Kind: OpCAS, Key: "k", Value: "v"}, Output{Refused: true, Found: true, Rev: 2}, `put("k", "v") if absent -> refused: at @2`},
		{Input{Kind: OpCAS, Key: "k", Value: "v", Rev: 3}, Output{Unknown: true}, `put("k", "v") if @3`},
		{Input{Kind: OpCASDelete, Key: "k", Rev: 3}, Output{Refused: true}, `delete("k") if @3 -> refused: absent`},
		{Input{Kind: OpTxnCAS, Key: "k", Old: "a", Value: "b"}, Output{Refused: true, Found: true, Value: "c", Rev: 2},
			`txn("k": "a" -> "b") -> refused: "c" @2`},
		{Input{Kind: OpPut, Key: "k", Value: "v", Lease: 7}, Output{Rev: 4}, `put("k", "v", lease 7) @4`},
		{Input{Kind: OpPut, Key: "k", Value: "v", Lease: 7}, Output{Refused: true}, `put("k", "v", lease 7) -> lease not found`},
		{Input{Kind: OpRangeGet, Key: "k"}, Output{Found: true, Value: "v", Rev: 4, Lease: 7}, `range("k") -> "v" @4, lease 7`},
		{Input{Kind: OpRangeGet, Key: "k"}, Output{Found: true, Value: "v", Rev: 4}, `range("k") -> "v" @4`},
		{Input{Kind: OpRangeGet, Key: "k"}, Output{Rev: 9}, `range("k") -> absent, store at 9`},
		{Input{Kind: OpRevoke, Key: "k", Lease: 7}, Output{Rev: 9, Found: true}, `revoke(lease 7: "k") -> deleted @9`},
		{Input{Kind: OpRevoke, Key: "k", Lease: 7}, Output{Rev: 9}, `revoke(lease 7: "k") -> not attached, revoked @9`},
		{Input{Kind: OpRevoke, Key: "k", Lease: 7}, Output{}, `revoke(lease 7: "k")`},
	}
	for _, tc := range ops {
		if got := m.DescribeOperation(tc.in, tc.out); got != tc.want {
			t.Errorf("DescribeOperation(%+v, %+v) = %s, want %s", tc.in, tc.out, got, tc.want)
		}
	}
	states := []struct {
		st   keyState
		want string
	}{
		{keyState{}, "absent"},
		{keyState{Value: "v", Present: true}, `"v"`},
		{keyState{Value: "", Present: true}, `""`},
		{keyState{Value: "v", Present: true, Rev: 4}, `"v" @4`},
		{keyState{Value: "v", Present: true, Rev: 5, RevUnknown: true}, `"v" @>=5`},
		{keyState{Rev: 6}, "absent @6"},
		{keyState{Value: "v", Present: true, Rev: 4, Lease: 7}, `"v" @4, lease 7`},
		{keyState{Rev: 9, Revoked: ",7,,8,"}, "absent @9, revoked lease 7, 8"},
	}
	for _, tc := range states {
		if got := m.DescribeState(tc.st); got != tc.want {
			t.Errorf("DescribeState(%+v) = %s, want %s", tc.st, got, tc.want)
		}
	}
}
