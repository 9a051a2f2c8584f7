package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// backupPoint is what `node snapshot save` and `restore` print of a backup.
type backupPoint struct{ revision, index uint64 }

func parseSaved(t *testing.T, out string) backupPoint {
	t.Helper()
	var p backupPoint
	_, rest, _ := strings.Cut(out, ": ")
	if _, err := fmt.Sscanf(rest, "revision %d, index %d,", &p.revision, &p.index); err != nil {
		t.Fatalf("snapshot save printed %q: %v", out, err)
	}
	return p
}

// A backup taken from a follower while clients write restores into a new
// three-member cluster that holds exactly the source's state at the
// backup's revision (keys, values, every revision and version, a lease and
// its key), whose members agree on the digest, and whose writes go on from
// the backup's revision upwards; the source goes on as it was.
func TestRestoreIntoNewCluster(t *testing.T) {
	src := newCluster(t, 3)
	lead := src.leader(src.members...)
	grant := call(http.MethodPost, lead.base+"/v1/leases", `{"ttl":600}`)
	var lease struct{ ID string }
	if err := json.Unmarshal([]byte(grant.body), &lease); err != nil || grant.code != http.StatusOK {
		t.Fatalf("grant a lease: %s", grant)
	}
	mustWrite(t, lead.base, "/v1/kv/held?lease="+lease.ID, "by a lease", http.StatusOK)

	// Four writers overwrite 40 keys until told to stop.
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("%s/v1/kv/load/%02d", lead.base, (w*7+i)%40)
				if call(http.MethodPut, path, fmt.Sprintf("writer %d, write %d", w, i)).ok() {
					acked.Add(1)
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	waitAcked := func(n int64) {
		testutil.Eventually(t, 30*time.Second, fmt.Sprintf("%d writes acknowledged", n), func() error {
			if got := acked.Load(); got < n {
				return fmt.Errorf("%d acknowledged", got)
			}
			return nil
		})
	}
	waitAcked(200)
	file := filepath.Join(t.TempDir(), "backup.db")
	code, out, errOut := runNode(t, "snapshot", "save", "--endpoints", src.others(lead)[0].base, file)
	if code != 0 {
		t.Fatalf("snapshot save under load: exit %d, %q, %q", code, out, errOut)
	}
	at := parseSaved(t, out)
	waitAcked(acked.Load() + 200) // the source moves on past the backup
	close(stop)
	wg.Wait()
	want := mustRange(t, lead.base, "prefix=&revision="+strconv.FormatUint(at.revision, 10))
	if len(want.KVs) != 41 || want.More {
		t.Fatalf("the source at revision %d holds %d keys (more: %v), want 41", at.revision, len(want.KVs), want.More)
	}

	const token = "restored"
	dst := newStoppedCluster(t, 3, clusterOpts{}, "--initial-cluster-token", token)
	for _, m := range dst.members {
		code, out, errOut := runNode(t, "snapshot", "restore", file, "--id", strconv.FormatUint(m.id, 10),
			"--cluster", dst.clusterFlag(), "--initial-cluster-token", token, "--data-dir", m.dataDir)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("index %d", at.index)) {
			t.Fatalf("restore member %d: exit %d, %q, %q", m.id, code, out, errOut)
		}
	}
	for _, m := range dst.members {
		dst.start(m, false)
	}
	dlead := dst.leader(dst.members...)
	for _, m := range dst.members {
		got := mustRange(t, m.base, "prefix=")
		if !reflect.DeepEqual(got.KVs, want.KVs) {
			t.Fatalf("%s of the restored cluster holds\n%+v\nthe source at revision %d held\n%+v", m.name(), got.KVs, at.revision, want.KVs)
		}
	}
	if r := call(http.MethodGet, dlead.base+"/v1/leases/"+lease.ID+"?keys=true", ""); r.code != http.StatusOK ||
		!strings.Contains(r.body, `"granted_ttl":600`) || !strings.Contains(r.body, `"key":"held"`) {
		t.Fatalf("the restored lease: %s", r)
	}

	r := call(http.MethodPut, dlead.base+"/v1/kv/after", "restore")
	var wrote struct{ Revision uint64 }
	if err := json.Unmarshal([]byte(r.body), &wrote); err != nil || !r.ok() || wrote.Revision <= at.revision {
		t.Fatalf("a write to the restored cluster: %s; want a revision past the backup's %d", r, at.revision)
	}
	waitApplied(t, wrote.Revision, dst.members...)
	waitEqualDigests(t, dst.members...)
	// The clusters are strangers: the source never learnt of the new one.
	if st, err := getStatus(lead.base); err != nil || len(st.Members) != 3 {
		t.Fatalf("the source's members after the restore: %+v, %v", st.Members, err)
	}
}

// A restore refuses, with one line and nothing made, what it cannot make a
// member of: a backup cut short, a data dir in use, missing flags.
func TestRestoreRefusals(t *testing.T) {
	c := newCluster(t, 1)
	mustWrite(t, c.members[0].base, "/v1/kv/a", "1", http.StatusOK)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	if code, out, errOut := runNode(t, "snapshot", "save", "--endpoints", c.members[0].base, file); code != 0 {
		t.Fatalf("snapshot save: exit %d, %q, %q", code, out, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.db")
	if err := os.WriteFile(short, b[:len(b)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	used := filepath.Join(dir, "used")
	if err := os.MkdirAll(filepath.Join(used, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	cluster := "http://127.0.0.1:1,http://127.0.0.1:2"
	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"backup cut short", []string{short, "--id", "1", "--cluster", cluster, "--initial-cluster-token", "t"}, 1, "backup corrupt"},
		{"data dir in use", []string{file, "--id", "1", "--cluster", cluster, "--initial-cluster-token", "t", "--data-dir", used}, 1, "not empty"},
		{"no token", []string{file, "--id", "1", "--cluster", cluster}, 2, "--initial-cluster-token is required"},
		{"id not in cluster", []string{file, "--id", "3", "--cluster", cluster, "--initial-cluster-token", "t"}, 2, "not in --cluster"},
		{"no file", []string{"--id", "1", "--cluster", cluster, "--initial-cluster-token", "t"}, 2, "name the backup file"},
		{"no backup there", []string{filepath.Join(dir, "absent"), "--id", "1", "--cluster", cluster, "--initial-cluster-token", "t"}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "member")
			args := append([]string{"snapshot", "restore"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--data-dir") {
				args = append(args, "--data-dir", target)
			}
			code, out, errOut := runNode(t, args...)
			if code != tc.code || out != "" || !strings.Contains(errOut, tc.says) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, %q, %q; want %d and one line saying %q", code, out, errOut, tc.code, tc.says)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused restore left %s behind (%v)", target, err)
			}
			if names, _ := filepath.Glob(filepath.Join(filepath.Dir(target), "*.restore-*")); len(names) > 0 {
				t.Fatalf("a refused restore left %v behind", names)
			}
		})
	}
}
