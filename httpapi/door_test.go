package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// What the API refuses at the door, before anything reaches an actor, and
// the routes that do what their names say: keys as written, range deletes,
// membership changes with checked peer URLs.

// longKey is a key of n bytes that no error may repeat: its first 64
// bytes are wantAbsent.
func longKey(n int) string { return strings.Repeat("k", n) }

var echoedKey = longKey(64)

// TestKeyLimits checks that every route refuses an empty key and one over
// messages.MaxKeyBytes with 400, saying how long it was and never what it
// was, and takes one of exactly the limit.
func TestKeyLimits(t *testing.T) {
	const max = messages.MaxKeyBytes
	atMax, over := longKey(max), longKey(max+1)
	tooLarge := fmt.Sprintf("key too large: %d bytes, at most %d", max+1, max)
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample}
	put := messages.Result{Index: 1, Revision: 1}
	refused := func(name, method, path string, body *string, cfg httpapi.HandlerConfig, contains string) apiCase {
		return apiCase{name: name, method: method, path: path, body: body, cfg: cfg, kvReply: put,
			wantStatus: 400, wantContains: contains, wantAbsent: echoedKey}
	}
	txn := func(body string) *string { return ptr(body) }
	runCases(t, []apiCase{
		{name: "PUT /v1/kv of a key at the limit", method: "PUT", path: "/v1/kv/" + atMax, body: ptr("v"), kvReply: put,
			wantStatus: 200, wantKV: msgs(messages.Put{Key: atMax, Value: []byte("v")})},
		refused("PUT /v1/kv over the limit", "PUT", "/v1/kv/"+over, ptr("v"), httpapi.HandlerConfig{}, tooLarge),
		refused("GET /v1/kv over the limit", "GET", "/v1/kv/"+over, nil, httpapi.HandlerConfig{}, tooLarge),
		refused("GET /v1/kv at a revision over the limit", "GET", "/v1/kv/"+over+"?revision=3", nil, httpapi.HandlerConfig{}, tooLarge),
		refused("DELETE /v1/kv over the limit", "DELETE", "/v1/kv/"+over, nil, httpapi.HandlerConfig{}, tooLarge),
		refused("conditional DELETE over the limit", "DELETE", "/v1/kv/"+over, nil, httpapi.HandlerConfig{}, tooLarge),
		{name: "PUT /key at the limit", method: "PUT", path: "/" + atMax, body: ptr("v"), kvReply: put,
			wantStatus: 204, wantKV: msgs(messages.Put{Key: atMax, Value: []byte("v")})},
		refused("PUT /key over the limit", "PUT", "/"+over, ptr("v"), httpapi.HandlerConfig{}, tooLarge),
		refused("GET /key over the limit", "GET", "/"+over, nil, httpapi.HandlerConfig{}, tooLarge),
		refused("GET /key empty", "GET", "/", nil, httpapi.HandlerConfig{}, "key is empty"),

		// raftexample's key is the URI, slash included.
		{name: "raftexample PUT /key at the limit, slash included", method: "PUT", path: "/" + longKey(max-1), body: ptr("v"),
			cfg: rx, kvReply: put, wantStatus: 204, wantKV: msgs(messages.Put{Key: "/" + longKey(max-1), Value: []byte("v")})},
		refused("raftexample PUT /key over the limit", "PUT", "/"+atMax, ptr("v"), rx, tooLarge),
		refused("raftexample PUT /v1/kv over the limit", "PUT", "/v1/kv/"+atMax, ptr("v"), rx, tooLarge),

		// Range bounds are held to the same limit.
		refused("range prefix over the limit", "GET", "/v1/kv/?prefix="+over, nil, httpapi.HandlerConfig{},
			fmt.Sprintf("prefix: %d bytes", max+1)),
		refused("range end over the limit", "GET", "/v1/kv/a?end="+over, nil, httpapi.HandlerConfig{},
			fmt.Sprintf("end: %d bytes", max+1)),
		refused("range start over the limit", "GET", "/v1/kv/"+over+"?end=z", nil, httpapi.HandlerConfig{},
			fmt.Sprintf("start: %d bytes", max+1)),
		refused("DELETE range end over the limit", "DELETE", "/v1/kv/a?end="+over, nil, httpapi.HandlerConfig{},
			fmt.Sprintf("end: %d bytes", max+1)),
		{name: "range prefix at the limit", method: "GET", path: "/v1/kv/?prefix=" + atMax, kvReply: onePage(5, false),
			wantStatus: 200, wantKV: msgs(messages.Range{Start: atMax, End: longKey(max-1) + "l"})},

		// A transaction's every key: compares, operations, range bounds.
		refused("txn compare key over the limit", "POST", "/v1/txn",
			txn(`{"compare":[{"key":"`+over+`","target":"version","op":"=","number":0}]}`), httpapi.HandlerConfig{}, tooLarge),
		refused("txn put key over the limit", "POST", "/v1/txn",
			txn(`{"success":[{"op":"put","key":"`+over+`","value":"v"}]}`), httpapi.HandlerConfig{}, tooLarge),
		refused("txn get key over the limit", "POST", "/v1/txn",
			txn(`{"failure":[{"op":"get","key":"`+over+`"}]}`), httpapi.HandlerConfig{}, "failure operation 0: "+tooLarge),
		refused("txn delete key over the limit", "POST", "/v1/txn",
			txn(`{"success":[{"op":"delete","key":"`+over+`"}]}`), httpapi.HandlerConfig{}, tooLarge),
		refused("txn range end over the limit", "POST", "/v1/txn",
			txn(`{"success":[{"op":"range","key":"a","end":"`+over+`"}]}`), httpapi.HandlerConfig{}, fmt.Sprintf("end: %d bytes", max+1)),
		refused("txn range prefix over the limit", "POST", "/v1/txn",
			txn(`{"success":[{"op":"range","key":"`+over+`","prefix":true}]}`), httpapi.HandlerConfig{}, fmt.Sprintf("key: %d bytes", max+1)),
		refused("txn get with no key", "POST", "/v1/txn", txn(`{"success":[{"op":"get"}]}`), httpapi.HandlerConfig{}, "key is empty"),
		refused("txn put with an empty key", "POST", "/v1/txn", txn(`{"success":[{"op":"put","key":"","value":"v"}]}`),
			httpapi.HandlerConfig{}, "key is empty"),
		refused("txn delete with no key", "POST", "/v1/txn", txn(`{"success":[{"op":"delete"}]}`), httpapi.HandlerConfig{}, "key is empty"),
		refused("txn range of one key with no key", "POST", "/v1/txn", txn(`{"success":[{"op":"range"}]}`),
			httpapi.HandlerConfig{}, "key is empty"),
		refused("txn range from no key to an end", "POST", "/v1/txn", txn(`{"success":[{"op":"range","end":"m"}]}`),
			httpapi.HandlerConfig{}, "must reach every key"),
		refused("txn delete from no key to an end", "POST", "/v1/txn", txn(`{"success":[{"op":"delete","key":"","end":"m"}]}`),
			httpapi.HandlerConfig{}, "must reach every key"),
		{name: "txn delete of every key", method: "POST", path: "/v1/txn", body: txn(`{"success":[{"op":"delete","key":"","end":""}]}`),
			kvReply:    messages.Result{Succeeded: true, Results: []messages.OpResult{{Deleted: 2}}},
			wantStatus: 200, wantKV: msgs(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpDelete, End: "\x00"}}})},
	})
}

