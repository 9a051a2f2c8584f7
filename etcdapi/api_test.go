package etcdapi_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/internal/testcluster"
	"github.com/raftkv/node/internal/testutil"
)

// apiEnv is a three-member in-process cluster serving etcd's API, with a
// connection to each member.
type apiEnv struct {
	c     *testcluster.Cluster
	conns []*grpc.ClientConn
	lead  int // index of the leader's connection
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	// Over HTTP: a follower hands keep-alives to the leader's peer API.
	c := testcluster.New(t, testcluster.Config{GRPC: true, OverHTTP: true})
	lead, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{c: c, lead: int(lead.ID - 1)}
	for _, m := range c.Members {
		conn, err := grpc.NewClient(m.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		e.conns = append(e.conns, conn)
	}
	return e
}

func (e *apiEnv) kv(i int) pb.KVClient { return pb.NewKVClient(e.conns[i]) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sameError says whether err is want, as clientv3 compares them: by code
// and message.
func sameError(err, want error) bool {
	got, ok1 := status.FromError(err)
	w, ok2 := status.FromError(want)
	return ok1 && ok2 && got.Code() == w.Code() && got.Message() == w.Message()
}

func keys(kvs []*mvccpb.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

func TestKV(t *testing.T) {
	e := newAPIEnv(t)
	ctx := ctxT(t)
	kv := e.kv(e.lead)
	follower := e.kv((e.lead + 1) % 3)

	put := func(k, v string) *pb.PutResponse {
		t.Helper()
		r, err := kv.Put(ctx, &pb.PutRequest{Key: []byte(k), Value: []byte(v)})
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		return r
	}
	first := put("p/a", "3")
	put("p/b", "1")
	put("p/c", "2")
	last := put("p/a", "4") // p/a: version 2, newest mod revision
	h := last.Header
	if h.ClusterId != 1 || h.MemberId != uint64(e.lead+1) || h.Revision <= first.Header.Revision || h.RaftTerm == 0 {
		t.Fatalf("header %+v: want cluster 1, member %d, a revision past %d, a term", h, e.lead+1, first.Header.Revision)
	}

	prefix := []byte("p0") // the end of the prefix "p/"
	for _, tc := range []struct {
		name      string
		req       *pb.RangeRequest
		want      []string
		count     int64
		more      bool
		wantErr   error
		onFollow  bool
		checkVals bool
	}{
		{name: "one key", req: &pb.RangeRequest{Key: []byte("p/b")}, want: []string{"p/b"}, count: 1},
		{name: "prefix", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix}, want: []string{"p/a", "p/b", "p/c"}, count: 3},
		{name: "from key", req: &pb.RangeRequest{Key: []byte("p/b"), RangeEnd: []byte{0}}, want: []string{"p/b", "p/c"}, count: 2},
		{name: "limit counts the whole range", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix, Limit: 1}, want: []string{"p/a"}, count: 3, more: true},
		{name: "sorted by mod revision, descending", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix,
			SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD}, want: []string{"p/a", "p/c", "p/b"}, count: 3},
		{name: "sorted by value, limit 2", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix, Limit: 2,
			SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_VALUE}, want: []string{"p/b", "p/c"}, count: 3, more: true},
		{name: "keys in descending order", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix,
			SortOrder: pb.RangeRequest_DESCEND}, want: []string{"p/c", "p/b", "p/a"}, count: 3},
		{name: "created after the first put", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix,
			MinCreateRevision: first.Header.Revision + 1}, want: []string{"p/b", "p/c"}, count: 2},
		{name: "changed at the last put only", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix,
			MinModRevision: h.Revision}, want: []string{"p/a"}, count: 1},
		{name: "count only", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix, CountOnly: true}, count: 3},
		{name: "at the first put's revision", req: &pb.RangeRequest{Key: []byte("p/"), RangeEnd: prefix,
			Revision: first.Header.Revision}, want: []string{"p/a"}, count: 1},
		{name: "serializable, on a follower", req: &pb.RangeRequest{Key: []byte("p/b"), Serializable: true}, onFollow: true, want: []string{"p/b"}, count: 1},
		{name: "linearizable, on a follower", req: &pb.RangeRequest{Key: []byte("p/a")}, onFollow: true, want: []string{"p/a"}, count: 1},
		{name: "future revision", req: &pb.RangeRequest{Key: []byte("p/a"), Revision: h.Revision + 1000}, wantErr: rpctypes.ErrGRPCFutureRev},
		{name: "no key", req: &pb.RangeRequest{}, wantErr: rpctypes.ErrGRPCEmptyKey},
		{name: "unknown sort order", req: &pb.RangeRequest{Key: []byte("a"), SortOrder: 7}, wantErr: rpctypes.ErrGRPCInvalidSortOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kv
			if tc.onFollow {
				c = follower
			}
			var r *pb.RangeResponse
			var err error
			perr := testutil.Poll(5*time.Second, 20*time.Millisecond, func() error {
				r, err = c.Range(ctx, tc.req)
				if tc.onFollow && err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == "3" {
					// A serializable read of a follower may lag; a
					// linearizable one never does.
					if tc.req.Serializable {
						return errors.New("follower behind")
					}
					t.Fatalf("a linearizable read on a follower answered an old value")
				}
				return nil
			})
			if perr != nil {
				t.Fatal(perr)
			}
			if tc.wantErr != nil {
				if !sameError(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if r == nil {
				t.Fatalf("range: %v", err)
			}
			if got := keys(r.Kvs); !slices.Equal(got, tc.want) || r.Count != tc.count || r.More != tc.more {
				t.Fatalf("got keys %v count %d more %v, want %v %d %v", got, r.Count, r.More, tc.want, tc.count, tc.more)
			}
		})
	}

	t.Run("put with prev_kv, ignore_value and ignore_lease", func(t *testing.T) {
		r, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("p/b"), Value: []byte("new"), PrevKv: true})
		if err != nil || r.PrevKv == nil || string(r.PrevKv.Value) != "1" {
			t.Fatalf("prev_kv: %v %v", r, err)
		}
		lease, err := pb.NewLeaseClient(e.conns[e.lead]).LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 60})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("p/b"), IgnoreValue: true, Lease: lease.ID}); err != nil {
			t.Fatal(err)
		}
		g, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("p/b")})
		if err != nil || string(g.Kvs[0].Value) != "new" || g.Kvs[0].Lease != lease.ID {
			t.Fatalf("after ignore_value: %v %v, want value new with lease %d", g, err, lease.ID)
		}
		if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("p/b"), Value: []byte("newer"), IgnoreLease: true}); err != nil {
			t.Fatal(err)
		}
		if g, _ := kv.Range(ctx, &pb.RangeRequest{Key: []byte("p/b")}); g.Kvs[0].Lease != lease.ID || string(g.Kvs[0].Value) != "newer" {
			t.Fatalf("after ignore_lease: %v", g.Kvs[0])
		}
		for _, tc := range []struct {
			req  *pb.PutRequest
			want error
		}{
			{&pb.PutRequest{Key: []byte("absent"), IgnoreValue: true}, rpctypes.ErrGRPCKeyNotFound},
			{&pb.PutRequest{Key: []byte("p/b"), Value: []byte("x"), IgnoreValue: true}, rpctypes.ErrGRPCValueProvided},
			{&pb.PutRequest{Key: []byte("p/b"), Lease: lease.ID, IgnoreLease: true}, rpctypes.ErrGRPCLeaseProvided},
			{&pb.PutRequest{Key: []byte("p/b"), Lease: 12345}, rpctypes.ErrGRPCLeaseNotFound},
			{&pb.PutRequest{Value: []byte("x")}, rpctypes.ErrGRPCEmptyKey},
		} {
			if _, err := kv.Put(ctx, tc.req); !sameError(err, tc.want) {
				t.Errorf("put %q: %v, want %v", tc.req.Key, err, tc.want)
			}
		}
	})

	t.Run("txn", func(t *testing.T) {
		g, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("p/b")})
		if err != nil {
			t.Fatal(err)
		}
		b := g.Kvs[0]
		req := &pb.TxnRequest{
			Compare: []*pb.Compare{
				{Key: []byte("p/b"), Target: pb.Compare_LEASE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Lease{Lease: b.Lease}},
				{Key: []byte("p/b"), Target: pb.Compare_MOD, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: b.ModRevision}},
				{Key: []byte("p/b"), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: -1}},
			},
			Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("t/x"), Value: []byte("1"), PrevKv: true}}},
				{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{
					Compare: []*pb.Compare{{Key: []byte("t/x"), Target: pb.Compare_CREATE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_CreateRevision{}}},
					Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("t/y"), Value: []byte("2")}}}},
				}}},
				{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("t/"), RangeEnd: []byte("t0"),
					SortOrder: pb.RangeRequest_DESCEND}}},
			},
		}
		r, err := kv.Txn(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Succeeded || len(r.Responses) != 3 {
			t.Fatalf("txn: %v", r)
		}
		nested := r.Responses[1].GetResponseTxn()
		// Nested compares are decided before the outer transaction runs,
		// as etcd's: t/x was absent then.
		if nested == nil || !nested.Succeeded || len(nested.Responses) != 1 {
			t.Fatalf("nested: %v", r.Responses[1])
		}
		if got := keys(r.Responses[2].GetResponseRange().Kvs); !slices.Equal(got, []string{"t/y", "t/x"}) {
			t.Fatalf("range in the txn: %v", got)
		}
		dup := &pb.TxnRequest{Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("d"), Value: []byte("1")}}},
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("d"), Value: []byte("2")}}},
		}}
		if _, err := kv.Txn(ctx, dup); !sameError(err, rpctypes.ErrGRPCDuplicateKey) {
			t.Fatalf("a key put twice: %v, want %v", err, rpctypes.ErrGRPCDuplicateKey)
		}
	})

	t.Run("delete range with prev_kv, then compact", func(t *testing.T) {
		d, err := kv.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte("t/"), RangeEnd: []byte("t0"), PrevKv: true})
		if err != nil || d.Deleted != 2 || !slices.Equal(keys(d.PrevKvs), []string{"t/x", "t/y"}) {
			t.Fatalf("delete: %v %v", d, err)
		}
		if _, err := kv.Compact(ctx, &pb.CompactionRequest{Revision: d.Header.Revision}); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("p/a"), Revision: first.Header.Revision}); !sameError(err, rpctypes.ErrGRPCCompacted) {
			t.Fatalf("a read below the compaction: %v, want %v", err, rpctypes.ErrGRPCCompacted)
		}
		if _, err := kv.Compact(ctx, &pb.CompactionRequest{Revision: first.Header.Revision}); !sameError(err, rpctypes.ErrGRPCCompacted) {
			t.Fatalf("compacting below the compaction: %v", err)
		}
	})
}

