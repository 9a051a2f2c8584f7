package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/version"
)

// silent marks a fake actor that never answers, so the handler's future
// times out.
var silent any

// barrier is answered by a fake actor in mailbox order: once its answer
// arrives, every message sent to the fake before it has been recorded.
type barrier struct{}

// fakeActor stands in for the kv or the raft actor: it records each message
// and answers it with a scripted reply.
type fakeActor struct {
	pid *actor.PID
	got chan any
}

func spawnFake(system *actor.ActorSystem, reply any) *fakeActor {
	f := &fakeActor{got: make(chan any, 64)}
	f.pid = system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		case barrier:
			ctx.Respond(barrier{})
			return
		}
		f.got <- ctx.Message()
		if reply != nil {
			ctx.Respond(reply)
		}
	}))
	return f
}

type fixture struct {
	system *actor.ActorSystem
	kv     *fakeActor
	raft   *fakeActor
	url    string
	client *http.Client
	logs   *observer.ObservedLogs
}

// newFixture serves a handler wired to two fake actors. cfg may set Timeout
// and MaxRequestBytes; the other fields are filled here.
func newFixture(t *testing.T, kvReply, raftReply any, cfg httpapi.HandlerConfig) *fixture {
	t.Helper()
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		}),
		// A logged dead letter starts a goroutine that lives for one throttle
		// interval; keep it short so the leak check does not wait for it.
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	t.Cleanup(system.Shutdown)
	core, logs := observer.New(zapcore.DebugLevel)
	f := &fixture{
		system: system,
		kv:     spawnFake(system, kvReply),
		raft:   spawnFake(system, raftReply),
		logs:   logs,
	}
	cfg.Root = system.Root
	cfg.KV = f.kv.pid
	cfg.Raft = f.raft.pid
	cfg.Logger = zap.New(core)
	srv := httptest.NewServer(httpapi.NewHandler(cfg))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.client = srv.Client()
	return f
}

// do sends a request; a body of nil sends none, chunked sends it without a
// Content-Length so the server cannot refuse it before reading.
func (f *fixture) do(t *testing.T, method, path string, body *string, chunked bool) (*http.Response, string) {
	t.Helper()
	return f.doWithHeader(t, method, path, nil, body, chunked)
}

// doWithHeader is do with request headers.
func (f *fixture) doWithHeader(t *testing.T, method, path string, header http.Header, body *string, chunked bool) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(*body)
		if chunked {
			rd = io.NopCloser(rd) // hides the length from http.NewRequest
		}
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, string(b)
}

// received returns every message fake got before this call.
func (f *fixture) received(t *testing.T, fake *fakeActor) []any {
	t.Helper()
	if _, err := f.system.Root.RequestFuture(fake.pid, barrier{}, 5*time.Second).Result(); err != nil {
		t.Fatalf("barrier: %v", err)
	}
	var msgs []any
	for {
		select {
		case m := <-fake.got:
			msgs = append(msgs, m)
		default:
			return msgs
		}
	}
}

func verifyNoLeaks(t *testing.T) {
	t.Helper()
	// Registered first, so it runs after every other cleanup of the test.
	t.Cleanup(func() { testutil.VerifyNone(t) })
}

func ptr(s string) *string { return &s }

// apiCase is one request against a handler wired to fake actors.
type apiCase struct {
	name    string
	method  string
	path    string
	body    *string
	chunked bool
	cfg     httpapi.HandlerConfig

	kvReply   any // the fake kv actor's answer; silent never answers
	raftReply any // the fake raft actor's answer

	wantStatus   int
	wantBody     *string           // exact body, when set
	wantContains string            // substring of the body, when set
	wantAbsent   string            // must not be in the body (a key never echoed), when set
	wantHeader   map[string]string // "" means the header must be absent
	wantKV       []any             // exactly the messages the kv actor must get
	wantRaft     []any             // exactly the messages the raft actor must get
}

func runCases(t *testing.T, cases []apiCase) {
	t.Helper()
	verifyNoLeaks(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.kvReply, c.raftReply, c.cfg)
			resp, body := f.do(t, c.method, c.path, c.body, c.chunked)
			checkAnswer(t, f, c, "", resp, body)
		})
	}
}

