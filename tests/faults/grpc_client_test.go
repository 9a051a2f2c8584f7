package faults

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

// fakeKV is etcd's KV service over a fakeNode's map, under its lock: the
// same state the fake's HTTP API serves, so that a write through one door
// is read through the other. It honours the fake's stale (a range reads
// the state before the key's last write), ignoreConditions and hang, and
// refuses keys no write may carry as the node does (unless acceptBadKeys).
type fakeKV struct {
	pb.UnimplementedKVServer
	f *fakeNode
	// fail, when set, decides the n-th write (from 1): a non-nil error is
	// answered, and the write is applied only if apply says so.
	fail          func(n int64) (err error, apply bool)
	acceptBadKeys bool

	writes atomic.Int64
	calls  atomic.Int64
}

func (k *fakeKV) enter(ctx context.Context) error {
	k.calls.Add(1)
	if k.f.hang != nil {
		// Past the call's deadline too, so that only the client's
		// deadline ends the call; the test closes hang before the
		// servers stop.
		<-k.f.hang
		return status.Error(codes.Unavailable, "hung")
	}
	k.f.mu.Lock()
	return nil
}

func (k *fakeKV) refuse(key []byte) error {
	switch {
	case k.acceptBadKeys:
		return nil
	case len(key) == 0:
		return rpctypes.ErrGRPCEmptyKey
	case len(key) > messages.MaxKeyBytes:
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}

// injected draws the fate of the next write.
func (k *fakeKV) injected() (error, bool) {
	if k.fail == nil {
		return nil, true
	}
	return k.fail(k.writes.Add(1))
}

func (k *fakeKV) header() *pb.ResponseHeader { return &pb.ResponseHeader{Revision: int64(k.f.rev)} }

func (k *fakeKV) kvs(key []byte, from map[string]fakeEntry) []*mvccpb.KeyValue {
	e := from[string(key)]
	if !e.present {
		return nil
	}
	return []*mvccpb.KeyValue{{Key: key, Value: []byte(e.value), ModRevision: int64(e.rev), CreateRevision: 1, Version: 1}}
}

func (k *fakeKV) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := k.enter(ctx); err != nil {
		return nil, err
	}
	defer k.f.mu.Unlock()
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	from := k.f.cur
	if k.f.stale {
		from = k.f.prev
	}
	kvs := k.kvs(r.Key, from)
	return &pb.RangeResponse{Header: k.header(), Kvs: kvs, Count: int64(len(kvs))}, nil
}

func (k *fakeKV) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := k.enter(ctx); err != nil {
		return nil, err
	}
	defer k.f.mu.Unlock()
	if err := k.refuse(r.Key); err != nil {
		return nil, err
	}
	err, apply := k.injected()
	if apply {
		k.f.set(string(r.Key), fakeEntry{value: string(r.Value), present: true})
	}
	if err != nil {
		return nil, err
	}
	return &pb.PutResponse{Header: k.header()}, nil
}

func (k *fakeKV) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := k.enter(ctx); err != nil {
		return nil, err
	}
	defer k.f.mu.Unlock()
	if err := k.refuse(r.Key); err != nil {
		return nil, err
	}
	err, apply := k.injected()
	deleted := 0
	if apply && k.f.cur[string(r.Key)].present {
		deleted = 1
		k.f.set(string(r.Key), fakeEntry{})
	}
	if err != nil {
		return nil, err
	}
	return &pb.DeleteRangeResponse{Header: k.header(), Deleted: int64(deleted)}, nil
}

// Txn serves the workers' transactions: one compare of the key's value or
// mod_revision, a put or a delete on success, a range on failure.
func (k *fakeKV) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := k.enter(ctx); err != nil {
		return nil, err
	}
	defer k.f.mu.Unlock()
	if len(r.Compare) != 1 || len(r.Success) != 1 || len(r.Failure) != 1 || r.Failure[0].GetRequestRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "not the workers' transaction")
	}
	c := r.Compare[0]
	if err := k.refuse(c.Key); err != nil {
		return nil, err
	}
	cur := k.f.cur[string(c.Key)]
	var holds bool
	switch c.Target {
	case pb.Compare_VALUE:
		holds = cur.present && cur.value == string(c.GetValue())
	case pb.Compare_MOD:
		holds = int64(cur.rev) == c.GetModRevision() && (cur.present || c.GetModRevision() == 0)
	default:
		return nil, status.Error(codes.InvalidArgument, "not the workers' compare")
	}
	holds = holds || k.f.ignoreConditions
	if !holds {
		rr := &pb.RangeResponse{Kvs: k.kvs(c.Key, k.f.cur)}
		return &pb.TxnResponse{Header: k.header(), Responses: []*pb.ResponseOp{{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}}}}, nil
	}
	err, apply := k.injected()
	var resp *pb.ResponseOp
	switch op := r.Success[0].Request.(type) {
	case *pb.RequestOp_RequestPut:
		if apply {
			k.f.set(string(op.RequestPut.Key), fakeEntry{value: string(op.RequestPut.Value), present: true})
		}
		resp = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{}}}
	case *pb.RequestOp_RequestDeleteRange:
		deleted := 0
		if apply && k.f.cur[string(op.RequestDeleteRange.Key)].present {
			deleted = 1
			k.f.set(string(op.RequestDeleteRange.Key), fakeEntry{})
		}
		resp = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Deleted: int64(deleted)}}}
	default:
		return nil, status.Error(codes.InvalidArgument, "not the workers' success branch")
	}
	if err != nil {
		return nil, err
	}
	return &pb.TxnResponse{Header: k.header(), Succeeded: true, Responses: []*pb.ResponseOp{resp}}, nil
}

