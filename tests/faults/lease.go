package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftkv/node/messages"
)

// Defaults of LeaseClients.
const (
	DefaultLeaseClients = 3
	DefaultLeaseKeys    = 3 // keys per lease: 1 to this many
)

// DefaultLeaseTTLs are the TTLs the lease clients draw from, in seconds:
// above the node's minimum (2 s at an election timeout of 1 s), short
// enough that a round sees several leases expire.
var DefaultLeaseTTLs = []int64{3, 4, 5}

// LeaseClients drives clients that hold leases as a lock holder or an
// elected leader does (README, "Coordination"), and records what they saw
// for CheckLeases. Each client loops: it grants a lease of a TTL drawn from
// TTLs, under an id of its own (so that a grant whose outcome is unknown
// can be asked again: a 409 then says the first one was granted), attaches
// 1 to MaxKeys keys of its own to it (PUT ?lease=, recorded in the history
// as OpPut with Input.Lease), keeps it alive every TTL/3 (a 503, a 504 or
// no answer is tried again 100 ms later; only a 404 means the lease is
// gone), and reads its keys every 300 ms with a range read of their prefix
// (recorded as OpRangeGet, one per key). After a lifetime of 1 to 3 TTLs,
// drawn at the grant, it stops keeping the lease alive, on purpose, and
// starts over with a new one; it reads the keys of the lease it stopped
// until they are gone. A keep-alive or a put answered 404 makes it take
// the lease for lost and start over too. When ctx ends, each client stops
// the lease it holds.
//
// Durations in TTL seconds (the keep-alive period, the lifetime) are in
// Unit, a second but in tests; the pauses and the reads' period are tenths
// and 3 tenths of it.
type LeaseClients struct {
	// Endpoints are the members' client URLs.
	Endpoints []string
	Clients   int           // default DefaultLeaseClients
	Timeout   time.Duration // per request; default DefaultTimeout
	Rec       *Recorder
	// Log receives a LeaseRun per lease; read it once Run returned.
	Log *LeaseLog
	// Seed makes the choices repeatable: client i draws from a PCG seeded
	// with (Seed, 1<<32+i), apart from Workers' streams of the same seed;
	// the lease ids are made from it too.
	Seed uint64
	// FirstClient is the id of the first client in the history.
	FirstClient int
	// KeyPrefix names the keys: client i's lease n has keys KeyPrefix + i
	// + "-" + n + "-" + j; no other client writes under KeyPrefix.
	KeyPrefix string
	TTLs      []int64       // default DefaultLeaseTTLs
	MaxKeys   int           // default DefaultLeaseKeys
	Unit      time.Duration // a TTL's second; default time.Second
}

func (lc LeaseClients) withDefaults() LeaseClients {
	if lc.Clients <= 0 {
		lc.Clients = DefaultLeaseClients
	}
	if lc.Timeout <= 0 {
		lc.Timeout = DefaultTimeout
	}
	if lc.KeyPrefix == "" {
		lc.KeyPrefix = "L"
	}
	if len(lc.TTLs) == 0 {
		lc.TTLs = DefaultLeaseTTLs
	}
	if lc.MaxKeys <= 0 {
		lc.MaxKeys = DefaultLeaseKeys
	}
	if lc.Unit <= 0 {
		lc.Unit = time.Second
	}
	return lc
}

// pause is how long a client waits before trying a request again after a
// 503, a 504 or no answer.
func (lc *LeaseClients) pause() time.Duration { return lc.Unit / 10 }

// readEvery is the period of the clients' range reads.
func (lc *LeaseClients) readEvery() time.Duration { return 3 * lc.Unit / 10 }

// leaseID is the id of client i's lease n (from 1): 39 bits drawn from
// the seed, then i and n, so that no two leases of a run share one.
func (lc *LeaseClients) leaseID(i, n int) int64 {
	base := rand.New(rand.NewPCG(lc.Seed, 1<<33)).Int64() &^ 0xffffff
	return base | int64(i&0xff)<<16 | int64(n&0xffff)
}