// checkAnswer checks an answer against what c wants; wantJSON, when set,
// is the body as JSON (see checkJSON), and then an error answer is JSON
// rather than a line of text.
func checkAnswer(t *testing.T, f *fixture, c apiCase, wantJSON string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != c.wantStatus {
		t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, c.wantStatus, body)
	}
	if c.wantBody != nil && body != *c.wantBody {
		t.Errorf("body = %q, want %q", body, *c.wantBody)
	}
	// An error under /v1 is JSON: its message is what a reason is looked
	// for in, since JSON escapes quotes.
	text := body
	if resp.StatusCode >= 400 && v1Path(t, c.path) {
		text = checkErrorJSON(t, resp, body)
	}
	if c.wantContains != "" && !strings.Contains(text, c.wantContains) {
		t.Errorf("body = %q, want it to contain %q", body, c.wantContains)
	}
	if c.wantAbsent != "" && strings.Contains(body, c.wantAbsent) {
		t.Errorf("body = %q, want it without %q", body, c.wantAbsent)
	}
	if s := resp.StatusCode; s >= 300 && s < 400 {
		t.Errorf("status %d: the API never redirects (a client following it would name another key)", s)
	}
	switch {
	case wantJSON != "":
		checkJSON(t, body, wantJSON)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		if !strings.HasSuffix(body, "}\n") {
			t.Errorf("body %q does not end with one newline", body)
		}
	case resp.StatusCode >= 400 && !v1Path(t, c.path):
		if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || len(body) < 2 {
			t.Errorf("error body %q is not one non-empty line", body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("error Content-Type = %q, want text/plain", ct)
		}
	}
	for k, want := range c.wantHeader {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if got := f.received(t, f.kv); !reflect.DeepEqual(got, c.wantKV) {
		t.Errorf("kv actor got %#v, want %#v", got, c.wantKV)
	}
	if got := f.received(t, f.raft); !reflect.DeepEqual(got, c.wantRaft) {
		t.Errorf("raft actor got %#v, want %#v", got, c.wantRaft)
	}
}

func msgs(m ...any) []any { return m }

// v1Path reports whether a request path (query and all) is under /v1,
// where errors are JSON.
func v1Path(t *testing.T, path string) bool {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatalf("bad test path %q: %v", path, err)
	}
	return u.Path == "/v1" || strings.HasPrefix(u.Path, "/v1/")
}

// errorAnswer is the error body of every /v1 route (docs/api.md), with the
// fields some refusals carry beside it.
type errorAnswer struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Revision        *uint64 `json:"revision"`
	ModRevision     *uint64 `json:"mod_revision"`
	CompactRevision *uint64 `json:"compact_revision"`
}