// serveBoth starts n endpoints in front of one fake, each serving its
// HTTP API and, over HTTP/2 without TLS (as the node's client port takes
// gRPC), the fake's KV service: the members of one cluster, both doors on
// one port.
func serveBoth(t *testing.T, k *fakeKV, n int) []string {
	t.Helper()
	g := grpc.NewServer()
	pb.RegisterKVServer(g, k)
	t.Cleanup(g.Stop)
	var urls []string
	for range n {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				g.ServeHTTP(w, r)
				return
			}
			k.f.ServeHTTP(w, r)
		}))
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	return urls
}

// clientDoor says which door each of w's clients went through.
func isGRPCClient(w Workers, client int) bool {
	return client >= w.FirstClient+w.Clients-w.GRPC && client < w.FirstClient+w.Clients
}

// TestGRPCWorkersBesideHTTP runs gRPC and HTTP workers against one
// linearizable fake: every operation is answered, the history of both
// doors checks out together, and reads through each door see writes
// through the other.
func TestGRPCWorkersBesideHTTP(t *testing.T) {
	k := &fakeKV{f: newFakeNode()}
	rec := NewRecorder()
	w := Workers{Endpoints: serveBoth(t, k, 2), Clients: 4, GRPC: 2, OpsPerClient: 150, Rec: rec, Seed: 1, Timeout: 5 * time.Second}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	ops := rec.Ops()
	if len(ops) != 600 {
		t.Fatalf("%d operations, want 4×150", len(ops))
	}
	writer := map[string]int{}
	kinds := map[OpKind]int{}
	for _, op := range ops {
		if op.Status != StatusOK {
			t.Fatalf("%+v not ok against a healthy fake", op)
		}
		if op.Input.Kind.leavesPresent() {
			writer[op.Input.Value] = op.Client
		}
		if isGRPCClient(w, op.Client) {
			kinds[op.Input.Kind]++
		}
	}
	cross := map[bool]int{} // by the reader's door
	for _, op := range ops {
		if op.Input.Kind != OpGet || !op.Output.Found {
			continue
		}
		if c, ok := writer[op.Output.Value]; ok && isGRPCClient(w, c) != isGRPCClient(w, op.Client) {
			cross[isGRPCClient(w, op.Client)]++
		}
	}
	t.Logf("gRPC operations %v; reads of the other door's writes %v; conditional writes %v", kinds, cross, rec.ConditionalCounts())
	if cross[true] == 0 || cross[false] == 0 {
		t.Errorf("reads of the other door's writes %v: want some through each door", cross)
	}
	for _, kind := range []OpKind{OpPut, OpGet, OpDelete, OpCAS, OpTxnCAS, OpCASDelete} {
		if kinds[kind] == 0 {
			t.Errorf("no %v through gRPC: %v", kind, kinds)
		}
	}
	if n := k.calls.Load(); n < 250 {
		t.Errorf("%d gRPC calls, want the gRPC clients' 300 about", n)
	}
	if _, err := rec.Check(time.Minute, filepath.Join(t.TempDir(), "ok.html")); err != nil {
		t.Fatalf("a linearizable fake judged: %v", err)
	}
	if losses := LostWrites(rec, k.f.final(w.KeyNames())); len(losses) != 0 {
		t.Fatalf("losses against a correct fake: %v", losses)
	}
}

