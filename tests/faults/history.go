package faults

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// OpKind is what a client operation does to its key.
type OpKind uint8

// The operations of the client API the workers exercise.
const (
	OpGet    OpKind = iota + 1
	OpPut           // unconditional PUT
	OpDelete        // unconditional DELETE
	// OpCAS is a PUT with a precondition on the key's revision: If-Match:
	// "Rev", or If-None-Match: * (create) when Rev is 0, the mod_revision
	// of an absent key.
	OpCAS
	// OpCASDelete is a DELETE with If-Match: "Rev".
	OpCASDelete
	// OpTxnCAS is a POST /v1/txn comparing the key's value with Old: the
	// success branch puts Value, the failure branch gets the key.
	OpTxnCAS
	// OpRangeGet is one key as a range read (GET /v1/kv/?prefix=...) of
	// its lease's keys showed it: its value, mod_revision and lease when
	// present, the store's revision of the read when absent. A range
	// read of several keys is recorded as one OpRangeGet per key, each
	// with the read's call and return: each is a read of its key.
	OpRangeGet
	// OpRevoke is the revocation of lease Input.Lease as it concerns the
	// key: it deletes the key if the key is attached to the lease then,
	// and after it no write may attach the key to the lease. The lease
	// clients' expiries are recorded as such (LeaseRun.RevokeOps), one
	// per key of the lease, from the grant's call to the first evidence
	// that the lease was gone.
	OpRevoke
)

func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "get"
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpCAS:
		return "cas"
	case OpCASDelete:
		return "cas-delete"
	case OpTxnCAS:
		return "txn-cas"
	case OpRangeGet:
		return "range-get"
	case OpRevoke:
		return "revoke"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// isWrite reports whether the operation may change the store, which decides
// how a failure is recorded: a read that fails has no effect, a write that
// fails may have one.
func (k OpKind) isWrite() bool { return k != OpGet && k != OpRangeGet }

// isConditional reports whether the node may refuse the operation for its
// condition, with an answer that shows the key as it was.
func (k OpKind) isConditional() bool { return k == OpCAS || k == OpCASDelete || k == OpTxnCAS }

// leavesPresent reports whether the operation, when it writes, leaves the
// key present (with Input.Value) rather than absent.
func (k OpKind) leavesPresent() bool { return k == OpPut || k == OpCAS || k == OpTxnCAS }

// Input is what a client asked. Value is the value a put-like operation
// writes (OpPut, OpCAS, OpTxnCAS); Rev the mod_revision OpCAS and
// OpCASDelete expect (0 for OpCAS: the key must be absent); Old the value
// OpTxnCAS expects; Lease the lease an OpPut attaches the key to
// (?lease=, 0 for none) or an OpRevoke revokes.
type Input struct {
	Kind  OpKind
	Key   string
	Value string
	Rev   uint64
	Old   string
	Lease int64
}

// Output is what the answer of an operation showed. A revision of 0 means
// none was observed: the node's answers never give 0 for a key that exists
// or for a write that wrote, and hand-written histories may leave it out.
//
//   - OpGet: Found and Value; Rev is the ETag (the key's mod_revision).
//   - OpPut, and a conditional write that succeeded: Rev is the revision
//     that wrote it.
//   - OpDelete: Rev is the answer's revision, Found that it deleted the key
//     ("deleted":1); with "deleted":0 nothing was written and Rev is the
//     store's revision. Found is meaningful only with Rev.
//   - a conditional write that did not apply (a 412, a transaction whose
//     failure branch ran): Refused, and the key as the answer shows it:
//     Found and Rev (its mod_revision), and Value for OpTxnCAS.
//   - an OpPut naming a lease that does not exist (404, nothing written):
//     Refused, and nothing else.
//   - OpRangeGet: Found, Value and Lease (the key's lease, 0 for none);
//     Rev is the key's mod_revision when Found, else the store's revision
//     of the read.
//   - OpRevoke: Rev is the revision of the revocation's deletes (0: not
//     known), Found that it deleted the key; Found is meaningful only
//     with Rev.
//
// Unknown is set by Operations, never by a client: the outcome of the write
// is unknown, so nothing else in the Output is meaningful.
type Output struct {
	Value   string
	Found   bool
	Rev     uint64
	Refused bool
	Unknown bool
	Lease   int64
}

// Status is what a client learned about the effect of its operation.
type Status uint8

