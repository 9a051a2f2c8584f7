package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// casConfig is a cas run of total conditional PUTs by 4 clients.
func casConfig(total uint64, contention int, endpoints ...string) config {
	cfg := testConfig(cmdCAS, total, endpoints...)
	cfg.contention = contention
	cfg.keys = (cfg.clients + contention - 1) / contention
	return cfg
}

// TestCASOwnKeys: with a key per client every conditional PUT succeeds,
// each with a new value, and the node saw no 412.
func TestCASOwnKeys(t *testing.T) {
	node := newFakeNode(t, nil)
	cfg := casConfig(200, 1, node.url)
	res := mustRun(t, cfg)
	puts, acked, gets, _ := node.counts()
	c := node.coord()
	s := res.writes
	if s.ok() != 200 || s.errors() != 0 || s.lat.count() != 200 || res.refused != nil {
		t.Fatalf("ops %d, errors %+v, %d latencies", s.ok(), s.n, s.lat.count())
	}
	if puts != 4+200 || acked != 4+200 || gets != 4 || c.conflicts != 0 || c.condN != 200 {
		t.Errorf("node: %d PUTs (%d acked, %d conditional, %d refused), %d GETs; want 4 preloads, 200 conditional, 4 ETag reads",
			puts, acked, c.condN, c.conflicts, gets)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	var versions uint64
	for k, v := range node.version {
		versions += v
		if !strings.HasPrefix(k, "bench-t1-k") {
			t.Errorf("key %q written", k)
		}
	}
	if len(node.version) != 4 || versions != 204 {
		t.Errorf("%d keys, %d versions in all; want 4 keys, 204 versions", len(node.version), versions)
	}
	for k, v := range node.values {
		if len(v) != cfg.valSize || bytes.HasPrefix(v, []byte("abc")) {
			t.Errorf("key %q holds %q: want a stamped %d-byte value", k, v, cfg.valSize)
		}
	}
}

// TestCASPreconditionFailed: with one writer per key a 412 is an error of
// its own kind; the client takes the revision from its ETag and goes on.
func TestCASPreconditionFailed(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.interfere = func(n int) bool { return n%10 == 3 } })
	res := mustRun(t, casConfig(200, 1, node.url))
	s := res.writes
	if s.ok() != 180 || s.n[outcomeConflict] != 20 || s.errors() != 20 || s.requests() != 200 {
		t.Errorf("ops %d, errors %+v; want 180 and 20 precondition failures", s.ok(), s.n)
	}
	if c := node.coord(); c.conflicts != 20 || s.lat.count() != 180 {
		t.Errorf("node refused %d; %d latencies", c.conflicts, s.lat.count())
	}
}

// TestCASTimeoutRereads: after a 504 the write may have landed, so the
// client reads its key's revision again instead of guessing: the next
// conditional PUT is not refused.
func TestCASTimeoutRereads(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.timeoutApplies = true
		f.putStatus = func(n int) int {
			if n >= 4 && n%7 == 0 { // 4 preloads first
				return http.StatusGatewayTimeout
			}
			return http.StatusOK
		}
	})
	res := mustRun(t, casConfig(140, 1, node.url))
	s := res.writes
	_, _, gets, _ := node.counts()
	if c := node.coord(); s.n[outcomeConflict] != 0 || c.conflicts != 0 {
		t.Errorf("%d 412s after timeouts: the revision was not read again", c.conflicts)
	}
	if s.n[outcomeTimeout] == 0 || s.ok()+s.n[outcomeTimeout] != 140 || s.errors() != s.n[outcomeTimeout] {
		t.Errorf("ops %d, errors %+v", s.ok(), s.n)
	}
	if gets < 4+int(s.n[outcomeTimeout])-4 || gets > 4+int(s.n[outcomeTimeout]) {
		t.Errorf("%d GETs for %d timeouts: want one re-read per timeout (but a client's last)", gets, s.n[outcomeTimeout])
	}
}