// Run blocks until ctx ends and every client has stopped its lease. A
// request in flight when ctx ends is finished within Timeout.
func (lc LeaseClients) Run(ctx context.Context) error {
	if len(lc.Endpoints) == 0 || lc.Rec == nil || lc.Log == nil {
		return fmt.Errorf("%w: lease clients need endpoints, a recorder and a log", ErrWorkersConfig)
	}
	lc = lc.withDefaults()
	transport := &http.Transport{DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	httpc := &http.Client{Transport: transport, Timeout: lc.Timeout}
	var wg sync.WaitGroup
	for i := range lc.Clients {
		c := &leaseClient{idx: i, id: lc.FirstClient + i, cfg: &lc, http: httpc, rng: newLeaseRand(lc.Seed, i)}
		wg.Go(func() { c.loop(ctx) })
	}
	wg.Wait()
	return nil
}

// newLeaseRand is lease client i's source of choices.
func newLeaseRand(seed uint64, i int) *rand.Rand { return rand.New(rand.NewPCG(seed, 1<<32+uint64(i))) }

// LeaseCall is one request about a lease: a grant or a keep-alive.
type LeaseCall struct {
	// Endpoint is the member the request went to (its client URL).
	Endpoint     string
	Call, Return time.Duration
	// Status is the answer's, 0 when none came (the cause says why).
	Status int
	// RetryAfter says a 503 carried Retry-After: nothing was proposed.
	RetryAfter bool
	// TTL is what a 200 answered: the TTL granted, or left after a
	// keep-alive (which resets it to the TTL granted).
	TTL   int64
	Cause string
}

// OK says the request succeeded: granted, or kept alive.
func (c LeaseCall) OK() bool { return c.Status == http.StatusOK }

// Gone says the answer was 404: the lease does not exist.
func (c LeaseCall) Gone() bool { return c.Status == http.StatusNotFound }

// grantUnknown says a grant attempt may have granted the lease although
// its answer does not say so: no answer, a 504, a 503 without Retry-After.
func (c LeaseCall) grantUnknown() bool {
	return c.Status == 0 || c.Status == http.StatusGatewayTimeout || (c.Status == http.StatusServiceUnavailable && !c.RetryAfter)
}

// LeaseRun is one lease of a lease client, from its grant to its end, as
// the client saw it. Times are on the recorder's clock.
type LeaseRun struct {
	ID     int64
	Client int
	TTL    int64 // asked, and granted: the answers must say so
	// Keys are the keys the holder attaches to it, in order; Prefix, which
	// they start with, is what its range reads ask for. Some may never
	// have been written (the lease stopped or was lost first).
	Keys   []string
	Prefix string
	// Grants are the attempts to grant it, in order.
	Grants []LeaseCall
	// Granted says an attempt was answered 200, or 409 after one of
	// unknown outcome; GrantCall is then the call of the attempt that
	// granted it (the first of unknown outcome, for a 409), GrantReturn
	// the return of the one that said so.
	Granted                bool
	GrantCall, GrantReturn time.Duration
	// KeepAlives are the keep-alives sent, in order.
	KeepAlives []LeaseCall
	// Stopped says the holder stopped keeping it alive on purpose (its
	// lifetime was over, or the clients were stopping), at Stop: the
	// return of its last request that could renew it (the last
	// keep-alive, or the grant). A lease that was never granted, but may
	// have been, has Stop set too.
	Stopped bool
	Stop    time.Duration
	// Lost says a keep-alive or a put was answered 404: the holder took
	// the lease for gone, at LostAt.
	Lost   bool
	LostAt time.Duration
	// Errors are answers that break the API's contract.
	Errors []string
}

// lastRenewal is the return of the last request that could have renewed
// the lease: a keep-alive, else the grant.
func (r *LeaseRun) lastRenewal() time.Duration {
	last := r.GrantReturn
	if n := len(r.Grants); n > 0 {
		last = max(last, r.Grants[n-1].Return)
	}
	if n := len(r.KeepAlives); n > 0 {
		last = max(last, r.KeepAlives[n-1].Return)
	}
	return last
}

// mayExist says the lease may have been granted.
func (r *LeaseRun) mayExist() bool {
	if r.Granted {
		return true
	}
	for _, g := range r.Grants {
		if g.grantUnknown() {
			return true
		}
	}
	return false
}

// LeaseLog collects the lease clients' runs.
type LeaseLog struct {
	mu   sync.Mutex
	runs []*LeaseRun
}

func (l *LeaseLog) add(r *LeaseRun) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs = append(l.runs, r)
}

