package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrWorkersConfig is returned by Workers.Run when the configuration cannot
// produce a history (no endpoint, no recorder).
var ErrWorkersConfig = errors.New("invalid workers configuration")

// Defaults of Workers.
const (
	DefaultClients = 4
	DefaultKeys    = 8 // few keys, so that operations conflict
	DefaultTimeout = 2 * time.Second
)

// Workers drives concurrent clients against a cluster's client API and
// records every operation. Each client loops: a random member, a random key,
// then PUT with a value unique to the operation, GET or DELETE (50/40/10).
type Workers struct {
	// Endpoints are the members' client URLs, e.g. "http://127.0.0.1:2379".
	Endpoints []string
	Clients   int           // concurrent clients; default DefaultClients
	Keys      int           // size of the key space; default DefaultKeys
	Timeout   time.Duration // per operation; default DefaultTimeout
	Rec       *Recorder
	// Seed makes the choices of a run repeatable: client i draws from a
	// PCG seeded with (Seed, i).
	Seed uint64
	// OpsPerClient stops each client after that many operations; 0 means
	// run until the context ends.
	OpsPerClient int
	// FirstClient is the id of the first client in the history, so that
	// several Workers can share one recorder without sharing ids.
	FirstClient int
	// KeyPrefix names the keys: KeyPrefix + "0" … ; default "k".
	KeyPrefix string
}

// Run blocks until ctx ends (or every client did OpsPerClient operations)
// and all clients have returned. An operation in flight when ctx ends is
// finished within Timeout rather than cancelled, so that a stop does not
// turn writes into unknown ones.
func (w Workers) Run(ctx context.Context) error {
	if len(w.Endpoints) == 0 {
		return fmt.Errorf("%w: no endpoints", ErrWorkersConfig)
	}
	if w.Rec == nil {
		return fmt.Errorf("%w: no recorder", ErrWorkersConfig)
	}
	w = w.withDefaults()
	// No keep-alive: a connection per request, so a member that was killed
	// or partitioned is dialed afresh and no idle connection outlives Run.
	transport := &http.Transport{DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	httpc := &http.Client{Transport: transport, Timeout: w.Timeout}

	var wg sync.WaitGroup
	for i := range w.Clients {
		c := &kvClient{
			id:   w.FirstClient + i,
			cfg:  &w,
			http: httpc,
			rng:  rand.New(rand.NewPCG(w.Seed, uint64(i))),
		}
		wg.Go(func() { c.loop(ctx) })
	}
	wg.Wait()
	return nil
}

// KeyNames lists every key the workers may touch, for the final reads.
func (w Workers) KeyNames() []string {
	w = w.withDefaults()
	keys := make([]string, w.Keys)
	for i := range keys {
		keys[i] = w.keyName(i)
	}
	return keys
}

func (w Workers) keyName(i int) string { return fmt.Sprintf("%s%d", w.KeyPrefix, i) }

func (w Workers) withDefaults() Workers {
	if w.Clients <= 0 {
		w.Clients = DefaultClients
	}
	if w.Keys <= 0 {
		w.Keys = DefaultKeys
	}
	if w.Timeout <= 0 {
		w.Timeout = DefaultTimeout
	}
	if w.KeyPrefix == "" {
		w.KeyPrefix = "k"
	}
	return w
}

// kvClient is one sequential client of the history.
type kvClient struct {
	id   int
	cfg  *Workers
	http *http.Client
	rng  *rand.Rand
	seq  int
}

func (c *kvClient) loop(ctx context.Context) {
	for n := 0; c.cfg.OpsPerClient == 0 || n < c.cfg.OpsPerClient; n++ {
		if ctx.Err() != nil {
			return
		}
		c.step(context.WithoutCancel(ctx))
	}
}

// step draws and performs one operation. Every random choice is drawn
// before the request, so the sequence of a client depends on the seed only.
func (c *kvClient) step(ctx context.Context) {
	endpoint := c.cfg.Endpoints[c.rng.IntN(len(c.cfg.Endpoints))]
	key := c.cfg.keyName(c.rng.IntN(c.cfg.Keys))
	var in Input
	switch p := c.rng.IntN(100); {
	case p < 50:
		c.seq++
		in = Input{Kind: OpPut, Key: key, Value: fmt.Sprintf("c%d-%d", c.id, c.seq)}
	case p < 90:
		in = Input{Kind: OpGet, Key: key}
	default:
		in = Input{Kind: OpDelete, Key: key}
	}
	inv := c.cfg.Rec.Begin(c.id, in)
	out, st, err := c.do(ctx, endpoint, in)
	inv.Finish(out, st, err)
}

// do performs one request and says what its answer proves.
func (c *kvClient) do(ctx context.Context, endpoint string, in Input) (Output, Status, error) {
	method := http.MethodGet
	var body io.Reader
	switch in.Kind {
	case OpPut:
		method, body = http.MethodPut, strings.NewReader(in.Value)
	case OpDelete:
		method = http.MethodDelete
	}
	target := strings.TrimSuffix(endpoint, "/") + "/v1/kv/" + url.PathEscape(in.Key)
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return Output{}, StatusFailed, fmt.Errorf("building the request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		st := failureStatus(in.Kind)
		if neverSent(err) {
			st = StatusFailed
		}
		return Output{}, st, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	payload, readErr := io.ReadAll(resp.Body)
	return classify(in.Kind, resp, payload, readErr)
}

// failureStatus is the status of an operation whose answer tells nothing:
// a read then had no effect, a write may have had one.
func failureStatus(kind OpKind) Status {
	if kind.isWrite() {
		return StatusUnknown
	}
	return StatusFailed
}

// neverSent reports whether a request failed before any byte of it left
// the client: the dial failed (a killed member refuses the connection).
// With keep-alives off, every request dials its own connection, so no
// earlier connection can have carried it. Recording such a write as
// failed rather than unknown is sound, and it matters to the checker: an
// unknown write may take effect at any later point, and a down member
// refuses thousands of them per round.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// classify maps an answer of the client API to what it proves. Only a 503
// carrying Retry-After proves a write was never proposed: the node sends it
// for "no leader" and "proposal dropped", while its other 503s (node
// stopping) may come after the write was proposed.
func classify(kind OpKind, resp *http.Response, payload []byte, readErr error) (Output, Status, error) {
	if readErr != nil {
		return Output{}, failureStatus(kind), fmt.Errorf("reading the %d answer: %w", resp.StatusCode, readErr)
	}
	switch {
	case resp.StatusCode == http.StatusOK && kind == OpGet:
		return Output{Value: string(payload), Found: true}, StatusOK, nil
	case resp.StatusCode == http.StatusNotFound && kind == OpGet:
		return Output{}, StatusOK, nil
	case resp.StatusCode == http.StatusOK:
		return Output{}, StatusOK, nil
	}
	cause := fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(payload)))
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
		return Output{}, StatusFailed, cause
	}
	return Output{}, failureStatus(kind), cause
}