// TestUnknownParameters checks that every /v1 route, and raftexample's
// where the query is no part of the key, refuses a parameter it does not
// take, naming it, before anything is sent.
func TestUnknownParameters(t *testing.T) {
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample}
	ok := messages.Result{Index: 1, Revision: 1, Found: true}
	var cases []apiCase
	for _, r := range []struct {
		method, path string
		body         *string
		cfg          httpapi.HandlerConfig
	}{
		{"GET", "/v1/kv/a?bogus=1", nil, httpapi.HandlerConfig{}},
		{"GET", "/v1/kv/a?revision=3&bogus=1", nil, httpapi.HandlerConfig{}},
		{"GET", "/v1/kv/?prefix=a&bogus=1", nil, httpapi.HandlerConfig{}},
		{"PUT", "/v1/kv/a?bogus=1", ptr("v"), httpapi.HandlerConfig{}},
		{"PUT", "/v1/kv/a?consistency=serializable&bogus=1", ptr("v"), httpapi.HandlerConfig{}},
		{"DELETE", "/v1/kv/a?bogus=1", nil, httpapi.HandlerConfig{}},
		{"DELETE", "/v1/kv/a?prefix=true&bogus=1", nil, httpapi.HandlerConfig{}},
		{"POST", "/v1/txn?bogus=1", ptr(`{}`), httpapi.HandlerConfig{}},
		{"GET", "/v1/members?bogus=1", nil, httpapi.HandlerConfig{}},
		{"POST", "/v1/members/4?bogus=1", ptr(`{"peer_url":"http://h:4"}`), httpapi.HandlerConfig{}},
		{"DELETE", "/v1/members/4?bogus=1", nil, httpapi.HandlerConfig{}},
		{"POST", "/v1/members/4/promote?bogus=1", nil, httpapi.HandlerConfig{}},
		{"POST", "/v1/leader?bogus=1", ptr(`{"id":2}`), httpapi.HandlerConfig{}},
		{"GET", "/v1/status?bogus=1", nil, httpapi.HandlerConfig{}},
		{"GET", "/v1/digest?bogus=1", nil, httpapi.HandlerConfig{}},
		{"PUT", "/v1/kv/a?lease=5&bogus=1", ptr("v"), httpapi.HandlerConfig{}},
		{"GET", "/v1/leases?bogus=1", nil, httpapi.HandlerConfig{}},
		{"POST", "/v1/leases?bogus=1", ptr(`{"ttl":10}`), httpapi.HandlerConfig{}},
		{"GET", "/v1/leases/5?keys=true&bogus=1", nil, httpapi.HandlerConfig{}},
		{"DELETE", "/v1/leases/5?bogus=1", nil, httpapi.HandlerConfig{}},
		{"POST", "/v1/leases/5/keepalive?bogus=1", nil, httpapi.HandlerConfig{}},
		{"GET", "/a?bogus=1", nil, httpapi.HandlerConfig{}},
		{"PUT", "/a?bogus=1", ptr("v"), httpapi.HandlerConfig{}},
		{"POST", "/2?bogus=1", ptr("http://h:2"), httpapi.HandlerConfig{}},
		{"DELETE", "/2?bogus=1", nil, httpapi.HandlerConfig{}},
		{"POST", "/2?bogus=1", ptr("http://h:2"), rx},
		{"DELETE", "/2?bogus=1", nil, rx},
		{"GET", "/v1/kv/a?bogus=1", nil, rx},
		{"PUT", "/v1/kv/a?bogus=1", ptr("v"), rx},
	} {
		cases = append(cases, apiCase{name: fmt.Sprintf("%v %s %s", r.cfg.Format, r.method, r.path),
			method: r.method, path: r.path, body: r.body, cfg: r.cfg, kvReply: ok, raftReply: messages.Status{},
			wantStatus: 400, wantContains: `unknown parameter "bogus"`})
	}
	cases = append(cases,
		apiCase{name: "several unknown: the first in order is named", method: "GET", path: "/v1/kv/a?zz=1&aa=2&consistency=serializable",
			kvReply: ok, wantStatus: 400, wantContains: `unknown parameter "aa" for a read of one key; it takes consistency, revision`},
		apiCase{name: "a PUT takes lease", method: "PUT", path: "/v1/kv/a?prefix=true", body: ptr("v"),
			kvReply: ok, wantStatus: 400, wantContains: `unknown parameter "prefix" for a PUT; it takes lease`},
		apiCase{name: "raftexample's PUT takes none, not even lease", method: "PUT", path: "/a?lease=5", body: ptr("v"),
			kvReply: ok, wantStatus: 400, wantContains: `unknown parameter "lease" for a PUT; it takes none`},
		apiCase{name: "a long name is cut", method: "GET", path: "/v1/status?" + longKey(100) + "=1",
			wantStatus: 400, wantContains: "(100 bytes)", wantAbsent: longKey(65)},
		// The query of raftexample's /<key> is part of the key there.
		apiCase{name: "raftexample GET /key?bogus is a key", method: "GET", path: "/a?bogus=1", cfg: rx, kvReply: ok,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "/a?bogus=1"})},
		apiCase{name: "raftexample PUT /key?bogus is a key", method: "PUT", path: "/a?bogus=1", body: ptr("v"), cfg: rx, kvReply: ok,
			wantStatus: 204, wantKV: msgs(messages.Put{Key: "/a?bogus=1", Value: []byte("v")})},
		// Parameters a route does take still work.
		apiCase{name: "DELETE prefix=false is one key", method: "DELETE", path: "/v1/kv/a?prefix=false",
			kvReply:    messages.Result{Index: 2, Revision: 2, Results: []messages.OpResult{{Deleted: 1}}},
			wantStatus: 200, wantKV: msgs(messages.Delete{Key: "a"})},
		apiCase{name: "a malformed query under /v1 is 400 too", method: "GET", path: "/v1/status?a=%zz",
			wantStatus: 400, wantContains: "malformed query string"},
	)
	runCases(t, cases)
}

