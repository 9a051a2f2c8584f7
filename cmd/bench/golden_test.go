package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The golden files pin what the command prints, byte for byte: its usage
// and help, its complaints about bad command lines, and both reports of
// every mode. Regenerate them with
//
//	go test ./cmd/bench -run Golden -update
//
// and read the diff: a change in them is a change of the command's output.
var update = flag.Bool("update", false, "rewrite the golden files of cmd/bench")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, path, lineDiff(string(want), got))
	}
}

// lineDiff names the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)) && b.Len() < 4000; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n want %q\n  got %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// TestGoldenHelp: the usage, the top-level help and every command's flags.
func TestGoldenHelp(t *testing.T) {
	var out strings.Builder
	for _, args := range [][]string{
		nil, {"-h"}, {"--help"}, {"help"}, {"delete"},
		{"put", "-h"}, {"get", "-h"}, {"mixed", "-h"}, {"cas", "-h"},
		{"txn", "-h"}, {"range", "-h"}, {"watch", "-h"},
	} {
		var stdout, stderr bytes.Buffer
		code := runMain(context.Background(), args, &stdout, &stderr, nil, zap.NewNop())
		fmt.Fprintf(&out, "=== bench %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	golden(t, "help", out.String())
}

// TestGoldenUsageErrors: what a bad command line is told, on stderr.
func TestGoldenUsageErrors(t *testing.T) {
	var out strings.Builder
	for _, args := range [][]string{
		{"--clients", "3", "put"}, {"put", "extra"}, {"put", "--nope"}, {"put", "--clients", "x"},
		{"put", "--duration", "5s", "--total", "5"}, {"put", "--total", "0"}, {"put", "--duration", "0s"},
		{"put", "--clients", "0"}, {"put", "--val-size", "-1"}, {"put", "--key-size", "-1"}, {"put", "--timeout", "0s"},
		{"put", "--target", "random"}, {"get", "--consistency", "eventual"}, {"get", "--keys", "0"},
		{"mixed", "--read-ratio", "1.5"}, {"put", "--consistency", "serializable"},
		{"put", "--endpoints", "127.0.0.1:12380"}, {"put", "--endpoints", "http://a:1/v1"},
		{"put", "--endpoints", " , "}, {"put", "--endpoints", "http://a b"},
		{"cas", "--contention", "0"}, {"txn", "--txn-ops", "0"}, {"txn", "--txn-ops", "129"},
		{"range", "--range-limit", "0"}, {"range", "--range-limit", "10001"},
		{"watch", "--watchers", "0"}, {"watch", "--watch-grace", "-1s"},
		{"watch", "--key-prefix", `a"b`}, {"watch", "--key-prefix", "a\xffb"},
		{"put", "--cert", "c.pem", "--endpoints", "https://a:1"},
		{"put", "--cacert", "ca.pem"},
	} {
		var stdout, stderr bytes.Buffer
		code := runMain(context.Background(), args, &stdout, &stderr, nil, zap.NewNop())
		fmt.Fprintf(&out, "=== bench %q: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
	}
	golden(t, "usage_errors", out.String())
}

// TestGoldenReports: both reports of every mode, for results of fixed
// numbers (fixedResults), so that every digit is pinned.
func TestGoldenReports(t *testing.T) {
	for name, res := range fixedResults() {
		t.Run(name, func(t *testing.T) {
			var text, js bytes.Buffer
			if err := writeText(&text, res); err != nil {
				t.Fatal(err)
			}
			if err := writeJSON(&js, res); err != nil {
				t.Fatal(err)
			}
			golden(t, "report_"+name, text.String()+"--- json\n"+js.String())
		})
	}
}

// TestGoldenRuns: both reports of every mode as the command line runs it
// against the fake node, the measured numbers (times, rates, latencies,
// histograms, the run id and port) masked.
func TestGoldenRuns(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.interfere = func(n int) bool { return n == 3 }
		f.rangeCut = func(n int) int { return map[bool]int{true: 2}[n == 1] }
		f.getStatus = func(n int) int { return []int{200, 200, 503}[n%3] }
	})
	errs := newFakeNode(t, func(f *fakeNode) {
		f.putStatus = func(n int) int { return []int{200, 200, 503, 504, 500, 413}[n%6] }
	})
	base := []string{"--total", "24", "--clients", "2"}
	for _, tt := range []struct {
		name     string
		endpoint string
		args     []string
	}{
		{"put", errs.url, []string{"put", "--val-size", "10"}},
		{"get", node.url, []string{"get", "--keys", "8", "--consistency", "serializable"}},
		{"mixed", node.url, []string{"mixed", "--keys", "8", "--read-ratio", "1"}},
		{"cas", node.url, []string{"cas"}},
		{"txn", node.url, []string{"txn", "--txn-ops", "3"}},
		{"txn_nocompare", node.url, []string{"txn", "--compare=false"}},
		{"range", node.url, []string{"range", "--keys", "30", "--range-limit", "10", "--keys-only"}},
		{"watch", node.url, []string{"watch", "--watchers", "3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			node.mu.Lock()
			node.condN, node.ranges, node.gets = 0, 0, 0
			node.mu.Unlock()
			args := append(append(append([]string{}, tt.args...), base...), "--endpoints", tt.endpoint)
			var text, js, stderr bytes.Buffer
			if code := runMain(context.Background(), args, &text, &stderr, nil, zap.NewNop()); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			node.mu.Lock()
			node.condN, node.ranges, node.gets = 0, 0, 0
			node.mu.Unlock()
			if code := runMain(context.Background(), append(args, "--json"), &js, &stderr, nil, zap.NewNop()); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			golden(t, "run_"+tt.name, maskText(text.String())+"--- json\n"+maskJSON(js.String()))
		})
	}
}

var (
	maskURL       = regexp.MustCompile(`https?://127\.0\.0\.1:\d+`)
	maskRun       = regexp.MustCompile(`\(run [0-9a-z]+\)`)
	maskHistRow   = regexp.MustCompile(`(?m)^ +\S+ - \S+ +\|[# ]*\| \d+\n`)
	maskDuration  = regexp.MustCompile(`(?m)^(Duration: +|  Caught up: +)\S+`)
	maskFloat     = regexp.MustCompile(`\d+\.\d+`)
	maskEarly     = regexp.MustCompile(`; \d+ came before`)
	maskJSONRun   = regexp.MustCompile(`"run_id": "[0-9a-z]+"`)
	maskJSONHist  = regexp.MustCompile(`(?s)"(histogram|delay_histogram)": \[.*?\]`)
	maskJSONField = regexp.MustCompile(`"(duration_seconds|ops_per_second|keys_per_second|caught_up_seconds|refused_share|min|mean|p50|p90|p99|p99_9|max|delivered_before_ack)": [0-9.e+-]+`)
)

func maskText(s string) string {
	s = maskURL.ReplaceAllString(s, "URL")
	s = maskRun.ReplaceAllString(s, "(run ID)")
	s = maskHistRow.ReplaceAllString(s, "")
	s = maskDuration.ReplaceAllString(s, "${1}T")
	s = maskEarly.ReplaceAllString(s, "; N came before")
	return maskFloat.ReplaceAllString(s, "F")
}

func maskJSON(s string) string {
	s = maskURL.ReplaceAllString(s, "URL")
	s = maskJSONRun.ReplaceAllString(s, `"run_id": "ID"`)
	s = maskJSONHist.ReplaceAllString(s, `"$1": […]`)
	return maskJSONField.ReplaceAllString(s, `"$1": F`)
}

// ops is a section of fixed numbers: latencies of acknowledged operations
// and the outcomes (with their statuses) of the failed ones.
func ops(lats []time.Duration, fails ...any) *opStats {
	s := newOpStats()
	for _, d := range lats {
		s.add(outcomeOK, 200, d)
	}
	for i := 0; i < len(fails); i += 2 {
		s.add(fails[i].(outcome), fails[i+1].(int), 0)
	}
	return s
}

func lats(base time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = base + time.Duration(i*i)*37*time.Microsecond
	}
	return out
}

