package faults

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// ErrRunning is returned by Start and TearWAL while the member's process
// runs: one data dir serves one process, and a WAL is torn only at rest.
var ErrRunning = errors.New("faults: member is running")

// ErrNotRunning is returned by Pause and Resume when there is no process to
// signal.
var ErrNotRunning = nodeproc.ErrNotRunning

// stopTimeout is how long Stop lets a member shut down cleanly before it
// kills it: the node's own shutdown allows 5 s for its client API.
const stopTimeout = 10 * time.Second

// Member is one cmd/node process of a test cluster, and the data dir that
// outlives its restarts. Its processes run through internal/nodeproc.
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
	// Env is added to the environment of every start, such as
	// GOFAIL_HTTP for a failpoint build.
	Env []string

	mu  sync.Mutex
	p   *nodeproc.Proc  // the current or last run; nil before the first
	out testutil.Buffer // every run's output, in order
}

// Start runs bin as this member of cluster (the --cluster value), joining a
// running cluster when join is set. It returns once the process has
// started, not once it serves. Every caller must end the process (Kill or
// Stop) before its test ends.
func (m *Member) Start(bin, cluster string, join bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p != nil && m.p.Running() {
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
	fmt.Fprintf(&m.out, "=== start member %d: %s %v\n", m.ID, bin, args)
	p, err := nodeproc.Start(nodeproc.Cmd{Name: fmt.Sprintf("member %d", m.ID), Bin: bin, Args: args, Env: m.Env, Output: &m.out})
	if err != nil {
		return fmt.Errorf("start member %d: %w", m.ID, err)
	}
	m.p = p
	return nil
}

// proc is the current or last run, nil before the first.
func (m *Member) proc() *nodeproc.Proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p
}

// Kill sends SIGKILL and waits until the process is reaped, so that its
// ports are free and its data dir is at rest when Kill returns. A member
// that does not run is left as it is.
func (m *Member) Kill() error {
	if p := m.proc(); p != nil {
		return p.Kill()
	}
	return nil
}

// Stop asks the process to shut down with SIGTERM and waits for it; after
// stopTimeout it kills it. A paused member is resumed so it can hear the
// signal.
func (m *Member) Stop() error {
	if p := m.proc(); p != nil {
		return p.Stop(stopTimeout)
	}
	return nil
}

// Pause freezes the process with SIGSTOP: its sockets stay open and
// connections to it hang, as with a host that stalls.
func (m *Member) Pause() error {
	if p := m.proc(); p != nil {
		return p.Pause()
	}
	return fmt.Errorf("pause member %d: %w", m.ID, ErrNotRunning)
}

// Resume undoes Pause with SIGCONT.
func (m *Member) Resume() error {
	if p := m.proc(); p != nil {
		return p.Resume()
	}
	return fmt.Errorf("resume member %d: %w", m.ID, ErrNotRunning)
}

// Running reports whether the last process started has not exited yet.
func (m *Member) Running() bool {
	p := m.proc()
	return p != nil && p.Running()
}

// Exited is closed when the last process started has exited. Before the
// first Start it is nil, and a receive from it blocks.
func (m *Member) Exited() <-chan struct{} {
	if p := m.proc(); p != nil {
		return p.Done()
	}
	return nil
}

// ExitCode is the last process's exit status: -1 while it runs, when it was
// killed by a signal, or before the first Start.
func (m *Member) ExitCode() int {
	if p := m.proc(); p != nil {
		return p.ExitCode()
	}
	return -1
}

// Pid is the last process's id, 0 before the first Start: an actor
// rebuilt in place keeps it, a restart of the process does not.
func (m *Member) Pid() int {
	if p := m.proc(); p != nil {
		return p.Pid()
	}
	return 0
}

// Output is everything every run of the member printed, for failure
// messages.
func (m *Member) Output() string { return m.out.String() }