// TestDeleteRange covers DELETE /v1/kv/<key>?prefix=true and ?end=E: one
// transaction of one delete, at one revision, answered with the count.
func TestDeleteRange(t *testing.T) {
	del := func(start, end string) []any {
		return msgs(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpDelete, Key: start, End: end}}})
	}
	deleted := func(n int) messages.Result {
		return messages.Result{Index: 31, Revision: 30, Succeeded: true, Results: []messages.OpResult{{Deleted: n}}}
	}
	answer := func(n int) *string { return ptr(fmt.Sprintf(`{"index":31,"revision":30,"deleted":%d}`+"\n", n)) }
	short := httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}
	runCases(t, []apiCase{
		{name: "prefix", method: "DELETE", path: "/v1/kv/registry/pods/?prefix=true", kvReply: deleted(3),
			wantStatus: 200, wantBody: answer(3), wantHeader: map[string]string{"Raftkv-Revision": "30", "Content-Type": "application/json"},
			wantKV: del("registry/pods/", "registry/pods0")},
		{name: "prefix of a key with a leading slash", method: "DELETE", path: "/v1/kv//registry/?prefix=true", kvReply: deleted(2),
			wantStatus: 200, wantBody: answer(2), wantKV: del("/registry/", "/registry0")},
		{name: "prefix of all 0xff: every key from it", method: "DELETE", path: "/v1/kv/%FF?prefix=true", kvReply: deleted(1),
			wantStatus: 200, wantKV: del("\xff", "\x00")},
		{name: "end", method: "DELETE", path: "/v1/kv/a?end=m", kvReply: deleted(5),
			wantStatus: 200, wantBody: answer(5), wantKV: del("a", "m")},
		{name: "empty end: every key from the path's", method: "DELETE", path: "/v1/kv/a?end=", kvReply: deleted(0),
			wantStatus: 200, wantBody: answer(0), wantKV: del("a", "\x00")},
		{name: "end %00: every key from the path's", method: "DELETE", path: "/v1/kv/a?end=%00", kvReply: deleted(0),
			wantStatus: 200, wantKV: del("a", "\x00")},
		{name: "binary bounds", method: "DELETE", path: "/v1/kv/%FF%00?end=%FF%01", kvReply: deleted(1),
			wantStatus: 200, wantKV: del("\xff\x00", "\xff\x01")},
		{name: "prefix=false is the key alone", method: "DELETE", path: "/v1/kv/a?prefix=false",
			kvReply:    messages.Result{Index: 9, Revision: 9, Results: []messages.OpResult{{Deleted: 1}}},
			wantStatus: 200, wantKV: msgs(messages.Delete{Key: "a"})},

		{name: "prefix=yes", method: "DELETE", path: "/v1/kv/a?prefix=yes", kvReply: deleted(1),
			wantStatus: 400, wantContains: "prefix must be true or false"},
		{name: "prefix and end", method: "DELETE", path: "/v1/kv/a?prefix=true&end=b", kvReply: deleted(1),
			wantStatus: 400, wantContains: "not both"},
		{name: "no key: not every key by accident", method: "DELETE", path: "/v1/kv/?prefix=true", kvReply: deleted(1),
			wantStatus: 400, wantContains: "key is empty"},
		{name: "no key with an end", method: "DELETE", path: "/v1/kv/?end=m", kvReply: deleted(1),
			wantStatus: 400, wantContains: "key is empty"},
		{name: "raftexample has no delete", method: "DELETE", path: "/v1/kv/a?prefix=true",
			cfg: httpapi.HandlerConfig{Format: apply.FormatRaftexample}, kvReply: deleted(1),
			wantStatus: 405, wantContains: "no delete", wantHeader: map[string]string{"Allow": "GET, PUT"}},

		{name: "the branch did not run: 500", method: "DELETE", path: "/v1/kv/a?prefix=true",
			kvReply:    messages.Result{Index: 31, Revision: 30, Results: []messages.OpResult{{Deleted: 1}}},
			wantStatus: 500, wantKV: del("a", "b")},
		{name: "no result: 500", method: "DELETE", path: "/v1/kv/a?prefix=true",
			kvReply: messages.Result{Index: 31, Revision: 30, Succeeded: true}, wantStatus: 500, wantKV: del("a", "b")},
		{name: "no leader: 503, nothing proposed", method: "DELETE", path: "/v1/kv/a?prefix=true",
			kvReply: messages.Result{Err: messages.ErrNoLeader}, wantStatus: 503,
			wantHeader: map[string]string{"Retry-After": "1"}, wantKV: del("a", "b")},
		{name: "timeout: the delete may be applied", method: "DELETE", path: "/v1/kv/a?end=b", cfg: short,
			kvReply: silent, wantStatus: 504, wantContains: "outcome of the write is unknown", wantKV: del("a", "b")},
	})
}

