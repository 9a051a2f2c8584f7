package nodeproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// The test binary doubles as the process under test: run with
// NODEPROC_HELPER set it is helper, so these tests need no build.
func TestMain(m *testing.M) {
	if mode := os.Getenv("NODEPROC_HELPER"); mode != "" {
		helper(mode, os.Args[len(os.Args)-1])
		return
	}
	testutil.Main(m)
}

// helper is the process the tests run: "exit3" writes a line to each of
// stdout and stderr and exits 3; "serve" answers /healthz on 127.0.0.1:arg
// until SIGTERM, then exits 0; "deaf" ignores SIGTERM and waits to be
// killed.
func helper(mode, arg string) {
	switch mode {
	case "exit3":
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		os.Exit(3)
	case "serve":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		ln, err := net.Listen("tcp", "127.0.0.1:"+arg)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		go func() { _ = http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) }()
		fmt.Println("serving")
		<-term
		fmt.Println("stopping")
		os.Exit(0)
	case "deaf":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("deaf")
		select {}
	}
	os.Exit(2)
}

func helperCmd(mode string, args ...string) Cmd {
	return Cmd{Name: mode, Bin: os.Args[0], Args: append([]string{"-test.run=^$"}, args...), Env: []string{"NODEPROC_HELPER=" + mode}}
}

func TestExitCodeAndOutput(t *testing.T) {
	p := StartT(t, helperCmd("exit3", "x"))
	p.WaitExit(t, 3, 10*time.Second)
	if out := p.Output(); !strings.Contains(out, "to stdout") || !strings.Contains(out, "to stderr") {
		t.Fatalf("output %q, want both streams", out)
	}
	if p.Running() || p.ExitCode() != 3 {
		t.Fatalf("running %v, exit code %d after exit 3", p.Running(), p.ExitCode())
	}

	c := helperCmd("exit3", "x")
	c.Stderr = &testutil.Buffer{}
	p = StartT(t, c)
	if code, err := p.Wait(10 * time.Second); err != nil || code != 3 {
		t.Fatalf("Wait: %d, %v; want 3", code, err)
	}
	if p.Output() != "to stdout\n" || p.Stderr() != "to stderr\n" {
		t.Fatalf("stdout %q, stderr %q: want one line each", p.Output(), p.Stderr())
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("signal to an exited process: %v, want ErrNotRunning", err)
	}
}

// A served process: healthy, paused (a request hangs), resumed, stopped
// with SIGTERM (exit 0); one buffer collects both of two runs.
func TestPauseResumeStop(t *testing.T) {
	port := strconv.Itoa(testutil.FreePorts(t, 1)[0])
	base := "http://127.0.0.1:" + port
	out := &testutil.Buffer{}
	c := helperCmd("serve", port)
	c.Output = out
	p := StartT(t, c)
	p.WaitHealthy(t, nil, base, 10*time.Second)

	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if resp, err := healthClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("request to a paused process: %v, want it to hang until the deadline", err)
	}
	if !p.Running() {
		t.Fatal("a paused process does not count as running")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	p.WaitHealthy(t, nil, base, 10*time.Second)

	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	// Stop resumes a paused process, so that it hears SIGTERM.
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.ExitCode() != 0 || !strings.Contains(p.Output(), "stopping") {
		t.Fatalf("exit code %d, output %q after SIGTERM", p.ExitCode(), p.Output())
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("Stop of a stopped process: %v", err)
	}

	p = StartT(t, c)
	p.WaitHealthy(t, nil, base, 10*time.Second)
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || p.ExitCode() != -1 {
		t.Fatalf("after Kill: running %v, exit code %d", p.Running(), p.ExitCode())
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill of a dead process: %v", err)
	}
	if n := strings.Count(out.String(), "serving"); n != 2 {
		t.Fatalf("the shared buffer holds %d runs, want 2:\n%s", n, out)
	}
}

// Stop kills what does not stop on SIGTERM, and says so.
func TestStopKillsTheDeaf(t *testing.T) {
	p := StartT(t, helperCmd("deaf"))
	testutil.Eventually(t, 10*time.Second, "the helper ignoring SIGTERM", func() error {
		if !strings.Contains(p.Output(), "deaf") {
			return errors.New("not yet")
		}
		return nil
	})
	if err := p.Stop(200 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed it") {
		t.Fatalf("Stop of a process deaf to SIGTERM: %v, want it killed", err)
	}
	if p.Running() || p.ExitCode() != -1 {
		t.Fatalf("after Stop: running %v, exit code %d", p.Running(), p.ExitCode())
	}
}

// WaitHealthy fails at once, with the output, when the process exits.
func TestWaitHealthyOnExit(t *testing.T) {
	p := StartT(t, helperCmd("exit3", "x"))
	ft := &fatalT{TB: t}
	func() {
		defer func() { _ = recover() }()
		p.WaitHealthy(ft, nil, "http://127.0.0.1:1", 10*time.Second)
	}()
	if !strings.Contains(ft.msg, "exited (code 3)") || !strings.Contains(ft.msg, "to stderr") {
		t.Fatalf("WaitHealthy on an exited process: %q", ft.msg)
	}
}

// fatalT records a Fatalf and ends the function with a panic that the
// test recovers, instead of failing the test.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}
