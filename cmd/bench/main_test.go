package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// testConfig is a small run against endpoints, ending after total requests.
func testConfig(cmd command, total uint64, endpoints ...string) config {
	return config{
		command:   cmd,
		endpoints: endpoints,
		target:    targetSpread,
		clients:   4,
		valSize:   100,
		keySize:   16,
		total:     total,
		keyPrefix: "bench-",
		timeout:   5 * time.Second,
		keys:      20,
		readRatio: 0.5,
		runID:     "t1",
		seed:      1,
	}
}

// TestRunMainExitStatus checks the exit status contract: 2 for a bad
// command line, 0 for help and for a run that completed (with errors or
// not), 1 when nothing was acknowledged or the run could not start.
func TestRunMainExitStatus(t *testing.T) {
	ok := newFakeNode(t, nil)
	some := newFakeNode(t, func(f *fakeNode) {
		f.putStatus = func(n int) int { return []int{200, 503}[n%2] }
	})
	none := newFakeNode(t, func(f *fakeNode) { f.putStatus = func(int) int { return 504 } })
	follower := newFakeNode(t, func(f *fakeNode) { f.leader = 2 })
	refused := refusedEndpoint(t)

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"delete"}, 2},
		{"unknown flag", []string{"put", "--nope"}, 2},
		{"bad value", []string{"put", "--clients", "x"}, 2},
		{"duration and total", []string{"put", "--duration", "1s", "--total", "5"}, 2},
		{"help", []string{"put", "-h"}, 0},
		{"top-level help", []string{"help"}, 0},
		{"all acknowledged", []string{"put", "--endpoints", ok.url, "--total", "10", "--clients", "2"}, 0},
		{"some errors", []string{"put", "--endpoints", some.url, "--total", "10", "--clients", "2"}, 0},
		{"only 504", []string{"put", "--endpoints", none.url, "--total", "10", "--clients", "2"}, 1},
		{"refused", []string{"put", "--endpoints", refused, "--total", "3", "--clients", "1"}, 1},
		{"no leader", []string{"put", "--endpoints", follower.url, "--target", "leader", "--total", "3"}, 1},
		{"preload fails", []string{"get", "--endpoints", none.url, "--total", "3", "--keys", "5"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := runMain(context.Background(), tt.args, &stdout, &stderr, nil, zap.NewNop())
			if got != tt.want {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
			if tt.want == 2 && !strings.Contains(stderr.String(), "usage") && !strings.Contains(stderr.String(), "bad usage") {
				t.Errorf("a bad command line should explain itself on stderr; got %q", stderr.String())
			}
		})
	}
}

// TestRunMainJSON runs the command with --json and checks that stdout is
// exactly one JSON object whose counts are those the server saw.
func TestRunMainJSON(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.putStatus = func(n int) int { return []int{200, 200, 503, 500}[n%4] }
	})
	var stdout, stderr bytes.Buffer
	args := []string{"put", "--endpoints", node.url, "--total", "40", "--clients", "3", "--json"}
	if code := runMain(context.Background(), args, &stdout, &stderr, nil, zap.NewNop()); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	dec := json.NewDecoder(&stdout)
	var rep jsonReport
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
	}
	if dec.More() {
		t.Fatal("stdout holds more than one JSON value")
	}
	_, acked, _, _ := node.counts()
	if rep.Ops != uint64(acked) || rep.Ops != 20 {
		t.Errorf("ops %d, server acknowledged %d, want 20", rep.Ops, acked)
	}
	if rep.Requests != 40 || rep.Errors.Total != 20 || rep.Errors.Unavailable503 != 10 ||
		rep.Errors.OtherStatus != 10 || rep.Errors.ByStatus[500] != 10 {
		t.Errorf("requests/errors = %d/%+v, want 40 requests, 10×503 and 10×500", rep.Requests, rep.Errors)
	}
	if rep.Command != "put" || rep.Clients != 3 || rep.ValueSize != 100 || len(rep.Endpoints) != 1 {
		t.Errorf("run description wrong: %+v", rep)
	}
	l := rep.LatencyUS
	if !(l.Min > 0 && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latencies out of order: %+v", l)
	}
	var inHist uint64
	for _, b := range rep.Histogram {
		inHist += b.Count
	}
	if inHist != rep.Ops {
		t.Errorf("histogram holds %d ops, want %d", inHist, rep.Ops)
	}
	if rep.Reads != nil || rep.Writes != nil {
		t.Error("a put run should not split reads and writes")
	}
}