// Runs returns a copy of every run. The clients write their runs without
// a lock: call it once LeaseClients.Run has returned.
func (l *LeaseLog) Runs() []LeaseRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LeaseRun, len(l.runs))
	for i, r := range l.runs {
		out[i] = *r
	}
	return out
}

// leaseClient is one sequential lease holder.
type leaseClient struct {
	idx  int
	id   int
	cfg  *LeaseClients
	http *http.Client
	rng  *rand.Rand
	seq  int // leases made
	vals int // values written
	cur  *heldLease
	// ended are the leases stopped or lost whose keys the client reads
	// until they are gone.
	ended    []*heldLease
	nextRead time.Duration
}

// heldLease is the client's state of one lease.
type heldLease struct {
	run *LeaseRun
	// lifetime is how long after its grant the holder stops it.
	lifetime time.Duration
	// grantAt, keepAliveAt, attachAt: when the next grant attempt, the
	// next keep-alive and the next put may go.
	grantAt, keepAliveAt, attachAt time.Duration
	// next is the index of the next key to attach.
	next int
	// written says a put of its keys may have written one: reading them
	// then shows something.
	written bool
	// readUntil bounds the reads of an ended lease that does not go.
	readUntil time.Duration
}

func (c *leaseClient) now() time.Duration { return c.cfg.Rec.Now() }

func (c *leaseClient) pick() string { return c.cfg.Endpoints[c.rng.IntN(len(c.cfg.Endpoints))] }

// newLease draws the next lease: TTL, keys, lifetime.
func (c *leaseClient) newLease() *heldLease {
	c.seq++
	ttl := c.cfg.TTLs[c.rng.IntN(len(c.cfg.TTLs))]
	prefix := fmt.Sprintf("%s%d-%d-", c.cfg.KeyPrefix, c.idx, c.seq)
	run := &LeaseRun{ID: c.cfg.leaseID(c.idx, c.seq), Client: c.id, TTL: ttl, Prefix: prefix}
	for j := range 1 + c.rng.IntN(c.cfg.MaxKeys) {
		run.Keys = append(run.Keys, prefix+strconv.Itoa(j))
	}
	c.cfg.Log.add(run)
	unit := time.Duration(ttl) * c.cfg.Unit
	return &heldLease{run: run, lifetime: unit + time.Duration(c.rng.Int64N(int64(2*unit))), grantAt: c.now()}
}

func (c *leaseClient) loop(ctx context.Context) {
	defer c.stopCurrent()
	for ctx.Err() == nil {
		if c.cur == nil {
			c.cur = c.newLease()
		}
		h := c.cur
		granted, now := h.run.Granted, c.now()
		stopAt := h.run.GrantReturn + h.lifetime
		attaching := granted && h.next < len(h.run.Keys)
		switch {
		case !granted && now >= h.grantAt:
			c.grant(ctx, h)
		case granted && now >= h.keepAliveAt:
			c.keepAlive(ctx, h)
		case granted && now >= stopAt:
			c.end(h, false, 0)
		case attaching && now >= h.attachAt:
			c.attach(ctx, h)
		case now >= c.nextRead:
			c.readAll(ctx)
		default:
			until := c.nextRead
			switch {
			case !granted:
				until = min(until, h.grantAt)
			case attaching:
				until = min(until, h.keepAliveAt, stopAt, h.attachAt)
			default:
				until = min(until, h.keepAliveAt, stopAt)
			}
			c.wait(ctx, until)
		}
	}
}

