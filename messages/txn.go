package messages

// The coordination requests: ranges, transactions and conditional writes.
// Like Put and Get they come from the HTTP API to the kv actor by
// RequestFuture and are answered with a Result. A Txn is one log entry,
// applied atomically at one revision; the kv actor decides its compares when
// it applies the entry, so every member decides the same.

// KV is a key as stored, with its revisions. A revision is the raft index
// of the entry that made a write; CreateRevision is that of the write that
// created the key (since it was last absent), ModRevision that of its last
// write, and Version counts its writes since its creation.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision uint64
	ModRevision    uint64
	Version        uint64
	Lease          int64 // the lease the key is attached to, 0 if none
}

// CompareTarget is what a Compare looks at.
type CompareTarget uint8

// The targets of a Compare: a key's value, one of its counters, or the
// lease it is attached to. An absent key has an empty value, counters of
// zero and lease 0, as in etcd, so "create_revision = 0" asks that a key be
// absent; a value compare on an absent key fails whatever its op.
const (
	CompareValue CompareTarget = iota + 1
	CompareVersion
	CompareCreateRevision
	CompareModRevision
	// CompareLease compares the key's lease id (0: none) with Number, as
	// etcd's LEASE target does.
	CompareLease
)

// CompareOp is how a Compare relates the target to its constant.
type CompareOp uint8

// The relations of a Compare; values compare as byte strings.
const (
	CompareEqual CompareOp = iota + 1
	CompareNotEqual
	CompareLess
	CompareGreater
)

// Compare is one condition of a Txn: Key's Target, Op, the constant (Value
// for CompareValue, Number for the counters and the lease id).
type Compare struct {
	Key    string
	Target CompareTarget
	Op     CompareOp
	Value  []byte
	Number uint64
}

// OpType is the kind of a TxnOp.
type OpType uint8

// The operations of a transaction.
const (
	OpGet    OpType = iota + 1 // read Key
	OpRange                    // read the keys of Range
	OpPut                      // write Value under Key
	OpDelete                   // remove Key, or with End the keys in [Key, End)
	OpTxn                      // run the nested transaction Txn
)

// TxnOp is one operation of a Txn. End, for a delete, makes it remove the
// keys in [Key, End) (an End of "\x00" meaning every key from Key on);
// Range is the read of an OpRange; Txn the transaction an OpTxn runs, which
// names nothing else.
type TxnOp struct {
	Type  OpType
	Key   string
	End   string
	Value []byte
	Lease int64 // a put's lease (0: none)
	Range Range
	// PrevKV, for a put or a delete, asks for the key(s) as they were just
	// before the write in OpResult.PrevKVs, as etcd's prev_kv does.
	PrevKV bool
	// IgnoreValue and IgnoreLease, for a put, keep the key's current
	// value or lease, as etcd's ignore_value and ignore_lease do: the put
	// then carries no Value, or no Lease. A put with either on an absent
	// key fails the whole transaction with ErrNotFound, before anything
	// is written.
	IgnoreValue bool
	IgnoreLease bool
	Txn         *Txn
}

// Txn runs Success if every compare holds, else Failure, atomically at the
// revision of its entry. No key may be written twice in a branch, nested
// transactions' branches included (the two branches of one nested
// transaction are alternatives: they may write the same key).
//
// A nested transaction (an OpTxn operation) runs at the same revision, and,
// as in etcd, its compares are decided up front against the state before
// the outer transaction, not after the outer branch's earlier writes. So
// are the checks that fail a transaction whole (a missing lease, a missing
// key under IgnoreValue or IgnoreLease), along the branches that run.
type Txn struct {
	Compares []Compare
	Success  []TxnOp
	Failure  []TxnOp
}

// Range reads the keys in [Start, End) in order: End "" reads Start alone,
// End "\x00" every key from Start on. At most Limit keys come back
// (0: the kv actor's default); More says there are more. KeysOnly leaves the
// values out; CountOnly returns only how many keys the range holds.
// Revision, when not 0, reads the range as it was at that revision
// (ErrCompacted when the history no longer reaches it, ErrFutureRevision
// past the current one). Serializable skips the read-index round.
type Range struct {
	Start, End   string
	Limit        int
	KeysOnly     bool
	CountOnly    bool
	Revision     uint64
	Serializable bool
}

// OpResult is the outcome of one TxnOp, or of a Range: the keys read (KVs,
// with More when a limit cut them short), or the number of keys a delete
// removed. Count is len(KVs), except for a CountOnly read, where it is the
// number of keys in the range (counting costs a walk over all of them, so
// pages do not pay for it).
//
// PrevKVs, for a put or delete with PrevKV, are the keys as they were just
// before it: a put's previous record if the key existed, every key a
// delete removed, in key order, with their values. Succeeded and Results
// are a nested transaction's: whether its compares held, and one result
// per operation of the branch that ran.
type OpResult struct {
	KVs       []KV
	More      bool
	Count     int
	Deleted   int
	PrevKVs   []KV
	Succeeded bool
	Results   []OpResult
}