// checkErrorJSON checks that body is a /v1 error answer, one line of JSON
// whose code is the status, and returns its message.
func checkErrorJSON(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	var a errorAnswer
	if err := dec.Decode(&a); err != nil {
		t.Errorf("error body %q is not the error JSON: %v", body, err)
		return body
	}
	if a.Error.Code != resp.StatusCode || a.Error.Message == "" {
		t.Errorf("error body %q: want code %d and a message", body, resp.StatusCode)
	}
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "}\n") {
		t.Errorf("error body %q is not one line", body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return a.Error.Message
}

func TestKVRoutes(t *testing.T) {
	found := messages.Result{Value: []byte("bar\x00\n"), Found: true, Index: 3}
	runCases(t, []apiCase{
		{name: "GET value is raw bytes", method: "GET", path: "/v1/kv/foo", kvReply: found,
			wantStatus: 200, wantBody: ptr("bar\x00\n"),
			wantHeader: map[string]string{"Content-Type": "application/octet-stream"},
			wantKV:     msgs(messages.Get{Key: "foo"})},
		{name: "GET serializable", method: "GET", path: "/v1/kv/foo?consistency=serializable", kvReply: found,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "foo", Serializable: true})},
		{name: "GET linearizable", method: "GET", path: "/v1/kv/foo?consistency=linearizable", kvReply: found,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "foo"})},
		{name: "GET key is percent-decoded", method: "GET", path: "/v1/kv/a%2Fb%20c/d", kvReply: found,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "a/b c/d"})},
		{name: "GET answered by pointer", method: "GET", path: "/v1/kv/foo", kvReply: &found,
			wantStatus: 200, wantBody: ptr("bar\x00\n"), wantKV: msgs(messages.Get{Key: "foo"})},
		{name: "GET absent", method: "GET", path: "/v1/kv/foo", kvReply: messages.Result{Index: 3},
			wantStatus: 404, wantContains: "not found", wantKV: msgs(messages.Get{Key: "foo"})},
		{name: "PUT", method: "PUT", path: "/v1/kv/foo", body: ptr("bar"), kvReply: messages.Result{Index: 7, Revision: 7},
			wantStatus: 200, wantBody: ptr(`{"index":7,"revision":7}` + "\n"),
			wantHeader: map[string]string{"Content-Type": "application/json"},
			wantKV:     msgs(messages.Put{Key: "foo", Value: []byte("bar")})},
		{name: "PUT chunked", method: "PUT", path: "/v1/kv/foo", body: ptr("bar"), chunked: true,
			kvReply: messages.Result{Index: 8, Revision: 8}, wantStatus: 200, wantBody: ptr(`{"index":8,"revision":8}` + "\n"),
			wantKV: msgs(messages.Put{Key: "foo", Value: []byte("bar")})},
		{name: "DELETE", method: "DELETE", path: "/v1/kv/foo", kvReply: messages.Result{Index: 9, Revision: 9, Results: []messages.OpResult{{Deleted: 1}}},
			wantStatus: 200, wantBody: ptr(`{"index":9,"revision":9,"deleted":1}` + "\n"),
			wantHeader: map[string]string{"Content-Type": "application/json"},
			wantKV:     msgs(messages.Delete{Key: "foo"})},
		{name: "POST not allowed", method: "POST", path: "/v1/kv/foo", body: ptr("x"), kvReply: found,
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "PATCH not allowed", method: "PATCH", path: "/v1/kv/foo", body: ptr("x"), kvReply: found,
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "PUT empty key", method: "PUT", path: "/v1/kv/", body: ptr("x"), kvReply: found,
			wantStatus: 400, wantContains: "key is empty"},
		{name: "DELETE empty key", method: "DELETE", path: "/v1/kv/", kvReply: found,
			wantStatus: 400, wantContains: "key is empty"},
		{name: "GET unknown consistency", method: "GET", path: "/v1/kv/foo?consistency=stale", kvReply: found,
			wantStatus: 400, wantContains: "consistency"},
		{name: "GET malformed query", method: "GET", path: "/v1/kv/foo?consistency=%zz", kvReply: found,
			wantStatus: 400, wantContains: "query"},
		{name: "unknown v1 route", method: "GET", path: "/v1/other", kvReply: found, wantStatus: 404, wantContains: "no route"},
		{name: "v1 kv without slash", method: "GET", path: "/v1/kv", kvReply: found, wantStatus: 404},
		{name: "v1 alone", method: "GET", path: "/v1", kvReply: found, wantStatus: 404},
		{name: "metrics not served here", method: "GET", path: "/metrics", kvReply: found, wantStatus: 404},
	})
}

