package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/internal/testutil"
)

// The test binary doubles as the node: run with RAFTKV_BE_NODE=1 it is
// `node`. These tests re-exec it rather than run the cmd/node that
// nodeproc.Node builds for the e2e tests and the fault suite: the node
// they run is then the very code under test, compiled with the test's own
// flags (-race checks main and run in a live process, -cover counts them),
// and no second build (a link of the whole node, seconds on this 2-core
// machine) precedes them. Everything else of running it is shared:
// nodeproc starts, signals, reaps and reads the process, testutil gives
// the ports.
func TestMain(m *testing.M) {
	if os.Getenv("RAFTKV_BE_NODE") == "1" {
		main()
		return
	}
	testutil.Main(m, client.CloseIdleConnections)
}

// nodeCmd is the test binary run as the node with args.
func nodeCmd(args ...string) nodeproc.Cmd {
	return nodeproc.Cmd{Name: "node", Bin: os.Args[0], Args: args, Env: []string{"RAFTKV_BE_NODE=1"}}
}

// startNode runs the node with args; it is killed and reaped when the test
// ends.
func startNode(t *testing.T, args ...string) *nodeproc.Proc {
	t.Helper()
	return nodeproc.StartT(t, nodeCmd(args...))
}

// exitTimeout bounds how long a node may take to exit, by itself or when
// told to.
const exitTimeout = 30 * time.Second

// stopNode stops p with sig (SIGTERM, SIGINT) and wants exit code 0.
func stopNode(t *testing.T, p *nodeproc.Proc, sig os.Signal) {
	t.Helper()
	p.SignalAndWait(t, sig, 0, exitTimeout)
}

// freePortPair returns two distinct free ports.
func freePortPair(t *testing.T) (int, int) {
	t.Helper()
	ports := testutil.FreePorts(t, 2)
	return ports[0], ports[1]
}

func freePort(t *testing.T) int {
	t.Helper()
	return testutil.FreePorts(t, 1)[0]
}

// client is the tests' client; TestMain closes its idle connections before
// it looks for goroutines left behind.
var client = &http.Client{Timeout: 10 * time.Second}