// fixedResults is a result of every mode and variant, of fixed numbers.
func fixedResults() map[string]*result {
	cfg := func(cmd command, mod func(*config)) config {
		c := testConfig(cmd, 0, "http://a:1", "https://b:2")
		c.duration, c.runID = 20*time.Second, "r7"
		if mod != nil {
			mod(&c)
		}
		return c
	}
	res := func(c config, eps []string) *result {
		return &result{cfg: c, endpoints: eps, elapsed: 1234567 * time.Microsecond}
	}
	out := make(map[string]*result)

	r := res(cfg(cmdPut, nil), []string{"http://a:1", "https://b:2"})
	r.writes = ops(lats(80*time.Microsecond, 40), outcomeUnavailable, 503, outcomeTimeout, 504, outcomeStatus, 500,
		outcomeStatus, 413, outcomeStatus, 500, outcomeTransport, 0, outcomeBadReply, 200)
	out["put"] = r

	r = res(cfg(cmdPut, func(c *config) { c.target = targetLeader; c.total, c.duration = 500, 0 }), []string{"https://b:2"})
	r.writes = ops(nil, outcomeTransport, 0)
	out["put_none"] = r

	r = res(cfg(cmdGet, func(c *config) { c.serializable = true }), []string{"http://a:1", "https://b:2"})
	r.reads = ops(lats(time.Millisecond, 25), outcomeStatus, 404, outcomeBadReply, 200)
	out["get"] = r

	r = res(cfg(cmdMixed, func(c *config) { c.readRatio = 0.75 }), []string{"http://a:1"})
	r.reads = ops(lats(300*time.Microsecond, 30), outcomeStatus, 404)
	r.writes = ops(lats(2*time.Millisecond, 10), outcomeTimeout, 504)
	out["mixed"] = r

	r = res(cfg(cmdCAS, func(c *config) { c.contention, c.keys = 1, 4 }), []string{"http://a:1"})
	r.writes = ops(lats(time.Millisecond, 12), outcomeConflict, 412, outcomeConflict, 412, outcomeUnavailable, 503)
	out["cas"] = r

	r = res(cfg(cmdCAS, func(c *config) { c.contention, c.keys = 3, 2 }), []string{"http://a:1"})
	r.writes = ops(lats(time.Millisecond, 9), outcomeTimeout, 504)
	r.refused = ops(lats(700*time.Microsecond, 21))
	out["cas_contention"] = r

	r = res(cfg(cmdTxn, func(c *config) { c.txnOps, c.txnCompare = 3, true }), []string{"http://a:1"})
	r.writes = ops(lats(4*time.Millisecond, 15), outcomeConflict, 200, outcomeBadReply, 200)
	out["txn"] = r

	r = res(cfg(cmdTxn, func(c *config) { c.txnOps, c.txnCompare = 2, false }), []string{"http://a:1"})
	r.writes = ops(lats(4*time.Millisecond, 3))
	out["txn_nocompare"] = r

	r = res(cfg(cmdRange, func(c *config) { c.keys, c.rangeLimit, c.keysOnly = 10000, 100, true }), []string{"http://a:1"})
	r.reads = ops(lats(7*time.Millisecond, 20), outcomeShort, 200, outcomeShort, 200, outcomeBadReply, 200)
	r.reads.items = 2000
	out["range"] = r

	r = res(cfg(cmdRange, func(c *config) { c.keys, c.rangeLimit, c.serializable = 50, 100, true }), []string{"http://a:1"})
	r.reads = ops(lats(time.Second, 2))
	r.reads.items = 100
	out["range_serializable"] = r

	for _, v := range []struct {
		name    string
		settled bool
		opened  int
	}{{"watch", true, 4}, {"watch_troubled", false, 2}} {
		r = res(cfg(cmdWatch, func(c *config) { c.watchers, c.watchGrace = 4, 5*time.Second }), []string{"https://b:2"})
		r.writes = ops(lats(900*time.Microsecond, 30), outcomeUnavailable, 503)
		r.watch = fixedWatch(v.settled, v.opened)
		out[v.name] = r
	}
	return out
}

// fixedWatch is a watch run's measures: all four watchers opened and
// caught up, or two of four, with losses and anomalies.
func fixedWatch(settled bool, opened int) *watchStats {
	ws := &watchStats{asked: 4, opened: opened, acked: 30, ended: map[string]uint64{}, delay: newHistogram(),
		settled: settled, caughtUp: 12345 * time.Microsecond}
	for _, d := range lats(3*time.Millisecond, 30*opened) {
		ws.delay.record(d)
	}
	ws.delivered, ws.early = 30*uint64(opened), 3
	if !settled {
		ws.caughtUp = 5001 * time.Millisecond
		ws.openErrors = *ops(nil, outcomeTransport, 0, outcomeStatus, 404)
		ws.openCause = "b:2: 404 Not Found"
		ws.delivered -= 7
		ws.missed, ws.missedOpen, ws.unacked = 7, 2, 1
		ws.n = [numEvCounts]uint64{evDup: 1, evDisorder: 2, evWrongRev: 3, evForeign: 4, evBadData: 5, evProgress: 6, evOtherType: 7}
		ws.ended["overflow"], ws.ended["dropped"] = 1, 2
	}
	return ws
}