// TestCompatMemberRoutesNeedAnID checks that raftexample's POST and DELETE
// /<path>, given a path that is no number, answer 405 pointing at /v1/kv/
// rather than a 400 about member ids, in raftexample's one line of text,
// without repeating the path (a key).
func TestCompatMemberRoutesNeedAnID(t *testing.T) {
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample}
	ok := messages.Result{Index: 1}
	allow := map[string]string{"Allow": "GET, PUT", "Content-Type": "text/plain; charset=utf-8"}
	runCases(t, []apiCase{
		{name: "DELETE /key", method: "DELETE", path: "/secret-key", kvReply: ok, wantStatus: 405,
			wantContains: "delete a key with DELETE /v1/kv/<key>", wantAbsent: "secret-key", wantHeader: allow},
		{name: "DELETE /key in the raftexample format", method: "DELETE", path: "/secret-key", cfg: rx, kvReply: ok,
			wantStatus: 405, wantContains: "/v1/kv/<key> (which this member's raftexample format does not have)",
			wantAbsent: "secret-key", wantHeader: allow},
		{name: "DELETE /a/b", method: "DELETE", path: "/a/b", kvReply: ok, wantStatus: 405, wantHeader: allow},
		{name: "DELETE /", method: "DELETE", path: "/", kvReply: ok, wantStatus: 405, wantHeader: allow},
		{name: "DELETE /-1", method: "DELETE", path: "/-1", kvReply: ok, wantStatus: 405, wantHeader: allow},
		{name: "POST /key", method: "POST", path: "/secret-key", body: ptr("http://h:1"), kvReply: ok, wantStatus: 405,
			wantContains: "write a key with PUT /<key> or PUT /v1/kv/<key>", wantAbsent: "secret-key", wantHeader: allow},
		{name: "POST /", method: "POST", path: "/", body: ptr("http://h:1"), kvReply: ok, wantStatus: 405, wantHeader: allow},
		{name: "POST /-1", method: "POST", path: "/-1", body: ptr("http://h:1"), kvReply: ok, wantStatus: 405, wantHeader: allow},
		// A number that is no member id is still about ids.
		{name: "DELETE an id past the largest", method: "DELETE", path: "/18446744073709551616", kvReply: ok,
			wantStatus: 400, wantContains: "past the largest"},
		{name: "DELETE an id in hex", method: "DELETE", path: "/0x10", kvReply: ok,
			wantStatus: 204, wantKV: msgs(messages.RemoveMember{ID: 16})},
		// /v1/members/<id> says what is wrong with the id.
		{name: "DELETE /v1/members/abc", method: "DELETE", path: "/v1/members/abc", kvReply: ok,
			wantStatus: 400, wantContains: `a member id is an unsigned integer, not "abc"`},
	})
}

