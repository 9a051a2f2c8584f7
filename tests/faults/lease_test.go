package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// fakeLeaseNode is an in-process stand-in for the lease routes of a
// member's client API, with keys attached to leases: a lease goes, its
// keys deleted at one revision, at the first request after its deadline
// (so the clients' own requests make it go). Its deadlines are in unit
// seconds. With early, a keep-alive answers 200 but renews nothing, and a
// lease goes half its TTL after its grant: a node that expires leases
// early. Every 5th keep-alive is answered 503.
type fakeLeaseNode struct {
	unit  time.Duration
	early bool

	mu         sync.Mutex
	rev        uint64
	kv         map[string]fakeLeaseKey
	leases     map[int64]*fakeLease
	msgs       []WatchMsg // every revision's events, as a watcher of everything receives them
	keepAlives int
}

type fakeLeaseKey struct {
	value                string
	create, mod, version uint64
	lease                int64
}

type fakeLease struct {
	ttl      int64
	deadline time.Time
	keys     map[string]bool
}

func newFakeLeaseNode(unit time.Duration, early bool) *fakeLeaseNode {
	return &fakeLeaseNode{unit: unit, early: early, rev: 3, kv: map[string]fakeLeaseKey{}, leases: map[int64]*fakeLease{}}
}

// expireLocked revokes the leases past their deadline.
func (f *fakeLeaseNode) expireLocked(now time.Time) {
	for _, id := range slices.Sorted(maps.Keys(f.leases)) {
		l := f.leases[id]
		if now.Before(l.deadline) {
			continue
		}
		delete(f.leases, id)
		var evs []WatchEvent
		for _, k := range slices.Sorted(maps.Keys(l.keys)) {
			if e, ok := f.kv[k]; ok && e.lease == id {
				delete(f.kv, k)
				evs = append(evs, wdel(k, f.rev+1))
			}
		}
		if len(evs) > 0 {
			f.rev++
			f.msgs = append(f.msgs, WatchMsg{Revision: f.rev, Events: evs, At: now})
		}
	}
}

// settled says whether every lease has gone.
func (f *fakeLeaseNode) settled() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(time.Now())
	if len(f.leases) > 0 {
		return fmt.Errorf("%d leases left", len(f.leases))
	}
	return nil
}

func leaseNotFoundAnswer(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, `{"error":{"code":404,"message":"requested lease not found"}}`)
}

