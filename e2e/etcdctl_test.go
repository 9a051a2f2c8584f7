package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/internal/nodecluster"
	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// etcdctlBuild is etcd v3.6.8's unmodified etcdctl, built once per test
// binary from the nested module interop/raftexample, which pins it.
var etcdctlBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// etcdctlBin builds etcdctl on the first call; like raftexample, it skips
// the test only when the build failed for lack of network.
func etcdctlBin(t *testing.T) string {
	t.Helper()
	etcdctlBuild.once.Do(func() {
		root, err := nodeproc.RepoRoot()
		if err == nil {
			etcdctlBuild.dir, err = os.MkdirTemp("", "raftkv-etcdctl-")
		}
		if err == nil {
			bin := filepath.Join(etcdctlBuild.dir, "etcdctl")
			err = nodeproc.GoBuild(filepath.Join(root, "interop", "raftexample"), bin, "go.etcd.io/etcd/etcdctl/v3")
			if err == nil {
				etcdctlBuild.bin = bin
			}
		}
		etcdctlBuild.err = err
	})
	if etcdctlBuild.bin == "" {
		if nodeproc.Offline(etcdctlBuild.err) {
			t.Skipf("etcdctl cannot be built without the Go module proxy: %v", etcdctlBuild.err)
		}
		t.Fatalf("build etcdctl: %v", etcdctlBuild.err)
	}
	return etcdctlBuild.bin
}

// etcdctlCleanup removes the etcdctl build; TestMain runs it.
func etcdctlCleanup() {
	if etcdctlBuild.dir != "" {
		_ = os.RemoveAll(etcdctlBuild.dir)
	}
}

// ctlTimeout bounds one etcdctl command that is meant to finish.
const ctlTimeout = 30 * time.Second

// ctlResult is one run of etcdctl.
type ctlResult struct {
	args           []string
	stdout, stderr string
	err            error // nil for exit 0
}

func (r ctlResult) String() string {
	return fmt.Sprintf("etcdctl %s: %v\nstdout: %q\nstderr: %q", strings.Join(r.args, " "), r.err, r.stdout, strings.TrimSpace(r.stderr))
}

// ctlArgs are the global flags for the given endpoints.
func ctlArgs(endpoints []string, args ...string) []string {
	return append([]string{"--endpoints=" + strings.Join(endpoints, ","), "--dial-timeout=5s", "--command-timeout=15s"}, args...)
}

