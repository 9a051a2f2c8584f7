package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the node: run with RAFTKV_BE_NODE=1 it is
// `node`, so the tests run real processes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("RAFTKV_BE_NODE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	port int
	done chan error
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freePortPair returns two distinct free ports: both are held while the
// second is taken, so the kernel cannot hand out the same one twice.
func freePortPair(t *testing.T) (int, int) {
	t.Helper()
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	return a.Addr().(*net.TCPAddr).Port, freePort(t)
}

func startNode(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{out: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), "RAFTKV_BE_NODE=1")
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not exit; output:\n%s", p.out)
		return -1
	}
}

func call(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// ready waits until the node answers /healthz with 200.
func ready(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _, err := call(http.MethodGet, base+"/healthz", "")
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not healthy: %d %v", code, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
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
	ready(t, base)
	must(t, http.MethodPut, base+"/alpha", "one", http.StatusNoContent, "")
	must(t, http.MethodGet, base+"/alpha", "", http.StatusOK, "one")
	must(t, http.MethodPut, base+"/v1/kv/beta", "two", http.StatusOK, "")
	must(t, http.MethodPut, base+"/gamma", "three", http.StatusNoContent, "")
	must(t, http.MethodDelete, base+"/v1/kv/gamma", "", http.StatusOK, "")
	must(t, http.MethodGet, base+"/gamma", "", http.StatusNotFound, "")
	must(t, http.MethodPut, base+"/big", strings.Repeat("x", 1572865), http.StatusRequestEntityTooLarge, "")

	// /metrics counts what just happened: three puts and a delete applied
	// and acknowledged, the oversized body never proposed.
	code, metricsText, err := call(http.MethodGet, base+"/metrics", "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, want := range []string{
		"raftkv_kv_proposals_applied_total 4\n",
		"raftkv_kv_proposals_total 4\n",
		"raftkv_wal_fsync_duration_seconds_count ",
		`raftkv_actor_message_duration_seconds_count{actor="raft"} `,
		"go_goroutines ",
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; output:\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), dir) {
		t.Errorf("the node did not say where its data lives; output:\n%s", p.out)
	}

	p = startNode(t, args...)
	ready(t, base)
	must(t, http.MethodGet, base+"/alpha", "", http.StatusOK, "one")
	must(t, http.MethodGet, base+"/v1/kv/beta?consistency=serializable", "", http.StatusOK, "two")
	must(t, http.MethodGet, base+"/gamma", "", http.StatusNotFound, "")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d after SIGINT; output:\n%s", code, p.out)
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"--id", "2"},                                // not in --cluster
		{"--cluster", "not a url"},                   // bad peer URL
		{"--log-level", "loud"},                      // bad level
		{"--snapshot-count", "many"},                 // not a number
		{"--port", fmt.Sprint(freePort(t)), "extra"}, // stray argument
		{"--format", "etcd"},                         // unknown format
		{"--cluster-id", "xyz"},                      // not hex
		{"--cluster-id", "0"},                        // zero
		{"--snapshot-count", "0"},                    // would never compact
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			p := startNode(t, append(args, "--data-dir", t.TempDir())...)
			if code := p.wait(t); code != 2 {
				t.Fatalf("exit code %d, want 2; output:\n%s", code, p.out)
			}
		})
	}
}