func TestRaftexampleRoutes(t *testing.T) {
	found := messages.Result{Value: []byte("bar"), Found: true}
	ok := messages.Result{Index: 4}
	runCases(t, []apiCase{
		{name: "PUT key", method: "PUT", path: "/foo", body: ptr("bar"), kvReply: ok,
			wantStatus: 204, wantBody: ptr(""), wantKV: msgs(messages.Put{Key: "foo", Value: []byte("bar")})},
		{name: "PUT nested key", method: "PUT", path: "/a/b%20c", body: ptr("v"), kvReply: ok,
			wantStatus: 204, wantKV: msgs(messages.Put{Key: "a/b c", Value: []byte("v")})},
		{name: "GET key", method: "GET", path: "/foo", kvReply: found,
			wantStatus: 200, wantBody: ptr("bar"), wantKV: msgs(messages.Get{Key: "foo"})},
		{name: "GET key named like a reserved prefix", method: "GET", path: "/metricsfoo", kvReply: found,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "metricsfoo"})},
		{name: "GET absent", method: "GET", path: "/foo", kvReply: messages.Result{},
			wantStatus: 404, wantKV: msgs(messages.Get{Key: "foo"})},
		{name: "GET serializable", method: "GET", path: "/foo?consistency=serializable", kvReply: found,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "foo", Serializable: true})},
		{name: "PUT empty key", method: "PUT", path: "/", body: ptr("x"), kvReply: ok, wantStatus: 400},
		{name: "GET empty key", method: "GET", path: "/", kvReply: found, wantStatus: 400},
		{name: "POST adds member", method: "POST", path: "/2", body: ptr("http://127.0.0.1:22379"), kvReply: ok,
			wantStatus: 204, wantBody: ptr(""),
			wantKV: msgs(messages.AddMember{ID: 2, PeerURL: "http://127.0.0.1:22379"})},
		{name: "POST hex id and trailing newline", method: "POST", path: "/0x10", body: ptr("https://h:1\n"), kvReply: ok,
			wantStatus: 204, wantKV: msgs(messages.AddMember{ID: 16, PeerURL: "https://h:1"})},
		{name: "DELETE removes member", method: "DELETE", path: "/3", kvReply: ok,
			wantStatus: 204, wantBody: ptr(""), wantKV: msgs(messages.RemoveMember{ID: 3})},
		{name: "POST id zero", method: "POST", path: "/0", body: ptr("http://h:1"), kvReply: ok, wantStatus: 400},
		{name: "POST id overflows", method: "POST", path: "/18446744073709551616", body: ptr("http://h:1"), kvReply: ok,
			wantStatus: 400, wantContains: "past the largest"},
		{name: "POST id reserved by raft", method: "POST", path: "/18446744073709551614", body: ptr("http://h:1"), kvReply: ok,
			wantStatus: 400, wantContains: "reserved"},
		{name: "DELETE id zero", method: "DELETE", path: "/0", kvReply: ok, wantStatus: 400},
		{name: "POST URL bad scheme", method: "POST", path: "/2", body: ptr("ftp://h:1"), kvReply: ok,
			wantStatus: 400, wantContains: "scheme"},
		{name: "POST URL without scheme", method: "POST", path: "/2", body: ptr("h:1"), kvReply: ok, wantStatus: 400},
		{name: "POST URL without host", method: "POST", path: "/2", body: ptr("http://"), kvReply: ok,
			wantStatus: 400, wantContains: "host"},
		{name: "POST URL unparsable", method: "POST", path: "/2", body: ptr("http://h:1/%zz"), kvReply: ok, wantStatus: 400},
		{name: "POST URL empty", method: "POST", path: "/2", body: ptr(""), kvReply: ok, wantStatus: 400},
		{name: "PATCH not allowed", method: "PATCH", path: "/foo", body: ptr("x"), kvReply: ok,
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT, POST, DELETE"}},
	})
}

// TestSameKeyBothRoutes checks that /<key> and /v1/kv/<key> name one key.
func TestSameKeyBothRoutes(t *testing.T) {
	verifyNoLeaks(t)
	f := newFixture(t, messages.Result{Found: true}, silent, httpapi.HandlerConfig{})
	for _, r := range []struct{ method, path string }{
		{"PUT", "/a"}, {"GET", "/v1/kv/a"}, {"PUT", "/v1/kv/a"}, {"GET", "/a"}, {"DELETE", "/v1/kv/a"},
	} {
		if resp, body := f.do(t, r.method, r.path, ptr("v"), false); resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: status %d (%q)", r.method, r.path, resp.StatusCode, body)
		}
	}
	want := msgs(
		messages.Put{Key: "a", Value: []byte("v")}, messages.Get{Key: "a"},
		messages.Put{Key: "a", Value: []byte("v")}, messages.Get{Key: "a"}, messages.Delete{Key: "a"},
	)
	if got := f.received(t, f.kv); !reflect.DeepEqual(got, want) {
		t.Errorf("kv actor got %#v, want %#v", got, want)
	}
}