// wait pauses until the recorder's clock reads until, or ctx ends: the
// client's own period, not synchronization.
func (c *leaseClient) wait(ctx context.Context, until time.Duration) {
	d := until - c.now()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// stopCurrent stops the lease held when the clients stop.
func (c *leaseClient) stopCurrent() {
	if h := c.cur; h != nil && h.run.mayExist() {
		h.run.Stopped, h.run.Stop = true, h.run.lastRenewal()
	}
	c.cur = nil
}

// end stops h on purpose, or (lost) takes it for gone after a 404 at
// lostAt; either way its keys are read until they are gone.
func (c *leaseClient) end(h *heldLease, lost bool, lostAt time.Duration) {
	if lost {
		h.run.Lost, h.run.LostAt = true, lostAt
	} else {
		h.run.Stopped, h.run.Stop = true, h.run.lastRenewal()
	}
	unit := time.Duration(h.run.TTL) * c.cfg.Unit
	h.readUntil = c.now() + 2*unit + 5*c.cfg.Unit
	if h.written {
		c.ended = append(c.ended, h)
	}
	c.cur = nil
}

// call sends one request and reads its answer (up to 64 KiB). A transport
// error is returned as err, with status 0.
func (c *leaseClient) call(ctx context.Context, method, target string, body []byte) (status int, retryAfter bool, payload []byte, err error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), method, target, bytes.NewReader(body))
	if err != nil {
		return 0, false, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, false, nil, err
	}
	defer resp.Body.Close()
	payload, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, false, nil, fmt.Errorf("reading the %d answer: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After") != "", payload, nil
}

// leaseAnswer is the answer to a grant or a keep-alive: {"id":"N","ttl":T}.
type leaseAnswer struct {
	ID  *string `json:"id"`
	TTL *int64  `json:"ttl"`
}

// checkLeaseAnswer checks a 200 to a grant or a keep-alive of run: its
// id, and the TTL, which both must answer as the one granted.
func checkLeaseAnswer(run *LeaseRun, what string, payload []byte) (int64, error) {
	var a leaseAnswer
	if err := json.Unmarshal(payload, &a); err != nil {
		return 0, fmt.Errorf("%s of lease %d answered 200 %s: %w", what, run.ID, oneLine(payload), err)
	}
	if a.ID == nil || *a.ID != strconv.FormatInt(run.ID, 10) || a.TTL == nil {
		return 0, fmt.Errorf("%s of lease %d answered 200 %s: not its id and a ttl", what, run.ID, oneLine(payload))
	}
	if *a.TTL != run.TTL {
		return *a.TTL, fmt.Errorf("%s of lease %d (TTL %d) answered ttl %d", what, run.ID, run.TTL, *a.TTL)
	}
	return *a.TTL, nil
}

