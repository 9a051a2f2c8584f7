package faults

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrRunning is returned by Start and TearWAL while the member's process
// runs: one data dir serves one process, and a WAL is torn only at rest.
var ErrRunning = errors.New("faults: member is running")

// ErrNotRunning is returned by Pause and Resume when there is no process to
// signal.
var ErrNotRunning = errors.New("faults: member is not running")

// stopTimeout is how long Stop lets a member shut down cleanly before it
// kills it: the node's own shutdown allows 5 s for its client API.
const stopTimeout = 10 * time.Second

// Member is one cmd/node process of a test cluster, and the data dir that
// outlives its restarts.
type Member struct {
	ID uint64
	// PeerURL is the member's URL in --cluster: the address of its proxy
	// when the cluster runs behind a Net.
	PeerURL string
	// ListenPeer is where the node's peer server really listens.
	ListenPeer string
	// ClientURL is http://127.0.0.1:<port> of the client API.
	ClientURL string
	DataDir   string
	// Args are extra flags for every start, such as --snapshot-count.
	Args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has been reaped
	out  lockedBuffer  // every run's output, in order
}

// Start runs bin as this member of cluster (the --cluster value), joining a
// running cluster when join is set. It returns once the process has
// started, not once it serves.
func (m *Member) Start(bin, cluster string, join bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runningLocked() {
		return fmt.Errorf("start member %d: %w", m.ID, ErrRunning)
	}
	u, err := url.Parse(m.ClientURL)
	if err != nil || u.Port() == "" {
		return fmt.Errorf("member %d: client URL %q has no port", m.ID, m.ClientURL)
	}
	args := []string{
		"--id", strconv.FormatUint(m.ID, 10),
		"--cluster", cluster,
		"--port", u.Port(),
		"--listen-peer", m.ListenPeer,
		"--data-dir", m.DataDir,
	}
	if join {
		args = append(args, "--join")
	}
	args = append(args, m.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = &m.out
	cmd.Stderr = &m.out
	fmt.Fprintf(&m.out, "=== start member %d: %s %v\n", m.ID, bin, args)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start member %d: %w", m.ID, err)
	}
	done := make(chan struct{})
	m.cmd, m.done = cmd, done
	// The process's owner: it ends when the process does, which every
	// caller must bring about (Kill or Stop) before its test ends.
	// Wait's error says no more than ProcessState, which ExitCode reads.
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// Kill sends SIGKILL and waits until the process is reaped, so that its
// ports are free and its data dir is at rest when Kill returns. A member
// that does not run is left as it is.
func (m *Member) Kill() error {
	done, running, err := m.send("kill", syscall.SIGKILL)
	if err != nil || !running {
		return err
	}
	<-done
	return nil
}

// send signals the running process, if there is one, and returns the
// channel that closes when it has exited. A process that exits meanwhile is
// not an error.
func (m *Member) send(what string, sigs ...syscall.Signal) (done <-chan struct{}, running bool, err error) {
	m.mu.Lock()
	cmd, d := m.cmd, m.done
	running = m.runningLocked()
	m.mu.Unlock()
	if !running {
		return nil, false, nil
	}
	for _, sig := range sigs {
		if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return nil, true, fmt.Errorf("%s member %d: %w", what, m.ID, err)
		}
	}
	return d, true, nil
}

// Stop asks the process to shut down with SIGTERM and waits for it; after
// stopTimeout it kills it. A paused member is resumed so it can hear the
// signal.
func (m *Member) Stop() error {
	done, running, err := m.send("stop", syscall.SIGTERM, syscall.SIGCONT)
	if err != nil || !running {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := m.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("stop member %d: still running %v after SIGTERM; killed it", m.ID, stopTimeout)
}

// Pause freezes the process with SIGSTOP: its sockets stay open and
// connections to it hang, as with a host that stalls.
func (m *Member) Pause() error { return m.signal(syscall.SIGSTOP) }

// Resume undoes Pause with SIGCONT.
func (m *Member) Resume() error { return m.signal(syscall.SIGCONT) }

func (m *Member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.runningLocked() {
		return fmt.Errorf("signal %v to member %d: %w", sig, m.ID, ErrNotRunning)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to member %d: %w", sig, m.ID, err)
	}
	return nil
}

// Running reports whether the last process started has not exited yet.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runningLocked()
}

func (m *Member) runningLocked() bool {
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Exited is closed when the last process started has exited. Before the
// first Start it is nil, and a receive from it blocks.
func (m *Member) Exited() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done
}

// ExitCode is the last process's exit status: -1 while it runs, when it was
// killed by a signal, or before the first Start.
func (m *Member) ExitCode() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.runningLocked() {
		return -1
	}
	return m.cmd.ProcessState.ExitCode()
}

// Output is everything every run of the member printed, for failure
// messages.
func (m *Member) Output() string { return m.out.String() }

// lockedBuffer collects output that exec copies from the process's pipes on
// its own goroutines while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
