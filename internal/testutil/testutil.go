// Package testutil is the plumbing every package's tests share: the
// leak-checking TestMain (Main), free loopback ports (FreePorts), a buffer
// safe to write from one goroutine while another reads it (Buffer),
// polling with a deadline (Poll, Eventually) and the tail of a long output
// (Tail). Only tests import it; it imports nothing of the module, so that
// any package's own tests may use it.
package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// protoactorThrottle is the one goroutine the leak check lets pass:
// protoactor's dead-letter log throttle, started by a dead letter (a reply
// to a future that timed out, a message to a stopped actor, a stopped
// peer's timer), ends by itself one DeadLetterThrottleInterval (1 s) later.
// It is protoactor's, bounded, and not ours to stop.
const protoactorThrottle = "github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"

// Main is every package's TestMain: it runs the tests, then each of
// atExit (whatever the outcome: to close idle connections, remove a binary
// built once for all the tests, wait for a build in the background), and,
// if the tests passed, fails the run when a goroutine is left behind
// (goleak), protoactor's dead-letter throttle aside. It exits with the
// run's code.
func Main(m *testing.M, atExit ...func()) {
	code := m.Run()
	for _, f := range atExit {
		f()
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction(protoactorThrottle)); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left behind by a successful run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// VerifyNone fails t if a goroutine other than the test's own runs, with
// the same exception as Main: for a test that checks its own cleanup.
func VerifyNone(t testing.TB) {
	t.Helper()
	goleak.VerifyNone(t, goleak.IgnoreTopFunction(protoactorThrottle))
}

// handedOut holds every port FreePorts returned in this test binary.
var handedOut struct {
	mu    sync.Mutex
	ports map[int]bool
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago and that it never returned before in this test binary. All n
// are held at once while they are picked, so they differ; and since a port
// once handed out is not handed out again, a member that is down (killed,
// or added but not started yet) keeps its ports for its restart. Another
// process may still take one before a node binds it, a race the tests
// accept as rare.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	handedOut.mu.Lock()
	defer handedOut.mu.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	// The kernel hands out ephemeral ports in turn: a port it gave before
	// comes back only after many others, so few draws are wasted.
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n+1000 {
			t.Fatalf("find %d free ports: only %d unused ones after %d tries", n, len(ports), tries)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		held = append(held, ln)
		p := ln.Addr().(*net.TCPAddr).Port
		if !handedOut.ports[p] {
			handedOut.ports[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// Buffer collects output that one goroutine writes (exec copies a
// process's pipes on its own) while another reads it. The zero value is
// empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Interval is how often Eventually polls.
const Interval = 20 * time.Millisecond

// Poll calls try every interval until it returns nil, and returns nil; or,
// once timeout has passed, try's last error, saying how long it tried. The
// sleep between tries is the polling interval, never synchronization:
// what is awaited is what try checks.
func Poll(timeout, interval time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %v: %w", timeout, err)
		}
		time.Sleep(interval) // polling interval, not synchronization
	}
}

// Eventually is Poll every Interval on the test's goroutine: it fails the
// test, naming what it waited for, once timeout passes. try may itself
// fail the test at once, for an answer that no wait can mend.
func Eventually(t testing.TB, timeout time.Duration, what string, try func() error) {
	t.Helper()
	if err := Poll(timeout, Interval, try); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Tail is the last lines of s, saying how many it left out: a process's
// output, for a failure message.
func Tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) <= lines {
		return s
	}
	return fmt.Sprintf("[... %d earlier lines]\n%s", len(all)-lines, strings.Join(all[len(all)-lines:], "\n"))
}