// grant makes one attempt to grant h's lease.
func (c *leaseClient) grant(ctx context.Context, h *heldLease) {
	run := h.run
	body := fmt.Appendf(nil, `{"id":"%d","ttl":%d}`, run.ID, run.TTL)
	lc := LeaseCall{Endpoint: c.pick(), Call: c.now()}
	status, retryAfter, payload, err := c.call(ctx, http.MethodPost, lc.Endpoint+"/v1/leases", body)
	lc.Return, lc.Status, lc.RetryAfter = c.now(), status, retryAfter
	if err != nil {
		lc.Cause = err.Error()
	} else if status != http.StatusOK {
		lc.Cause = fmt.Sprintf("%d %s", status, oneLine(payload))
	}
	switch status {
	case http.StatusOK:
		ttl, err := checkLeaseAnswer(run, "the grant", payload)
		lc.TTL = ttl
		if err != nil {
			run.Errors = append(run.Errors, err.Error())
		}
		run.Granted, run.GrantCall, run.GrantReturn = true, lc.Call, lc.Return
	case http.StatusConflict:
		// The id is in use: an earlier attempt of unknown outcome
		// granted it, or the id is not the client's.
		for _, g := range run.Grants {
			if g.grantUnknown() {
				run.Granted, run.GrantCall, run.GrantReturn = true, g.Call, lc.Return
				break
			}
		}
		if !run.Granted {
			run.Errors = append(run.Errors, fmt.Sprintf("the first grant of lease %d answered 409: %s", run.ID, oneLine(payload)))
		}
	case 0, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		h.grantAt = lc.Return + c.cfg.pause()
	default:
		run.Errors = append(run.Errors, fmt.Sprintf("a grant of lease %d answered %d %s", run.ID, status, oneLine(payload)))
	}
	run.Grants = append(run.Grants, lc)
	switch {
	case run.Granted:
		h.keepAliveAt = run.GrantCall + time.Duration(run.TTL)*c.cfg.Unit/3
		h.attachAt = lc.Return
	case len(run.Errors) > 0:
		// An answer the client cannot act on (the round fails on it):
		// it gives the lease up, stopped if it may exist.
		if run.mayExist() {
			run.Stopped, run.Stop = true, run.lastRenewal()
		}
		c.cur = nil
	}
}

// keepAlive sends one keep-alive of h's lease.
func (c *leaseClient) keepAlive(ctx context.Context, h *heldLease) {
	run := h.run
	lc := LeaseCall{Endpoint: c.pick(), Call: c.now()}
	status, retryAfter, payload, err := c.call(ctx, http.MethodPost,
		lc.Endpoint+"/v1/leases/"+strconv.FormatInt(run.ID, 10)+"/keepalive", nil)
	lc.Return, lc.Status, lc.RetryAfter = c.now(), status, retryAfter
	if err != nil {
		lc.Cause = err.Error()
	} else if status != http.StatusOK {
		lc.Cause = fmt.Sprintf("%d %s", status, oneLine(payload))
	}
	h.keepAliveAt = lc.Return + c.cfg.pause()
	switch status {
	case http.StatusOK:
		ttl, err := checkLeaseAnswer(run, "a keep-alive", payload)
		lc.TTL = ttl
		if err != nil {
			run.Errors = append(run.Errors, err.Error())
		}
		h.keepAliveAt = lc.Call + time.Duration(run.TTL)*c.cfg.Unit/3
	case http.StatusNotFound:
		if !bytes.Contains(payload, []byte(messages.ErrLeaseNotFound.Error())) {
			run.Errors = append(run.Errors, fmt.Sprintf("a keep-alive of lease %d answered 404 without saying the lease was not found: %s", run.ID, oneLine(payload)))
		}
	case 0, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		run.Errors = append(run.Errors, fmt.Sprintf("a keep-alive of lease %d answered %d %s", run.ID, status, oneLine(payload)))
	}
	run.KeepAlives = append(run.KeepAlives, lc)
	if lc.Gone() {
		c.end(h, true, lc.Return)
	}
}

// attach puts h's next key with its lease; a put that may not have
// written is tried again with a new value, one that was refused for the
// lease (404) ends the lease as lost.
func (c *leaseClient) attach(ctx context.Context, h *heldLease) {
	c.vals++
	in := Input{Kind: OpPut, Key: h.run.Keys[h.next], Value: fmt.Sprintf("c%d-l%d-%d", c.id, c.seq, c.vals), Lease: h.run.ID}
	inv := c.cfg.Rec.Begin(c.id, in)
	out, st, err := send(context.WithoutCancel(ctx), c.http, c.pick(), in)
	op := inv.Finish(out, st, err)
	switch {
	case st == StatusOK && out.Refused:
		c.end(h, true, op.Return)
	case st == StatusOK:
		h.written = true
		h.next++
		h.attachAt = op.Return
	default:
		h.written = h.written || st == StatusUnknown
		h.attachAt = op.Return + c.cfg.pause()
	}
}

