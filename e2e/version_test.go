package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// upgradeDataDir is a one-member data dir made by c82f4ab, the last
// commit before the db's layout became raftkv-3 (leases): its db is of
// layout raftkv-2, and it holds a snapshot (--snapshot-count 10) and the
// WAL after it. upgradeClusterID is its cluster's id (the test starts it
// on other ports: the id, not the URL, names the cluster). Made with
//
//	scripts/make-datadir-fixture.sh c82f4ab e2e/testdata/datadir-c82f4ab.tgz
//
// which wrote fixture/k01..k20 = v01..v20, then fixture/k01 = v01b, and
// deleted fixture/k20.
const (
	upgradeDataDir   = "testdata/datadir-c82f4ab.tgz"
	upgradeClusterID = "db162b9f8ba9b584"
	upgradeOldLayout = "raftkv-2"
	currentLayout    = "raftkv-3"
)

// versionAnswer is GET /version's JSON and the version fields of
// /v1/status, decoded here so that the test pins the wire format.
type versionAnswer struct {
	EtcdServer  string `json:"etcdserver"`
	EtcdCluster string `json:"etcdcluster"`
	Storage     string `json:"storage"`
	Server      string `json:"server"`
	Cluster     string `json:"cluster"`
	DataFormat  string `json:"data_format"`
	Version     string `json:"version"` // /v1/status only
}

func getJSON(base, path string, out any) error {
	r := call(http.MethodGet, base+path, "")
	if r.err != nil {
		return r.err
	}
	if r.code != http.StatusOK {
		return fmt.Errorf("GET %s%s: %s", base, path, r)
	}
	if err := json.Unmarshal([]byte(r.body), out); err != nil {
		return fmt.Errorf("GET %s%s: %w in %q", base, path, err, r.body)
	}
	return nil
}

// dbLayout reads the layout a closed db records (the meta bucket's layout
// key), and whether it has the buckets raftkv-3 added.
func dbLayout(t *testing.T, path string) (layout string, leaseBuckets bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return fmt.Errorf("%s has no meta bucket", path)
		}
		layout = string(meta.Get([]byte("layout")))
		leaseBuckets = tx.Bucket([]byte("leases")) != nil && tx.Bucket([]byte("lease_keys")) != nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return layout, leaseBuckets
}

// setDBLayout writes layout into a closed db, as a binary of that layout
// would have.
func setDBLayout(t *testing.T, path, layout string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("layout"), []byte(layout)) }); err != nil {
		t.Fatal(err)
	}
}

