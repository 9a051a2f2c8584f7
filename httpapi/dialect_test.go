package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// TestKeyMapping checks which key each route names in each format. In the
// raftexample format a key is what raftexample itself would store for the
// same request, so /v1/kv/<rest> and /<rest> meet on "/"+<rest>.
func TestKeyMapping(t *testing.T) {
	found := messages.Result{Value: []byte("v"), Found: true, Index: 2}
	ok := messages.Result{Index: 3}
	native := httpapi.HandlerConfig{Format: apply.FormatNative}
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample}
	get := func(key string, serializable bool) []any {
		return msgs(messages.Get{Key: key, Serializable: serializable})
	}
	put := func(key string) []any { return msgs(messages.Put{Key: key, Value: []byte("v")}) }
	type mapping struct {
		method, path string
		native       []any // what the kv actor gets in the native format; nil: nothing, 400
		raftexample  []any
		rxStatus     int // the raftexample format's status when it is not the usual one
	}
	mappings := []mapping{
		{"PUT", "/a", put("a"), put("/a"), 0},
		{"PUT", "/v1/kv/a", put("a"), put("/a"), 0},
		{"GET", "/a", get("a", false), get("/a", false), 0},
		{"GET", "/v1/kv/a", get("a", false), get("/a", false), 0},
		{"GET", "/a%20b", get("a b", false), get("/a%20b", false), 0},
		{"GET", "/v1/kv/a%20b", get("a b", false), get("/a%20b", false), 0},
		{"PUT", "/a%2Fb", put("a/b"), put("/a%2Fb"), 0},
		{"PUT", "/v1/kv/a%2Fb", put("a/b"), put("/a%2Fb"), 0},
		{"GET", "/a/b/c", get("a/b/c", false), get("/a/b/c", false), 0},
		{"GET", "/v1/kv/a/b/c", get("a/b/c", false), get("/a/b/c", false), 0},
		// The query string is part of a raftexample key; on /v1/kv it is
		// parameters in both formats.
		{"GET", "/a?consistency=serializable", get("a", true), get("/a?consistency=serializable", false), 0},
		{"GET", "/a?consistency=bogus", nil, get("/a?consistency=bogus", false), 0},
		// A query that is no part of the key holds parameters, and PUT
		// takes none.
		{"PUT", "/a?x=1", nil, put("/a?x=1"), 0},
		{"GET", "/v1/kv/a?consistency=serializable", get("a", true), get("/a", true), 0},
		{"PUT", "/v1/kv/a?x=1", nil, nil, 0},
		// Under /v1/kv/ the rest of the path is the key as sent: never
		// cleaned, decoded once in the native format, kept escaped in
		// raftexample's.
		{"GET", "/v1/kv//registry/pods/a", get("/registry/pods/a", false), get("//registry/pods/a", false), 0},
		{"PUT", "/v1/kv/a/../b", put("a/../b"), put("/a/../b"), 0},
		{"PUT", "/v1/kv/%252F", put("%2F"), put("/%252F"), 0},
		{"GET", "//a", get("/a", false), get("//a", false), 0},
		// raftexample stores "/" for PUT /; /v1/kv/ still needs a name.
		{"PUT", "/", nil, put("/"), 0},
		{"PUT", "/v1/kv/", nil, nil, 0},
		// Deleting a member works in both; deleting a key only where a
		// delete exists.
		{"DELETE", "/3", msgs(messages.RemoveMember{ID: 3}), msgs(messages.RemoveMember{ID: 3}), 0},
		{"DELETE", "/v1/kv/a", msgs(messages.Delete{Key: "a"}), nil, http.StatusMethodNotAllowed},
		{"POST", "/2", msgs(messages.AddMember{ID: 2, PeerURL: "http://h:2"}), msgs(messages.AddMember{ID: 2, PeerURL: "http://h:2"}), 0},
		// The route matched on the decoded path, but its escaped form names
		// no raftexample key.
		{"GET", "/v1%2Fkv/a", get("a", false), nil, 0},
	}
	var cases []apiCase
	for _, m := range mappings {
		for _, f := range []struct {
			cfg    httpapi.HandlerConfig
			want   []any
			status int
		}{{native, m.native, 0}, {rx, m.raftexample, m.rxStatus}} {
			c := apiCase{
				name:   fmt.Sprintf("%v %s %s", f.cfg.Format, m.method, m.path),
				method: m.method, path: m.path, cfg: f.cfg,
				kvReply: ok, wantKV: f.want, wantStatus: http.StatusBadRequest,
			}
			switch m.method {
			case "GET":
				c.kvReply = found
				c.wantBody = ptr("v")
			case "PUT":
				c.body = ptr("v")
			case "POST":
				c.body = ptr("http://h:2")
			}
			if f.want != nil {
				c.wantStatus = http.StatusOK
				if m.method != "GET" && !strings.HasPrefix(m.path, "/v1/") {
					c.wantStatus = http.StatusNoContent
				}
			} else {
				c.wantBody = nil
			}
			if f.status == http.StatusMethodNotAllowed {
				c.wantStatus = f.status
				c.wantContains = "no delete"
				c.wantHeader = map[string]string{"Allow": "GET, PUT"}
			}
			cases = append(cases, c)
		}
	}
	runCases(t, cases)
}

