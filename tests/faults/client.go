package faults

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/raftkv/node/messages"
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
// then (in percent) PUT with a value unique to the operation 35, GET 35,
// DELETE 6, and conditional writes: PUT with If-Match or If-None-Match: *
// 12, a value CAS through /v1/txn 8, DELETE with If-Match 4. Those expect
// what the client's last answer for the key showed, and mostly go to the
// key of its previous operation (see reuseKey).
//
// With OddKeys, some operations go to odd keys instead: half of them to a
// key of an odd shape that the API takes (OddKeyNames: slashes, dot
// segments, spaces, a percent sign, bytes that are not UTF-8, the longest
// key allowed), which is one more key of the history, checked like the
// others; the other half are writes of a key no write may carry (empty,
// one byte over messages.MaxKeyBytes, over bbolt's 32,768-byte limit),
// which must be refused with a clean 400 or 413: each is recorded as a
// failed write, so it never enters the model, with ErrBadRefusal in its
// cause when the answer was anything else (see probeRefused).
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
	// KeyPrefix names the keys: KeyPrefix + "0" … ; default "k". The odd
	// keys, valid or not (but the empty one), start with it too.
	KeyPrefix string
	// OddKeys is the chance, in percent, that an operation goes to an odd
	// key (see above); 0, the default, sends none.
	OddKeys int
	// GRPC is how many of the Clients (the last ones) do their operations
	// through etcd's v3 gRPC API on the same Endpoints instead of the
	// HTTP API, recorded alike (grpc_client.go); 0, the default, none.
	GRPC int
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
	if w.GRPC < 0 || w.GRPC > w.Clients {
		return fmt.Errorf("%w: %d gRPC clients of %d", ErrWorkersConfig, w.GRPC, w.Clients)
	}
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
			grpc: i >= w.Clients-w.GRPC,
			rng:  rand.New(rand.NewPCG(w.Seed, uint64(i))),
		}
		wg.Go(func() { c.loop(ctx) })
	}
	wg.Wait()
	return nil
}

// KeyNames lists every key the workers may write, for the final reads:
// the Keys plain ones, then, with OddKeys, OddKeyNames.
func (w Workers) KeyNames() []string {
	w = w.withDefaults()
	keys := make([]string, w.Keys)
	for i := range keys {
		keys[i] = w.keyName(i)
	}
	if w.OddKeys > 0 {
		keys = append(keys, w.OddKeyNames()...)
	}
	return keys
}

func (w Workers) keyName(i int) string { return fmt.Sprintf("%s%d", w.KeyPrefix, i) }

// oddShapes are the tails of the odd keys the API takes. A request names
// them percent-encoded (url.PathEscape): slashes and dots are then part of
// the key, never path segments for the server to clean.
var oddShapes = []string{
	"/a",               // a slash
	"//b",              // an empty segment
	"/x/../y",          // a dot-dot segment
	"/./z/",            // a dot segment and a trailing slash
	" s p a c e ",      // spaces
	"%2F%zz%",          // percent signs: the key is these bytes, not their decoding
	"\xff\xfe\x00\x01", // not UTF-8, with a NUL
}

// OddKeyNames lists the odd keys the API takes: KeyPrefix + "odd" + i +
// one of oddShapes, and one of exactly messages.MaxKeyBytes bytes, the
// longest allowed.
func (w Workers) OddKeyNames() []string {
	w = w.withDefaults()
	var keys []string
	for i, shape := range oddShapes {
		keys = append(keys, fmt.Sprintf("%sodd%d%s", w.KeyPrefix, i, shape))
	}
	longest := fmt.Sprintf("%sodd%d-", w.KeyPrefix, len(oddShapes))
	return append(keys, longest+strings.Repeat("l", messages.MaxKeyBytes-len(longest)))
}

// refusedKeys are the keys no write may carry: empty, one byte over
// messages.MaxKeyBytes, and over bbolt's own limit of 32,768 bytes.
func (w Workers) refusedKeys() []string {
	w = w.withDefaults()
	long := w.KeyPrefix + "over-"
	return []string{
		"",
		long + strings.Repeat("o", messages.MaxKeyBytes+1-len(long)),
		long + strings.Repeat("b", 40_000-len(long)),
	}
}

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
	// grpc says the client speaks etcd's gRPC API (Workers.GRPC).
	grpc bool
	rng  *rand.Rand
	seq  int
	// views holds, per key, what this client's last definite answer for
	// it showed: conditional writes take their expected revision or value
	// from it, as a real client does a read-modify-write.
	views map[string]keyView
	// lastKey is the key of the client's previous operation.
	lastKey string
}