// TestPeerURLs checks that a member added through either route has its
// peer URL checked and written as membership does (the rule's cases are in
// membership/url_test.go): refused with 400 and the reason, or sent to the
// kv actor in one spelling, so that its duplicate check sees one URL
// written two ways as one.
func TestPeerURLs(t *testing.T) {
	ok := messages.Result{Index: 9}
	var cases []apiCase
	for _, c := range []struct {
		url, want, contains string // want "": 400 with contains
	}{
		{"http://h:022379", "http://h:22379", ""},
		{"HTTP://h:1/", "http://h:1", ""},
		{"http://h:99999", "", "peer URL \"http://h:99999\": want scheme://host:port, with a port from 1 to 65535"},
		{"http://:2380", "", "with a host"},
		{"http://h:1/raft", "", "with no path"},
		{"", "", "scheme must be http or https"},
	} {
		for _, route := range []struct {
			path, body string
			status     int
			learner    bool
		}{
			{"/v1/members/4", fmt.Sprintf(`{"peer_url":%q}`, c.url), 201, false},
			{"/4", c.url, 204, false},
		} {
			ac := apiCase{name: route.path + " " + c.url, method: "POST", path: route.path, body: ptr(route.body), kvReply: ok,
				wantStatus: 400, wantContains: c.contains}
			if c.want != "" {
				ac.wantStatus = route.status
				ac.wantKV = msgs(messages.AddMember{ID: 4, PeerURL: c.want})
				if route.status == 201 {
					ac.wantContains = fmt.Sprintf(`"peer_url":%q`, c.want)
				}
			}
			cases = append(cases, ac)
		}
	}
	runCases(t, cases)
}