// `node --version` and `node version` print the version, the git revision,
// the Go version and the data format, and exit 0 without touching a data
// dir.
func TestVersionCommand(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"--version"}, {"version"}, {"--port", "1", "--version"}} {
		p := nodeproc.StartT(t, nodeproc.Cmd{Bin: nodeproc.Node(t), Dir: dir, Args: args, Stderr: &testutil.Buffer{}})
		p.WaitExit(t, 0, 20*time.Second)
		out := p.Output()
		for _, re := range []string{`(?m)^node version: \S+$`, `(?m)^git revision: \S+$`, `(?m)^go version: go\S+$`, `(?m)^data format: ` + currentLayout + `$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("node %s printed %q, want a line matching %s", strings.Join(args, " "), out, re)
			}
		}
		if p.Stderr() != "" {
			t.Errorf("node %s wrote to stderr: %q", strings.Join(args, " "), p.Stderr())
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("the working dir holds %v (%v), want nothing", entries, err)
	}
}

// GET /version names etcd's fields and this node's; the cluster version is
// the lowest of the members', not decided while a member is down, and the
// version is in /v1/status and in raftkv_build_info too.
func TestVersionOfACluster(t *testing.T) {
	c := newCluster(t, 3)
	var first versionAnswer
	for _, m := range c.members {
		var v versionAnswer
		if err := getJSON(m.base, "/version", &v); err != nil {
			t.Fatal(err)
		}
		if v.EtcdServer != "3.6.0" || v.EtcdCluster != "3.6.0" || v.Storage != "3.6.0" || v.Server == "" ||
			v.Cluster != v.Server || v.DataFormat != currentLayout {
			t.Errorf("%s: /version %+v, want etcd 3.6.0, and a cluster version that is the members' own", m.name(), v)
		}
		first = v
		var st versionAnswer
		if err := getJSON(m.base, "/v1/status", &st); err != nil {
			t.Fatal(err)
		}
		if st.Version != v.Server || st.DataFormat != currentLayout {
			t.Errorf("%s: /v1/status says version %q, data format %q; /version says %q", m.name(), st.Version, st.DataFormat, v.Server)
		}
		r := call(http.MethodGet, m.base+"/metrics", "")
		want := regexp.MustCompile(`(?m)^raftkv_build_info\{[^}]*version="` + regexp.QuoteMeta(v.Server) + `"[^}]*\} 1$`)
		if r.code != http.StatusOK || !want.MatchString(r.body) || !strings.Contains(r.body, `data_format="`+currentLayout+`"`) {
			t.Errorf("%s: no raftkv_build_info of version %s and data format %s in the scrape", m.name(), v.Server, currentLayout)
		}
	}
	down := c.member(3)
	down.p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)
	var v versionAnswer
	if err := getJSON(c.member(1).base, "/version", &v); err != nil {
		t.Fatal(err)
	}
	if v.Cluster != "not_decided" || v.Server != first.Server {
		t.Errorf("with a member down: %+v, want cluster not_decided", v)
	}
	c.restart(down)
	testutil.Eventually(t, 20*time.Second, "the cluster version back", func() error {
		var v versionAnswer
		if err := getJSON(c.member(1).base, "/version", &v); err != nil {
			return err
		}
		if v.Cluster != first.Server {
			return fmt.Errorf("cluster version %q, want %q", v.Cluster, first.Server)
		}
		return nil
	})
}

// A data dir that a newer binary wrote (its db names layout raftkv-4) is
// refused by this one with one line on stderr and exit 1, and left
// exactly as it was: neither its db nor its WAL is touched.
func TestNewerDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	ports := testutil.FreePorts(t, 2)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	args := []string{"--cluster", fmt.Sprintf("http://127.0.0.1:%d", ports[0]), "--port", strconv.Itoa(ports[1]), "--data-dir", "node-1"}
	p := startNode(t, "node", dir, args...)
	p.WaitHealthy(t, nil, base, 20*time.Second)
	mustWrite(t, base, "/v1/kv/k", "v", http.StatusOK)
	p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)

	dataDir := filepath.Join(dir, "node-1")
	setDBLayout(t, filepath.Join(dataDir, "db"), "raftkv-4")
	before := dirDigest(t, dataDir)
	var stderr testutil.Buffer
	p = nodeproc.StartT(t, nodeproc.Cmd{Name: "node", Bin: nodeproc.Node(t), Dir: dir, Args: args, Stderr: &stderr})
	p.WaitExit(t, 1, 20*time.Second)
	line := stderr.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") ||
		!strings.Contains(line, "newer version") || !strings.Contains(line, "raftkv-4") {
		t.Errorf("stderr %q, want one line saying a newer version wrote the db (raftkv-4)", line)
	}
	if after := dirDigest(t, dataDir); !bytes.Equal(before, after) {
		t.Error("the refused data dir was changed")
	}
	// A binary of that layout would find it as it left it.
	if layout, _ := dbLayout(t, filepath.Join(dataDir, "db")); layout != "raftkv-4" {
		t.Errorf("layout %q after the refusal, want raftkv-4", layout)
	}
}

// dirDigest hashes the names, sizes and contents of every file under dir.
func dirDigest(t *testing.T, dir string) []byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", strings.TrimPrefix(path, dir), len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// This binary starts on a data dir that the previous release wrote, serves
// its keys, upgrades its db in place (raftkv-2 to raftkv-3, which adds the
// lease buckets), takes new writes and leases, and finds all of it again
// after a restart.
func TestUpgradeDataDirOfPreviousRelease(t *testing.T) {
	dir := t.TempDir()
	untar(t, upgradeDataDir, dir)
	db := filepath.Join(dir, "node-1", "db")
	if layout, leases := dbLayout(t, db); layout != upgradeOldLayout || leases {
		t.Fatalf("the fixture's db is of layout %q (lease buckets: %v), want %s without them", layout, leases, upgradeOldLayout)
	}
	ports := testutil.FreePorts(t, 2)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	args := []string{"--cluster", fmt.Sprintf("http://127.0.0.1:%d", ports[0]), "--port", strconv.Itoa(ports[1]),
		"--cluster-id", upgradeClusterID, "--data-dir", "node-1"}
	p := startNode(t, "node", dir, args...)
	p.WaitHealthy(t, nil, base, 20*time.Second)

	checkOld := func() {
		t.Helper()
		mustRead(t, base, "/v1/kv/fixture/k01", "v01b")
		for i := 2; i < 20; i++ {
			mustRead(t, base, fmt.Sprintf("/v1/kv/fixture/k%02d", i), fmt.Sprintf("v%02d", i))
		}
		if r := call(http.MethodGet, base+"/v1/kv/fixture/k20", ""); r.code != http.StatusNotFound {
			t.Errorf("GET the deleted fixture/k20: %s, want 404", r)
		}
	}
	checkOld()
	var st versionAnswer
	if err := getJSON(base, "/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.DataFormat != currentLayout {
		t.Errorf("/v1/status data format %q, want %s", st.DataFormat, currentLayout)
	}
	mustWrite(t, base, "/v1/kv/fixture/k01", "v01c", http.StatusOK)
	mustWrite(t, base, "/v1/kv/after-upgrade", "new", http.StatusOK)
	if r := call(http.MethodPost, base+"/v1/leases", `{"id":"42","ttl":3600}`); r.code != http.StatusOK {
		t.Fatalf("grant a lease on the upgraded db: %s", r)
	}
	p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)
	if layout, leases := dbLayout(t, db); layout != currentLayout || !leases {
		t.Fatalf("after a run of this binary the db is of layout %q (lease buckets: %v), want %s with them", layout, leases, currentLayout)
	}

	p = startNode(t, "node", dir, args...)
	p.WaitHealthy(t, nil, base, 20*time.Second)
	mustRead(t, base, "/v1/kv/fixture/k01", "v01c")
	mustRead(t, base, "/v1/kv/after-upgrade", "new")
	for i := 2; i < 20; i++ {
		mustRead(t, base, fmt.Sprintf("/v1/kv/fixture/k%02d", i), fmt.Sprintf("v%02d", i))
	}
	if r := call(http.MethodGet, base+"/v1/leases", ""); r.code != http.StatusOK || !strings.Contains(r.body, `"id":"42"`) {
		t.Errorf("GET /v1/leases after the restart: %s, want lease 42", r)
	}
	p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)
}