// keyView is a key as one answer showed it. rev is its mod_revision when
// present; valueKnown is false after a 412, which shows no value.
type keyView struct {
	present    bool
	value      string
	valueKnown bool
	rev        uint64
}

func (c *kvClient) loop(ctx context.Context) {
	for n := 0; c.cfg.OpsPerClient == 0 || n < c.cfg.OpsPerClient; n++ {
		if ctx.Err() != nil {
			return
		}
		c.step(context.WithoutCancel(ctx))
	}
}

// The operation mix, in percent: puts and gets stay the bulk, so that the
// checks of plain reads and writes keep their power, and the conditional
// writes race with them.
const (
	mixPut       = 35
	mixGet       = 35
	mixDelete    = 6
	mixCAS       = 12
	mixTxnCAS    = 8
	mixCASDelete = 4
)

// reuseKey is the chance, in quarters, that a conditional write goes to the
// key of the client's previous operation, whose answer it has just seen:
// such a write mostly succeeds, while one to a random key mostly expects a
// stale revision (or none) and gets a 412. Half and half makes both
// outcomes common (about 60/40 against the in-process fake), and both are
// worth checking.
const reuseKey = 2

// step draws and performs one operation. Every random choice is drawn
// before the request, so the draws of a client depend on the seed only; a
// conditional write's expected revision or value comes from the client's
// earlier answers (see input).
func (c *kvClient) step(ctx context.Context) {
	endpoint := c.cfg.Endpoints[c.rng.IntN(len(c.cfg.Endpoints))]
	key := c.cfg.keyName(c.rng.IntN(c.cfg.Keys))
	p := c.rng.IntN(100)
	reuse := c.rng.IntN(4) < reuseKey
	if c.cfg.OddKeys > 0 && c.rng.IntN(100) < c.cfg.OddKeys {
		if c.rng.IntN(2) == 0 {
			refused := c.cfg.refusedKeys()
			c.probeRefused(ctx, endpoint, refused[c.rng.IntN(len(refused))], p)
			return
		}
		odd := c.cfg.OddKeyNames()
		key = odd[c.rng.IntN(len(odd))]
	}
	if p >= mixPut+mixGet+mixDelete && reuse && c.lastKey != "" {
		key = c.lastKey
	}
	in := c.input(p, key)
	inv := c.cfg.Rec.Begin(c.id, in)
	out, st, err := c.do(ctx, endpoint, in)
	c.learn(inv.Finish(out, st, err))
	c.lastKey = key
}

// input is the operation drawn as p (0 to 99) on key. A conditional write
// expects what the client last saw of the key: If-Match its revision when
// present, If-None-Match: * otherwise; a transaction compares with its
// value, or with "" (which no client writes, so it is refused and reads
// the key) when the client knows none; a conditional delete of a key not
// seen present is a read instead.
func (c *kvClient) input(p int, key string) Input {
	view := c.views[key]
	switch {
	case p < mixPut:
		return Input{Kind: OpPut, Key: key, Value: c.nextValue()}
	case p < mixPut+mixGet:
		return Input{Kind: OpGet, Key: key}
	case p < mixPut+mixGet+mixDelete:
		return Input{Kind: OpDelete, Key: key}
	case p < mixPut+mixGet+mixDelete+mixCAS:
		in := Input{Kind: OpCAS, Key: key, Value: c.nextValue()}
		if view.present {
			in.Rev = view.rev
		}
		return in
	case p < mixPut+mixGet+mixDelete+mixCAS+mixTxnCAS:
		in := Input{Kind: OpTxnCAS, Key: key, Value: c.nextValue()}
		if view.present && view.valueKnown {
			in.Old = view.value
		}
		return in
	}
	if !view.present {
		return Input{Kind: OpGet, Key: key}
	}
	return Input{Kind: OpCASDelete, Key: key, Rev: view.rev}
}

