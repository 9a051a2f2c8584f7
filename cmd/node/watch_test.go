package main

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A member stopping ends its open watch streams with an end event before
// it shuts its client API down, so that the streams do not keep the
// graceful shutdown waiting out its timeout.
func TestStopEndsWatchStreams(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	port, peerPort := freePortPair(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startNode(t, "--port", fmt.Sprint(port), "--data-dir", dir, "--cluster", fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	p.WaitHealthy(t, nil, base, 20*time.Second)

	// A client of its own: the stream outlasts client's timeout if the
	// test is slow, and ends with the node.
	streamClient := &http.Client{Transport: &http.Transport{}}
	defer streamClient.CloseIdleConnections()
	resp, err := streamClient.Get(base + "/v1/watch/k")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	must(t, http.MethodPut, base+"/v1/kv/k", "v", http.StatusOK, "")
	waitLine(t, lines, `"key":"k","value":"v"`)

	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, `"reason":"stopping"`)
	p.WaitExit(t, 0, exitTimeout)
	// The shutdown's timeout is 5 s: a stream holding it up would take
	// that long and log it.
	if took := time.Since(start); took > 4*time.Second || strings.Contains(p.Output(), "the client API did not shut down cleanly") {
		t.Fatalf("stopping took %v; output:\n%s", took, p.Output())
	}
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream closed before %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no line with %q", want)
		}
	}
}