const (
	// StatusOK: the node answered the operation definitely: it applied it,
	// or (a conditional write, Output.Refused) it certainly did not, and
	// its answer shows the key as it was.
	StatusOK Status = iota + 1
	// StatusFailed: the operation certainly had no effect (a read that
	// failed, or a write the node refused before proposing it).
	StatusFailed
	// StatusUnknown: a write whose effect is unknown (timeout, 504, broken
	// connection, any answer that does not exclude it was applied).
	StatusUnknown
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusFailed:
		return "failed"
	case StatusUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Op is one recorded operation. Call and Return are offsets from the
// recorder's start, read from the monotonic clock so that wall-clock jumps
// cannot reorder operations.
type Op struct {
	Client int // zero-based, as porcupine's visualization wants
	Input  Input
	Output Output
	Call   time.Duration
	Return time.Duration
	Status Status
	// Cause says why the operation failed or is unknown; empty when ok.
	Cause string
}

// Recorder collects the history of concurrent clients. It is safe for
// concurrent use; the zero value is not usable, call NewRecorder.
type Recorder struct {
	start time.Time

	mu  sync.Mutex
	ops []Op
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now()}
}

// Now is the recorder's clock: the time since it was created.
func (r *Recorder) Now() time.Duration { return time.Since(r.start) }

// Since is t on the recorder's clock (negative before it was created).
func (r *Recorder) Since(t time.Time) time.Duration { return t.Sub(r.start) }

// Begin notes the invocation of an operation. The caller must take the
// timestamp before sending the request, hence this call comes first and
// Finish on the result records the operation.
func (r *Recorder) Begin(client int, in Input) *Invocation {
	return &Invocation{rec: r, client: client, in: in, call: r.Now()}
}

// Record adds a finished operation as it is; hand-written histories and
// reads done outside the workers use it.
func (r *Recorder) Record(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

// Ops returns a copy of every recorded operation, in the order they finished.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Len is the number of operations recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Counts returns how many recorded operations have each status.
func (r *Recorder) Counts() map[Status]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := make(map[Status]int)
	for _, op := range r.ops {
		n[op.Status]++
	}
	return n
}

// ConditionalCounts says how the conditional writes (OpCAS, OpCASDelete,
// OpTxnCAS) ended: "succeeded", "refused" (a 412, or a transaction whose
// failure branch ran), "unknown", and "failed" (certainly not applied, and
// no answer to learn from: a refused dial, a 503 with Retry-After).
func (r *Recorder) ConditionalCounts() map[string]int {
	return ConditionalCounts(r.Ops())
}

// ConditionalCounts counts ops as Recorder.ConditionalCounts does.
func ConditionalCounts(ops []Op) map[string]int {
	n := make(map[string]int)
	for _, op := range ops {
		if !op.Input.Kind.isConditional() {
			continue
		}
		switch {
		case op.Status == StatusOK && op.Output.Refused:
			n["refused"]++
		case op.Status == StatusOK:
			n["succeeded"]++
		default:
			n[op.Status.String()]++
		}
	}
	return n
}

// Operations converts the history into porcupine's form. Failed operations
// are left out: they had no effect and observed nothing. An unknown write
// is kept with its return at +infinity, which lets the checker place its
// effect anywhere after its invocation, or nowhere (last of all, where no
// operation observes it), and its Output marked Unknown, so that the model
// gives its answer no meaning.
func (r *Recorder) Operations() []porcupine.Operation {
	return Operations(r.Ops())
}

// Operations converts a history into porcupine's form; see
// Recorder.Operations.
func Operations(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := int64(op.Return)
		output := op.Output
		switch {
		case op.Status == StatusOK:
		case op.Status == StatusUnknown && op.Input.Kind.isWrite():
			ret = math.MaxInt64
			output = Output{Unknown: true}
		default:
			// Failed operations, and reads of unknown outcome, which
			// observed nothing a client could rely on.
			continue
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Client,
			Input:    op.Input,
			Call:     int64(op.Call),
			Output:   output,
			Return:   ret,
			Metadata: opMetadata(op),
		})
	}
	return out
}

// opMetadata is shown next to an operation in the visualization, so that an
// unknown write is told apart from an acknowledged one.
func opMetadata(op Op) string {
	if op.Status == StatusOK {
		return ""
	}
	if op.Cause == "" {
		return op.Status.String()
	}
	return op.Status.String() + ": " + op.Cause
}

// Invocation is an operation that has been invoked and not yet recorded.
type Invocation struct {
	rec    *Recorder
	client int
	in     Input
	call   time.Duration
}

// Finish records the operation with its return time taken now. cause may
// be nil for an acknowledged operation.
func (inv *Invocation) Finish(out Output, st Status, cause error) Op {
	op := Op{
		Client: inv.client,
		Input:  inv.in,
		Output: out,
		Call:   inv.call,
		Return: inv.rec.Now(),
		Status: st,
	}
	if cause != nil {
		op.Cause = cause.Error()
	}
	inv.rec.Record(op)
	return op
}
