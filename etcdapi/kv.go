package etcdapi

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// kvServer is etcd's KV service: each RPC becomes one request of package
// messages to the kv actor. A Range, Put or DeleteRange is what the HTTP
// API asks for the same thing; what etcd adds (sorting, revision filters,
// prev_kv) is done here on the answer or asked of the state machine as a
// transaction, so both doors read and write alike.
type kvServer struct {
	pb.UnimplementedKVServer
	s *Server
}

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	q, err := rangeOf(r)
	if err != nil {
		return nil, err
	}
	res, err := k.s.actors.AskKV(ctx, q.Range)
	if err != nil {
		return nil, toStatus(err)
	}
	if len(res.Results) != 1 {
		return nil, status.Error(codes.Internal, "etcdserver: the state machine answered a range with no result")
	}
	out, err := q.answer(res.Results[0])
	if err != nil {
		return nil, err
	}
	if out.More && !r.CountOnly && q.whole {
		// Count is every key of the range, as etcd's; the page stopped
		// short, so count the rest at the page's revision.
		c := q.Range
		c.CountOnly, c.Serializable, c.Revision, c.Limit = true, true, res.Revision, 0
		cres, err := k.s.actors.AskKV(ctx, c)
		if err != nil {
			return nil, toStatus(err)
		}
		if len(cres.Results) == 1 {
			out.Count = int64(cres.Results[0].Count)
		}
	}
	out.Header = k.s.header(ctx, res.Revision)
	return out, nil
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	op, err := putOp(r)
	if err != nil {
		return nil, err
	}
	if !r.PrevKv && !r.IgnoreValue && !r.IgnoreLease {
		// The plain put is the HTTP API's PUT: the state machine's
		// cheapest command.
		res, err := k.s.actors.AskKV(ctx, messages.Put{Key: op.Key, Value: op.Value, Lease: op.Lease})
		if err != nil {
			return nil, toStatus(err)
		}
		return &pb.PutResponse{Header: k.s.header(ctx, res.Revision)}, nil
	}
	res, err := k.s.actors.AskKV(ctx, messages.Txn{Success: []messages.TxnOp{op}})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.PutResponse{Header: k.s.header(ctx, res.Revision)}
	if len(res.Results) == 1 && len(res.Results[0].PrevKVs) == 1 {
		out.PrevKv = keyValue(res.Results[0].PrevKVs[0])
	}
	return out, nil
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	op, err := deleteOp(r)
	if err != nil {
		return nil, err
	}
	res, err := k.s.actors.AskKV(ctx, messages.Txn{Success: []messages.TxnOp{op}})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.DeleteRangeResponse{Header: k.s.header(ctx, res.Revision)}
	if len(res.Results) == 1 {
		out.Deleted = int64(res.Results[0].Deleted)
		out.PrevKvs = keyValues(res.Results[0].PrevKVs)
	}
	return out, nil
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	t, post, err := txnOf(r, 1)
	if err != nil {
		return nil, err
	}
	res, err := k.s.actors.AskKV(ctx, t)
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := txnResponse(res.Succeeded, res.Results, post)
	if err != nil {
		return nil, err
	}
	out.Header = k.s.header(ctx, res.Revision)
	return out, nil
}

func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if r.Revision <= 0 {
		return nil, rpctypes.ErrGRPCCompacted
	}
	res, err := k.s.actors.AskKV(ctx, messages.Compact{Revision: uint64(r.Revision)})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CompactionResponse{Header: k.s.header(ctx, res.Revision)}, nil
}

// RangeStream (etcd 3.7) is not served: clientv3's Get calls Range.
func (k *kvServer) RangeStream(*pb.RangeRequest, pb.KV_RangeStreamServer) error {
	return unimplemented("RangeStream (etcd 3.7's streamed range; Range serves the same read)")
}

// rangeQuery is a RangeRequest as the state machine reads it, and what is
// left to do on the answer.
type rangeQuery struct {
	messages.Range
	req *pb.RangeRequest
	// sorted and filtered say the answer is sorted or filtered here, so
	// the read took the whole range (up to store.MaxRangeLimit) and the
	// client's limit applies after.
	sorted, filtered bool
	// whole says the client asked for every key (limit 0, or one the
	// state machine's page cuts short): a page that stops short gets its
	// Count from a second, counting read.
	whole bool
}