// TestCASContention: clients sharing a key count 412s as completed
// operations, apart from the 200s, and the two add up to every request.
func TestCASContention(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.interfere = func(n int) bool { return n%50 == 0 } })
	cfg := casConfig(400, 4, node.url)
	cfg.clients = 8
	cfg.keys = 2
	res := mustRun(t, cfg)
	w, r := res.writes, res.refused
	if r == nil || w.ok()+r.ok() != 400 || res.all().ok() != 400 || res.all().requests() != 400 {
		t.Fatalf("written %d, refused %v", w.ok(), r)
	}
	if c := node.coord(); r.ok() != uint64(c.conflicts) || r.ok() < 8 || w.errors() != 0 || r.lat.count() != r.ok() {
		t.Errorf("refused %d (latencies %d), node refused %d; errors %+v", r.ok(), r.lat.count(), c.conflicts, w.n)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.version) != 2 {
		t.Errorf("%d keys written, want 2", len(node.version))
	}
	var buf bytes.Buffer
	if err := writeText(&buf, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Ops:         400 completed of 400 requests\n", "Written (200):", "Refused (412):", "as expected under contention"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

func txnConfig(total uint64, ops int, compare bool, endpoints ...string) config {
	cfg := testConfig(cmdTxn, total, endpoints...)
	cfg.txnOps, cfg.txnCompare = ops, compare
	return cfg
}

// TestTxn: every transaction puts --txn-ops keys of its client at one
// revision, guarded by the first key's revision, which stays right.
func TestTxn(t *testing.T) {
	node := newFakeNode(t, nil)
	res := mustRun(t, txnConfig(100, 3, true, node.url))
	s := res.writes
	c := node.coord()
	if s.ok() != 100 || s.errors() != 0 || c.txns != 100 || c.committed != 100 || c.conflicts != 0 {
		t.Fatalf("ops %d, errors %+v; node: %d transactions, %d committed", s.ok(), s.n, c.txns, c.committed)
	}
	if _, _, gets, _ := node.counts(); gets != 0 {
		t.Errorf("%d GETs: new keys are at revision 0 and need no read", gets)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.version) != 12 || node.rev != 100 {
		t.Errorf("%d keys at revision %d, want 4 clients × 3 keys at 100", len(node.version), node.rev)
	}
	for k, v := range node.version {
		if node.modRev[k] == 0 || v == 0 {
			t.Errorf("key %q: version %d", k, v)
		}
	}
}

// TestTxnCompareFailed: a transaction whose compare fails is an error of
// its own kind, and its failure branch tells the client where the key is.
func TestTxnCompareFailed(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.interfere = func(n int) bool { return n%10 == 5 } })
	res := mustRun(t, txnConfig(100, 2, true, node.url))
	s := res.writes
	if c := node.coord(); s.ok() != 90 || s.n[outcomeConflict] != 10 || s.errors() != 10 || c.conflicts != 10 {
		t.Errorf("ops %d, errors %+v, node: %d failed", s.ok(), s.n, c.conflicts)
	}
	if _, _, gets, _ := node.counts(); gets != 0 {
		t.Errorf("%d GETs: the failure branch should have told the revision", gets)
	}
}

// TestTxnTimeoutRereads: a 504 leaves the revision unknown; the client reads
// it before its next transaction, which then succeeds.
func TestTxnTimeoutRereads(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.txnTimeout = func(n int) bool { return n%9 == 4 } })
	res := mustRun(t, txnConfig(90, 2, true, node.url))
	s := res.writes
	_, _, gets, _ := node.counts()
	if s.n[outcomeConflict] != 0 || s.n[outcomeTimeout] != 10 || s.ok()+10 != 90 || s.errors() != 10 {
		t.Errorf("ops %d, errors %+v", s.ok(), s.n)
	}
	if gets < 6 || gets > 10 {
		t.Errorf("%d GETs for 10 timeouts", gets)
	}
}

