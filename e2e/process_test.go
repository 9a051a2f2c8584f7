package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a process's output. exec copies a pipe into it from
// its own goroutine while the test reads it, hence the lock.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one run of a program: a restart is a new proc.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited and was reaped
	err  error         // cmd.Wait's result; read only after done
}

// startProc starts bin with args in dir ("" for the test's own) and makes
// sure, through t.Cleanup, that it is dead and reaped when the test ends.
func startProc(t *testing.T, name, dir, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	// Cleanups run last-in first-out: the process is dead before its
	// output is printed, so the output is complete.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", name, strings.Join(args, " "), logTail(p.out.String(), 150))
		}
	})
	t.Cleanup(func() {
		p.kill()
		<-p.done
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL; the process gets no chance to flush or sync anything.
func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// kill9 kills the process and waits until it is reaped, so that its ports
// are free and its data dir is no longer written when kill9 returns.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	p.kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s survived SIGKILL for 10 s", p.name)
	}
}

// exitCode waits up to timeout for the process to exit by itself.
func (p *proc) exitCode(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s still running after %v", p.name, timeout)
	}
	if p.err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil // -1 when killed by a signal
	}
	return -1, fmt.Errorf("%s: %w", p.name, p.err)
}

// waitExit fails the test unless the process exits by itself with want.
func (p *proc) waitExit(t *testing.T, want int, timeout time.Duration) {
	t.Helper()
	got, err := p.exitCode(timeout)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s exited with %d (%v), want %d", p.name, got, p.err, want)
	}
}

// freePorts returns n distinct ports that were free a moment ago. All are
// held at once, so they differ; another process may still take one before a
// node binds it, a race these tests accept.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// logTail is the end of a process's output, for failure messages.
func logTail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) <= lines {
		return s
	}
	return fmt.Sprintf("[... %d earlier lines]\n%s", len(all)-lines, strings.Join(all[len(all)-lines:], "\n"))
}