func TestLeaseClusterMaintenance(t *testing.T) {
	e := newAPIEnv(t)
	ctx := ctxT(t)
	follower := (e.lead + 1) % 3
	lc := pb.NewLeaseClient(e.conns[follower])

	// Every member learns of the leader before it takes a request.
	var g *pb.LeaseGrantResponse
	testutil.Eventually(t, 10*time.Second, "a grant through a follower", func() (err error) {
		g, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 30})
		return err
	})
	if g.ID == 0 || g.TTL < 30 {
		t.Fatalf("grant: %v", g)
	}
	if _, err := e.kv(follower).Put(ctx, &pb.PutRequest{Key: []byte("leased"), Value: []byte("v"), Lease: g.ID}); err != nil {
		t.Fatal(err)
	}
	// A follower hands keep-alives and TTL reads to the leader.
	ka, err := lc.LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{g.ID, 424242} {
		if err := ka.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		r, err := ka.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{true: g.TTL, false: 0}[id == g.ID]; r.ID != id || r.TTL != want {
			t.Fatalf("keep-alive of %d: %v, want TTL %d", id, r, want)
		}
	}
	if err := ka.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := ka.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend: %v, want EOF", err)
	}
	ttl, err := lc.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: g.ID, Keys: true})
	if err != nil || ttl.GrantedTTL != g.TTL || ttl.TTL <= 0 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "leased" {
		t.Fatalf("time to live: %v %v", ttl, err)
	}
	if ttl, err := lc.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: 424242}); err != nil || ttl.TTL != -1 {
		t.Fatalf("time to live of an unknown lease: %v %v, want TTL -1", ttl, err)
	}
	ls, err := lc.LeaseLeases(ctx, &pb.LeaseLeasesRequest{})
	if err != nil || len(ls.Leases) != 1 || ls.Leases[0].ID != g.ID {
		t.Fatalf("leases: %v %v", ls, err)
	}
	if _, err := lc.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: g.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: g.ID}); !sameError(err, rpctypes.ErrGRPCLeaseNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if r, err := e.kv(e.lead).Range(ctx, &pb.RangeRequest{Key: []byte("leased")}); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("the revoked lease's key: %v %v", r, err)
	}

	cc := pb.NewClusterClient(e.conns[follower])
	ml, err := cc.MemberList(ctx, &pb.MemberListRequest{})
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %v %v", ml, err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"add a member with two peer URLs", func() error {
			_, err := cc.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}})
			return err
		}, rpctypes.ErrGRPCMemberBadURLs},
		{"add a member at a peer URL in use", func() error {
			_, err := cc.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: ml.Members[0].PeerURLs})
			return err
		}, rpctypes.ErrGRPCPeerURLExist},
		{"remove an unknown member", func() error {
			_, err := cc.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 99})
			return err
		}, rpctypes.ErrGRPCMemberNotFound},
		{"promote a voter", func() error {
			_, err := cc.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: ml.Members[0].ID})
			return err
		}, rpctypes.ErrGRPCMemberNotLearner},
	} {
		if err := tc.call(); !sameError(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// Status, HashKV alike on every member once they converge, and a
	// snapshot whose last message is the SHA-256 of the rest.
	if _, err := e.c.Converged(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	var hashes []uint32
	for i, conn := range e.conns {
		mc := pb.NewMaintenanceClient(conn)
		st, err := mc.Status(ctx, &pb.StatusRequest{})
		if err != nil || st.Leader != uint64(e.lead+1) || st.DbSize <= 0 || st.DbSizeInUse <= 0 || st.RaftTerm == 0 || st.Version == "" {
			t.Fatalf("status of member %d: %v %v", i+1, st, err)
		}
		h, err := mc.HashKV(ctx, &pb.HashKVRequest{})
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Fatalf("hashes differ: %v", hashes)
	}
	snap, err := pb.NewMaintenanceClient(e.conns[follower]).Snapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for {
		r, err := snap.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, r.Blob)
	}
	if len(blobs) < 2 {
		t.Fatalf("snapshot of %d messages", len(blobs))
	}
	sum := sha256.New()
	for _, b := range blobs[:len(blobs)-1] {
		sum.Write(b)
	}
	if got := blobs[len(blobs)-1]; string(got) != string(sum.Sum(nil)) {
		t.Fatalf("the snapshot's last message is not the SHA-256 of the rest")
	}
	mc := pb.NewMaintenanceClient(e.conns[follower])
	if _, err := mc.MoveLeader(ctx, &pb.MoveLeaderRequest{TargetID: uint64(follower + 1)}); !sameError(err, rpctypes.ErrGRPCNotLeader) {
		t.Fatalf("move-leader asked of a follower: %v", err)
	}
	if _, err := pb.NewMaintenanceClient(e.conns[e.lead]).MoveLeader(ctx, &pb.MoveLeaderRequest{TargetID: uint64(follower + 1)}); err != nil {
		t.Fatalf("move-leader: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "the leader to move", func() error {
		st, err := mc.Status(ctx, &pb.StatusRequest{})
		if err != nil {
			return err
		}
		if st.Leader != uint64(follower+1) {
			return fmt.Errorf("leader %d", st.Leader)
		}
		return nil
	})
	if _, err := pb.NewAuthClient(e.conns[0]).AuthEnable(ctx, &pb.AuthEnableRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("auth: %v, want Unimplemented", err)
	}

	// Last, as it cuts member 3 off: its peer URL moves where nothing
	// listens, and every member lists it there.
	for _, tc := range []struct {
		req  *pb.MemberUpdateRequest
		want error
	}{
		{&pb.MemberUpdateRequest{ID: 99, PeerURLs: []string{"http://127.0.0.1:1"}}, rpctypes.ErrGRPCMemberNotFound},
		{&pb.MemberUpdateRequest{ID: 3, PeerURLs: ml.Members[0].PeerURLs}, rpctypes.ErrGRPCPeerURLExist},
		{&pb.MemberUpdateRequest{ID: 3, PeerURLs: []string{"ftp://x"}}, rpctypes.ErrGRPCMemberBadURLs},
	} {
		if _, err := cc.MemberUpdate(ctx, tc.req); !sameError(err, tc.want) {
			t.Errorf("member update %v: %v, want %v", tc.req, err, tc.want)
		}
	}
	moved := "http://127.0.0.1:1"
	if _, err := pb.NewClusterClient(e.conns[e.lead]).MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: 3, PeerURLs: []string{moved}}); err != nil {
		t.Fatalf("member update: %v", err)
	}
	for i := range 2 {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("member %d to list member 3 at its new URL", i+1), func() error {
			l, err := pb.NewClusterClient(e.conns[i]).MemberList(ctx, &pb.MemberListRequest{})
			if err != nil {
				return err
			}
			for _, m := range l.Members {
				if m.ID == 3 && (len(m.PeerURLs) != 1 || m.PeerURLs[0] != moved) {
					return fmt.Errorf("member 3 at %v", m.PeerURLs)
				}
			}
			return nil
		})
	}
}