func TestClusterRoutes(t *testing.T) {
	status := messages.Status{ID: 1, Leader: 2, Term: 3, RaftState: "StateFollower", Commit: 5, Applied: 4,
		Members: map[uint64]string{1: "http://a:1", 2: "http://b:2"}, Learners: []uint64{3}}
	store := messages.StoreStatus{Revision: 4, Compacted: 2, Applied: 4, DBSize: 32768, DBSizeInUse: 16384, Used: 900}
	short := httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}
	runCases(t, []apiCase{
		{name: "members", method: "GET", path: "/v1/members",
			kvReply: messages.Result{Members: []messages.Member{
				{ID: 1, PeerURL: "http://a:1", ClientURLs: []string{"http://a:3"}},
				{ID: 4, PeerURL: "http://b:2", ClientURLs: []string{}, Learner: true}}},
			wantStatus: 200,
			wantBody: ptr(`{"members":[{"id":1,"peer_url":"http://a:1","client_urls":["http://a:3"],"learner":false},` +
				`{"id":4,"peer_url":"http://b:2","client_urls":[],"learner":true}]}` + "\n"),
			wantHeader: map[string]string{"Content-Type": "application/json"},
			wantKV:     msgs(messages.MembersRequest{})},
		{name: "no members is an empty list", method: "GET", path: "/v1/members", kvReply: messages.Result{},
			wantStatus: 200, wantBody: ptr(`{"members":[]}` + "\n"), wantKV: msgs(messages.MembersRequest{})},
		{name: "members error", method: "GET", path: "/v1/members", kvReply: messages.Result{Err: messages.ErrStopped},
			wantStatus: 503, wantKV: msgs(messages.MembersRequest{})},
		{name: "members not PUT", method: "PUT", path: "/v1/members", body: ptr("x"),
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET"}},
		{name: "status", method: "GET", path: "/v1/status", raftReply: status, kvReply: store, cfg: httpapi.HandlerConfig{Quota: 1 << 30},
			wantStatus: 200,
			wantBody: ptr(`{"id":1,"leader":2,"term":3,"raft_state":"StateFollower","commit_index":5,` +
				`"applied_index":4,"members":{"1":"http://a:1","2":"http://b:2"},"learners":[3],` +
				`"version":"` + version.Version + `","data_format":"` + version.DataFormat + `",` +
				`"db":{"revision":4,"compacted_revision":2,"size":32768,"size_in_use":16384,"quota_used":900,"quota":1073741824,"no_space":false}}` + "\n"),
			wantHeader: map[string]string{"Content-Type": "application/json"},
			wantRaft:   msgs(messages.StatusRequest{}), wantKV: msgs(messages.StoreStatusRequest{})},
		{name: "status answered by pointer", method: "GET", path: "/v1/status", raftReply: &status, kvReply: store,
			wantStatus: 200, wantContains: `"leader":2`, wantRaft: msgs(messages.StatusRequest{}), wantKV: msgs(messages.StoreStatusRequest{})},
		{name: "status without the state machine's", method: "GET", path: "/v1/status", raftReply: status, kvReply: silent, cfg: short,
			wantStatus: 504, wantRaft: msgs(messages.StatusRequest{}), wantKV: msgs(messages.StoreStatusRequest{})},
		{name: "status unexpected answer", method: "GET", path: "/v1/status", raftReply: "nonsense",
			wantStatus: 500, wantRaft: msgs(messages.StatusRequest{})},
		{name: "status timeout", method: "GET", path: "/v1/status", raftReply: silent, cfg: short,
			wantStatus: 504, wantRaft: msgs(messages.StatusRequest{})},
		{name: "status not POST", method: "POST", path: "/v1/status", wantStatus: 405,
			wantHeader: map[string]string{"Allow": "GET"}},
		{name: "defragment", method: "POST", path: "/v1/maintenance/defragment",
			kvReply:    messages.Defragmented{SizeBefore: 8192, SizeAfter: 4096},
			wantStatus: 200, wantBody: ptr(`{"size_before":8192,"size_after":4096}` + "\n"), wantKV: msgs(messages.Defragment{})},
		{name: "defragment aborted", method: "POST", path: "/v1/maintenance/defragment",
			kvReply: fmt.Errorf("%w: a snapshot replaced the state", messages.ErrDefragAborted), wantStatus: 503,
			wantContains: "defragmentation aborted", wantKV: msgs(messages.Defragment{})},
		{name: "defragment not GET", method: "GET", path: "/v1/maintenance/defragment", wantStatus: 405,
			wantHeader: map[string]string{"Allow": "POST"}},
		{name: "snapshot of a member that serves no backups", method: "GET", path: "/v1/snapshot", wantStatus: 503,
			wantContains: "serves no backups"},
		{name: "healthz with leader", method: "GET", path: "/healthz", raftReply: status,
			wantStatus: 200, wantBody: ptr("ok\n"), wantRaft: msgs(messages.StatusRequest{})},
		{name: "healthz without leader", method: "GET", path: "/healthz", raftReply: messages.Status{ID: 1},
			wantStatus: 503, wantContains: "leader", wantRaft: msgs(messages.StatusRequest{})},
		{name: "healthz raft silent", method: "GET", path: "/healthz", raftReply: silent, cfg: short,
			wantStatus: 503, wantContains: "status", wantRaft: msgs(messages.StatusRequest{})},
		{name: "healthz raft answers garbage", method: "GET", path: "/healthz", raftReply: 42,
			wantStatus: 503, wantRaft: msgs(messages.StatusRequest{})},
		{name: "healthz not POST", method: "POST", path: "/healthz", wantStatus: 405,
			wantHeader: map[string]string{"Allow": "GET"}},
		{name: "healthz subpath", method: "GET", path: "/healthz/x", wantStatus: 404},
	})
}

