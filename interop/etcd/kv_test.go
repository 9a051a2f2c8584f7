package etcd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/internal/nodecluster"
	"github.com/raftkv/node/internal/testutil"
)

// keys is the keys of kvs, in order.
func keys(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

// TestClientV3 checks etcd's KV, Lease, Cluster and Maintenance calls made
// with clientv3 against a three-member cluster.
func TestClientV3(t *testing.T) {
	c := nodecluster.Start(t, 3)
	cli := newClient(t, c.Endpoints()...)

	// etcd's store starts at revision 1, so a header never says 0: a
	// client that watches from a Get's header revision (Election.Observe,
	// Mutex, STM) would otherwise watch "from now" and miss what was
	// written between the Get and the watch.
	t.Run("fresh store revision", func(t *testing.T) {
		for _, ep := range c.Endpoints() {
			g, err := cli.Get(ctx(t), "never-written")
			if err != nil {
				t.Fatal(err)
			}
			st, err := cli.Status(ctx(t), ep)
			if err != nil {
				t.Fatal(err)
			}
			if g.Header.Revision < 1 || st.Header.Revision < 1 {
				t.Errorf("a cluster no key was written to: Get's header revision %d, Status's (%s) %d; want at least 1, as etcd's", g.Header.Revision, ep, st.Header.Revision)
			}
		}
	})

	t.Run("KV", func(t *testing.T) {
		var revs []int64
		for _, kv := range [][2]string{{"kv/a", "3"}, {"kv/b", "1"}, {"kv/c", "2"}, {"kv/a", "4"}} {
			r, err := cli.Put(ctx(t), kv[0], kv[1])
			if err != nil {
				t.Fatalf("Put %s: %v", kv[0], err)
			}
			revs = append(revs, r.Header.Revision)
		}
		for _, tc := range []struct {
			name  string
			key   string
			opts  []clientv3.OpOption
			want  []string
			count int64
			more  bool
		}{
			{"prefix", "kv/", []clientv3.OpOption{clientv3.WithPrefix()}, []string{"kv/a", "kv/b", "kv/c"}, 3, false},
			{"sort by value descending", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend)}, []string{"kv/a", "kv/c", "kv/b"}, 3, false},
			{"sort by mod revision", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend)}, []string{"kv/b", "kv/c", "kv/a"}, 3, false},
			{"limit", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, []string{"kv/a", "kv/b"}, 3, true},
			{"rev", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(revs[1])}, []string{"kv/a", "kv/b"}, 2, false},
			{"range", "kv/a", []clientv3.OpOption{clientv3.WithRange("kv/c")}, []string{"kv/a", "kv/b"}, 2, false},
			{"from key", "kv/b", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithLimit(2)}, []string{"kv/b", "kv/c"}, 0, false},
			{"count only", "kv/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}, []string{}, 3, false},
			{"serializable", "kv/b", []clientv3.OpOption{clientv3.WithSerializable()}, []string{"kv/b"}, 1, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := cli.Get(ctx(t), tc.key, tc.opts...)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if got := keys(r.Kvs); !slices.Equal(got, tc.want) || (tc.count != 0 && r.Count != tc.count) || r.More != tc.more {
					t.Errorf("Get %s: keys %q count %d more %v; want %q count %d more %v", tc.key, got, r.Count, r.More, tc.want, tc.count, tc.more)
				}
			})
		}
		t.Run("rev values", func(t *testing.T) {
			r, err := cli.Get(ctx(t), "kv/a", clientv3.WithRev(revs[0]))
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "3" || r.Kvs[0].Version != 1 {
				t.Errorf("Get kv/a at %d: %+v %v, want 3 at version 1", revs[0], r, err)
			}
			r, err = cli.Get(ctx(t), "kv/a")
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "4" || r.Kvs[0].Version != 2 ||
				r.Kvs[0].CreateRevision != revs[0] || r.Kvs[0].ModRevision != revs[3] {
				t.Errorf("Get kv/a: %+v %v", r, err)
			}
		})

		t.Run("Put options", func(t *testing.T) {
			r, err := cli.Put(ctx(t), "kv/b", "10", clientv3.WithPrevKV())
			if err != nil || r.PrevKv == nil || string(r.PrevKv.Value) != "1" {
				t.Fatalf("Put WithPrevKV: %+v %v, want the previous value 1", r, err)
			}
			lease, err := cli.Grant(ctx(t), 60)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Put(ctx(t), "kv/leased", "v1", clientv3.WithLease(lease.ID)); err != nil {
				t.Fatal(err)
			}
			// WithIgnoreLease keeps the lease, WithIgnoreValue the value;
			// the lease a put names (none: 0) is the key's unless it
			// ignores the lease, as in etcd's put.
			for _, step := range []struct {
				name  string
				value string
				opts  []clientv3.OpOption
				lease clientv3.LeaseID
			}{
				{"WithIgnoreLease", "v2", []clientv3.OpOption{clientv3.WithIgnoreLease()}, lease.ID},
				{"WithIgnoreValue WithLease", "", []clientv3.OpOption{clientv3.WithIgnoreValue(), clientv3.WithLease(lease.ID)}, lease.ID},
				{"WithIgnoreValue and no lease", "", []clientv3.OpOption{clientv3.WithIgnoreValue()}, 0},
				{"both", "", []clientv3.OpOption{clientv3.WithIgnoreValue(), clientv3.WithIgnoreLease()}, 0},
			} {
				if _, err := cli.Put(ctx(t), "kv/leased", step.value, step.opts...); err != nil {
					t.Fatalf("Put %s: %v", step.name, err)
				}
				g, err := cli.Get(ctx(t), "kv/leased")
				if err != nil || len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "v2" || clientv3.LeaseID(g.Kvs[0].Lease) != step.lease {
					t.Errorf("after Put %s: %+v %v, want v2 on lease %x", step.name, g, err, step.lease)
				}
			}
			if _, err := cli.Delete(ctx(t), "kv/leased"); err != nil {
				t.Fatal(err)
			}
			_, err = cli.Put(ctx(t), "kv/absent", "", clientv3.WithIgnoreValue())
			if !errors.Is(err, rpctypes.ErrKeyNotFound) {
				t.Errorf("Put WithIgnoreValue of an absent key: %v, want %v", err, rpctypes.ErrKeyNotFound)
			}
			if _, err := cli.Revoke(ctx(t), lease.ID); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("Delete", func(t *testing.T) {
			r, err := cli.Delete(ctx(t), "kv/", clientv3.WithPrefix(), clientv3.WithPrevKV())
			if err != nil || r.Deleted != 3 || !slices.Equal(keys(r.PrevKvs), []string{"kv/a", "kv/b", "kv/c"}) {
				t.Fatalf("Delete WithPrefix WithPrevKV: %+v %v", r, err)
			}
			g, err := cli.Get(ctx(t), "kv/", clientv3.WithPrefix())
			if err != nil || len(g.Kvs) != 0 {
				t.Errorf("after Delete: %+v %v", g, err)
			}
		})

		t.Run("Txn", func(t *testing.T) {
			if _, err := cli.Put(ctx(t), "txn/k", "v1"); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name      string
				cmps      []clientv3.Cmp
				then      []clientv3.Op
				els       []clientv3.Op
				succeeded bool
				value     string // txn/k afterwards
			}{
				{"value equal", []clientv3.Cmp{clientv3.Compare(clientv3.Value("txn/k"), "=", "v1")},
					[]clientv3.Op{clientv3.OpPut("txn/k", "v2")}, []clientv3.Op{clientv3.OpPut("txn/k", "bad")}, true, "v2"},
				{"version greater, false", []clientv3.Cmp{clientv3.Compare(clientv3.Version("txn/k"), ">", 5)},
					[]clientv3.Op{clientv3.OpPut("txn/k", "bad")}, []clientv3.Op{clientv3.OpPut("txn/k", "v3")}, false, "v3"},
				{"create revision of an absent key", []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("txn/absent"), "=", 0)},
					[]clientv3.Op{clientv3.OpPut("txn/absent", "now"), clientv3.OpGet("txn/k")}, nil, true, "v3"},
				{"nested txn", []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision("txn/k"), ">", 0)},
					[]clientv3.Op{clientv3.OpTxn(
						[]clientv3.Cmp{clientv3.Compare(clientv3.Value("txn/k"), "=", "v3")},
						[]clientv3.Op{clientv3.OpPut("txn/k", "v4"), clientv3.OpDelete("txn/absent")},
						[]clientv3.Op{clientv3.OpPut("txn/k", "bad")})},
					nil, true, "v4"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r, err := cli.Txn(ctx(t)).If(tc.cmps...).Then(tc.then...).Else(tc.els...).Commit()
					if err != nil {
						t.Fatalf("Txn: %v", err)
					}
					if r.Succeeded != tc.succeeded {
						t.Errorf("Txn succeeded %v, want %v", r.Succeeded, tc.succeeded)
					}
					g, err := cli.Get(ctx(t), "txn/k")
					if err != nil || len(g.Kvs) != 1 || string(g.Kvs[0].Value) != tc.value {
						t.Errorf("txn/k afterwards: %+v %v, want %s", g, err, tc.value)
					}
				})
			}
			// The nested transaction's responses.
			r, err := cli.Txn(ctx(t)).Then(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet("txn/k")}, nil)).Commit()
			if err != nil {
				t.Fatal(err)
			}
			inner := r.Responses[0].GetResponseTxn()
			if inner == nil || !inner.Succeeded || len(inner.Responses) != 1 || string(inner.Responses[0].GetResponseRange().Kvs[0].Value) != "v4" {
				t.Errorf("nested Txn response: %+v", r.Responses)
			}
		})

		t.Run("Compact", func(t *testing.T) {
			old, err := cli.Put(ctx(t), "compact/k", "old")
			if err != nil {
				t.Fatal(err)
			}
			cut, err := cli.Put(ctx(t), "compact/k", "new")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Compact(ctx(t), cut.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
				t.Fatalf("Compact: %v", err)
			}
			if _, err := cli.Get(ctx(t), "compact/k", clientv3.WithRev(old.Header.Revision)); !errors.Is(err, rpctypes.ErrCompacted) {
				t.Errorf("Get below the compaction: %v, want %v", err, rpctypes.ErrCompacted)
			}
			if _, err := cli.Compact(ctx(t), old.Header.Revision); !errors.Is(err, rpctypes.ErrCompacted) {
				t.Errorf("Compact below the last compaction: %v, want %v", err, rpctypes.ErrCompacted)
			}
			if _, err := cli.Get(ctx(t), "compact/k", clientv3.WithRev(cut.Header.Revision+1000)); !errors.Is(err, rpctypes.ErrFutureRev) {
				t.Errorf("Get at a future revision: %v, want %v", err, rpctypes.ErrFutureRev)
			}
		})
	})

	t.Run("Lease", func(t *testing.T) {
		g, err := cli.Grant(ctx(t), 30)
		if err != nil || g.TTL != 30 || g.ID == 0 {
			t.Fatalf("Grant: %+v %v", g, err)
		}
		for _, k := range []string{"lease/a", "lease/b"} {
			if _, err := cli.Put(ctx(t), k, "v", clientv3.WithLease(g.ID)); err != nil {
				t.Fatal(err)
			}
		}
		kctx, cancel := context.WithCancel(ctx(t))
		ka, err := cli.KeepAlive(kctx, g.ID)
		if err != nil {
			cancel()
			t.Fatalf("KeepAlive: %v", err)
		}
		select {
		case r, ok := <-ka:
			if !ok || r.ID != g.ID || r.TTL != 30 {
				t.Errorf("KeepAlive's first answer: %+v %v", r, ok)
			}
		case <-kctx.Done():
			t.Errorf("no keep-alive answer")
		}
		cancel()
		// The channel closes once the keep-alive is cancelled.
		for range ka {
		}
		ttl, err := cli.TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
		if err != nil || ttl.GrantedTTL != 30 || ttl.TTL <= 0 || ttl.TTL > 30 {
			t.Fatalf("TimeToLive: %+v %v", ttl, err)
		}
		var attached []string
		for _, k := range ttl.Keys {
			attached = append(attached, string(k))
		}
		if slices.Sort(attached); !slices.Equal(attached, []string{"lease/a", "lease/b"}) {
			t.Errorf("TimeToLive WithAttachedKeys: %q", attached)
		}
		ls, err := cli.Leases(ctx(t))
		if err != nil || !slices.ContainsFunc(ls.Leases, func(l clientv3.LeaseStatus) bool { return l.ID == g.ID }) {
			t.Errorf("Leases: %+v %v, want %x among them", ls, err, g.ID)
		}
		if _, err := cli.Revoke(ctx(t), g.ID); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if r, err := cli.Get(ctx(t), "lease/", clientv3.WithPrefix()); err != nil || len(r.Kvs) != 0 {
			t.Errorf("keys of a revoked lease: %+v %v", r, err)
		}
		if ttl, err := cli.TimeToLive(ctx(t), g.ID); err != nil || ttl.TTL != -1 {
			t.Errorf("TimeToLive of a revoked lease: %+v %v, want TTL -1", ttl, err)
		}
		if _, err := cli.Revoke(ctx(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Errorf("Revoke again: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}
		if _, err := cli.KeepAliveOnce(ctx(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Errorf("KeepAliveOnce of a revoked lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}
	})

	t.Run("Cluster", func(t *testing.T) {
		r, err := cli.MemberList(ctx(t))
		if err != nil || len(r.Members) != 3 {
			t.Fatalf("MemberList: %+v %v", r, err)
		}
		for _, m := range r.Members {
			want := c.Member(m.ID)
			if want == nil || !slices.Equal(m.PeerURLs, []string{want.PeerURL}) || m.IsLearner {
				t.Errorf("MemberList: member %+v", m)
			}
		}
		// clientv3 learns the cluster's client URLs from MemberList (Sync).
		testutil.Eventually(t, opTimeout, "Sync naming every client URL", func() error {
			if err := cli.Sync(ctx(t)); err != nil {
				return err
			}
			got := slices.Sorted(slices.Values(cli.Endpoints()))
			want := make([]string, 0, 3)
			for _, m := range c.Members {
				want = append(want, m.ClientURL)
			}
			if slices.Sort(want); !slices.Equal(got, want) {
				return errors.New("endpoints " + strings.Join(got, ","))
			}
			return nil
		})
	})

	t.Run("Maintenance", func(t *testing.T) {
		var leaders []uint64
		for _, ep := range c.Endpoints() {
			st, err := cli.Status(ctx(t), ep)
			if err != nil {
				t.Fatalf("Status %s: %v", ep, err)
			}
			if st.Leader == 0 || st.Version == "" || st.DbSize == 0 || st.RaftIndex == 0 || len(st.Errors) > 0 {
				t.Errorf("Status %s: %+v", ep, st)
			}
			leaders = append(leaders, st.Leader)
		}
		if leaders = slices.Compact(leaders); len(leaders) != 1 {
			t.Errorf("Status names leaders %v", leaders)
		}
		testutil.Eventually(t, opTimeout, "HashKV equal on every member", func() error {
			var hashes []uint32
			var revs []int64
			for _, ep := range c.Endpoints() {
				h, err := cli.HashKV(ctx(t), ep, 0)
				if err != nil {
					t.Fatalf("HashKV %s: %v", ep, err)
				}
				hashes, revs = append(hashes, h.Hash), append(revs, h.Header.Revision)
			}
			if len(slices.Compact(hashes)) != 1 || len(slices.Compact(revs)) != 1 {
				return errors.New("hashes or revisions differ")
			}
			return nil
		})

		one := newClient(t, c.Members[0].Endpoint())
		rc, err := one.Snapshot(ctx(t))
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		defer rc.Close()
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, rc); err != nil {
			t.Fatalf("Snapshot: reading: %v", err)
		}
		// etcd's last message is the SHA-256 of the db: strip it, and the
		// rest is a bbolt file.
		if buf.Len() < 4096+32 {
			t.Fatalf("Snapshot of %d bytes", buf.Len())
		}
		path := t.TempDir() + "/snap.db"
		if err := os.WriteFile(path, buf.Bytes()[:buf.Len()-32], 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Fatalf("the snapshot is no bbolt db: %v", err)
		}
		defer db.Close()
		if err := db.View(func(tx *bolt.Tx) error {
			if tx.Bucket([]byte("kv")) == nil {
				return errors.New("no kv bucket")
			}
			return nil
		}); err != nil {
			t.Error(err)
		}

		// Defragment is either refused as Unimplemented, naming itself,
		// or done, and the member serves as before.
		if _, err := one.Defragment(ctx(t), c.Members[0].Endpoint()); err != nil {
			if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "Defragment") {
				t.Errorf("Defragment: %v, want success or Unimplemented", err)
			}
		} else if r, err := one.Get(ctx(t), "txn/k"); err != nil || len(r.Kvs) != 1 {
			t.Errorf("Get after Defragment: %+v %v", r, err)
		}
	})
}