func (f *fakeLeaseNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.expireLocked(now)
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/v1/leases":
		var g struct {
			ID  string `json:"id"`
			TTL int64  `json:"ttl"`
		}
		if json.Unmarshal(body, &g) != nil {
			http.Error(w, "bad grant", http.StatusBadRequest)
			return
		}
		id, err := strconv.ParseInt(g.ID, 10, 64)
		if err != nil || id <= 0 || g.TTL < 2 {
			http.Error(w, "bad grant", http.StatusBadRequest)
			return
		}
		if f.leases[id] != nil {
			http.Error(w, "lease already exists", http.StatusConflict)
			return
		}
		ttl := time.Duration(g.TTL) * f.unit
		if f.early {
			ttl /= 2
		}
		f.leases[id] = &fakeLease{ttl: g.TTL, deadline: now.Add(ttl), keys: map[string]bool{}}
		fmt.Fprintf(w, `{"id":"%d","ttl":%d}`, id, g.TTL)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/v1/leases/") && strings.HasSuffix(path, "/keepalive"):
		id, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(path, "/v1/leases/"), "/keepalive"), 10, 64)
		if f.keepAlives++; f.keepAlives%5 == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "no leader", http.StatusServiceUnavailable)
			return
		}
		l := f.leases[id]
		if l == nil {
			leaseNotFoundAnswer(w)
			return
		}
		if !f.early {
			l.deadline = now.Add(time.Duration(l.ttl) * f.unit)
		}
		fmt.Fprintf(w, `{"id":"%d","ttl":%d}`, id, l.ttl)
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/v1/kv/"):
		key := strings.TrimPrefix(path, "/v1/kv/")
		id, _ := strconv.ParseInt(r.URL.Query().Get("lease"), 10, 64)
		l := f.leases[id]
		if l == nil {
			leaseNotFoundAnswer(w)
			return
		}
		f.rev++
		e, ok := f.kv[key]
		if !ok {
			e = fakeLeaseKey{create: f.rev}
		}
		e.value, e.mod, e.lease = string(body), f.rev, id
		e.version++
		f.kv[key] = e
		l.keys[key] = true
		f.msgs = append(f.msgs, WatchMsg{Revision: f.rev, At: now, Events: []WatchEvent{{Type: "put", Key: key, Value: e.value,
			CreateRevision: e.create, ModRevision: e.mod, Version: e.version, Lease: id}}})
		fmt.Fprintf(w, `{"index":%d,"revision":%d}`, f.rev, f.rev)
	case r.Method == http.MethodGet && path == "/v1/kv/":
		prefix := r.URL.Query().Get("prefix")
		var kvs []string
		for _, k := range slices.Sorted(maps.Keys(f.kv)) {
			if e := f.kv[k]; strings.HasPrefix(k, prefix) {
				kvs = append(kvs, fmt.Sprintf(`{"key":%q,"value":%q,"create_revision":%d,"mod_revision":%d,"version":%d,"lease":"%d"}`,
					k, e.value, e.create, e.mod, e.version, e.lease))
			}
		}
		fmt.Fprintf(w, `{"revision":%d,"kvs":[%s],"count":%d,"more":false}`, f.rev, strings.Join(kvs, ","), len(kvs))
	default:
		http.NotFound(w, r)
	}
}

// runLeaseClients runs two lease clients against f for 40 units, waits
// until every lease has gone, and checks what they saw.
func runLeaseClients(t *testing.T, f *fakeLeaseNode, seed uint64) (LeaseReport, []Op, []WatchRecord) {
	t.Helper()
	var endpoints []string
	for range 2 {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		endpoints = append(endpoints, srv.URL)
	}
	rec, log := NewRecorder(), &LeaseLog{}
	lc := LeaseClients{Endpoints: endpoints, Clients: 2, Timeout: time.Second, Rec: rec, Log: log, Seed: seed,
		FirstClient: 4, KeyPrefix: "r1-L", TTLs: []int64{3, 4}, Unit: f.unit}
	ctx, cancel := context.WithTimeout(context.Background(), 40*f.unit)
	defer cancel()
	if err := lc.Run(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "every lease gone", f.settled)
	settled := rec.Now()
	f.mu.Lock()
	records := []WatchRecord{{Member: 1, After: 3, Through: f.rev, Msgs: slices.Clone(f.msgs)}}
	f.mu.Unlock()
	rep := CheckLeases(LeaseHistory{Runs: log.Runs(), Ops: rec.Ops(), Records: records, Since: rec.Since, Settled: settled,
		Bounds: LeaseBounds{Unit: f.unit, ElectionTimeout: 2 * f.unit, Tick: f.unit}})
	return rep, rec.Ops(), records
}

