package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeLeases is the fake node's leases, under its lock: granted with the
// TTL asked for, renewed by keep-alives, and revoked with their keys as a
// lease request finds them past their deadline, lease n revokeEvery·n
// after it: the node revokes at most so many a second.
type fakeLeases struct {
	off         bool // 404 to the lease routes, as a node without leases
	revokeEvery time.Duration
	next        int64
	deadline    map[int64]time.Time
	ttl         map[int64]time.Duration
	keys        map[int64][]string
	grants      int
	keepalives  []time.Time
}

// serveLeases serves the lease routes, PUTs naming a lease and count_only
// ranges; it returns false for any other request.
func (f *fakeNode) serveLeases(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	rest, isLease := strings.CutPrefix(r.URL.Path, leasesPath)
	if !isLease && !q.Has("lease") && !q.Has("count_only") {
		return false
	} else if !isLease {
		rest = ""
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	l, now := &f.leases, time.Now()
	if l.deadline == nil {
		l.deadline, l.ttl, l.keys = make(map[int64]time.Time), make(map[int64]time.Duration), make(map[int64][]string)
	}
	for id, d := range l.deadline {
		if now.After(d.Add(time.Duration(id) * l.revokeEvery)) {
			for _, k := range l.keys[id] {
				delete(f.values, k)
			}
			delete(l.deadline, id)
		}
	}
	id, _ := strconv.ParseInt(q.Get("lease"), 10, 64)
	if ka, ok := strings.CutSuffix(rest, "/keepalive"); ok {
		id, _ = strconv.ParseInt(strings.TrimPrefix(ka, "/"), 10, 64)
	}
	_, exists := l.deadline[id]
	var answer any
	switch {
	case isLease && l.off, (q.Has("lease") || rest != "") && !exists:
		http.Error(w, "no such lease", http.StatusNotFound)
	case rest == "" && r.Method == http.MethodPost:
		var g struct{ TTL int64 }
		if json.Unmarshal(body, &g) != nil || g.TTL < 1 {
			http.Error(w, "bad grant", http.StatusBadRequest)
			break
		}
		l.next++
		l.grants++
		l.ttl[l.next] = time.Duration(g.TTL) * time.Second
		l.deadline[l.next] = now.Add(l.ttl[l.next])
		answer = map[string]any{"id": strconv.FormatInt(l.next, 10), "ttl": g.TTL}
	case isLease && r.Method == http.MethodPost:
		l.deadline[id] = now.Add(l.ttl[id])
		l.keepalives = append(l.keepalives, now)
		answer = map[string]any{"id": strconv.FormatInt(id, 10), "ttl": l.ttl[id] / time.Second}
	case r.Method == http.MethodPut:
		key := strings.TrimPrefix(r.URL.Path, kvPath)
		l.keys[id] = append(l.keys[id], key)
		rev := f.write(key, body)
		answer = map[string]uint64{"index": rev, "revision": rev}
	case q.Get("count_only") == "true" && r.Method == http.MethodGet:
		n := 0
		for k := range f.values {
			if strings.HasPrefix(k, q.Get("prefix")) {
				n++
			}
		}
		answer = map[string]any{"revision": f.rev, "count": n}
	default:
		http.Error(w, "the fake serves no such lease request", http.StatusBadRequest)
	}
	if answer != nil {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}
	return true
}

func leaseConfig(url string, leases int, ttl, duration time.Duration, expire bool) config {
	cfg := testConfig(cmdPut, 0, url)
	cfg.duration, cfg.leases, cfg.leaseTTL, cfg.leasesExpire = duration, leases, ttl, expire
	return cfg
}

// TestLeasesKeptAlive: --leases grants the leases before the timed phase,
// with a key of its own on each, and renews each every TTL/3, spread over
// the period rather than all at once, so that none expires; the report
// counts the keep-alives and the keys left, and its PUTs are the timed
// ones alone.
func TestLeasesKeptAlive(t *testing.T) {
	node := newFakeNode(t, nil)
	res := mustRun(t, leaseConfig(node.url, 30, time.Second, 1500*time.Millisecond, false))
	l := res.leases
	node.mu.Lock()
	defer node.mu.Unlock()
	fl := node.leases
	if fl.grants != 30 || len(fl.deadline) != 30 || len(fl.keys) != 30 {
		t.Fatalf("the node granted %d leases, %d alive, %d with keys; want 30", fl.grants, len(fl.deadline), len(fl.keys))
	}
	for id, keys := range fl.keys {
		if len(keys) != 1 || !strings.HasPrefix(keys[0], "bench-t1-k") || len(node.values[keys[0]]) != 100 {
			t.Errorf("lease %d: keys %q", id, keys)
		}
	}
	// 30 leases every 333 ms for 1.5 s: the renewals of 4 or 5 rounds.
	if sent := l.sent.Load(); sent != uint64(len(fl.keepalives)) || sent < 4*30 || sent > 5*30+leaseHolders || l.failed.Load() != 0 {
		t.Errorf("keep-alives: %d sent, %d failed; the node saw %d; want 120 to 166, none failed", sent, l.failed.Load(), len(fl.keepalives))
	}
	for i := range fl.keepalives {
		j, _ := slices.BinarySearchFunc(fl.keepalives, fl.keepalives[i].Add(50*time.Millisecond), time.Time.Compare)
		if j-i > 15 {
			t.Fatalf("%d keep-alives within 50 ms: they should be spread over the 333 ms period", j-i)
		}
	}
	if l.left != 30 {
		t.Errorf("%d lease keys left, want 30", l.left)
	}
	if res.writes.requests() != uint64(node.puts) || res.writes.ok() == 0 {
		t.Errorf("report: %d PUTs; the node saw %d without a lease", res.writes.requests(), node.puts)
	}
}

// TestLeasesExpire: --leases-expire renews every lease once, just before
// the timed phase, and never again; the report says when the first and
// the last lease key were seen gone, and counts apart the PUTs that ended
// between the two.
func TestLeasesExpire(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.leases.revokeEvery = 20 * time.Millisecond })
	res := mustRun(t, leaseConfig(node.url, 30, time.Second, 2500*time.Millisecond, true))
	l := res.leases
	node.mu.Lock()
	keepalives := len(node.leases.keepalives)
	node.mu.Unlock()
	if l.sent.Load() != 30 || keepalives != 30 || l.failed.Load() != 0 {
		t.Errorf("keep-alives: %d sent, %d failed, the node saw %d; want one per lease", l.sent.Load(), l.failed.Load(), keepalives)
	}
	if l.left != 0 {
		t.Errorf("%d lease keys left, want 0", l.left)
	}
	// Due 1 s after the renewal, revoked one per 20 ms: 600 ms, seen every 250 ms.
	if l.first < 700*time.Millisecond || l.first > 1500*time.Millisecond || l.gone < l.first+250*time.Millisecond ||
		l.gone > 2500*time.Millisecond || l.span != l.gone-l.first {
		t.Errorf("first gone at %s, all at %s, span %s", l.first, l.gone, l.span)
	}
	if n := l.during.ok(); n == 0 || n >= res.writes.ok() || l.during.lat.count() != n {
		t.Errorf("%d PUTs while expiring (%d timed), of %d in the run", n, l.during.lat.count(), res.writes.ok())
	}
}