// TestErrorMapping sends each sentinel error through the routes that can
// meet it, wrapped as the kv actor may wrap it, and checks that a Result
// with an error never gives a 2xx even when its other fields look fine.
func TestErrorMapping(t *testing.T) {
	type mapping struct {
		err        error
		status     int
		contains   string
		retryAfter string
	}
	mappings := []mapping{
		{messages.ErrNoLeader, 503, "no leader", "1"},
		{messages.ErrProposalDropped, 503, "retry later", "1"},
		{messages.ErrStopped, 503, "stopping", ""},
		{messages.ErrRemoved, 503, "removed", ""},
		{messages.ErrTimeout, 504, "timed out", ""},
		{messages.ErrNotFound, 404, "not found", ""},
		{messages.ErrUnknownMember, 404, "unknown member", ""},
		{messages.ErrMemberExists, 409, "already exists", ""},
		{messages.ErrIDRemoved, 409, "cannot be reused", ""},
		{messages.ErrConfChangePending, 503, "still being applied", "1"},
		{messages.ErrPeerURLExists, 409, "peer URL already belongs", ""},
		{messages.ErrNotEnoughStarted, 409, "not enough started members", ""},
		{messages.ErrLearnerNotReady, 409, "not caught up", ""},
		{messages.ErrNotLearner, 409, "not a learner", ""},
		{errors.New("disk on fire"), 500, "disk on fire", ""},
		// The kv actor's own refusals of what the door should have caught,
		// and of entries refused when applied: the client's, nothing written.
		{messages.ErrEmptyKey, 400, "key is empty", ""},
		{fmt.Errorf("%w: 9000 bytes, at most 8192", messages.ErrKeyTooLarge), 400, "key too large: 9000 bytes", ""},
		{fmt.Errorf("%w: what", messages.ErrBadRequest), 400, "bad request: what", ""},
		{fmt.Errorf("%w: bad command", messages.ErrEntryRefused), 400, "refused when applied: bad command", ""},
		{messages.ErrValueTooLarge, 413, "value too large", ""},
		{fmt.Errorf("%w: %w", messages.ErrEntryRefused, messages.ErrValueTooLarge), 413, "refused when applied: value too large", ""},
		// Leases: a put naming a lease gone is refused when applied, and
		// is a 404 all the same.
		{messages.ErrLeaseNotFound, 404, "requested lease not found", ""},
		{fmt.Errorf("%w: %w", messages.ErrEntryRefused, messages.ErrLeaseNotFound), 404, "refused when applied: requested lease not found", ""},
		{fmt.Errorf("%w: %w", messages.ErrEntryRefused, messages.ErrLeaseExists), 409, "lease already exists", ""},
		{messages.ErrLeaseTTLTooLarge, 400, "too large lease TTL", ""},
		{messages.ErrLeaseExpiring, 503, "its revocation is being applied", "1"},
	}
	routes := []struct {
		method, path string
		body         *string
		sent         any
	}{
		{"GET", "/v1/kv/k", nil, messages.Get{Key: "k"}},
		{"PUT", "/v1/kv/k", ptr("v"), messages.Put{Key: "k", Value: []byte("v")}},
		{"DELETE", "/v1/kv/k", nil, messages.Delete{Key: "k"}},
		{"GET", "/k", nil, messages.Get{Key: "k"}},
		{"PUT", "/k", ptr("v"), messages.Put{Key: "k", Value: []byte("v")}},
		{"POST", "/5", ptr("http://h:5"), messages.AddMember{ID: 5, PeerURL: "http://h:5"}},
		{"DELETE", "/5", nil, messages.RemoveMember{ID: 5}},
		{"GET", "/v1/members", nil, messages.MembersRequest{}},
		{"POST", "/v1/members/5", ptr(`{"peer_url":"http://h:5"}`), messages.AddMember{ID: 5, PeerURL: "http://h:5"}},
		{"DELETE", "/v1/members/5", nil, messages.RemoveMember{ID: 5}},
	}
	var cases []apiCase
	for _, m := range mappings {
		for _, r := range routes {
			cases = append(cases, apiCase{
				name:   fmt.Sprintf("%s %s %v", r.method, r.path, m.err),
				method: r.method, path: r.path, body: r.body,
				kvReply: messages.Result{
					Err:   fmt.Errorf("wrapped: %w", m.err),
					Found: true, Value: []byte("v"), Index: 1,
					Members: []messages.Member{{ID: 1, PeerURL: "http://a:1"}},
				},
				wantStatus: m.status, wantContains: m.contains,
				wantHeader: map[string]string{"Retry-After": m.retryAfter},
				wantKV:     msgs(r.sent),
			})
		}
	}
	runCases(t, cases)
}