// TestTxnNoCompare: --compare=false sends no compare and no failure branch.
func TestTxnNoCompare(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) { f.interfere = func(int) bool { return true } })
	res := mustRun(t, txnConfig(50, 2, false, node.url))
	if s, c := res.writes, node.coord(); s.ok() != 50 || s.errors() != 0 || c.condN != 0 || c.committed != 50 {
		t.Errorf("ops %d, errors %+v; node compared %d times", s.ok(), s.n, c.condN)
	}
	w := &worker{txn: []string{"a", "b"}, value: []byte("xyz"), seq: 7}
	var body map[string]any
	if err := json.Unmarshal(w.txnBody(), &body); err != nil || body["compare"] != nil || body["failure"] != nil {
		t.Errorf("body %v (%v)", body, err)
	}
}

// TestTxnBody: the body is the JSON the API takes, with a fresh value.
func TestTxnBody(t *testing.T) {
	names := newKeyNamer("p\"", "r", 0)
	keys := []string{string(names.appendPutKey(nil, 3, 0)), string(names.appendPutKey(nil, 3, 1))}
	w := &worker{txn: keys, value: []byte("abcdef"), seq: 42, rev: 17, cmp: true}
	var body struct {
		Compare []struct {
			Key, Target, Op string
			Number          uint64
		}
		Success, Failure []struct{ Op, Key, Value string }
	}
	b := w.txnBody()
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if len(body.Compare) != 1 || body.Compare[0].Key != `p"r-3-0` || body.Compare[0].Target != "mod_revision" ||
		body.Compare[0].Op != "=" || body.Compare[0].Number != 17 {
		t.Errorf("compare %+v", body.Compare)
	}
	if len(body.Success) != 2 || body.Success[1].Key != `p"r-3-1` || body.Success[0].Value != "42cdef" ||
		len(body.Failure) != 1 || body.Failure[0].Op != "get" {
		t.Errorf("branches %+v %+v", body.Success, body.Failure)
	}
	if w.seq != 43 {
		t.Errorf("seq %d after one body", w.seq)
	}
}

// TestRange: each answer must hold min(limit, keys) keys; fewer is a short
// range, and the report gives the keys read.
func TestRange(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		keysOnly  bool
		serial    bool
		cut       func(int) int
		wantOK    uint64
		wantShort uint64
		wantQuery string
	}{
		{"limit above the keys", 100, false, false, nil, 50, 0, "prefix=bench-t1-k&limit=100"},
		{"limit below the keys", 5, true, true, nil, 50, 0, "prefix=bench-t1-k&limit=5&keys_only=true&consistency=serializable"},
		{"short answers", 100, false, false, func(n int) int { return map[bool]int{true: 1}[n%5 == 0] }, 40, 10, "prefix=bench-t1-k&limit=100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t, func(f *fakeNode) { f.rangeCut = tt.cut })
			cfg := testConfig(cmdRange, 50, node.url)
			cfg.rangeLimit, cfg.keysOnly, cfg.serializable = tt.limit, tt.keysOnly, tt.serial
			res := mustRun(t, cfg)
			s := res.reads
			want := uint64(min(tt.limit, cfg.keys))
			if s.ok() != tt.wantOK || s.n[outcomeShort] != tt.wantShort || s.errors() != tt.wantShort || s.items != tt.wantOK*want {
				t.Errorf("ops %d, keys %d, errors %+v", s.ok(), s.items, s.n)
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			if node.ranges != 50 || node.queries[tt.wantQuery] != 50 {
				t.Errorf("%d ranges, queries %v", node.ranges, node.queries)
			}
			if res.writes != nil {
				t.Error("a range run has no writes")
			}
		})
	}
}

// TestCountRange: the walk of a range answer counts its keys and refuses
// what is not one.
func TestCountRange(t *testing.T) {
	tests := []struct {
		body  string
		n     int
		valid bool
	}{
		{`{"revision":5,"kvs":[],"more":false,"count":0}`, 0, true},
		{`{"revision":5,"kvs":[{"key":"a","value":"x\"}],{","create_revision":1,"mod_revision":2,"version":1},{"key":"b"}],"more":true,"continue":"AQ","count":2}` + "\n", 2, true},
		{`{"revision":5,"kvs":[{"key":"a"}],"count":2}`, 1, false},
		{`{"revision":5,"count":0}`, 0, false},
		{`{"revision":5,"kvs":[{"key":"a"}`, 1, false},
		{`not json`, 0, false},
		{`{"kvs":[{"key":"a"}]} trailing`, 1, false},
	}
	for _, tt := range tests {
		n, valid := countRange([]byte(tt.body))
		if n != tt.n || valid != tt.valid {
			t.Errorf("%s: %d, %v; want %d, %v", tt.body, n, valid, tt.n, tt.valid)
		}
	}
}