// refusedKinds are the writes probeRefused sends, drawn as p: PUT, DELETE,
// PUT with If-None-Match: *, and a transaction that compares the key and
// puts it.
var refusedKinds = []OpKind{OpPut, OpDelete, OpCAS, OpTxnCAS}

// probeRefused writes key, which no write may carry, as the write drawn as
// p (0 to 99), and records it as failed: whatever the answer, it is not an
// operation of the model. Its cause holds ErrBadRefusal when the answer
// was not a clean refusal (checkRefusal).
func (c *kvClient) probeRefused(ctx context.Context, endpoint, key string, p int) {
	in := Input{Kind: refusedKinds[p%len(refusedKinds)], Key: key}
	if in.Kind.leavesPresent() {
		in.Value = c.nextValue()
	}
	inv := c.cfg.Rec.Begin(c.id, in)
	inv.Finish(Output{}, StatusFailed, c.sendRefused(ctx, endpoint, in))
}

// sendRefused sends in, whose key no write may carry, and says how the
// node answered (never nil: the operation is recorded as failed).
func (c *kvClient) sendRefused(ctx context.Context, endpoint string, in Input) error {
	if c.grpc {
		return sendRefusedGRPC(ctx, endpoint, c.cfg.Timeout, in)
	}
	req, err := request(ctx, endpoint, in)
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s of a %d-byte key: %w", req.Method, len(in.Key), err)
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBytes+1))
	if err != nil {
		return fmt.Errorf("%s of a %d-byte key: reading the %d answer: %w", req.Method, len(in.Key), resp.StatusCode, err)
	}
	return checkRefusal(resp.StatusCode, payload, fmt.Sprintf("%v of a %d-byte key", in.Kind, len(in.Key)))
}

// ErrBadRefusal marks the answer to a write of a key no write may carry
// (empty, or over messages.MaxKeyBytes) that is not a clean refusal: the
// write was acknowledged, or answered with a status other than 400 or 413
// (a 500 among them), or the refusal's body is longer than
// maxRefusalBytes (it echoes the key). Only 503 and 504 prove nothing
// either way: under faults the node may have no leader, or time out.
var ErrBadRefusal = errors.New("a key no write may carry was not refused cleanly")

// maxRefusalBytes bounds the body of a refusal: a reason, never the key.
const maxRefusalBytes = 4 << 10

// checkRefusal judges the answer to what, a write of a key no write may
// carry: a clean refusal, a 503 or a 504 (not judged), or ErrBadRefusal.
// The error it returns is the operation's cause either way.
func checkRefusal(status int, payload []byte, what string) error {
	cause := fmt.Sprintf("%s: %d %s", what, status, oneLine(payload[:min(len(payload), 200)]))
	switch {
	case status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return errors.New(cause)
	case status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %s, want 400 or 413", ErrBadRefusal, cause)
	case len(payload) > maxRefusalBytes:
		return fmt.Errorf("%w: %s: a refusal of more than %d bytes", ErrBadRefusal, cause, maxRefusalBytes)
	}
	return fmt.Errorf("refused: %s", cause)
}

// refusedKey reports whether key is one no write may carry, as the
// workers' refusedKeys are.
func refusedKey(key string) bool { return key == "" || len(key) > messages.MaxKeyBytes }

// Refusals counts the writes of keys no write may carry in a history:
// Refused cleanly, Unjudged (a 503, a 504, no answer: a fault met them),
// and Bad (ErrBadRefusal), the first of which FirstBad describes.
type Refusals struct {
	Refused, Unjudged, Bad int
	FirstBad               string
}

func (r Refusals) String() string {
	return fmt.Sprintf("%d refused, %d unjudged (503, 504, no answer), %d not refused cleanly", r.Refused, r.Unjudged, r.Bad)
}

// CountRefusals counts the writes of keys no write may carry in ops.
func CountRefusals(ops []Op) Refusals {
	var r Refusals
	for _, op := range ops {
		switch {
		case !refusedKey(op.Input.Key):
		case strings.Contains(op.Cause, ErrBadRefusal.Error()):
			if r.Bad == 0 {
				r.FirstBad = fmt.Sprintf("client %d: %s", op.Client, op.Cause)
			}
			r.Bad++
		case strings.HasPrefix(op.Cause, "refused: "):
			r.Refused++
		default:
			r.Unjudged++
		}
	}
	return r
}