// ctlRun runs etcdctl against endpoints with stdin and waits for it.
func ctlRun(t *testing.T, endpoints []string, stdin string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	all := ctlArgs(endpoints, args...)
	cmd := exec.CommandContext(ctx, etcdctlBin(t), all...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return ctlResult{args: all, stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// ctl runs etcdctl and fails the test unless it exits 0; it returns stdout.
func ctl(t *testing.T, endpoints []string, args ...string) string {
	t.Helper()
	r := ctlRun(t, endpoints, "", args...)
	if r.err != nil {
		t.Fatal(r)
	}
	return r.stdout
}

// ctlJSON runs etcdctl with -w json and decodes its answer into out.
func ctlJSON(t *testing.T, endpoints []string, out any, args ...string) {
	t.Helper()
	stdout := ctl(t, endpoints, append(args, "-w", "json")...)
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("etcdctl %s -w json: %v in %q", strings.Join(args, " "), err, stdout)
	}
}

// ctlStart runs etcdctl in the background (watch, lock, elect); it is
// killed and reaped when the test ends.
func ctlStart(t *testing.T, name string, endpoints []string, args ...string) *nodeproc.Proc {
	t.Helper()
	return nodeproc.StartT(t, nodeproc.Cmd{Name: name, Bin: etcdctlBin(t), Args: ctlArgs(endpoints, args...), Stderr: &testutil.Buffer{}})
}

// lines is text as lines ("" is none).
func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// putRev puts key=value and returns the revision of the write.
func putRev(t *testing.T, endpoints []string, key, value string) int64 {
	t.Helper()
	var resp struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	ctlJSON(t, endpoints, &resp, "put", key, value)
	if resp.Header.Revision == 0 {
		t.Fatalf("put %s: no revision in the answer", key)
	}
	return resp.Header.Revision
}

// epStatus is one entry of `etcdctl endpoint status -w json`.
type epStatus struct {
	Endpoint string `json:"Endpoint"`
	Status   struct {
		Header struct {
			MemberID uint64 `json:"member_id"`
			Revision int64  `json:"revision"`
		} `json:"header"`
		Version   string   `json:"version"`
		DBSize    int64    `json:"dbSize"`
		Leader    uint64   `json:"leader"`
		RaftIndex uint64   `json:"raftIndex"`
		RaftTerm  uint64   `json:"raftTerm"`
		Errors    []string `json:"errors"`
	} `json:"Status"`
}

// TestEtcdctlKV drives one three-member cluster with etcd's own etcdctl:
// the key-value commands, transactions, watches, leases, the endpoint
// commands, snapshots, leadership moves, compaction and defragmentation,
// and etcd's JSON gateway with plain HTTP.
func TestEtcdctlKV(t *testing.T) {
	etcdctlBin(t)
	c := nodecluster.Start(t, 3)
	all := c.Endpoints()
	one := func(i int) []string { return c.Endpoints(c.Members[i]) }

	t.Run("put and get", func(t *testing.T) {
		for _, kv := range [][2]string{{"~get/a", "1"}, {"~get/b", "2"}, {"~get/c", "3"}} {
			if out := ctl(t, all, "put", kv[0], kv[1]); out != "OK\n" {
				t.Fatalf("put %s: %q, want OK", kv[0], out)
			}
		}
		revA1 := putRev(t, one(1), "~get/a", "4") // ~get/a now at version 2
		if out := ctl(t, one(2), "put", "~get/a", "5", "--prev-kv"); out != "OK\n~get/a\n4\n" {
			t.Errorf("put --prev-kv: %q", out)
		}
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"single", []string{"get", "~get/b"}, "~get/b\n2\n"},
			{"absent", []string{"get", "~get/none"}, ""},
			{"prefix", []string{"get", "--prefix", "~get/"}, "~get/a\n5\n~get/b\n2\n~get/c\n3\n"},
			{"from-key", []string{"get", "--from-key", "~get/b"}, "~get/b\n2\n~get/c\n3\n"},
			{"range", []string{"get", "~get/a", "~get/c"}, "~get/a\n5\n~get/b\n2\n"},
			{"rev", []string{"get", "~get/a", fmt.Sprintf("--rev=%d", revA1)}, "~get/a\n4\n"},
			{"sort by key descending", []string{"get", "--prefix", "~get/", "--sort-by=KEY", "--order=DESCEND"}, "~get/c\n3\n~get/b\n2\n~get/a\n5\n"},
			{"sort by value", []string{"get", "--prefix", "~get/", "--sort-by=VALUE", "--order=ASCEND"}, "~get/b\n2\n~get/c\n3\n~get/a\n5\n"},
			{"sort by version descending", []string{"get", "--prefix", "~get/", "--sort-by=VERSION", "--order=DESCEND", "--limit=1"}, "~get/a\n5\n"},
			{"sort by modify", []string{"get", "--prefix", "~get/", "--sort-by=MODIFY", "--order=DESCEND"}, "~get/a\n5\n~get/c\n3\n~get/b\n2\n"},
			{"sort by create", []string{"get", "--prefix", "~get/", "--sort-by=CREATE", "--order=ASCEND"}, "~get/a\n5\n~get/b\n2\n~get/c\n3\n"},
			{"limit", []string{"get", "--prefix", "~get/", "--limit=2"}, "~get/a\n5\n~get/b\n2\n"},
			{"keys-only", []string{"get", "--prefix", "~get/", "--keys-only"}, "~get/a\n\n~get/b\n\n~get/c\n\n"},
			{"print-value-only", []string{"get", "~get/c", "--print-value-only"}, "3\n"},
			{"serializable", []string{"get", "~get/b", "--consistency=s"}, "~get/b\n2\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := ctl(t, all, tc.args...); got != tc.want {
					t.Errorf("etcdctl %s:\n got %q\nwant %q", strings.Join(tc.args, " "), got, tc.want)
				}
			})
		}
		t.Run("count-only", func(t *testing.T) {
			out := ctl(t, all, "get", "--prefix", "~get/", "--count-only", "-w", "fields")
			if !strings.Contains(out, `"Count" : 3`) {
				t.Errorf("get --count-only -w fields: %q, want a Count of 3", out)
			}
		})
		t.Run("json", func(t *testing.T) {
			var resp struct {
				Header struct {
					ClusterID uint64 `json:"cluster_id"`
					MemberID  uint64 `json:"member_id"`
					Revision  int64  `json:"revision"`
					RaftTerm  uint64 `json:"raft_term"`
				} `json:"header"`
				Kvs []struct {
					Key            []byte `json:"key"`
					Value          []byte `json:"value"`
					CreateRevision int64  `json:"create_revision"`
					ModRevision    int64  `json:"mod_revision"`
					Version        int64  `json:"version"`
				} `json:"kvs"`
				Count int64 `json:"count"`
			}
			ctlJSON(t, one(0), &resp, "get", "~get/a")
			if resp.Header.ClusterID == 0 || resp.Header.MemberID != 1 || resp.Header.Revision < revA1 || resp.Header.RaftTerm == 0 {
				t.Errorf("get -w json header: %+v", resp.Header)
			}
			if len(resp.Kvs) != 1 || resp.Count != 1 {
				t.Fatalf("get -w json: %+v, want one kv", resp)
			}
			kv := resp.Kvs[0]
			if string(kv.Key) != "~get/a" || string(kv.Value) != "5" || kv.Version != 3 || kv.ModRevision <= revA1 || kv.CreateRevision >= revA1 {
				t.Errorf("get -w json kv: %+v (key %q value %q), want version 3, created before %d, modified after", kv, kv.Key, kv.Value, revA1)
			}
		})
	})

	t.Run("del", func(t *testing.T) {
		for _, k := range []string{"~del/a", "~del/b", "~del/c", "~del0"} {
			ctl(t, all, "put", k, "v-"+k)
		}
		if out := ctl(t, all, "del", "~del/c"); out != "1\n" {
			t.Errorf("del ~del/c: %q, want 1", out)
		}
		if out := ctl(t, all, "del", "~del/none"); out != "0\n" {
			t.Errorf("del of an absent key: %q, want 0", out)
		}
		if out := ctl(t, all, "del", "--prefix", "--prev-kv", "~del/"); out != "2\n~del/a\nv-~del/a\n~del/b\nv-~del/b\n" {
			t.Errorf("del --prefix --prev-kv: %q", out)
		}
		if out := ctl(t, all, "get", "--prefix", "~del"); out != "~del0\nv-~del0\n" {
			t.Errorf("after del --prefix ~del/: %q, want only ~del0", out)
		}
	})

	t.Run("txn", func(t *testing.T) {
		rev := putRev(t, all, "~txn/k", "v1") // version 1, created and modified at rev
		for _, tc := range []struct {
			name  string
			stdin string
			want  []string // stdout lines, prompts dropped
			after string   // ~txn/k's value afterwards
		}{
			{
				"value equal: success branch",
				"value(\"~txn/k\") = \"v1\"\n\nput ~txn/k v2\nget ~txn/k\n\nput ~txn/failed x\n\n",
				[]string{"SUCCESS", "", "OK", "", "~txn/k", "v2"}, "v2",
			},
			{
				"version compare false: failure branch",
				"version(\"~txn/k\") = \"1\"\n\nput ~txn/k wrong\n\nget ~txn/k\nput ~txn/f fb\n\n",
				[]string{"FAILURE", "", "~txn/k", "v2", "", "OK"}, "v2",
			},
			{
				"create and mod revisions",
				fmt.Sprintf("create(\"~txn/k\") = \"%d\"\nmod(\"~txn/k\") > \"%d\"\nversion(\"~txn/k\") = \"2\"\n\ndel ~txn/f\n\nput ~txn/k no\n\n", rev, rev),
				[]string{"SUCCESS", "", "1"}, "v2",
			},
			{
				"absent key: create revision 0",
				"create(\"~txn/new\") = \"0\"\n\nput ~txn/new created\n\n\n",
				[]string{"SUCCESS", "", "OK"}, "v2",
			},
			{
				"mod less than: false",
				fmt.Sprintf("mod(\"~txn/k\") < \"%d\"\n\nput ~txn/k no\n\nput ~txn/k v3\n\n", rev),
				[]string{"FAILURE", "", "OK"}, "v3",
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ctlRun(t, all, tc.stdin, "txn", "-i")
				if r.err != nil {
					t.Fatal(r)
				}
				var got []string
				for _, l := range lines(r.stdout) {
					if !strings.HasSuffix(l, "compares:") && !strings.HasSuffix(l, "):") {
						got = append(got, l)
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("txn -i:\n got %q\nwant %q\n(stdout %q)", got, tc.want, r.stdout)
				}
				if out := ctl(t, all, "get", "~txn/k", "--print-value-only"); out != tc.after+"\n" {
					t.Errorf("~txn/k after the txn: %q, want %q", out, tc.after)
				}
			})
		}
		if out := ctl(t, all, "get", "--prefix", "~txn/"); out != "~txn/k\nv3\n~txn/new\ncreated\n" {
			t.Errorf("after the transactions: %q", out)
		}
	})

	t.Run("watch", func(t *testing.T) {
		base := putRev(t, all, "~watch/a", "0")
		// From a revision: what was written before the watch is established
		// is in the history, so the watch misses nothing, whenever it starts.
		w := ctlStart(t, "etcdctl watch --prefix --prev-kv", one(2), "watch", "--prefix", "~watch/", "--prev-kv", fmt.Sprintf("--rev=%d", base))
		onKey := ctlStart(t, "etcdctl watch ~watch/b", one(0), "watch", "~watch/b", fmt.Sprintf("--rev=%d", base+1))
		ctl(t, one(0), "put", "~watch/a", "1")
		ctl(t, one(1), "put", "~watch/b", "x")
		ctl(t, one(1), "put", "~watch/other-prefix-no", "y") // still under ~watch/
		ctl(t, one(0), "put", "~watchless", "z")             // not under ~watch/
		ctl(t, one(2), "del", "~watch/a")
		want := []string{
			"PUT", "~watch/a", "0",
			"PUT", "~watch/a", "0", "~watch/a", "1",
			"PUT", "~watch/b", "x",
			"PUT", "~watch/other-prefix-no", "y",
			"DELETE", "~watch/a", "1", "~watch/a", "",
		}
		waitLines(t, w, want)
		waitLines(t, onKey, []string{"PUT", "~watch/b", "x"})
	})

	t.Run("lease", func(t *testing.T) {
		grant := ctl(t, all, "lease", "grant", "60")
		m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$`).FindStringSubmatch(grant)
		if m == nil {
			t.Fatalf("lease grant 60: %q", grant)
		}
		id := m[1]
		ctl(t, all, "put", "~lease/a", "1", "--lease="+id)
		ctl(t, all, "put", "~lease/b", "2", "--lease="+id)
		if out := ctl(t, one(1), "lease", "keep-alive", "--once", id); out != fmt.Sprintf("lease %s keepalived with TTL(60)\n", id) {
			t.Errorf("lease keep-alive --once: %q", out)
		}
		ttl := ctl(t, one(2), "lease", "timetolive", "--keys", id)
		m = regexp.MustCompile(`^lease ` + id + ` granted with TTL\(60s\), remaining\((\d+)s\), attached keys\(\[(.*)\]\)\n$`).FindStringSubmatch(ttl)
		if m == nil {
			t.Fatalf("lease timetolive --keys: %q", ttl)
		}
		if rem, _ := strconv.Atoi(m[1]); rem < 40 || rem > 60 {
			t.Errorf("lease timetolive: remaining %ds of 60", rem)
		}
		if keys := strings.Fields(m[2]); !slices.Equal(slices.Sorted(slices.Values(keys)), []string{"~lease/a", "~lease/b"}) {
			t.Errorf("lease timetolive --keys: attached %q", keys)
		}
		if out := ctl(t, all, "lease", "list"); !slices.Contains(lines(out), id) || !strings.HasPrefix(out, "found ") {
			t.Errorf("lease list: %q, want %s among them", out, id)
		}
		if out := ctl(t, all, "lease", "revoke", id); out != fmt.Sprintf("lease %s revoked\n", id) {
			t.Errorf("lease revoke: %q", out)
		}
		if out := ctl(t, all, "get", "--prefix", "~lease/"); out != "" {
			t.Errorf("keys of a revoked lease: %q, want none", out)
		}
		if out := ctl(t, all, "lease", "timetolive", id); out != fmt.Sprintf("lease %s already expired\n", id) {
			t.Errorf("lease timetolive of a revoked lease: %q", out)
		}
		if out := ctl(t, all, "lease", "list"); slices.Contains(lines(out), id) {
			t.Errorf("lease list after revoke: %q still holds %s", out, id)
		}
		r := ctlRun(t, all, "", "lease", "keep-alive", "--once", id)
		if r.err == nil || !strings.Contains(r.stderr, "requested lease not found") {
			t.Errorf("keep-alive of a revoked lease: %v, want an error: requested lease not found", r)
		}
	})

	t.Run("endpoint", func(t *testing.T) {
		for i := range 20 {
			ctl(t, one(i%3), "put", fmt.Sprintf("~ep/%d", i), strings.Repeat("v", i))
		}
		health := ctl(t, all, "endpoint", "health")
		for _, ep := range all {
			if !strings.Contains(health, ep+" is healthy: successfully committed proposal") {
				t.Errorf("endpoint health: %q, want %s healthy", health, ep)
			}
		}
		var sts []epStatus
		ctlJSON(t, all, &sts, "endpoint", "status")
		if len(sts) != 3 {
			t.Fatalf("endpoint status: %d answers, want 3", len(sts))
		}
		ids := map[uint64]bool{}
		for _, st := range sts {
			ids[st.Status.Header.MemberID] = true
			if st.Status.Leader == 0 || st.Status.Leader != sts[0].Status.Leader || st.Status.Version == "" || st.Status.DBSize == 0 || len(st.Status.Errors) > 0 {
				t.Errorf("endpoint status of %s: %+v", st.Endpoint, st.Status)
			}
		}
		if len(ids) != 3 {
			t.Errorf("endpoint status: member ids %v, want three", ids)
		}
		table := ctl(t, all, "endpoint", "status")
		if len(lines(table)) != 3 {
			t.Errorf("endpoint status: %q, want three lines", table)
		}
		// Every member applies the writes; then the hashes agree.
		testutil.Eventually(t, 20*time.Second, "endpoint hashkv equal on all members", func() error {
			var hs []struct {
				Endpoint string `json:"Endpoint"`
				HashKV   struct {
					Header struct {
						Revision int64 `json:"revision"`
					} `json:"header"`
					Hash         uint32 `json:"hash"`
					HashRevision int64  `json:"hash_revision"`
				} `json:"HashKV"`
			}
			ctlJSON(t, all, &hs, "endpoint", "hashkv")
			if len(hs) != 3 {
				t.Fatalf("endpoint hashkv: %d answers, want 3", len(hs))
			}
			for _, h := range hs[1:] {
				if h.HashKV.Hash != hs[0].HashKV.Hash || h.HashKV.Header.Revision != hs[0].HashKV.Header.Revision {
					return fmt.Errorf("hashes differ: %+v", hs)
				}
			}
			if hs[0].HashKV.Hash == 0 {
				t.Fatalf("endpoint hashkv: hash 0: %+v", hs)
			}
			return nil
		})
	})

	t.Run("snapshot save", func(t *testing.T) {
		ctl(t, all, "put", "~snap/k", "in the snapshot")
		path := filepath.Join(t.TempDir(), "snap.db")
		out := ctl(t, one(1), "snapshot", "save", path)
		if !strings.Contains(out, "Snapshot saved at "+path) {
			t.Errorf("snapshot save: %q, want Snapshot saved at %s", out, path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		var sts []epStatus
		ctlJSON(t, one(1), &sts, "endpoint", "status")
		if fi.Size() == 0 || len(sts) != 1 || fi.Size() > sts[0].Status.DBSize+1<<20 {
			t.Errorf("snapshot of %d bytes, the member's db %+v", fi.Size(), sts)
		}
		db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
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
			t.Errorf("snapshot: %v", err)
		}
	})

	t.Run("move-leader", func(t *testing.T) {
		lead := c.Leader()
		target := c.Others(lead)[0]
		out := ctl(t, all, "move-leader", strconv.FormatUint(target.ID, 16))
		if want := fmt.Sprintf("Leadership transferred from %x to %x\n", lead.ID, target.ID); out != want {
			t.Errorf("move-leader: %q, want %q", out, want)
		}
		testutil.Eventually(t, 20*time.Second, "endpoint status naming the new leader", func() error {
			var sts []epStatus
			ctlJSON(t, all, &sts, "endpoint", "status")
			for _, st := range sts {
				if st.Status.Leader != target.ID {
					return fmt.Errorf("%s says the leader is %d", st.Endpoint, st.Status.Leader)
				}
			}
			return nil
		})
		r := ctlRun(t, all, "", "move-leader", strconv.FormatUint(target.ID, 16))
		if r.err == nil || !strings.Contains(r.stderr, "bad leader transferee") {
			t.Errorf("move-leader to the leader itself: %v, want bad leader transferee", r)
		}
	})

	t.Run("compaction", func(t *testing.T) {
		old := putRev(t, all, "~compact/k", "old")
		cut := putRev(t, all, "~compact/k", "new")
		if out := ctl(t, all, "compaction", strconv.FormatInt(cut, 10)); out != fmt.Sprintf("compacted revision %d\n", cut) {
			t.Errorf("compaction %d: %q", cut, out)
		}
		for i := range 3 {
			r := ctlRun(t, one(i), "", "get", "~compact/k", fmt.Sprintf("--rev=%d", old))
			if r.err == nil || !strings.Contains(r.stderr, "required revision has been compacted") {
				t.Errorf("get --rev below the compaction through member %d: %v, want required revision has been compacted", i+1, r)
			}
		}
		if out := ctl(t, all, "get", "~compact/k", fmt.Sprintf("--rev=%d", cut), "--print-value-only"); out != "new\n" {
			t.Errorf("get at the compacted revision itself: %q, want new", out)
		}
		r := ctlRun(t, all, "", "compaction", strconv.FormatInt(old, 10))
		if r.err == nil || !strings.Contains(r.stderr, "required revision has been compacted") {
			t.Errorf("compaction below the last: %v, want required revision has been compacted", r)
		}
	})

	// Defragment is documented as Unimplemented; a member that does
	// defragment must go on serving the same data.
	t.Run("defrag", func(t *testing.T) {
		r := ctlRun(t, all, "", "defrag")
		if r.err != nil {
			if !strings.Contains(r.stderr, "Unimplemented") || !strings.Contains(r.stderr, "Defragment") {
				t.Errorf("defrag: %v, want success or Unimplemented naming Defragment", r)
			}
			t.Logf("defrag refused: %s", strings.TrimSpace(r.stderr))
			return
		}
		t.Logf("defrag: %s", strings.TrimSpace(r.stdout))
		for _, ep := range all {
			if !strings.Contains(r.stdout, "Finished defragmenting etcd member["+ep+"]") {
				t.Errorf("defrag: %q, want %s defragmented", r.stdout, ep)
			}
		}
		if out := ctl(t, all, "get", "~get/b", "--print-value-only"); out != "2\n" {
			t.Errorf("get after defrag: %q", out)
		}
	})

	t.Run("json gateway", func(t *testing.T) {
		gatewayChecks(t, c)
	})

	for _, m := range c.Members {
		if !m.Running() {
			t.Errorf("%s exited during the test", m.Name())
		}
	}
}

// waitLines waits until p's output is want, line for line (an etcdctl
// watch, which prints each event as it comes): a prefix of want is still
// coming, anything else is wrong at once.
func waitLines(t *testing.T, p *nodeproc.Proc, want []string) {
	t.Helper()
	all := strings.Join(want, "\n") + "\n"
	testutil.Eventually(t, 20*time.Second, p.Name()+" printing every event", func() error {
		got := p.Output()
		if !strings.HasPrefix(all, got) {
			t.Fatalf("%s printed\n%q\nwant\n%q\nstderr: %s", p.Name(), got, all, p.Stderr())
		}
		if !p.Running() {
			t.Fatalf("%s exited: %s", p.Name(), p.Stderr())
		}
		if got != all {
			return fmt.Errorf("%d bytes of %d", len(got), len(all))
		}
		return nil
	})
}

// gatewayChecks puts, ranges and grants a lease through etcd's JSON
// gateway (/v3/) with plain HTTP, keys and values in base64.
func gatewayChecks(t *testing.T, c *nodecluster.Cluster) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(m *nodecluster.Member, path string, body any, out any) {
		t.Helper()
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Post(m.ClientURL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s %s: %s %s", path, b, resp.Status, got)
		}
		if err := json.Unmarshal(got, out); err != nil {
			t.Fatalf("POST %s: %v in %s", path, err, got)
		}
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	type header struct {
		ClusterID string `json:"cluster_id"`
		MemberID  string `json:"member_id"`
		Revision  string `json:"revision"`
	}

	var put struct {
		Header header `json:"header"`
	}
	post(c.Members[0], "/v3/kv/put", map[string]string{"key": b64("~gw/key"), "value": b64("through the gateway")}, &put)
	if put.Header.Revision == "" || put.Header.MemberID != "1" {
		t.Errorf("POST /v3/kv/put: header %+v", put.Header)
	}
	post(c.Members[1], "/v3/kv/put", map[string]string{"key": b64("~gw/key2"), "value": b64("second")}, &put)

	var rng struct {
		Header header `json:"header"`
		Kvs    []struct {
			Key     string `json:"key"`
			Value   string `json:"value"`
			Version string `json:"version"`
		} `json:"kvs"`
		Count string `json:"count"`
	}
	post(c.Members[2], "/v3/kv/range", map[string]string{"key": b64("~gw/key")}, &rng)
	if len(rng.Kvs) != 1 || rng.Kvs[0].Key != b64("~gw/key") || rng.Kvs[0].Value != b64("through the gateway") || rng.Kvs[0].Version != "1" || rng.Count != "1" {
		t.Errorf("POST /v3/kv/range: %+v", rng)
	}
	post(c.Members[2], "/v3/kv/range", map[string]string{"key": b64("~gw/"), "range_end": b64("~gw0")}, &rng)
	if len(rng.Kvs) != 2 || rng.Count != "2" || rng.Kvs[1].Value != b64("second") {
		t.Errorf("POST /v3/kv/range over a prefix: %+v", rng)
	}

	var grant struct {
		Header header `json:"header"`
		ID     string `json:"ID"`
		TTL    string `json:"TTL"`
		Error  string `json:"error"`
	}
	post(c.Members[1], "/v3/lease/grant", map[string]any{"TTL": 30}, &grant)
	if grant.ID == "" || grant.ID == "0" || grant.TTL != "30" || grant.Error != "" {
		t.Errorf("POST /v3/lease/grant: %+v", grant)
	}
	// The lease is etcdctl's as well: it is the same lease.
	id, err := strconv.ParseInt(grant.ID, 10, 64)
	if err != nil {
		t.Fatalf("lease id %q: %v", grant.ID, err)
	}
	if out := ctl(t, c.Endpoints(), "lease", "timetolive", strconv.FormatInt(id, 16)); !strings.Contains(out, "granted with TTL(30s)") {
		t.Errorf("etcdctl lease timetolive of the gateway's lease: %q", out)
	}
}

// TestEtcdctlLock: `etcdctl lock name cmd` run by competing processes never
// lets two commands run at once, each holder's command sees a fencing
// revision above the one before it; and when a holder is killed -9 the
// waiting process gets the lock once the holder's session lease expires.
func TestEtcdctlLock(t *testing.T) {
	etcdctlBin(t)
	c := nodecluster.Start(t, 3)
	all := c.Endpoints()

	t.Run("no overlap", func(t *testing.T) {
		dir := t.TempDir()
		held, log := filepath.Join(dir, "held"), filepath.Join(dir, "log")
		// mkdir is atomic: a second holder at once fails it and says so.
		// The pause inside makes an overlap, were there one, likely to show.
		script := fmt.Sprintf(`mkdir %[1]q || echo OVERLAP >> %[2]q; echo "$ETCD_LOCK_REV $ETCD_LOCK_KEY" >> %[2]q; sleep 0.1; rmdir %[1]q`, held, log)
		const workers, rounds = 3, 4
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for w := range workers {
			wg.Go(func() {
				for range rounds {
					// Each worker talks to one member.
					ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
					cmd := exec.CommandContext(ctx, etcdctlBuild.bin, ctlArgs([]string{all[w]}, "lock", "--ttl=5", "~lock/overlap", "--", "sh", "-c", script)...)
					out, err := cmd.CombinedOutput()
					cancel()
					if err != nil {
						errs <- fmt.Errorf("worker %d: etcdctl lock: %v: %s", w, err, out)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		got := lines(string(b))
		if slices.Contains(got, "OVERLAP") {
			t.Fatalf("two holders at once:\n%s", b)
		}
		if len(got) != workers*rounds {
			t.Fatalf("%d holds, want %d:\n%s", len(got), workers*rounds, b)
		}
		last := int64(0)
		for _, l := range got {
			rev, err := strconv.ParseInt(strings.Fields(l)[0], 10, 64)
			if err != nil || rev <= last {
				t.Fatalf("fencing revisions not increasing:\n%s", b)
			}
			last = rev
		}
	})

	t.Run("holder killed", func(t *testing.T) {
		const ttl = 2
		a := ctlStart(t, "etcdctl lock (first)", all, "lock", fmt.Sprintf("--ttl=%d", ttl), "~lock/job")
		var keyA string
		testutil.Eventually(t, 20*time.Second, "the first etcdctl lock holding", func() error {
			if !a.Running() {
				t.Fatalf("the first etcdctl lock exited: %s", a.Stderr())
			}
			if ls := lines(a.Output()); len(ls) >= 1 {
				keyA = ls[0]
				return nil
			}
			return errors.New("no output yet")
		})
		if !strings.HasPrefix(keyA, "~lock/job/") {
			t.Fatalf("the first holder printed %q, want its key under ~lock/job/", a.Output())
		}
		b := ctlStart(t, "etcdctl lock (second)", c.Endpoints(c.Members[1]), "lock", fmt.Sprintf("--ttl=%d", ttl), "~lock/job")
		// The second waits: its own key is there, behind the first's.
		testutil.Eventually(t, 20*time.Second, "the second waiter's key", func() error {
			out := ctl(t, all, "get", "--prefix", "~lock/job/", "--keys-only")
			if n := len(slices.DeleteFunc(lines(out), func(s string) bool { return s == "" })); n != 2 {
				return fmt.Errorf("%d keys: %q", n, out)
			}
			return nil
		})
		if out := b.Output(); out != "" || !b.Running() {
			t.Fatalf("the second etcdctl lock holds while the first does: %q %s", out, b.Stderr())
		}
		if err := a.Kill(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		var keyB string
		testutil.Eventually(t, 30*time.Second, "the second etcdctl lock taking over", func() error {
			if !b.Running() {
				t.Fatalf("the second etcdctl lock exited: %s", b.Stderr())
			}
			if ls := lines(b.Output()); len(ls) >= 1 {
				keyB = ls[0]
				return nil
			}
			return errors.New("still waiting")
		})
		t.Logf("the lock passed %v after the kill (session TTL %ds)", time.Since(killed).Round(time.Millisecond), ttl)
		if keyB == keyA || !strings.HasPrefix(keyB, "~lock/job/") {
			t.Errorf("the second holder printed %q (the first %q)", keyB, keyA)
		}
		if out := ctl(t, all, "get", "--prefix", "~lock/job/", "--keys-only"); strings.Contains(out, keyA) {
			t.Errorf("the killed holder's key is still there: %q", out)
		}
		// SIGTERM: etcdctl unlocks and exits 0.
		b.SignalAndWait(t, os.Interrupt, 0, 20*time.Second)
		if out := ctl(t, all, "get", "--prefix", "~lock/job/"); out != "" {
			t.Errorf("after the second released: %q, want no key", out)
		}
	})
}

// TestEtcdctlElect: two `etcdctl elect` candidates, one leader; the
// observer (elect -l) sees the first, then, once the first is killed -9
// and its session's lease revoked, the second; never both at once.
func TestEtcdctlElect(t *testing.T) {
	etcdctlBin(t)
	c := nodecluster.Start(t, 3)
	all := c.Endpoints()

	obs := ctlStart(t, "etcdctl elect -l", c.Endpoints(c.Members[2]), "elect", "-l", "~elect/e")
	a := ctlStart(t, "candidate a", c.Endpoints(c.Members[0]), "elect", "~elect/e", "proposal-a")
	var keyA string
	testutil.Eventually(t, 20*time.Second, "candidate a elected", func() error {
		if !a.Running() {
			t.Fatalf("candidate a exited: %s", a.Stderr())
		}
		if ls := lines(a.Output()); len(ls) >= 2 {
			keyA = ls[0]
			if ls[1] != "proposal-a" || !strings.HasPrefix(keyA, "~elect/e/") {
				t.Fatalf("candidate a printed %q", ls)
			}
			return nil
		}
		return errors.New("not elected yet")
	})
	b := ctlStart(t, "candidate b", c.Endpoints(c.Members[1]), "elect", "~elect/e", "proposal-b")
	testutil.Eventually(t, 20*time.Second, "candidate b campaigning", func() error {
		out := ctl(t, all, "get", "--prefix", "~elect/e/", "--print-value-only")
		if lines(out) == nil || !slices.Equal(lines(out), []string{"proposal-a", "proposal-b"}) {
			return fmt.Errorf("proposals %q", out)
		}
		return nil
	})
	testutil.Eventually(t, 20*time.Second, "the observer seeing a", func() error {
		ls := lines(obs.Output())
		if len(ls) < 2 {
			return fmt.Errorf("observer: %q %s", obs.Output(), obs.Stderr())
		}
		if ls[0] != keyA || ls[1] != "proposal-a" {
			t.Fatalf("the observer (elect -l) printed %q while a leads (%s), b only campaigns", ls, keyA)
		}
		return nil
	})
	if out := b.Output(); out != "" {
		t.Fatalf("candidate b elected while a leads: %q", out)
	}

	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	// etcdctl elect's session lives 60 s; the dead candidate's lease is
	// revoked, as an operator would, rather than waited for.
	leaseID := keyA[strings.LastIndexByte(keyA, '/')+1:]
	lease, err := strconv.ParseUint(leaseID, 16, 64)
	if err != nil {
		t.Fatalf("candidate a's key %q names no lease: %v", keyA, err)
	}
	if out := ctl(t, all, "lease", "revoke", leaseID); out != fmt.Sprintf("lease %016x revoked\n", lease) {
		t.Errorf("lease revoke %s: %q", leaseID, out)
	}
	testutil.Eventually(t, 20*time.Second, "candidate b elected", func() error {
		if !b.Running() {
			t.Fatalf("candidate b exited: %s", b.Stderr())
		}
		if ls := lines(b.Output()); len(ls) >= 2 {
			if ls[1] != "proposal-b" || ls[0] == keyA {
				t.Fatalf("candidate b printed %q", ls)
			}
			return nil
		}
		return errors.New("not elected yet")
	})
	testutil.Eventually(t, 20*time.Second, "the observer seeing b", func() error {
		ls := lines(obs.Output())
		if len(ls) < 4 {
			return fmt.Errorf("observer: %q", ls)
		}
		// Observe reports each leader in turn, a key and a proposal each.
		var props []string
		for i := 1; i < len(ls); i += 2 {
			props = append(props, ls[i])
		}
		if !slices.Equal(slices.Compact(props), []string{"proposal-a", "proposal-b"}) {
			t.Fatalf("observer saw leaders %q, want a then b", props)
		}
		return nil
	})
	// SIGINT: b resigns and exits 0; no leader is left.
	b.SignalAndWait(t, os.Interrupt, 0, 20*time.Second)
	if out := ctl(t, all, "get", "--prefix", "~elect/e/"); out != "" {
		t.Errorf("after b resigned: %q, want no candidate", out)
	}
}

// memberAdded matches etcdctl member add's first line.
var memberAdded = regexp.MustCompile(`Member\s+([0-9a-f]+) added (as learner )?to cluster`)

// TestEtcdctlMembers: member list, add --learner, start the new member
// with the id etcdctl printed, promote, remove (the removed member exits
// by itself).
func TestEtcdctlMembers(t *testing.T) {
	etcdctlBin(t)
	c := nodecluster.Start(t, 3)
	all := c.Endpoints()

	type memberJSON struct {
		ID         uint64   `json:"ID"`
		Name       string   `json:"name"`
		PeerURLs   []string `json:"peerURLs"`
		ClientURLs []string `json:"clientURLs"`
		IsLearner  bool     `json:"isLearner"`
	}
	list := func() []memberJSON {
		t.Helper()
		var resp struct {
			Members []memberJSON `json:"members"`
		}
		ctlJSON(t, all, &resp, "member", "list")
		return resp.Members
	}
	testutil.Eventually(t, 20*time.Second, "member list with every client URL", func() error {
		ms := list()
		if len(ms) != 3 {
			t.Fatalf("member list: %+v, want 3", ms)
		}
		for _, got := range ms {
			want := c.Member(got.ID)
			if want == nil || got.Name != strconv.FormatUint(got.ID, 10) || !slices.Equal(got.PeerURLs, []string{want.PeerURL}) || got.IsLearner {
				t.Fatalf("member list: %+v", ms)
			}
			if !slices.Equal(got.ClientURLs, []string{want.ClientURL}) {
				return fmt.Errorf("member %d client URLs %v", got.ID, got.ClientURLs)
			}
		}
		return nil
	})
	table := ctl(t, all, "member", "list")
	if len(lines(table)) != 3 || !strings.Contains(table, "started") {
		t.Errorf("member list: %q", table)
	}

	peerURL := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])
	out := ctl(t, all, "member", "add", "newbie", "--learner", "--peer-urls="+peerURL)
	m := memberAdded.FindStringSubmatch(out)
	if m == nil || m[2] == "" {
		t.Fatalf("member add --learner: %q", out)
	}
	id, err := strconv.ParseUint(m[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `ETCD_INITIAL_CLUSTER_STATE="existing"`) || !strings.Contains(out, "newbie="+peerURL) {
		t.Errorf("member add: %q", out)
	}
	hexID := strconv.FormatUint(id, 16)

	// Not started: promotion is refused, the learner has not caught up.
	if r := ctlRun(t, all, "", "member", "promote", hexID); r.err == nil || !strings.Contains(r.stderr, "can only promote a learner member which is in sync with leader") {
		t.Errorf("promote a learner never started: %v, want learner not ready", r)
	}

	nm := c.NewMember(id)
	// Its peer URL is the one given to etcdctl: reuse that port.
	nm.PeerURL = peerURL
	c.StartMember(nm, true)
	nm.Proc.WaitHealthy(t, nil, nm.ClientURL, 30*time.Second)
	ctl(t, all, "put", "~member/k", "before promotion")

	testutil.Eventually(t, 30*time.Second, "promote the learner", func() error {
		r := ctlRun(t, all, "", "member", "promote", hexID)
		if r.err != nil {
			if strings.Contains(r.stderr, "in sync with leader") {
				return errors.New(r.String())
			}
			t.Fatal(r)
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("Member %16x promoted in cluster", id)) {
			t.Errorf("member promote: %q", r.stdout)
		}
		return nil
	})
	ms := list()
	if len(ms) != 4 || slices.ContainsFunc(ms, func(m memberJSON) bool { return m.IsLearner }) {
		t.Errorf("member list after promotion: %+v, want four voters", ms)
	}
	if out := ctl(t, c.Endpoints(nm), "get", "~member/k", "--print-value-only"); out != "before promotion\n" {
		t.Errorf("get through the new member: %q", out)
	}

	if out := ctl(t, all, "member", "remove", hexID); !strings.Contains(out, fmt.Sprintf("Member %16x removed from cluster", id)) {
		t.Errorf("member remove: %q", out)
	}
	nm.Proc.WaitExit(t, 0, 30*time.Second)
	c.Forget(nm)
	if ms := list(); len(ms) != 3 || slices.ContainsFunc(ms, func(m memberJSON) bool { return m.ID == id }) {
		t.Errorf("member list after removal: %+v", ms)
	}
	if r := ctlRun(t, all, "", "member", "remove", hexID); r.err == nil || !strings.Contains(r.stderr, "member not found") {
		t.Errorf("removing it again: %v, want member not found", r)
	}
	ctl(t, all, "put", "~member/k", "after removal")
}