// rangeOf checks r and turns it into a read of the state machine.
func rangeOf(r *pb.RangeRequest) (rangeQuery, error) {
	if len(r.Key) == 0 {
		return rangeQuery{}, rpctypes.ErrGRPCEmptyKey
	}
	if err := checkBounds(r.Key, r.RangeEnd); err != nil {
		return rangeQuery{}, err
	}
	if r.Revision < 0 || r.Limit < 0 || r.MinModRevision < 0 || r.MaxModRevision < 0 ||
		r.MinCreateRevision < 0 || r.MaxCreateRevision < 0 {
		return rangeQuery{}, status.Error(codes.InvalidArgument, "etcdserver: negative revision or limit")
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rangeQuery{}, rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rangeQuery{}, rpctypes.ErrGRPCInvalidSortOption
	}
	q := rangeQuery{req: r, Range: messages.Range{
		Start: string(r.Key), End: string(r.RangeEnd),
		KeysOnly: r.KeysOnly, CountOnly: r.CountOnly,
		Revision: uint64(r.Revision), Serializable: r.Serializable,
	}}
	order := r.SortOrder
	if order == pb.RangeRequest_NONE && r.SortTarget != pb.RangeRequest_KEY {
		order = pb.RangeRequest_ASCEND // etcd's default for another target
	}
	q.sorted = order != pb.RangeRequest_NONE && !(r.SortTarget == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
	q.filtered = r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
	switch {
	case r.CountOnly && q.filtered:
		// The state machine counts without reading keys; a filtered count
		// reads them here.
		q.CountOnly = false
		q.Limit = store.MaxRangeLimit
	case q.sorted || q.filtered || r.Limit == 0 || r.Limit > store.MaxRangeLimit:
		q.Limit = store.MaxRangeLimit
		q.whole = !q.sorted && !q.filtered
	default:
		q.Limit = int(r.Limit)
		q.whole = true
	}
	if r.SortTarget == pb.RangeRequest_VALUE && q.sorted {
		q.KeysOnly = false // sorted by what it is not sent
	}
	return q, nil
}

// answer turns the state machine's read into etcd's answer: filtered,
// sorted and cut to the client's limit where the read could not do it.
func (q rangeQuery) answer(res messages.OpResult) (*pb.RangeResponse, error) {
	r := q.req
	if (q.sorted || q.filtered) && res.More {
		return nil, status.Errorf(codes.OutOfRange,
			"etcdserver: the range holds more than %d keys: sorting or filtering it needs it whole; narrow it, or page through it by key",
			store.MaxRangeLimit)
	}
	out := &pb.RangeResponse{More: res.More, Count: int64(res.Count)}
	kvs := res.KVs
	if q.filtered {
		kvs = slices.DeleteFunc(kvs, func(kv messages.KV) bool {
			return (r.MinModRevision != 0 && kv.ModRevision < uint64(r.MinModRevision)) ||
				(r.MaxModRevision != 0 && kv.ModRevision > uint64(r.MaxModRevision)) ||
				(r.MinCreateRevision != 0 && kv.CreateRevision < uint64(r.MinCreateRevision)) ||
				(r.MaxCreateRevision != 0 && kv.CreateRevision > uint64(r.MaxCreateRevision))
		})
		out.Count = int64(len(kvs))
	}
	if r.CountOnly {
		return out, nil
	}
	if q.sorted {
		sortKVs(kvs, r.SortTarget, r.SortOrder)
	}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, out.More = kvs[:r.Limit], true
	}
	out.Kvs = keyValues(kvs)
	if r.KeysOnly {
		for _, kv := range out.Kvs {
			kv.Value = nil
		}
	}
	return out, nil
}

// sortKVs sorts as etcd does: by target, ties in key order (the order the
// state machine read them in, kept by a stable sort).
func sortKVs(kvs []messages.KV, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	cmp := func(a, b messages.KV) int {
		switch target {
		case pb.RangeRequest_VERSION:
			return cmp.Compare(a.Version, b.Version)
		case pb.RangeRequest_CREATE:
			return cmp.Compare(a.CreateRevision, b.CreateRevision)
		case pb.RangeRequest_MOD:
			return cmp.Compare(a.ModRevision, b.ModRevision)
		case pb.RangeRequest_VALUE:
			return bytes.Compare(a.Value, b.Value)
		}
		return 0 // KEY: already in key order
	}
	if order == pb.RangeRequest_DESCEND {
		if target == pb.RangeRequest_KEY {
			slices.Reverse(kvs)
			return
		}
		slices.SortStableFunc(kvs, func(a, b messages.KV) int { return -cmp(a, b) })
		return
	}
	slices.SortStableFunc(kvs, cmp)
}