// TestLeaseClientsAgainstFake: against a node that keeps the lease
// contract, the clients grant, attach, keep alive, stop and see their
// leases expire, and every check passes: the leases' own, the model's
// with their revocations, the watch's.
func TestLeaseClientsAgainstFake(t *testing.T) {
	f := newFakeLeaseNode(40*time.Millisecond, false)
	rep, ops, records := runLeaseClients(t, f, 1)
	if len(rep.Violations) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(rep.Violations, "\n"))
	}
	st := rep.Stats
	t.Logf("%v", st)
	if st.Stopped < 4 || len(st.Expiries) < 4 || st.Protected < 2 || st.KeepAlivesOK < 10 || st.SharedRevision < 4 {
		t.Errorf("too little happened: %v", st)
	}
	if st.KeepAlives == st.KeepAlivesOK {
		t.Errorf("no keep-alive was tried again after a 503: %v", st)
	}
	var puts, reads, absent int
	for _, op := range ops {
		switch {
		case op.Input.Kind == OpPut && op.Input.Lease != 0 && op.Status == StatusOK:
			puts++
		case op.Input.Kind == OpRangeGet && op.Status == StatusOK && op.Output.Found:
			reads++
			if op.Output.Lease == 0 {
				t.Errorf("a range read shows a leased key without its lease: %+v", op)
			}
		case op.Input.Kind == OpRangeGet && op.Status == StatusOK:
			absent++
		}
	}
	if puts == 0 || reads == 0 || absent == 0 {
		t.Errorf("%d puts with a lease, %d reads of a leased key, %d of one gone", puts, reads, absent)
	}
	all := append(slices.Clone(ops), rep.Revokes...)
	if _, err := Check(Operations(all), time.Minute, ""); err != nil {
		t.Errorf("the leases' history: %v", err)
	}
	if vs := CheckWatches(all, records); len(vs) > 0 {
		t.Errorf("watch: %v", vs[0])
	}
	// A read of a key after its lease's revocation is caught.
	for _, op := range ops {
		if op.Input.Kind == OpRangeGet && op.Output.Found {
			late := op
			late.Call, late.Return = rep.Revokes[0].Return+time.Hour, rep.Revokes[0].Return+time.Hour+1
			for _, rv := range rep.Revokes {
				if rv.Input.Key == op.Input.Key {
					late.Call, late.Return = rv.Return+time.Millisecond, rv.Return+2*time.Millisecond
				}
			}
			if _, err := Check(Operations(append(all, late)), time.Minute, ""); err == nil {
				t.Errorf("a read of %q after its lease was revoked passes", op.Input.Key)
			}
			break
		}
	}
}

// TestLeaseClientsCatchEarlyExpiry: a node whose keep-alives renew
// nothing expires leases while their holders keep them alive.
func TestLeaseClientsCatchEarlyExpiry(t *testing.T) {
	f := newFakeLeaseNode(40*time.Millisecond, true)
	rep, _, _ := runLeaseClients(t, f, 2)
	if !slices.ContainsFunc(rep.Violations, func(v string) bool { return strings.Contains(v, "expired early") }) {
		t.Fatalf("no early expiry found; violations: %v; %v", rep.Violations, rep.Stats)
	}
}