// Defragment shrinks a member's db after deletes, while writes go on, and
// loses none of them: the members still agree on every key.
func TestDefragment(t *testing.T) {
	e := newAPIEnv(t)
	ctx := ctxT(t)
	kv := e.kv(e.lead)
	value := make([]byte, 2000)
	for i := range 10 { // 1,000 keys, 100 a transaction
		var ops []*pb.RequestOp
		for j := range 100 {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
				Key: fmt.Appendf(nil, "d/%05d", i*100+j), Value: value}}})
		}
		if _, err := kv.Txn(ctx, &pb.TxnRequest{Success: ops}); err != nil {
			t.Fatal(err)
		}
	}
	mc := pb.NewMaintenanceClient(e.conns[e.lead])
	var before *pb.StatusResponse
	testutil.Eventually(t, 5*time.Second, "the db to commit the keys", func() (err error) {
		// Status reports the db as of its last commit (every 100 ms).
		if before, err = mc.Status(ctx, &pb.StatusRequest{}); err == nil && before.DbSize < 2<<20 {
			err = fmt.Errorf("db of %d bytes", before.DbSize)
		}
		return err
	})
	del, err := kv.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte("d/"), RangeEnd: []byte("d/00900")})
	if err != nil {
		t.Fatal(err)
	}
	// The history keeps every value written and deleted until compacted.
	if _, err := kv.Compact(ctx, &pb.CompactionRequest{Revision: del.Header.Revision}); err != nil {
		t.Fatal(err)
	}
	// Writes during the defragmentation, to be applied again to the copy.
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if _, err := kv.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "during/%03d", i), Value: []byte("x")}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if _, err := mc.Defragment(ctx, &pb.DefragmentRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after, err := mc.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if after.DbSize >= before.DbSize/2 {
		t.Fatalf("db of %d bytes before, %d after: not shrunk", before.DbSize, after.DbSize)
	}
	if _, err := e.c.Converged(10 * time.Second); err != nil {
		t.Fatalf("the members disagree after the defragmentation: %v", err)
	}
	r, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("during/"), RangeEnd: []byte("during0"), CountOnly: true})
	if err != nil || r.Count != 200 {
		t.Fatalf("writes made during the defragmentation: %v %v, want 200", r, err)
	}
	// The defragmented member restarts from its new file.
	m := e.c.Member(uint64(e.lead + 1))
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Converged(20 * time.Second); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}