// TestGRPCWorkersCatchBadFakes: a gRPC client alone against a fake that
// reads stale values, or applies every conditional write, leaves a
// history that is not linearizable.
func TestGRPCWorkersCatchBadFakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(f *fakeNode)
	}{
		{"stale reads", func(f *fakeNode) { f.stale = true }},
		{"ignored conditions", func(f *fakeNode) { f.ignoreConditions = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKV{f: newFakeNode()}
			tc.set(k.f)
			rec := NewRecorder()
			w := Workers{Endpoints: serveBoth(t, k, 1), Clients: 1, GRPC: 1, Keys: 2, OpsPerClient: 200, Rec: rec, Seed: 2}
			if err := w.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			if res, err := rec.Check(time.Minute, filepath.Join(t.TempDir(), "bad.html")); err == nil {
				t.Fatalf("a bad fake's history judged %v", res.Outcome)
			}
		})
	}
}

// TestGRPCOutcome is the mapping of failed calls (grpc_client.go).
func TestGRPCOutcome(t *testing.T) {
	put := Input{Kind: OpPut, Key: "k1", Value: "v"}
	get := Input{Kind: OpGet, Key: "k1"}
	refused := Input{Kind: OpPut, Key: ""}
	for _, tc := range []struct {
		name      string
		in        Input
		err       error
		sent      bool
		want      Status
		malformed bool
	}{
		{"no leader: never proposed", put, rpctypes.ErrGRPCNoLeader, true, StatusFailed, false},
		{"request timed out", put, rpctypes.ErrGRPCTimeout, true, StatusUnknown, false},
		{"server stopped", put, rpctypes.ErrGRPCStopped, true, StatusUnknown, false},
		{"another Unavailable", put, status.Error(codes.Unavailable, "etcdserver: conf change pending"), true, StatusUnknown, false},
		{"no leader's text, another code", put, status.Error(codes.Internal, "etcdserver: no leader"), true, StatusUnknown, false},
		{"deadline", put, status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true, StatusUnknown, false},
		{"connection reset", put, status.Error(codes.Unavailable, "error reading from server: connection reset by peer"), true, StatusUnknown, false},
		{"internal", put, status.Error(codes.Internal, "etcdserver: boom"), true, StatusUnknown, false},
		{"refused dial", put, status.Error(codes.Unavailable, "connection refused"), false, StatusFailed, false},
		{"a key no write may carry", refused, rpctypes.ErrGRPCEmptyKey, true, StatusFailed, false},
		{"a valid write refused", put, rpctypes.ErrGRPCRequestTooLarge, true, StatusFailed, true},
		{"a read's timeout", get, rpctypes.ErrGRPCTimeout, true, StatusFailed, false},
		{"a malformed answer to a write", put, malformed("no header"), true, StatusUnknown, true},
		{"a malformed answer to a read", get, malformed("no header"), true, StatusFailed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, cause := grpcOutcome(tc.in, tc.err, tc.sent)
			if st != tc.want || errors.Is(cause, ErrMalformedAnswer) != tc.malformed {
				t.Errorf("%v (%v), want %v, malformed %v", st, cause, tc.want, tc.malformed)
			}
		})
	}
}

// TestGRPCWorkersFailuresAndUnknowns: a fake that applies writes it
// answers "request timed out" or "server stopped", and refuses those it
// answers "no leader": the first are unknown, the second failed, and the
// history checks out (were an applied write taken as failed, reads of its
// value would make it illegal).
func TestGRPCWorkersFailuresAndUnknowns(t *testing.T) {
	k := &fakeKV{f: newFakeNode()}
	k.fail = func(n int64) (error, bool) {
		switch n % 4 {
		case 1:
			return rpctypes.ErrGRPCNoLeader, false
		case 2:
			return rpctypes.ErrGRPCTimeout, true
		case 3:
			return rpctypes.ErrGRPCStopped, true
		}
		return nil, true
	}
	rec := NewRecorder()
	w := Workers{Endpoints: serveBoth(t, k, 1), Clients: 3, GRPC: 2, OpsPerClient: 80, Rec: rec, Seed: 3}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, op := range rec.Ops() {
		if !op.Input.Kind.isWrite() || !isGRPCClient(w, op.Client) {
			continue
		}
		want := StatusOK
		switch {
		case strings.Contains(op.Cause, "no leader"):
			want = StatusFailed
		case strings.Contains(op.Cause, "request timed out"), strings.Contains(op.Cause, "server stopped"):
			want = StatusUnknown
		case op.Cause != "":
			t.Fatalf("unexpected cause %q", op.Cause)
		}
		if op.Status != want {
			t.Errorf("%+v: status %v, want %v", op, op.Status, want)
		}
	}
	if counts := rec.Counts(); counts[StatusFailed] == 0 || counts[StatusUnknown] == 0 {
		t.Fatalf("counts %v: the fake's failures were not all seen", counts)
	}
	if _, err := rec.Check(time.Minute, filepath.Join(t.TempDir(), "x.html")); err != nil {
		t.Fatal(err)
	}
}