func call(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func must(t *testing.T, method, url, body string, wantCode int, wantBody string) {
	t.Helper()
	code, got, err := call(method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if code != wantCode || (wantBody != "" && got != wantBody) {
		t.Fatalf("%s %s: %d %q, want %d %q", method, url, code, got, wantCode, wantBody)
	}
}

func TestNodeServesAndKeepsDataAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	port, peerPort := freePortPair(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// A free peer port too: the default, 12379, may be taken on this machine.
	args := []string{"--port", fmt.Sprint(port), "--data-dir", dir, "--cluster", fmt.Sprintf("http://127.0.0.1:%d", peerPort)}

	p := startNode(t, args...)
	p.WaitHealthy(t, nil, base, 20*time.Second)
	must(t, http.MethodPut, base+"/alpha", "one", http.StatusNoContent, "")
	must(t, http.MethodGet, base+"/alpha", "", http.StatusOK, "one")
	must(t, http.MethodPut, base+"/v1/kv/beta", "two", http.StatusOK, "")
	must(t, http.MethodPut, base+"/gamma", "three", http.StatusNoContent, "")
	must(t, http.MethodDelete, base+"/v1/kv/gamma", "", http.StatusOK, "")
	must(t, http.MethodGet, base+"/gamma", "", http.StatusNotFound, "")
	must(t, http.MethodPut, base+"/big", strings.Repeat("x", 1572865), http.StatusRequestEntityTooLarge, "")
	// The rest of a /v1/kv/ path is the key, byte for byte: nothing on
	// the way cleans "//" or ".." (Go's ServeMux would, and redirect a
	// client to another key).
	must(t, http.MethodPut, base+"/v1/kv//registry/pods/a", "pod", http.StatusOK, "")
	must(t, http.MethodPut, base+"/v1/kv/x/../y", "dots", http.StatusOK, "")
	must(t, http.MethodGet, base+"/v1/kv//registry/pods/a", "", http.StatusOK, "pod")
	must(t, http.MethodGet, base+"/v1/kv/x/../y", "", http.StatusOK, "dots")
	must(t, http.MethodGet, base+"/v1/kv/registry/pods/a", "", http.StatusNotFound, "")
	must(t, http.MethodGet, base+"/v1/kv/y", "", http.StatusNotFound, "")
	must(t, http.MethodDelete, base+"/v1/kv//registry/pods/a", "", http.StatusOK, "")
	must(t, http.MethodDelete, base+"/v1/kv/x/../y", "", http.StatusOK, "")

	// /metrics counts what just happened: five puts and three deletes
	// applied and acknowledged, the oversized body never proposed; and
	// the member's own publication of its client URLs.
	code, metricsText, err := call(http.MethodGet, base+"/metrics", "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, want := range []string{
		"raftkv_kv_proposals_applied_total 9\n",
		"raftkv_kv_proposals_total 9\n",
		"raftkv_wal_fsync_duration_seconds_count ",
		`raftkv_actor_message_duration_seconds_count{actor="raft"} `,
		"go_goroutines ",
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	stopNode(t, p, syscall.SIGTERM)
	if !strings.Contains(p.Output(), dir) {
		t.Errorf("the node did not say where its data lives; output:\n%s", p.Output())
	}

	p = startNode(t, args...)
	p.WaitHealthy(t, nil, base, 20*time.Second)
	must(t, http.MethodGet, base+"/alpha", "", http.StatusOK, "one")
	must(t, http.MethodGet, base+"/v1/kv/beta?consistency=serializable", "", http.StatusOK, "two")
	must(t, http.MethodGet, base+"/gamma", "", http.StatusNotFound, "")
	stopNode(t, p, syscall.SIGINT)
}

// runToExit runs the node with args in dir and returns its exit code,
// stdout and stderr, separately.
func runToExit(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	c := nodeCmd(args...)
	c.Dir = dir
	c.Stderr = &testutil.Buffer{}
	p := nodeproc.StartT(t, c)
	code, err := p.Wait(exitTimeout)
	if err != nil {
		t.Fatalf("node %v: %v; stderr:\n%s", args, err, p.Stderr())
	}
	return code, p.Output(), p.Stderr()
}

// Every bad flag, or bad combination, exits 2 with one line on stderr that
// names the flag, no stack trace and no usage, and creates nothing on disk.
func TestBadFlagsExitTwo(t *testing.T) {
	certDir := t.TempDir()
	cert := filepath.Join(certDir, "cert.pem")
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(freePort(t))
	for _, c := range []struct {
		args []string
		want string // in the line
	}{
		{[]string{"--id", "2"}, "--id"},
		{[]string{"--id", "0"}, "--id"},
		{[]string{"--cluster", "not a url"}, "--cluster"},
		{[]string{"--cluster", "http://a:1,http://a:1"}, "twice"},
		{[]string{"--cluster", "http://a"}, "port"},
		{[]string{"--cluster", "http://a:1/path"}, "path"},
		{[]string{"--cluster", "1=http://a:1,http://b:1"}, "every entry as id=URL, or none"},
		{[]string{"--cluster", "0=http://a:1"}, "id from 1 up"},
		{[]string{"--cluster", "x=http://a:1"}, "id from 1 up"},
		{[]string{"--cluster", "1=http://a:1,1=http://b:1"}, "id 1 is given twice"},
		{[]string{"--cluster", "1=http://a:1,65537=http://b:1"}, "ids 1 and 65537 have the same low 16 bits"},
		{[]string{"--id", "2", "--cluster", "1=http://a:1,3=http://b:1"}, "--id 2 is not in --cluster"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--snapshot-count", "many"}, "snapshot-count"},
		{[]string{"--port", port, "extra"}, "unexpected"},
		{[]string{"--port", "99999"}, "--port"},
		{[]string{"--port", "0"}, "--port"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"--format", "etcd"}, "--format"},
		{[]string{"--cluster-id", "xyz"}, "--cluster-id"},
		{[]string{"--cluster-id", "0"}, "--cluster-id"},
		{[]string{"--cluster-id", "12", "--initial-cluster-token", "t"}, "exclude"},
		{[]string{"--format", "raftexample", "--initial-cluster-token", "t"}, "--initial-cluster-token"},
		{[]string{"--snapshot-count", "0"}, "--snapshot-count"},
		{[]string{"--max-request-bytes", "0"}, "--max-request-bytes"},
		{[]string{"--port", port, "--listen-client-urls", "http://127.0.0.1:1"}, "exclude"},
		{[]string{"--listen-client-urls", "ftp://127.0.0.1:1"}, "--listen-client-urls"},
		{[]string{"--listen-client-urls", "http://0.0.0.0:" + port}, "--advertise-client-urls"},
		{[]string{"--advertise-client-urls", "http://0.0.0.0:1"}, "--advertise-client-urls"},
		{[]string{"--listen-peer", "nohost"}, "--listen-peer"},
		{[]string{"--listen-peer", "127.0.0.1:1", "--listen-peer-urls", "http://127.0.0.1:1"}, "exclude"},
		{[]string{"--listen-peer-urls", "https://127.0.0.1:1"}, "wrong protocol"},
		{[]string{"--listen-client-urls", "https://127.0.0.1:" + port}, "--cert-file and --key-file are required"},
		{[]string{"--listen-client-urls", "https://127.0.0.1:" + port, "--cert-file", cert}, "--key-file is required"},
		{[]string{"--listen-client-urls", "https://127.0.0.1:" + port, "--cert-file", cert, "--key-file", cert}, "cert"},
		{[]string{"--cert-file", cert, "--key-file", cert}, "no --listen-client-urls is https"},
		{[]string{"--cluster", "https://127.0.0.1:1"}, "--peer-cert-file and --peer-key-file are required"},
		{[]string{"--cluster", "https://127.0.0.1:1", "--peer-key-file", cert}, "--peer-cert-file is required"},
		{[]string{"--peer-client-cert-auth"}, "https"},
		{[]string{"--peer-cert-allowed-cn", "x"}, "https"},
		{[]string{"--peer-trusted-ca-file", filepath.Join(certDir, "missing.pem")}, "missing.pem"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			work := t.TempDir()
			code, stdout, stderr := runToExit(t, work, c.args...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.want) || stdout != "" {
				t.Fatalf("stderr %q, stdout %q: want one line that says %q and nothing on stdout", stderr, stdout, c.want)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "Usage") {
				t.Fatalf("stderr has a stack trace or the usage: %q", stderr)
			}
			if entries, err := os.ReadDir(work); err != nil || len(entries) != 0 {
				t.Fatalf("a bad flag created %v in the working directory (%v)", entries, err)
			}
		})
	}
}

func TestHelpPrintsUsage(t *testing.T) {
	code, stdout, stderr := runToExit(t, t.TempDir(), "--help")
	if code != 0 || !strings.Contains(stdout, "--listen-client-urls") || !strings.Contains(stdout, "--peer-cert-allowed-cn") || stderr != "" {
		t.Fatalf("--help: exit %d, stdout %q, stderr %q; want 0 and the flags on stdout", code, stdout, stderr)
	}
}

// A data dir one member runs in is refused to a second process, in words
// the operator understands, and nothing of the first is touched.
func TestDataDirInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	port, peerPort := freePortPair(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"--data-dir", dir, "--port", fmt.Sprint(port), "--cluster", fmt.Sprintf("http://127.0.0.1:%d", peerPort)}
	first := startNode(t, args...)
	first.WaitHealthy(t, nil, base, 20*time.Second)
	must(t, http.MethodPut, base+"/k", "v", http.StatusNoContent, "")

	port2, peerPort2 := freePortPair(t)
	code, _, stderr := runToExit(t, t.TempDir(), "--data-dir", dir, "--port", fmt.Sprint(port2),
		"--cluster", fmt.Sprintf("http://127.0.0.1:%d", peerPort2), "--cluster-id", "1")
	if code != 1 || !strings.Contains(stderr, dir+" is in use by another process") {
		t.Fatalf("second node on the same data dir: exit %d, stderr %q; want 1 and \"in use by another process\"", code, stderr)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Fatalf("the refusal is not one line: %q", stderr)
	}
	must(t, http.MethodGet, base+"/k", "", http.StatusOK, "v")
	stopNode(t, first, syscall.SIGTERM)
}

// A data dir made by one cluster is refused by a member of another: exit 1
// and one line saying what the dir holds and what to do.
func TestDataDirOfAnotherCluster(t *testing.T) {
	work := t.TempDir()
	port, peerPort := freePortPair(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	one := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	p := startNode(t, "--port", fmt.Sprint(port), "--cluster", one, "--data-dir", filepath.Join(work, "node-1"))
	p.WaitHealthy(t, nil, base, 20*time.Second)
	must(t, http.MethodPut, base+"/k", "v", http.StatusNoContent, "")
	stopNode(t, p, syscall.SIGTERM)

	three := one + "," + fmt.Sprintf("http://127.0.0.1:%d,http://127.0.0.1:%d", freePort(t), freePort(t))
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"other members", []string{"--cluster", three}, []string{"node-1 holds member 1 of another cluster", "--cluster " + one, "restart it with the flags it was created with"}},
		{"other token", []string{"--cluster", one, "--initial-cluster-token", "prod"}, []string{"--initial-cluster-token prod"}},
		{"other id", []string{"--cluster", one, "--cluster-id", "abc"}, []string{"cluster abc"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runToExit(t, work, append([]string{"--port", fmt.Sprint(freePort(t))}, c.args...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			for _, w := range c.want {
				if !strings.Contains(last, w) {
					t.Errorf("refusal %q does not say %q", last, w)
				}
			}
		})
	}
	// With the flags it was made with, it starts and holds its data.
	p = startNode(t, "--port", fmt.Sprint(port), "--cluster", one, "--data-dir", filepath.Join(work, "node-1"))
	p.WaitHealthy(t, nil, base, 20*time.Second)
	must(t, http.MethodGet, base+"/k", "", http.StatusOK, "v")
}

// The client API listens where --listen-client-urls says, over http and
// https at once, 0.0.0.0 meaning every interface (127.0.0.2 is one of this
// host's too), and the member lists the URLs it advertises.
func TestListensWhereTold(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	cert, key := ca.Issue(t, "member")
	plain, secure := freePortPair(t)
	peerPort := freePort(t)
	adv := fmt.Sprintf("http://127.0.0.1:%d,https://127.0.0.1:%d", plain, secure)
	p := startNode(t, "--data-dir", filepath.Join(t.TempDir(), "d"),
		"--cluster", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--listen-client-urls", fmt.Sprintf("http://0.0.0.0:%d,https://127.0.0.1:%d", plain, secure),
		"--advertise-client-urls", adv, "--cert-file", cert, "--key-file", key)
	p.WaitHealthy(t, nil, fmt.Sprintf("http://127.0.0.1:%d", plain), 20*time.Second)
	must(t, http.MethodPut, fmt.Sprintf("http://127.0.0.2:%d/k", plain), "v", http.StatusNoContent, "")

	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	defer tlsClient.CloseIdleConnections()
	resp, err := tlsClient.Get(fmt.Sprintf("https://127.0.0.1:%d/k", secure))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "v" {
		t.Fatalf("GET over https: %d %q", resp.StatusCode, b)
	}
	// Plaintext to the https port is refused, not served.
	if code, _, err := call(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/k", secure), ""); err == nil && code/100 == 2 {
		t.Fatalf("a plaintext request to the https port got %d", code)
	}
	want := `"client_urls":["` + strings.ReplaceAll(adv, ",", `","`) + `"]`
	testutil.Eventually(t, 20*time.Second, "/v1/members listing "+want, func() error {
		_, members, err := call(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v1/members", plain), "")
		if err == nil && !strings.Contains(members, want) {
			err = fmt.Errorf("it lists %s", members)
		}
		return err
	})
	stopNode(t, p, syscall.SIGTERM)
}

// A member whose db is gone while its log was compacted past the state
// refuses to start, in one line that says to re-add it, rather than serve
// an empty state.
func TestLostDBRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	port, peerPort := freePortPair(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"--port", fmt.Sprint(port), "--data-dir", dir, "--cluster", fmt.Sprintf("http://127.0.0.1:%d", peerPort), "--snapshot-count", "5"}
	p := startNode(t, args...)
	p.WaitHealthy(t, nil, base, 20*time.Second)
	for i := range 20 {
		must(t, http.MethodPut, fmt.Sprintf("%s/k%d", base, i), "v", http.StatusNoContent, "")
	}
	stopNode(t, p, syscall.SIGTERM)
	if err := os.Remove(filepath.Join(dir, "db")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runToExit(t, t.TempDir(), args...)
	last := strings.TrimSpace(stderr)
	last = last[strings.LastIndex(last, "\n")+1:]
	if code != 1 || !strings.Contains(last, "db is missing or behind the log") || !strings.Contains(last, "add it under a new id") {
		t.Fatalf("start without the db: exit %d, last line %q", code, last)
	}
}