// TestCoordRunMain runs each coordination command as the command line
// does, in text and JSON, and checks what the reports say of it.
func TestCoordRunMain(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.interfere = func(n int) bool { return n == 3 }
		f.rangeCut = func(n int) int { return map[bool]int{true: 2}[n == 1] }
	})
	base := []string{"--endpoints", node.url, "--total", "20", "--clients", "2"}
	tests := []struct {
		args     []string
		text     []string
		checkRep func(jsonReport) bool
	}{
		{[]string{"cas"}, []string{
			"cas (run ", ", 2 keys, 1 clients per key\n",
			"Ops:         19 acknowledged of 20 requests\n",
			", 412 precondition failed: 1)\n",
		}, func(r jsonReport) bool {
			return r.Ops == 19 && r.Errors.PreconditionFailed != nil && *r.Errors.PreconditionFailed == 1 && r.Contention == 1 && r.Keys == 2
		}},
		{[]string{"cas", "--contention", "2"}, []string{
			// Two clients racing on one key: how many lose is theirs to say.
			", 1 keys, 2 clients per key\n", "Ops:         20 completed of 20 requests\n", " of 20 completed were 412 (",
			"Written (200):", "Refused (412):",
		}, func(r jsonReport) bool {
			return r.Ops == 20 && r.Refused != nil && r.Refused.Ops >= 1 && r.Written.Ops+r.Refused.Ops == 20 &&
				*r.RefusedShare == float64(r.Refused.Ops)/20
		}},
		{[]string{"txn", "--txn-ops", "3"}, []string{
			", 3 puts per transaction, guarded by a mod_revision compare\n", ", compare failed: 1)\n",
		}, func(r jsonReport) bool {
			return r.Ops == 19 && r.TxnOps == 3 && *r.Compare && *r.Errors.CompareFailed == 1
		}},
		{[]string{"range", "--keys", "30", "--range-limit", "10", "--keys-only"}, []string{
			", linearizable range reads of 30 keys, limit 10, keys only\n",
			"Keys read:   190 (", ", short range: 1)\n",
		}, func(r jsonReport) bool {
			return r.Ops == 19 && *r.KeysRead == 190 && *r.KeysPerSecond > 0 && *r.Errors.ShortRange == 1 && r.RangeLimit == 10 && *r.KeysOnly
		}},
		{[]string{"watch", "--watchers", "3"}, []string{
			", 3 watchers over " + node.url + "\n", "Deliveries:  60 of 60 (20 acknowledged writes × 3 watchers)",
		}, func(r jsonReport) bool {
			return r.Ops == 20 && r.Watch != nil && r.Watch.Delivered == 60 && r.Watch.Opened == 3 && len(r.Watch.DelayHistogram) > 0
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			node.mu.Lock()
			node.condN, node.ranges = 0, 0
			node.mu.Unlock()
			var stdout, stderr bytes.Buffer
			args := append(append([]string{}, tt.args...), base...)
			if code := runMain(context.Background(), args, &stdout, &stderr, nil, zap.NewNop()); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			for _, want := range tt.text {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, stdout.String())
				}
			}
			node.mu.Lock()
			node.condN, node.ranges = 0, 0
			node.mu.Unlock()
			stdout.Reset()
			if code := runMain(context.Background(), append(args, "--json"), &stdout, &stderr, nil, zap.NewNop()); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var rep jsonReport
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
			if !tt.checkRep(rep) || rep.Command != tt.args[0] {
				t.Errorf("JSON report:\n%s", stdout.String())
			}
		})
	}
}