// nextValue is a value unique to the operation, so that a read names the
// write it sees.
func (c *kvClient) nextValue() string {
	c.seq++
	return fmt.Sprintf("c%d-%d", c.id, c.seq)
}

// learn keeps what a definite answer showed of its key. An unknown or
// failed operation teaches nothing; the view then may be stale, and a
// conditional write on it gets a 412, which teaches the key's revision.
func (c *kvClient) learn(op Op) {
	if op.Status != StatusOK {
		return
	}
	if c.views == nil {
		c.views = make(map[string]keyView)
	}
	in, out := op.Input, op.Output
	switch {
	case in.Kind == OpGet:
		c.views[in.Key] = keyView{present: out.Found, value: out.Value, valueKnown: true, rev: out.Rev}
	case out.Refused:
		// A refused transaction read the value; a 412 shows none.
		c.views[in.Key] = keyView{present: out.Found, value: out.Value, valueKnown: in.Kind == OpTxnCAS, rev: out.Rev}
	case in.Kind.leavesPresent():
		c.views[in.Key] = keyView{present: true, value: in.Value, valueKnown: true, rev: out.Rev}
	default:
		// A delete, whether it removed the key or found it absent.
		c.views[in.Key] = keyView{valueKnown: true}
	}
}

// txnRequest is the body of POST /v1/txn for an OpTxnCAS (docs/api.md).
type txnRequest struct {
	Compare []txnCompare `json:"compare"`
	Success []txnOp      `json:"success"`
	Failure []txnOp      `json:"failure"`
}

// A key goes in Key, or, when it is not valid UTF-8 (which JSON strings
// cannot carry: encoding/json would put U+FFFD in place of its bytes, and
// name another key), in KeyB64 (see txnKey).
type txnCompare struct {
	Key    *string `json:"key,omitempty"`
	KeyB64 string  `json:"key_b64,omitempty"`
	Target string  `json:"target"`
	Op     string  `json:"op"`
	Value  string  `json:"value"`
}

type txnOp struct {
	Op     string  `json:"op"`
	Key    *string `json:"key,omitempty"`
	KeyB64 string  `json:"key_b64,omitempty"`
	Value  *string `json:"value,omitempty"`
}

// txnKey is key as a transaction names it: text, or base64 when it is not
// valid UTF-8.
func txnKey(key string) (text *string, b64 string) {
	if utf8.ValidString(key) {
		return &key, ""
	}
	return nil, base64.StdEncoding.EncodeToString([]byte(key))
}