// TestLeaseClientsRepeatable: the clients' choices (TTLs, keys, ids)
// depend on the seed only.
func TestLeaseClientsRepeatable(t *testing.T) {
	choices := func(seed uint64) []string {
		lc := LeaseClients{Seed: seed, Rec: NewRecorder(), Log: &LeaseLog{}}.withDefaults()
		c := &leaseClient{idx: 1, id: 7, cfg: &lc, rng: newLeaseRand(lc.Seed, 1)}
		var out []string
		for range 5 {
			h := c.newLease()
			out = append(out, fmt.Sprintf("%d %d %v %v", h.run.ID, h.run.TTL, h.run.Keys, h.lifetime))
		}
		return out
	}
	a, b, other := choices(42), choices(42), choices(43)
	if !slices.Equal(a, b) {
		t.Errorf("one seed, two sequences:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("two seeds, one sequence: %v", a)
	}
	ids := make(map[string]bool)
	for _, s := range append(a, other...) {
		id, _, _ := strings.Cut(s, " ")
		if ids[id] || id == "0" {
			t.Errorf("lease id %s twice, or 0", id)
		}
		ids[id] = true
	}
}

func TestLeaseClientsConfig(t *testing.T) {
	for _, lc := range []LeaseClients{
		{Rec: NewRecorder(), Log: &LeaseLog{}},
		{Endpoints: []string{"http://127.0.0.1:1"}, Log: &LeaseLog{}},
		{Endpoints: []string{"http://127.0.0.1:1"}, Rec: NewRecorder()},
	} {
		if err := lc.Run(context.Background()); err == nil {
			t.Errorf("%+v: no error", lc)
		}
	}
}

// TestLeaseClientsAgainstAMember runs the lease clients against one real
// member, with a watcher, and checks what they saw as the fault schedule
// does, without faults: the API's answers are what the clients expect,
// and the leases expire in time.
func TestLeaseClientsAgainstAMember(t *testing.T) {
	bin := nodeproc.Node(t)
	m, cluster := newTestMember(t)
	if err := m.Start(bin, cluster, false); err != nil {
		t.Fatal(err)
	}
	eventuallyMember(t, m, "first write", func(ctx context.Context) error { return memberPut(ctx, m, "x", "1") })

	wctx, wcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		wcancel()
		wg.Wait()
	}()
	w := &Watcher{Member: 1, URL: m.ClientURL, Prefix: "r", Start: 1}
	wg.Go(func() { _ = w.Run(wctx) })

	rec, log := NewRecorder(), &LeaseLog{}
	lc := LeaseClients{Endpoints: []string{m.ClientURL}, Clients: 2, Timeout: time.Second, Rec: rec, Log: log, Seed: 3,
		FirstClient: 0, KeyPrefix: "r1-L", TTLs: []int64{2, 3}}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := lc.Run(ctx); err != nil {
		t.Fatal(err)
	}
	runs := log.Runs()
	testutil.Eventually(t, 10*time.Second, "every lease gone", func() error {
		resp, err := memberClient.Get(m.ClientURL + "/v1/leases")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), `"leases":[]`) {
			return fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return nil
	})
	settled := rec.Now()

	mctx, mcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer mcancel()
	if err := memberPut(mctx, m, "r-sync", "marker"); err != nil {
		t.Fatal(err)
	}
	target := rangeRevision(t, m.ClientURL+"/v1/kv/?prefix=r-sync")
	if err := w.WaitThrough(mctx, target); err != nil {
		t.Fatal(err)
	}
	msgs, _ := w.Drain(target)
	records := []WatchRecord{{Member: 1, Through: target, Msgs: msgs}}
	rep := CheckLeases(LeaseHistory{Runs: runs, Ops: rec.Ops(), Records: records, Since: rec.Since, Settled: settled,
		Bounds: DefaultLeaseBounds})
	t.Logf("%v", rep.Stats)
	if len(rep.Violations) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(rep.Violations, "\n"))
	}
	if st := rep.Stats; len(st.Expiries) < 2 || st.KeepAlivesOK < 2 || st.SharedRevision < 2 {
		t.Errorf("too little happened: %v", st)
	}
	ops := append(rec.Ops(), rep.Revokes...)
	for _, op := range ops {
		if op.Status != StatusOK {
			t.Errorf("without faults, %v %q: %v %s", op.Input.Kind, op.Input.Key, op.Status, op.Cause)
		}
	}
	if _, err := Check(Operations(ops), time.Minute, ""); err != nil {
		t.Errorf("the leases' history: %v", err)
	}
	marker := Op{Client: -1, Input: Input{Kind: OpPut, Key: "r-sync", Value: "marker"}, Output: Output{Rev: target}, Status: StatusOK}
	if vs := CheckWatches(append(ops, marker), records); len(vs) > 0 {
		t.Errorf("watch: %d violations, first: %v", len(vs), vs[0])
	}
}

// rangeRevision is the store's revision a range read answers.
func rangeRevision(t *testing.T, target string) uint64 {
	t.Helper()
	resp, err := memberClient.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Revision uint64 `json:"revision"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Revision == 0 {
		t.Fatalf("GET %s: %d, %v", target, resp.StatusCode, err)
	}
	return a.Revision
}