// checkBounds refuses keys no request may name (messages.CheckKey) and a
// range end past the same length.
func checkBounds(key, end []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(end) > messages.MaxKeyBytes {
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if len(key) > messages.MaxKeyBytes {
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}

// putOp checks a PutRequest and makes it a transaction's put.
func putOp(r *pb.PutRequest) (messages.TxnOp, error) {
	if err := checkKey(r.Key); err != nil {
		return messages.TxnOp{}, err
	}
	switch {
	case r.IgnoreValue && len(r.Value) != 0:
		return messages.TxnOp{}, rpctypes.ErrGRPCValueProvided
	case r.IgnoreLease && r.Lease != 0:
		return messages.TxnOp{}, rpctypes.ErrGRPCLeaseProvided
	case r.Lease < 0:
		return messages.TxnOp{}, rpctypes.ErrGRPCLeaseNotFound
	}
	return messages.TxnOp{
		Type: messages.OpPut, Key: string(r.Key), Value: r.Value, Lease: r.Lease,
		PrevKV: r.PrevKv, IgnoreValue: r.IgnoreValue, IgnoreLease: r.IgnoreLease,
	}, nil
}

// deleteOp checks a DeleteRangeRequest and makes it a transaction's delete.
func deleteOp(r *pb.DeleteRangeRequest) (messages.TxnOp, error) {
	if len(r.Key) == 0 && !bytes.Equal(r.RangeEnd, []byte(store.RangeEndAll)) {
		return messages.TxnOp{}, rpctypes.ErrGRPCEmptyKey
	}
	if len(r.Key) > messages.MaxKeyBytes || len(r.RangeEnd) > messages.MaxKeyBytes {
		return messages.TxnOp{}, rpctypes.ErrGRPCRequestTooLarge
	}
	key := string(r.Key)
	if key == "" {
		key = "\x00" // every key: the store's ranges start at a key
	}
	return messages.TxnOp{Type: messages.OpDelete, Key: key, End: string(r.RangeEnd), PrevKV: r.PrevKv}, nil
}

// txnPost mirrors a transaction's branches: for each operation of the
// branch that ran, the range query to finish it, or the nested
// transaction's own txnPost.
type txnPost struct {
	success, failure []opPost
}

type opPost struct {
	rng  *rangeQuery
	txn  *txnPost
	kind string // "range", "put", "delete", "txn"
}

// txnOf checks a TxnRequest, at nesting depth depth, and turns it into the
// state machine's transaction.
func txnOf(r *pb.TxnRequest, depth int) (messages.Txn, *txnPost, error) {
	if depth > apply.MaxTxnDepth {
		return messages.Txn{}, nil, status.Errorf(codes.InvalidArgument, "etcdserver: transactions nested deeper than %d", apply.MaxTxnDepth)
	}
	if len(r.Compare) > apply.MaxTxnCompares || len(r.Success) > apply.MaxTxnOps || len(r.Failure) > apply.MaxTxnOps {
		return messages.Txn{}, nil, rpctypes.ErrGRPCTooManyOps
	}
	var t messages.Txn
	for _, c := range r.Compare {
		mc, err := compareOf(c)
		if err != nil {
			return messages.Txn{}, nil, err
		}
		t.Compares = append(t.Compares, mc)
	}
	post := &txnPost{}
	var err error
	if t.Success, post.success, err = opsOf(r.Success, depth); err != nil {
		return messages.Txn{}, nil, err
	}
	if t.Failure, post.failure, err = opsOf(r.Failure, depth); err != nil {
		return messages.Txn{}, nil, err
	}
	return t, post, nil
}

func compareOf(c *pb.Compare) (messages.Compare, error) {
	if err := checkKey(c.Key); err != nil {
		return messages.Compare{}, err
	}
	if len(c.RangeEnd) != 0 {
		return messages.Compare{}, status.Error(codes.InvalidArgument, "etcdserver: a compare over a range (range_end) is not served; compare each key")
	}
	m := messages.Compare{Key: string(c.Key)}
	switch c.Result {
	case pb.Compare_EQUAL:
		m.Op = messages.CompareEqual
	case pb.Compare_NOT_EQUAL:
		m.Op = messages.CompareNotEqual
	case pb.Compare_LESS:
		m.Op = messages.CompareLess
	case pb.Compare_GREATER:
		m.Op = messages.CompareGreater
	default:
		return messages.Compare{}, status.Error(codes.InvalidArgument, "etcdserver: unknown compare result")
	}
	var n int64
	switch c.Target {
	case pb.Compare_VALUE:
		m.Target, m.Value = messages.CompareValue, c.GetValue()
	case pb.Compare_VERSION:
		m.Target, n = messages.CompareVersion, c.GetVersion()
	case pb.Compare_CREATE:
		m.Target, n = messages.CompareCreateRevision, c.GetCreateRevision()
	case pb.Compare_MOD:
		m.Target, n = messages.CompareModRevision, c.GetModRevision()
	case pb.Compare_LEASE:
		m.Target, n = messages.CompareLease, c.GetLease()
	default:
		return messages.Compare{}, status.Error(codes.InvalidArgument, "etcdserver: unknown compare target")
	}
	if n < 0 {
		// Every counter and lease id is at least 0: a negative constant
		// compares as etcd's int64 would, by moving it to where it
		// decides alike.
		return negativeCompare(m)
	}
	m.Number = uint64(n)
	return m, nil
}

// negativeCompare rewrites a compare against a negative constant as one
// that decides alike: every counter and lease id is at least 0, so "> -1"
// and "!= -1" always hold and "< -1" and "= -1" never do; no counter
// reaches 2^64-1, so "!= 2^64-1" and "= 2^64-1" say the same.
func negativeCompare(m messages.Compare) (messages.Compare, error) {
	m.Number = 1<<64 - 1
	switch m.Op {
	case messages.CompareGreater, messages.CompareNotEqual:
		m.Op = messages.CompareNotEqual
	default:
		m.Op = messages.CompareEqual
	}
	return m, nil
}

func opsOf(ops []*pb.RequestOp, depth int) ([]messages.TxnOp, []opPost, error) {
	out := make([]messages.TxnOp, 0, len(ops))
	posts := make([]opPost, 0, len(ops))
	for _, op := range ops {
		switch o := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			q, err := rangeOf(o.RequestRange)
			if err != nil {
				return nil, nil, err
			}
			if o.RequestRange.Revision != 0 {
				return nil, nil, status.Error(codes.InvalidArgument, "etcdserver: a range in a transaction reads at the transaction's revision")
			}
			rng := q.Range
			rng.Serializable = false
			out = append(out, messages.TxnOp{Type: messages.OpRange, Range: rng})
			posts = append(posts, opPost{kind: "range", rng: &q})
		case *pb.RequestOp_RequestPut:
			p, err := putOp(o.RequestPut)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, p)
			posts = append(posts, opPost{kind: "put"})
		case *pb.RequestOp_RequestDeleteRange:
			d, err := deleteOp(o.RequestDeleteRange)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, d)
			posts = append(posts, opPost{kind: "delete"})
		case *pb.RequestOp_RequestTxn:
			t, p, err := txnOf(o.RequestTxn, depth+1)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, messages.TxnOp{Type: messages.OpTxn, Txn: &t})
			posts = append(posts, opPost{kind: "txn", txn: p})
		default:
			return nil, nil, status.Error(codes.InvalidArgument, "etcdserver: a transaction operation with no request")
		}
	}
	return out, posts, nil
}

