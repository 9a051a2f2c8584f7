// Package nodeproc runs programs as processes for tests, cmd/node above
// all: it builds cmd/node once per test binary (Node; FailpointNode with
// its failpoints), starts a process with its output collected (Start,
// StartT), stops it with SIGTERM, kills it with SIGKILL, pauses it with
// SIGSTOP and resumes it with SIGCONT, reads its output and its exit code,
// and waits until it serves (WaitHealthy). The e2e tests, the fault suite (tests/faults) and the
// tests of cmd/node run their processes through it. Only tests import it.
package nodeproc

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// ErrNotRunning is returned when a signal is meant for a process that has
// exited.
var ErrNotRunning = errors.New("nodeproc: process is not running")

// KillTimeout bounds how long Kill waits for the kernel to reap a process
// after SIGKILL.
const KillTimeout = 10 * time.Second

// Cmd says what to run.
type Cmd struct {
	// Name names the process in messages; "" is the binary's base name.
	Name string
	Bin  string
	Args []string
	// Dir is the working directory; "" is the test's.
	Dir string
	// Env is added to the test's own environment.
	Env []string
	// Output collects stdout and stderr, interleaved; nil makes a new
	// buffer. One buffer may collect the runs of a member one after
	// another.
	Output *testutil.Buffer
	// Stderr, if set, gets stderr instead of Output, for a test of what
	// goes to which.
	Stderr *testutil.Buffer
}

// Proc is one run of a program: a restart is a new Proc.
type Proc struct {
	name   string
	cmd    *exec.Cmd
	out    *testutil.Buffer
	stderr *testutil.Buffer
	done   chan struct{} // closed once the process has exited and was reaped
	err    error         // cmd.Wait's result; read only after done
}

// Start starts c and returns once the process has started, not once it
// serves. The caller must end it (Kill, Stop, or its own exit) and wait
// for Done before its test ends: StartT does that for it.
func Start(c Cmd) (*Proc, error) {
	p := &Proc{name: c.Name, out: c.Output, stderr: c.Stderr, done: make(chan struct{})}
	if p.name == "" {
		p.name = filepath.Base(c.Bin)
	}
	if p.out == nil {
		p.out = &testutil.Buffer{}
	}
	p.cmd = exec.Command(c.Bin, c.Args...)
	p.cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		p.cmd.Env = append(os.Environ(), c.Env...)
	}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if p.stderr != nil {
		p.cmd.Stderr = p.stderr
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	// The process's owner: it ends when the process does.
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// StartT is Start for a test: it fails t if the process cannot start,
// and, through t.Cleanup, kills it and waits until it is reaped when the
// test ends, then, if the test failed, logs the end of its output.
func StartT(t testing.TB, c Cmd) *Proc {
	t.Helper()
	p, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the process is dead before its
	// output is logged, so the output is complete.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", p.name, strings.Join(c.Args, " "), testutil.Tail(p.out.String(), 150))
		}
	})
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// Name is the process's name in messages.
func (p *Proc) Name() string { return p.name }

// Pid is the process id: a member restarted in process (an actor rebuilt)
// keeps it, one restarted as a process does not.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is what the process wrote so far (with Cmd.Stderr set, to its
// stdout only).
func (p *Proc) Output() string { return p.out.String() }

// Stderr is what the process wrote to its stderr, when Cmd.Stderr was set.
func (p *Proc) Stderr() string {
	if p.stderr == nil {
		return ""
	}
	return p.stderr.String()
}

// Done is closed once the process has exited and was reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet. A paused
// process runs.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig; ErrNotRunning if the process has exited.
func (p *Proc) Signal(sig os.Signal) error {
	if !p.Running() {
		return fmt.Errorf("signal %v to %s: %w", sig, p.name, ErrNotRunning)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal %v to %s: %w", sig, p.name, ErrNotRunning)
		}
		return fmt.Errorf("signal %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// Kill sends SIGKILL and waits until the process is reaped, so that its
// ports are free and its data dir is at rest when Kill returns: the
// process gets no chance to flush or sync anything. A process that has
// exited is left as it is.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(KillTimeout):
		return fmt.Errorf("%s survived SIGKILL for %v", p.name, KillTimeout)
	}
}

// Stop asks the process to shut down with SIGTERM (and SIGCONT, so that a
// paused one hears it) and waits for it to exit; after timeout it kills it
// and says so. A process that has exited is left as it is.
func (p *Proc) Stop(timeout time.Duration) error {
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGCONT} {
		if err := p.Signal(sig); errors.Is(err, ErrNotRunning) {
			return nil
		} else if err != nil {
			return err
		}
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("stop %s: still running %v after SIGTERM; killed it", p.name, timeout)
}

// Pause freezes the process with SIGSTOP: its sockets stay open and
// connections to it hang, as with a host that stalls. SIGSTOP takes
// effect asynchronously, so Pause returns once every thread of the
// process is stopped (as /proc tells; where there is none, at once): what
// the caller does next meets a stopped process.
func (p *Proc) Pause() error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return testutil.Poll(KillTimeout, time.Millisecond, func() error {
		if !p.Running() || p.stopped() {
			return nil
		}
		return fmt.Errorf("%s not stopped yet", p.name)
	})
}

// stopped reports whether /proc shows every thread of the process
// stopped, or there is no /proc to ask.
func (p *Proc) stopped() bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		_, err := os.Stat("/proc/self/stat")
		return err != nil // no /proc: nothing to wait for
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // a thread that ended
		}
		// pid (comm) state ...: comm may hold spaces and parentheses,
		// so the state follows the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume undoes Pause with SIGCONT.
func (p *Proc) Resume() error { return p.Signal(syscall.SIGCONT) }

// ExitCode is the exit status: -1 while the process runs, or when a
// signal killed it.
func (p *Proc) ExitCode() int {
	if p.Running() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit code (-1 when a signal killed it).
func (p *Proc) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s still running after %v", p.name, timeout)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		return -1, fmt.Errorf("%s: %w", p.name, p.err)
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// WaitExit fails t unless the process exits by itself with want within
// timeout.
func (p *Proc) WaitExit(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	got, err := p.Wait(timeout)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s exited with %d (%v), want %d; output:\n%s", p.name, got, p.err, want, testutil.Tail(p.Output(), 30))
	}
}

// SignalAndWait sends sig (SIGTERM, SIGINT: a stop the process handles)
// and fails t unless the process then exits with want within timeout.
func (p *Proc) SignalAndWait(t testing.TB, sig os.Signal, want int, timeout time.Duration) {
	t.Helper()
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
	p.WaitExit(t, want, timeout)
}

// healthClient asks /healthz without keeping connections, so that no idle
// one outlives a test.
var healthClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// WaitHealthy waits until base (the process's client URL) answers
// /healthz with 200, which a member does once it knows a leader. It fails
// t at once if the process exits, and after timeout. client is for a
// member served over TLS; nil is plain HTTP.
func (p *Proc) WaitHealthy(t testing.TB, client *http.Client, base string, timeout time.Duration) {
	t.Helper()
	if client == nil {
		client = healthClient
	}
	testutil.Eventually(t, timeout, base+" healthy", func() error {
		if !p.Running() {
			t.Fatalf("%s exited (code %d) before it served; output:\n%s", p.name, p.ExitCode(), testutil.Tail(p.Output(), 30))
		}
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s/healthz: %s", base, resp.Status)
		}
		return nil
	})
}
