package e2e

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// bigKeyDataDir is a one-member data dir made by release 96e1129, the last
// one in which a key bbolt refuses stopped the member: it wrote /v1/kv/before
// (index 4), then took `PUT /<40,000 bytes of k>`, committed it at index 5
// and stopped on applying it, as it did again on every restart. Its cluster
// id is bigKeyClusterID, its peer URL http://127.0.0.1:31379 (the test
// starts it under other ports: the id, not the URL, names the cluster).
// Made with:
//
//	node --cluster http://127.0.0.1:31379 --port 31380 --data-dir ./node-1
//	curl -XPUT -d before http://127.0.0.1:31380/v1/kv/before
//	curl -XPUT -d v "http://127.0.0.1:31380/$(head -c 40000 /dev/zero | tr '\0' k)"
//	tar czf bigkey-96e1129.tgz node-1
const (
	bigKeyDataDir   = "testdata/bigkey-96e1129.tgz"
	bigKeyClusterID = "db162b9f8ba9b584"
)

// A data dir whose log holds the entry that stopped the older release
// starts with this one, which refuses the entry when it applies it, keeps
// what came before, and serves.
func TestDataDirWithAnEntryTheOldReleaseDiedOn(t *testing.T) {
	dir := t.TempDir()
	untar(t, bigKeyDataDir, dir)
	ports := testutil.FreePorts(t, 2)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	p := startNode(t, "node", dir,
		"--cluster", fmt.Sprintf("http://127.0.0.1:%d", ports[0]), "--port", strconv.Itoa(ports[1]),
		"--cluster-id", bigKeyClusterID, "--data-dir", "node-1")
	p.WaitHealthy(t, nil, base, 20*time.Second)
	mustRead(t, base, "/v1/kv/before", "before")
	mustWrite(t, base, "/v1/kv/after", "after", http.StatusOK)
	mustRead(t, base, "/v1/kv/after", "after")
	st, err := getStatus(base)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied < 5 {
		t.Fatalf("applied index %d: the refused entry (5) is not behind it", st.Applied)
	}
	if n := len(logEntries(p.Output(), "refused a committed entry: nothing was written")); n != 1 {
		t.Errorf("%d refusals logged, want 1 (entry 5)", n)
	}
	if strings.Contains(p.Output(), strings.Repeat("k", 100)) {
		t.Error("a log line holds the key")
	}
	p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)
}

// untar unpacks the gzipped tar archive at path into dir.
func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Clean(h.Name))
		if !strings.HasPrefix(dst, dir+string(filepath.Separator)) {
			t.Fatalf("archive entry %q leaves the dir", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o700)
		case tar.TypeReg:
			err = writeFrom(dst, tr, os.FileMode(h.Mode).Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFrom(path string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