// rawDo sends one request as raw bytes on a new connection, so that no
// client cleans or re-encodes its target, and returns the answer.
func rawDo(t *testing.T, serverURL, method, target, body string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(serverURL, "http://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: raftkv\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, target, len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	return resp, string(b)
}

// TestKeysAsSent sends request lines byte for byte (no client in between to
// clean them) and checks the key each names: the rest of the path after
// /v1/kv/, never cleaned, never redirected, percent-escapes decoded once;
// and that /metrics and /debug/pprof/ are served by the handlers given,
// next to the keys, from the same handler.
func TestKeysAsSent(t *testing.T) {
	verifyNoLeaks(t)
	served := func(what string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, what) })
	}
	native := httpapi.HandlerConfig{Metrics: served("metrics"), Debug: served("pprof")}
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample, Metrics: served("metrics")}
	found := messages.Result{Found: true, Value: []byte("v"), Index: 1}
	get := func(k string) []any { return msgs(messages.Get{Key: k}) }
	for _, c := range []struct {
		cfg            httpapi.HandlerConfig
		method, target string
		status         int
		body           string // "" for the value
		kv             []any
	}{
		{native, "GET", "/v1/kv//registry/pods/a", 200, "", get("/registry/pods/a")},
		{native, "GET", "/v1/kv/a//b", 200, "", get("a//b")},
		{native, "GET", "/v1/kv/./a", 200, "", get("./a")},
		{native, "GET", "/v1/kv/../a", 200, "", get("../a")},
		{native, "GET", "/v1/kv/a/..", 200, "", get("a/..")},
		{native, "GET", "/v1/kv/.", 200, "", get(".")},
		{native, "GET", "/v1/kv/..%2F..", 200, "", get("../..")},
		{native, "GET", "/v1/kv/%2Fx%00y", 200, "", get("/x\x00y")},
		{native, "GET", "/v1/kv/%252F", 200, "", get("%2F")},
		{native, "GET", "/v1/kv/metrics", 200, "", get("metrics")},
		{native, "PUT", "/v1/kv/a/./b/../c", 200, `{"index":1,"revision":0}` + "\n",
			msgs(messages.Put{Key: "a/./b/../c", Value: []byte("v")})},
		{native, "DELETE", "/v1/kv//a/", 200, `{"index":1,"revision":0,"deleted":0}` + "\n", msgs(messages.Delete{Key: "/a/"})},
		{native, "GET", "//foo", 200, "", get("/foo")},
		{native, "GET", "/./a", 200, "", get("./a")},
		{native, "GET", "/metrics", 200, "metrics", nil},
		{native, "GET", "/metrics/", 404, "not found\n", nil},
		{native, "GET", "/debug/pprof/heap", 200, "pprof", nil},
		{native, "GET", "/debug/pprof", 200, "pprof", nil},
		// raftexample's key is the URI as sent: /v1/kv/<rest> and /<rest>
		// meet on it, raw bytes, escapes and "//" included.
		{rx, "GET", "/v1/kv//a", 200, "", get("//a")},
		{rx, "GET", "/v1/kv/é", 200, "", get("/é")},
		{rx, "GET", "/é", 200, "", get("/é")},
		{rx, "GET", "/v1/kv/a%2fb", 200, "", get("/a%2fb")},
		{rx, "GET", "/debug/pprof/heap", 200, "", get("/debug/pprof/heap")},
	} {
		t.Run(fmt.Sprintf("%v %s %s", c.cfg.Format, c.method, c.target), func(t *testing.T) {
			f := newFixture(t, found, nil, c.cfg)
			resp, body := rawDo(t, f.url, c.method, c.target, "v")
			want := c.body
			if want == "" {
				want = "v"
			}
			if resp.StatusCode != c.status || body != want {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, c.target, resp.StatusCode, body, c.status, want)
			}
			if got := f.received(t, f.kv); !reflect.DeepEqual(got, c.kv) {
				t.Errorf("kv actor got %#v, want %#v", got, c.kv)
			}
		})
	}
}