// TestUnknownReplies checks that an answer the handler does not understand
// is a 500, not a success.
func TestUnknownReplies(t *testing.T) {
	runCases(t, []apiCase{
		{name: "string answer to PUT", method: "PUT", path: "/v1/kv/k", body: ptr("v"), kvReply: "ok",
			wantStatus: 500, wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
		{name: "nil pointer answer to PUT", method: "PUT", path: "/k", body: ptr("v"), kvReply: (*messages.Result)(nil),
			wantStatus: 500, wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
		{name: "error value answer to GET", method: "GET", path: "/k", kvReply: messages.ErrNoLeader,
			wantStatus: 503, wantHeader: map[string]string{"Retry-After": "1"}, wantKV: msgs(messages.Get{Key: "k"})},
	})
}

func TestTimeouts(t *testing.T) {
	short := httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}
	const unknown = "outcome of the write is unknown"
	runCases(t, []apiCase{
		{name: "PUT v1", method: "PUT", path: "/v1/kv/k", body: ptr("v"), kvReply: silent, cfg: short,
			wantStatus: 504, wantContains: unknown, wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
		{name: "DELETE v1", method: "DELETE", path: "/v1/kv/k", kvReply: silent, cfg: short,
			wantStatus: 504, wantContains: unknown, wantKV: msgs(messages.Delete{Key: "k"})},
		{name: "PUT raftexample", method: "PUT", path: "/k", body: ptr("v"), kvReply: silent, cfg: short,
			wantStatus: 504, wantContains: unknown, wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
		{name: "POST member", method: "POST", path: "/2", body: ptr("http://h:2"), kvReply: silent, cfg: short,
			wantStatus: 504, wantContains: unknown, wantKV: msgs(messages.AddMember{ID: 2, PeerURL: "http://h:2"})},
		{name: "DELETE member", method: "DELETE", path: "/2", kvReply: silent, cfg: short,
			wantStatus: 504, wantContains: unknown, wantKV: msgs(messages.RemoveMember{ID: 2})},
		{name: "GET", method: "GET", path: "/v1/kv/k", kvReply: silent, cfg: short,
			wantStatus: 504, wantContains: "timed out", wantKV: msgs(messages.Get{Key: "k"})},
		{name: "members", method: "GET", path: "/v1/members", kvReply: silent, cfg: short,
			wantStatus: 504, wantContains: "timed out", wantKV: msgs(messages.MembersRequest{})},
		{name: "kv actor's own timeout on a write", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply:    messages.Result{Err: messages.ErrTimeout},
			wantStatus: 504, wantContains: unknown, wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
	})
}

func TestBodyLimit(t *testing.T) {
	limit := httpapi.HandlerConfig{MaxRequestBytes: 8}
	ok := messages.Result{Index: 1}
	const defaultLimit = 1572864
	runCases(t, []apiCase{
		{name: "at the limit", method: "PUT", path: "/v1/kv/k", body: ptr("12345678"), cfg: limit, kvReply: ok,
			wantStatus: 200, wantKV: msgs(messages.Put{Key: "k", Value: []byte("12345678")})},
		{name: "over the limit", method: "PUT", path: "/v1/kv/k", body: ptr("123456789"), cfg: limit, kvReply: ok,
			wantStatus: 413, wantContains: "8 bytes"},
		{name: "over the limit chunked", method: "PUT", path: "/v1/kv/k", body: ptr("123456789"), chunked: true,
			cfg: limit, kvReply: ok, wantStatus: 413, wantContains: "8 bytes"},
		{name: "raftexample PUT over the limit", method: "PUT", path: "/k", body: ptr("123456789"), chunked: true,
			cfg: limit, kvReply: ok, wantStatus: 413},
		{name: "member URL over the limit", method: "POST", path: "/2", body: ptr("http://hostname:2"),
			cfg: limit, kvReply: ok, wantStatus: 413},
		{name: "default limit accepted", method: "PUT", path: "/v1/kv/k", body: ptr(strings.Repeat("x", defaultLimit)),
			kvReply: ok, wantStatus: 200,
			wantKV: msgs(messages.Put{Key: "k", Value: []byte(strings.Repeat("x", defaultLimit))})},
		{name: "default limit exceeded", method: "PUT", path: "/v1/kv/k", body: ptr(strings.Repeat("x", defaultLimit+1)),
			chunked: true, kvReply: ok, wantStatus: 413},
	})
}

// TestServerErrorsAreLogged checks that a 500 is logged at error with the
// request and the cause, that the routine 5xx (no leader, timeouts) stay at
// debug, as client errors stay unlogged, and that a failing health check
// (polled by load balancers) stays at debug.
func TestServerErrorsAreLogged(t *testing.T) {
	verifyNoLeaks(t)
	f := newFixture(t, messages.Result{Err: messages.ErrNoLeader}, messages.Status{}, httpapi.HandlerConfig{})
	if resp, _ := f.do(t, "PUT", "/v1/kv/a%20b", ptr("v"), false); resp.StatusCode != 503 {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/kv/foo?consistency=stale", nil, false); resp.StatusCode != 400 {
		t.Fatalf("status = %d, want 400", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/healthz", nil, false); resp.StatusCode != 503 {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	if above := f.logs.FilterLevelExact(zapcore.WarnLevel).Len() + f.logs.FilterLevelExact(zapcore.ErrorLevel).Len(); above != 0 {
		t.Fatalf("got %d entries above info, want none: %v", above, f.logs.AllUntimed())
	}
	debugs := f.logs.FilterMessage("client request failed").FilterLevelExact(zapcore.DebugLevel).AllUntimed()
	if len(debugs) != 1 {
		t.Fatalf("got %d debug entries for the 503, want 1: %v", len(debugs), debugs)
	}
	// The path holds the key: it is logged as keys are, quoted, cut to 64
	// bytes, with its length.
	fields := debugs[0].ContextMap()
	if fields["method"] != "PUT" || fields["path"] != `"/v1/kv/a b"` || fields["path_bytes"] != 10 {
		t.Errorf("fields = %v, want method PUT path %q of 10 bytes", fields, `"/v1/kv/a b"`)
	}
	if errText, _ := fields["error"].(string); !strings.Contains(errText, messages.ErrNoLeader.Error()) {
		t.Errorf("error = %q, want it to mention %q", errText, messages.ErrNoLeader)
	}
	if n := f.logs.FilterLevelExact(zapcore.DebugLevel).FilterField(zap.String("path", "/healthz")).Len(); n != 1 {
		t.Errorf("got %d debug entries for /healthz, want 1", n)
	}

	broken := newFixture(t, messages.Result{Err: errors.New("a bug")}, messages.Status{}, httpapi.HandlerConfig{})
	if resp, _ := broken.do(t, "PUT", "/v1/kv/k", ptr("v"), false); resp.StatusCode != 500 {
		t.Fatalf("status = %d, want 500", resp.StatusCode)
	}
	if errs := broken.logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessage("client request failed").Len(); errs != 1 {
		t.Errorf("got %d error entries for the 500, want 1", errs)
	}
}

// TestStoppedActor checks that a request to an actor that is gone fails fast
// with 503 instead of waiting for the timeout.
func TestStoppedActor(t *testing.T) {
	verifyNoLeaks(t)
	f := newFixture(t, messages.Result{}, messages.Status{Leader: 1}, httpapi.HandlerConfig{Timeout: time.Minute})
	if err := f.system.Root.StopFuture(f.kv.pid).Wait(); err != nil {
		t.Fatalf("stopping the fake kv actor: %v", err)
	}
	resp, body := f.do(t, "GET", "/v1/kv/k", nil, false)
	if resp.StatusCode != 503 || !strings.Contains(body, "stopping") {
		t.Errorf("got %d %q, want 503 saying the node is stopping", resp.StatusCode, body)
	}
}

// TestUnwiredHandler checks that missing actors give a 500, not a panic.
func TestUnwiredHandler(t *testing.T) {
	verifyNoLeaks(t)
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.HandlerConfig{}))
	defer srv.Close()
	for _, path := range []string{"/v1/kv/k", "/v1/status"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 500 {
			t.Errorf("GET %s: status %d, want 500", path, resp.StatusCode)
		}
	}
}