// request builds the HTTP request of in.
func request(ctx context.Context, endpoint string, in Input) (*http.Request, error) {
	base := strings.TrimSuffix(endpoint, "/")
	target := base + "/v1/kv/" + url.PathEscape(in.Key)
	method := http.MethodGet
	var body io.Reader
	switch in.Kind {
	case OpPut, OpCAS:
		method, body = http.MethodPut, strings.NewReader(in.Value)
	case OpDelete, OpCASDelete:
		method = http.MethodDelete
	case OpTxnCAS:
		value := in.Value
		key, keyB64 := txnKey(in.Key)
		b, err := json.Marshal(txnRequest{
			Compare: []txnCompare{{Key: key, KeyB64: keyB64, Target: "value", Op: "=", Value: in.Old}},
			Success: []txnOp{{Op: "put", Key: key, KeyB64: keyB64, Value: &value}},
			Failure: []txnOp{{Op: "get", Key: key, KeyB64: keyB64}},
		})
		if err != nil {
			return nil, err
		}
		method, target, body = http.MethodPost, base+"/v1/txn", bytes.NewReader(b)
	}
	if in.Lease != 0 && (in.Kind == OpPut || in.Kind == OpCAS) {
		target += "?lease=" + strconv.FormatInt(in.Lease, 10)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	switch {
	case in.Kind == OpCAS && in.Rev == 0:
		req.Header.Set("If-None-Match", "*")
	case in.Kind == OpCAS, in.Kind == OpCASDelete:
		req.Header.Set("If-Match", `"`+strconv.FormatUint(in.Rev, 10)+`"`)
	}
	return req, nil
}

// do performs one request and says what its answer proves.
func (c *kvClient) do(ctx context.Context, endpoint string, in Input) (Output, Status, error) {
	if c.grpc {
		return sendGRPC(ctx, endpoint, c.cfg.Timeout, in)
	}
	return send(ctx, c.http, endpoint, in)
}

// send performs the request of in and says what its answer proves.
func send(ctx context.Context, httpc *http.Client, endpoint string, in Input) (Output, Status, error) {
	req, err := request(ctx, endpoint, in)
	if err != nil {
		return Output{}, StatusFailed, fmt.Errorf("building the request: %w", err)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		st := failureStatus(in.Kind)
		if neverSent(err) {
			st = StatusFailed
		}
		return Output{}, st, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	payload, readErr := io.ReadAll(resp.Body)
	if in.Lease != 0 && resp.StatusCode == http.StatusNotFound && readErr == nil {
		return leaseNotFound(in, payload)
	}
	return classify(in.Kind, resp, payload, readErr)
}

// leaseNotFound reads a 404 to a put naming a lease: the lease does not
// exist (any more), and nothing was written, which is as definite as a
// 412 (Output.Refused). A 404 that does not say so breaks the contract.
func leaseNotFound(in Input, payload []byte) (Output, Status, error) {
	if !bytes.Contains(payload, []byte(messages.ErrLeaseNotFound.Error())) {
		return Output{}, StatusUnknown, fmt.Errorf("%w: 404 to a %v naming lease %d, not saying the lease was not found: %s",
			ErrMalformedAnswer, in.Kind, in.Lease, oneLine(payload))
	}
	return Output{Refused: true}, StatusOK, nil
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

// ErrMalformedAnswer marks an answer that breaks the API's contract (a
// read without its ETag, a write without its revision, a body that is not
// what docs/api.md says). The operation is then recorded as if no answer
// had come (a write's outcome unknown, a read failed), so the history
// stays sound, and the cause names the contract broken: the fault suite
// fails on it.
var ErrMalformedAnswer = errors.New("malformed answer")

// writeAnswer is the JSON answer to a write of /v1/kv, the fields of a 412
// and of a transaction's answer, which the checks use.
type writeAnswer struct {
	Revision    *uint64 `json:"revision"`
	Deleted     *int    `json:"deleted"`
	ModRevision *uint64 `json:"mod_revision"`
	Succeeded   *bool   `json:"succeeded"`
	Results     []struct {
		Op  string `json:"op"`
		KVs []struct {
			Value       *string `json:"value"`
			ValueB64    *string `json:"value_b64"`
			ModRevision uint64  `json:"mod_revision"`
		} `json:"kvs"`
	} `json:"results"`
}

// classify maps an answer of the client API to what it proves. Only a 503
// carrying Retry-After proves a write was never proposed: the node sends it
// for "no leader" and "proposal dropped", while its other 503s (node
// stopping) may come after the write was proposed. A 412 to a conditional
// write is certain: the condition was decided when its entry was applied,
// so the write did not apply, and the answer shows the key as it was then.
func classify(kind OpKind, resp *http.Response, payload []byte, readErr error) (Output, Status, error) {
	refused := resp.StatusCode == http.StatusPreconditionFailed && (kind == OpCAS || kind == OpCASDelete)
	notProposed := resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
	if readErr != nil {
		// The status line alone proves a 412 or a 503 with Retry-After.
		st := failureStatus(kind)
		if refused || notProposed {
			st = StatusFailed
		}
		return Output{}, st, fmt.Errorf("reading the %d answer: %w", resp.StatusCode, readErr)
	}
	switch {
	case resp.StatusCode == http.StatusOK && kind == OpGet:
		rev, err := parseETag(resp.Header.Get("ETag"))
		if err != nil {
			return Output{}, StatusFailed, fmt.Errorf("%w: 200 to a read: %w", ErrMalformedAnswer, err)
		}
		return Output{Value: string(payload), Found: true, Rev: rev}, StatusOK, nil
	case resp.StatusCode == http.StatusNotFound && kind == OpGet:
		return Output{}, StatusOK, nil
	case resp.StatusCode == http.StatusOK:
		out, err := writeOutput(kind, payload)
		if err != nil {
			return Output{}, StatusUnknown, fmt.Errorf("%w: 200 to a %v: %w: %s", ErrMalformedAnswer, kind, err, oneLine(payload))
		}
		return out, StatusOK, nil
	case refused:
		out, err := refusal(resp, payload)
		if err != nil {
			// Certainly not applied, but nothing to learn from.
			return Output{}, StatusFailed, fmt.Errorf("%w: 412 to a %v: %w: %s", ErrMalformedAnswer, kind, err, oneLine(payload))
		}
		return out, StatusOK, nil
	}
	cause := fmt.Errorf("%d %s", resp.StatusCode, oneLine(payload))
	if notProposed {
		return Output{}, StatusFailed, cause
	}
	return Output{}, failureStatus(kind), cause
}

func oneLine(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }

// writeOutput reads the 200 answer of a write.
func writeOutput(kind OpKind, payload []byte) (Output, error) {
	var a writeAnswer
	if err := json.Unmarshal(payload, &a); err != nil {
		return Output{}, err
	}
	if a.Revision == nil {
		return Output{}, errors.New("no revision")
	}
	rev := *a.Revision
	switch kind {
	case OpDelete, OpCASDelete:
		if a.Deleted == nil || *a.Deleted < 0 || *a.Deleted > 1 {
			return Output{}, errors.New(`"deleted" is not 0 or 1`)
		}
		if kind == OpCASDelete && *a.Deleted != 1 {
			return Output{}, errors.New("a conditional delete that applied deleted nothing")
		}
		if *a.Deleted == 1 && rev == 0 {
			return Output{}, errors.New("a delete wrote at revision 0")
		}
		return Output{Found: *a.Deleted == 1, Rev: rev}, nil
	case OpTxnCAS:
		if a.Succeeded == nil {
			return Output{}, errors.New(`no "succeeded"`)
		}
		if !*a.Succeeded {
			return txnRefusal(a)
		}
	}
	if rev == 0 {
		return Output{}, errors.New("a write at revision 0")
	}
	return Output{Rev: rev}, nil
}

// txnRefusal reads the failure branch of an OpTxnCAS: its one get.
func txnRefusal(a writeAnswer) (Output, error) {
	if len(a.Results) != 1 || a.Results[0].Op != "get" || len(a.Results[0].KVs) > 1 {
		return Output{}, errors.New("the failure branch's answer is not one get of one key")
	}
	out := Output{Refused: true}
	if len(a.Results[0].KVs) == 0 {
		return out, nil
	}
	kv := a.Results[0].KVs[0]
	switch {
	case kv.Value != nil:
		out.Value = *kv.Value
	case kv.ValueB64 != nil:
		v, err := base64.StdEncoding.DecodeString(*kv.ValueB64)
		if err != nil {
			return Output{}, fmt.Errorf("value_b64: %w", err)
		}
		out.Value = string(v)
	default:
		return Output{}, errors.New("the get shows no value")
	}
	if kv.ModRevision == 0 {
		return Output{}, errors.New("the get shows a present key at mod_revision 0")
	}
	out.Found, out.Rev = true, kv.ModRevision
	return out, nil
}

// refusal reads a 412: the key's mod_revision (0: absent), which the ETag,
// when present, must repeat.
func refusal(resp *http.Response, payload []byte) (Output, error) {
	var a writeAnswer
	if err := json.Unmarshal(payload, &a); err != nil {
		return Output{}, err
	}
	if a.ModRevision == nil {
		return Output{}, errors.New("no mod_revision")
	}
	mod := *a.ModRevision
	if tag := resp.Header.Get("ETag"); tag != "" || mod != 0 {
		rev, err := parseETag(tag)
		if err != nil || rev != mod {
			return Output{}, fmt.Errorf("ETag %q for mod_revision %d", tag, mod)
		}
	}
	return Output{Refused: true, Found: mod != 0, Rev: mod}, nil
}

// parseETag reads a strong entity tag naming a revision, "R" with R >= 1.
func parseETag(tag string) (uint64, error) {
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, fmt.Errorf("ETag %q is not a quoted revision", tag)
	}
	rev, err := strconv.ParseUint(tag[1:len(tag)-1], 10, 64)
	if err != nil || rev == 0 {
		return 0, fmt.Errorf("ETag %q does not name a revision", tag)
	}
	return rev, nil
}