// TestLeasesRefused: a node that grants no lease stops the run before its
// timed phase, saying why.
func TestLeasesRefused(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.leases.off = true })
	_, err := runBench(context.Background(), leaseConfig(node.url, 3, time.Second, time.Second, false), zap.NewNop(), nil)
	if !errors.Is(err, errPreload) || !strings.Contains(err.Error(), "granting a lease: 404") {
		t.Errorf("err = %v", err)
	}
	if puts, _, _, _ := node.counts(); puts != 0 {
		t.Errorf("%d PUTs: the timed phase ran", puts)
	}
}

// TestLeaseFlags: the lease flags are put's, and its -h lists them.
func TestLeaseFlags(t *testing.T) {
	cfg, err := parseArgs([]string{"put"}, io.Discard)
	if err != nil || cfg.leases != 0 || cfg.leaseTTL != 10*time.Second || cfg.leasesExpire {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = parseArgs([]string{"put", "--leases", "5", "--lease-ttl", "3s", "--leases-expire", "--duration", "5s"}, io.Discard)
	if err != nil || cfg.leases != 5 || cfg.leaseTTL != 3*time.Second || !cfg.leasesExpire {
		t.Errorf("flags: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{
		{"put", "--leases", "-1"}, {"put", "--lease-ttl", "1500ms"}, {"put", "--lease-ttl", "0s"},
		{"put", "--leases-expire"}, {"put", "--leases", "5", "--leases-expire", "--total", "100"},
		{"put", "--leases", "5", "--leases-expire", "--duration", "10s"}, {"get", "--leases", "5"},
	} {
		if _, err := parseArgs(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want errUsage", args, err)
		}
	}
	var help bytes.Buffer
	if _, err := parseArgs([]string{"put", "-h"}, &help); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), "  -leases-expire\n") ||
		!strings.Contains(help.String(), "  -val-size int\n") {
		t.Errorf("put -h: %v\n%s", err, help.String())
	}
}

// TestGoldenLeaseReports: both reports of put runs with leases kept alive,
// let expire, and let expire with not all gone in the run.
func TestGoldenLeaseReports(t *testing.T) {
	var out strings.Builder
	for _, expire := range []string{"", "expire", "expire_unfinished"} {
		res := fixedResults()["put"]
		res.cfg.leases, res.cfg.leaseTTL, res.cfg.leasesExpire = 10000, 10*time.Second, expire != ""
		l := &leaseRun{ids: make([]string, 10000), left: 10000, during: newOpStats()}
		l.sent.Store(60012)
		switch expire {
		case "expire":
			l.left, l.first, l.gone, l.span = 0, 9750*time.Millisecond, 19500*time.Millisecond, 9750*time.Millisecond
			l.during = ops(lats(2*time.Millisecond, 30), outcomeTimeout, 504)
			l.sent.Store(10000)
			l.failed.Store(3)
		case "expire_unfinished":
			l.left, l.first, l.span = -1, 15*time.Second, 5*time.Second
		}
		res.leases = l
		var text, js bytes.Buffer
		if err := writeText(&text, res); err != nil {
			t.Fatal(err)
		}
		if err := writeJSON(&js, res); err != nil {
			t.Fatal(err)
		}
		out.WriteString("=== " + map[string]string{"": "kept alive"}[expire] + expire + "\n" + text.String() + "--- json\n" + js.String())
	}
	golden(t, "report_put_leases", out.String())
}