// TestRaftexampleFormatRefusals covers what the raftexample format refuses or
// allows that the native one does not.
func TestRaftexampleFormatRefusals(t *testing.T) {
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample}
	const notUTF8 = "valid UTF-8"
	runCases(t, []apiCase{
		{name: "value not UTF-8 on /key", method: "PUT", path: "/k", body: ptr("ok\xff"), cfg: rx,
			kvReply: messages.Result{}, wantStatus: 400, wantContains: notUTF8},
		{name: "value not UTF-8 on /v1/kv", method: "PUT", path: "/v1/kv/k", body: ptr("\xc3"), cfg: rx,
			kvReply: messages.Result{}, wantStatus: 400, wantContains: notUTF8},
		{name: "value not UTF-8 accepted in native", method: "PUT", path: "/v1/kv/k", body: ptr("\xc3"),
			kvReply: messages.Result{Index: 1}, wantStatus: 200, wantKV: msgs(messages.Put{Key: "k", Value: []byte("\xc3")})},
		{name: "DELETE of an empty key is still a 405", method: "DELETE", path: "/v1/kv/", cfg: rx,
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT"}},
		{name: "PATCH lists the format's methods", method: "PATCH", path: "/v1/kv/k", body: ptr("x"), cfg: rx,
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT"}},
		{name: "raftexample route keeps its methods", method: "PATCH", path: "/k", body: ptr("x"), cfg: rx,
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT, POST, DELETE"}},
		{name: "reserved paths are not keys", method: "GET", path: "/v1/other", cfg: rx, wantStatus: 404},
	})
}

// A key that is not UTF-8 cannot be sent by Go's client, which escapes it;
// a raw request line can carry one, and raftexample would take it as is.
func TestRaftexampleRawKeyNotUTF8(t *testing.T) {
	verifyNoLeaks(t)
	f := newFixture(t, messages.Result{}, nil, httpapi.HandlerConfig{})
	h := httpapi.NewHandler(httpapi.HandlerConfig{Root: f.system.Root, KV: f.kv.pid, Format: apply.FormatRaftexample})
	r := httptest.NewRequest("PUT", "/k", strings.NewReader("v"))
	r.RequestURI = "/k\xff"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "valid UTF-8") {
		t.Fatalf("got %d %q, want 400 about UTF-8", w.Code, w.Body.String())
	}
	if got := f.received(t, f.kv); len(got) != 0 {
		t.Fatalf("kv actor got %#v, want nothing", got)
	}
}

// The kv actor's own refusals map like the handler's, whatever format the
// handler was given: 405 with an Allow header without the refused method,
// 400 for UTF-8.
func TestFormatErrorMapping(t *testing.T) {
	unsupported := messages.Result{Err: fmt.Errorf("wrapped: %w: raftexample has no delete", messages.ErrUnsupported), Index: 1}
	invalid := messages.Result{Err: fmt.Errorf("wrapped: %w", apply.ErrInvalidUTF8), Index: 1}
	runCases(t, []apiCase{
		{name: "unsupported DELETE on /v1/kv", method: "DELETE", path: "/v1/kv/k", kvReply: unsupported,
			wantStatus: 405, wantContains: "not supported by the state machine format: raftexample has no delete",
			wantHeader: map[string]string{"Allow": "GET, PUT"}, wantKV: msgs(messages.Delete{Key: "k"})},
		{name: "unsupported PUT on /key", method: "PUT", path: "/k", body: ptr("v"), kvReply: unsupported,
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, POST, DELETE"},
			wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
		{name: "invalid UTF-8 on /v1/kv", method: "PUT", path: "/v1/kv/k", body: ptr("v"), kvReply: invalid,
			wantStatus: 400, wantContains: "valid UTF-8", wantHeader: map[string]string{"Allow": ""},
			wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
		{name: "invalid UTF-8 on /key", method: "PUT", path: "/k", body: ptr("v"), kvReply: invalid,
			wantStatus: 400, wantContains: "valid UTF-8", wantKV: msgs(messages.Put{Key: "k", Value: []byte("v")})},
	})
}

// A handler given a format it does not know serves nothing rather than guess.
func TestUnknownFormatHandler(t *testing.T) {
	bad := httpapi.HandlerConfig{Format: apply.Format(7)}
	var cases []apiCase
	for _, r := range []struct{ method, path string }{
		{"GET", "/k"}, {"PUT", "/k"}, {"GET", "/v1/kv/k"}, {"DELETE", "/v1/kv/k"}, {"GET", "/v1/members"},
	} {
		cases = append(cases, apiCase{name: r.method + " " + r.path, method: r.method, path: r.path, body: ptr("v"),
			cfg: bad, kvReply: messages.Result{Found: true}, wantStatus: 500, wantContains: "unknown state machine format"})
	}
	runCases(t, cases)
}
