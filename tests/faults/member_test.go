package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// newMember returns a one-member cluster's member on free ports, its
// --cluster value, and stops it when the test ends.
func newTestMember(t *testing.T) (*Member, string) {
	t.Helper()
	ports := testutil.FreePorts(t, 2)
	m := &Member{
		ID:         1,
		PeerURL:    "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		ListenPeer: "127.0.0.1:" + strconv.Itoa(ports[0]),
		ClientURL:  "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		DataDir:    filepath.Join(t.TempDir(), "data"),
		Args:       []string{"--log-level", "debug"},
	}
	t.Cleanup(func() {
		defer memberClient.CloseIdleConnections()
		if err := m.Kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("member output:\n%s", m.Output())
		}
	})
	return m, m.PeerURL
}

// memberClient has its own connection pool so that tests can close it:
// goleak counts idle keep-alive connections as leaked goroutines.
var memberClient = &http.Client{Transport: &http.Transport{}}

func memberPut(ctx context.Context, m *Member, key, value string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.ClientURL+"/v1/kv/"+key, strings.NewReader(value))
	if err != nil {
		return err
	}
	resp, err := memberClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s", key, resp.Status)
	}
	return nil
}

func memberGet(ctx context.Context, m *Member, key string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/v1/kv/"+key, nil)
	if err != nil {
		return "", err
	}
	resp, err := memberClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", key, resp.Status)
	}
	return string(b), nil
}

// eventuallyMember retries f until it succeeds or 10 s pass: a member
// that has just started needs to elect itself before it serves. A member
// that exits fails the test at once.
func eventuallyMember(t *testing.T, m *Member, what string, f func(ctx context.Context) error) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, func() error {
		if !m.Running() {
			t.Fatalf("%s: the member exited", what)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return f(ctx)
	})
}

func waitMemberExited(t *testing.T, m *Member) {
	t.Helper()
	select {
	case <-m.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("the member did not exit")
	}
}

// TestMember runs one member through every process fault: pause and
// resume, kill and restart from its data dir, a torn WAL tail, and a clean
// stop. Each step depends on the state the one before left.
func TestMember(t *testing.T) {
	bin := nodeproc.Node(t)
	m, cluster := newTestMember(t)

	if m.Running() || m.Exited() != nil || m.ExitCode() != -1 || m.Pid() != 0 {
		t.Fatal("a member that never started looks started")
	}
	if err := m.Pause(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Pause before Start: %v, want ErrNotRunning", err)
	}
	if err := m.Start(bin, cluster, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(bin, cluster, false); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start: %v, want ErrRunning", err)
	}
	if err := m.TearWAL(1); !errors.Is(err, ErrRunning) {
		t.Fatalf("TearWAL while running: %v, want ErrRunning", err)
	}
	eventuallyMember(t, m, "first write", func(ctx context.Context) error { return memberPut(ctx, m, "a", "1") })

	t.Run("pause", func(t *testing.T) {
		if err := m.Pause(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := memberPut(ctx, m, "b", "2"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write to a paused member: %v, want it to hang until the deadline", err)
		}
		if !m.Running() {
			t.Fatal("a paused member does not count as running")
		}
		if err := m.Resume(); err != nil {
			t.Fatal(err)
		}
		eventuallyMember(t, m, "write after resume", func(ctx context.Context) error { return memberPut(ctx, m, "b", "2") })
	})

	t.Run("kill and restart", func(t *testing.T) {
		pid := m.Pid()
		if err := m.Kill(); err != nil {
			t.Fatal(err)
		}
		if m.Running() || m.ExitCode() != -1 {
			t.Fatalf("after Kill: running %v, exit code %d", m.Running(), m.ExitCode())
		}
		waitMemberExited(t, m)
		if err := m.Start(bin, cluster, false); err != nil {
			t.Fatal(err)
		}
		if m.Pid() == pid || m.Pid() == 0 {
			t.Fatalf("pid %d after a restart, %d before", m.Pid(), pid)
		}
		eventuallyMember(t, m, "read after restart", func(ctx context.Context) error {
			v, err := memberGet(ctx, m, "b")
			if err == nil && v != "2" {
				t.Fatalf("b = %q after restart, want 2", v)
			}
			return err
		})
	})

	t.Run("torn WAL", func(t *testing.T) {
		if err := m.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := m.TearWAL(1); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(bin, cluster, false); err != nil {
			t.Fatal(err)
		}
		eventuallyMember(t, m, "write after a torn tail", func(ctx context.Context) error { return memberPut(ctx, m, "c", "3") })
		// Only the last record was torn; a restart writes several after
		// "a", so it must have survived.
		eventuallyMember(t, m, "read after a torn tail", func(ctx context.Context) error {
			v, err := memberGet(ctx, m, "a")
			if err == nil && v != "1" {
				t.Fatalf("a = %q after the repair, want 1", v)
			}
			return err
		})
		if !strings.Contains(m.Output(), "repaired the tail") {
			t.Fatal("the member did not report repairing its WAL")
		}
	})

	t.Run("stop", func(t *testing.T) {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		if code := m.ExitCode(); code != 0 {
			t.Fatalf("exit code after SIGTERM: %d, want 0", code)
		}
	})
}