// txnResponse turns the state machine's answer to a transaction into
// etcd's, finishing each range as the request asked.
func txnResponse(succeeded bool, results []messages.OpResult, post *txnPost) (*pb.TxnResponse, error) {
	posts := post.failure
	if succeeded {
		posts = post.success
	}
	if len(results) != len(posts) {
		return nil, status.Errorf(codes.Internal, "etcdserver: the state machine answered %d results for %d operations", len(results), len(posts))
	}
	out := &pb.TxnResponse{Succeeded: succeeded, Responses: make([]*pb.ResponseOp, len(results))}
	for i, res := range results {
		switch p := posts[i]; p.kind {
		case "range":
			rr, err := p.rng.answer(res)
			if err != nil {
				return nil, err
			}
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}}
		case "put":
			pr := &pb.PutResponse{}
			if len(res.PrevKVs) == 1 {
				pr.PrevKv = keyValue(res.PrevKVs[0])
			}
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: pr}}
		case "delete":
			dr := &pb.DeleteRangeResponse{Deleted: int64(res.Deleted), PrevKvs: keyValues(res.PrevKVs)}
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}}
		case "txn":
			tr, err := txnResponse(res.Succeeded, res.Results, p.txn)
			if err != nil {
				return nil, err
			}
			out.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}}
		default:
			return nil, fmt.Errorf("etcdapi: operation of kind %q", p.kind)
		}
	}
	return out, nil
}

func keyValue(kv messages.KV) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{
		Key: []byte(kv.Key), Value: kv.Value,
		CreateRevision: int64(kv.CreateRevision), ModRevision: int64(kv.ModRevision),
		Version: int64(kv.Version), Lease: kv.Lease,
	}
}

func keyValues(kvs []messages.KV) []*mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*mvccpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = keyValue(kv)
	}
	return out
}