// TestGRPCWorkersRefusedConnection: a member that is down refuses the
// connection, so no call reached it: every write is failed, not unknown.
func TestGRPCWorkersRefusedConnection(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePorts(t, 1)[0]) // nothing listens there
	rec := NewRecorder()
	w := Workers{Endpoints: []string{"http://" + addr}, Clients: 2, GRPC: 2, OpsPerClient: 20, Rec: rec, Seed: 5}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var writes int
	for _, op := range rec.Ops() {
		if op.Status != StatusFailed || !strings.Contains(op.Cause, "refused") {
			t.Errorf("%+v: want failed, refused", op)
		}
		if op.Input.Kind.isWrite() {
			writes++
		}
	}
	if writes == 0 {
		t.Fatal("the seed drew no write")
	}
}

// TestGRPCWorkersSilentListener: a member that takes the connection and
// never finishes the handshake (a paused process: the kernel accepts for
// it) gets no request: each call ends at its deadline, failed, not
// unknown.
func TestGRPCWorkersSilentListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-accepted
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	rec := NewRecorder()
	w := Workers{Endpoints: []string{"http://" + l.Addr().String()}, Clients: 2, GRPC: 2, OpsPerClient: 5, Rec: rec,
		Timeout: 50 * time.Millisecond, Seed: 4}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, op := range rec.Ops() {
		if op.Status != StatusFailed || !strings.Contains(op.Cause, "DeadlineExceeded") {
			t.Errorf("%+v: want failed, DeadlineExceeded", op)
		}
	}
}

// TestGRPCWorkersTimeout: a member that takes the connection and never
// answers: each call ends at its deadline, a write unknown, a read failed.
func TestGRPCWorkersTimeout(t *testing.T) {
	k := &fakeKV{f: newFakeNode()}
	k.f.hang = make(chan struct{})
	endpoints := serveBoth(t, k, 1)
	t.Cleanup(func() { close(k.f.hang) })
	rec := NewRecorder()
	w := Workers{Endpoints: endpoints, Clients: 2, GRPC: 2, OpsPerClient: 5, Rec: rec, Timeout: 50 * time.Millisecond}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	ops := rec.Ops()
	if len(ops) != 10 {
		t.Fatalf("%d operations, want 10", len(ops))
	}
	for _, op := range ops {
		if op.Status != failureStatus(op.Input.Kind) || !strings.Contains(op.Cause, "DeadlineExceeded") {
			t.Errorf("%+v: want %v, DeadlineExceeded", op, failureStatus(op.Input.Kind))
		}
		if op.Return-op.Call < w.Timeout {
			t.Errorf("%+v gave up before the timeout", op)
		}
	}
}

// TestGRPCWorkersRefusals: writes of keys no write may carry, through
// gRPC, must be refused with InvalidArgument; one acknowledged is a bad
// refusal. Either way the rest of the history checks out.
func TestGRPCWorkersRefusals(t *testing.T) {
	for _, accept := range []bool{false, true} {
		t.Run("accept="+strconv.FormatBool(accept), func(t *testing.T) {
			k := &fakeKV{f: newFakeNode(), acceptBadKeys: accept}
			rec := NewRecorder()
			w := Workers{Endpoints: serveBoth(t, k, 1), Clients: 1, GRPC: 1, OpsPerClient: 60, OddKeys: 100, Rec: rec, Seed: 8}
			if err := w.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			r := CountRefusals(rec.Ops())
			if (r.Bad > 0) != accept || (!accept && r.Refused == 0) {
				t.Fatalf("refusals %v, want bad ones: %v", r, accept)
			}
			if _, err := rec.Check(time.Minute, filepath.Join(t.TempDir(), "x.html")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckRefusalGRPC(t *testing.T) {
	long := status.Error(codes.InvalidArgument, strings.Repeat("k", maxRefusalBytes+1))
	for _, tc := range []struct {
		err             error
		sent            bool
		refused, badOne bool
	}{
		{rpctypes.ErrGRPCEmptyKey, true, true, false},
		{rpctypes.ErrGRPCRequestTooLarge, true, true, false},
		{long, true, false, true},
		{nil, true, false, true},
		{status.Error(codes.Internal, "boom"), true, false, true},
		{rpctypes.ErrGRPCNoLeader, true, false, false},
		{status.Error(codes.DeadlineExceeded, "late"), true, false, false},
		{status.Error(codes.Unavailable, "connection refused"), false, false, false},
	} {
		got := checkRefusalGRPC(tc.err, tc.sent, "a write")
		if strings.HasPrefix(got.Error(), "refused: ") != tc.refused || errors.Is(got, ErrBadRefusal) != tc.badOne {
			t.Errorf("%v: %v, want refused %v, bad %v", tc.err, got, tc.refused, tc.badOne)
		}
	}
}