// readAll reads the keys of the lease held, and of each ended lease not
// yet seen gone.
func (c *leaseClient) readAll(ctx context.Context) {
	c.nextRead = c.now() + c.cfg.readEvery()
	if h := c.cur; h != nil && h.written {
		c.read(ctx, h)
	}
	kept := c.ended[:0]
	for _, h := range c.ended {
		if present, ok := c.read(ctx, h); (ok && present == 0) || c.now() > h.readUntil {
			continue
		}
		kept = append(kept, h)
	}
	c.ended = kept
}

// rangeAnswer is a range read's answer, the fields the clients check.
type rangeAnswer struct {
	Revision *uint64 `json:"revision"`
	KVs      []struct {
		Key         *string `json:"key"`
		Value       *string `json:"value"`
		ModRevision uint64  `json:"mod_revision"`
		Lease       *string `json:"lease"`
	} `json:"kvs"`
	More bool `json:"more"`
}

// read reads h's keys with one range read of their prefix and records
// what it showed of each; present is how many were present, ok that the
// read was answered.
func (c *leaseClient) read(ctx context.Context, h *heldLease) (present int, ok bool) {
	run := h.run
	call := c.now()
	status, _, payload, err := c.call(ctx, http.MethodGet, c.pick()+"/v1/kv/?prefix="+url.QueryEscape(run.Prefix), nil)
	ret := c.now()
	var found map[string]Output
	var rev uint64
	switch {
	case err != nil, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return 0, false // a failed read observed nothing
	case status != http.StatusOK:
		err = fmt.Errorf("answered %d", status)
	default:
		found, rev, err = parseLeaseRange(run, payload)
	}
	if err != nil {
		// Recorded as a failed read, whose cause fails the round.
		c.cfg.Rec.Record(Op{Client: c.id, Input: Input{Kind: OpRangeGet, Key: run.Keys[0]}, Call: call, Return: ret,
			Status: StatusFailed, Cause: fmt.Sprintf("%v: a range read of %q: %v: %s", ErrMalformedAnswer, run.Prefix, err, oneLine(payload))})
		return 0, false
	}
	for _, key := range run.Keys {
		out, isThere := found[key]
		if !isThere {
			out = Output{Rev: rev}
		}
		c.cfg.Rec.Record(Op{Client: c.id, Input: Input{Kind: OpRangeGet, Key: key}, Output: out, Call: call, Return: ret, Status: StatusOK})
	}
	return len(found), true
}

// parseLeaseRange reads the answer to a range read of run's keys: each
// key present, and the store's revision.
func parseLeaseRange(run *LeaseRun, payload []byte) (map[string]Output, uint64, error) {
	var a rangeAnswer
	if err := json.Unmarshal(payload, &a); err != nil {
		return nil, 0, err
	}
	if a.Revision == nil || *a.Revision == 0 || a.More {
		return nil, 0, errors.New("no revision, or more than one page")
	}
	found := make(map[string]Output)
	for _, kv := range a.KVs {
		if kv.Key == nil || kv.Value == nil || !strings.HasPrefix(*kv.Key, run.Prefix) || kv.ModRevision == 0 || kv.ModRevision > *a.Revision {
			return nil, 0, fmt.Errorf("a key without its value, outside the prefix, or at an impossible mod_revision")
		}
		out := Output{Found: true, Value: *kv.Value, Rev: kv.ModRevision}
		if kv.Lease != nil {
			id, err := strconv.ParseInt(*kv.Lease, 10, 64)
			if err != nil || id <= 0 {
				return nil, 0, fmt.Errorf("lease %q", *kv.Lease)
			}
			out.Lease = id
		}
		if _, dup := found[*kv.Key]; dup {
			return nil, 0, fmt.Errorf("key %q twice", *kv.Key)
		}
		found[*kv.Key] = out
	}
	return found, *a.Revision, nil
}
