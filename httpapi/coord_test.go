package httpapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// The fixture of handler_test.go, extended for the coordination API
// (docs/api.md): requests with headers (preconditions), and answers that are
// JSON even when they are errors (412, 410), compared as JSON.

// coordCase is an apiCase with request headers and a JSON answer.
type coordCase struct {
	apiCase
	reqHeader http.Header
	// wantJSON, when set, is the body as JSON: both are decoded with
	// encoding/json and compared, so that the shape (which fields are
	// present) counts and the order of fields does not. An error answer
	// with wantJSON is JSON, not a line of text.
	wantJSON string
}

// decodeJSON decodes one JSON value, numbers kept exact, and refuses
// anything after it but white space.
func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// checkJSON reports whether got is the JSON value want.
func checkJSON(t *testing.T, got, want string) {
	t.Helper()
	g, err := decodeJSON(got)
	if err != nil {
		t.Errorf("body %q is not one JSON value: %v", got, err)
		return
	}
	w, err := decodeJSON(want)
	if err != nil {
		t.Fatalf("bad wantJSON %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body = %s, want JSON %s", strings.TrimSpace(got), want)
	}
}

func runCoordCases(t *testing.T, cases []coordCase) {
	t.Helper()
	verifyNoLeaks(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.kvReply, c.raftReply, c.cfg)
			resp, body := f.doWithHeader(t, c.method, c.path, c.reqHeader, c.body, c.chunked)
			checkAnswer(t, f, c.apiCase, c.wantJSON, resp, body)
		})
	}
}

// hdr builds request headers from name, value pairs; a name may repeat.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// A key as the kv actor answers it: the docs' example.
var fooKV = messages.KV{Key: "foo", Value: []byte("bar"), CreateRevision: 40, ModRevision: 42, Version: 2}

// keyHeaders are the headers of an answer about fooKV at store revision 57.
var keyHeaders = map[string]string{
	"ETag": `"42"`, "Raftkv-Revision": "57", "Raftkv-Create-Revision": "40", "Raftkv-Version": "2",
}

// onePage answers a Range with kvs at revision rev.
func onePage(rev uint64, more bool, kvs ...messages.KV) messages.Result {
	return messages.Result{Index: rev + 1, Revision: rev,
		Results: []messages.OpResult{{KVs: kvs, More: more, Count: len(kvs)}}}
}

// TestGetKey covers GET of one key: the key's counters in headers, a read at
// a revision as a range of that key, and the parameters one key refuses.
func TestGetKey(t *testing.T) {
	found := messages.Result{Value: []byte("bar"), Found: true, KV: fooKV, Index: 60, Revision: 57}
	absent := messages.Result{Index: 60, Revision: 57}
	old := messages.KV{Key: "foo", Value: []byte("old\x00"), CreateRevision: 40, ModRevision: 41, Version: 1}
	atRev := onePage(41, false, old)
	get := msgs(messages.Get{Key: "foo"})
	const onlyRanges = "applies to range reads"
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "headers from Result.KV and Result.Revision", method: "GET", path: "/v1/kv/foo",
			kvReply: found, wantStatus: 200, wantBody: ptr("bar"), wantKV: get,
			wantHeader: map[string]string{"ETag": `"42"`, "Raftkv-Revision": "57", "Raftkv-Create-Revision": "40",
				"Raftkv-Version": "2", "Content-Type": "application/octet-stream"}}},
		{apiCase: apiCase{name: "the compat route has the headers too", method: "GET", path: "/foo",
			kvReply: found, wantStatus: 200, wantBody: ptr("bar"), wantKV: get, wantHeader: keyHeaders}},
		{apiCase: apiCase{name: "serializable", method: "GET", path: "/v1/kv/foo?consistency=serializable",
			kvReply: found, wantStatus: 200, wantHeader: keyHeaders,
			wantKV: msgs(messages.Get{Key: "foo", Serializable: true})}},
		{apiCase: apiCase{name: "absent: 404 with the store's revision and no ETag", method: "GET", path: "/v1/kv/foo",
			kvReply: absent, wantStatus: 404, wantContains: "not found", wantKV: get,
			wantHeader: map[string]string{"Raftkv-Revision": "57", "ETag": "", "Raftkv-Version": "", "Raftkv-Create-Revision": ""}}},

		{apiCase: apiCase{name: "revision=N is a range of the key at N", method: "GET", path: "/v1/kv/foo?revision=41",
			kvReply: atRev, wantStatus: 200, wantBody: ptr("old\x00"),
			wantHeader: map[string]string{"ETag": `"41"`, "Raftkv-Revision": "41", "Raftkv-Create-Revision": "40",
				"Raftkv-Version": "1", "Content-Type": "application/octet-stream"},
			wantKV: msgs(messages.Range{Start: "foo", Revision: 41})}},
		{apiCase: apiCase{name: "revision=N serializable", method: "GET", path: "/v1/kv/foo?revision=41&consistency=serializable",
			kvReply: atRev, wantStatus: 200, wantBody: ptr("old\x00"),
			wantKV: msgs(messages.Range{Start: "foo", Revision: 41, Serializable: true})}},
		{apiCase: apiCase{name: "revision=N on the compat route", method: "GET", path: "/foo?revision=41",
			kvReply: atRev, wantStatus: 200, wantBody: ptr("old\x00"),
			wantKV: msgs(messages.Range{Start: "foo", Revision: 41})}},
		{apiCase: apiCase{name: "revision=N of a binary key", method: "GET", path: "/v1/kv/%FF%00?revision=3",
			kvReply:    onePage(3, false, messages.KV{Key: "\xff\x00", Value: []byte{1}, CreateRevision: 2, ModRevision: 3, Version: 2}),
			wantStatus: 200, wantBody: ptr("\x01"), wantHeader: map[string]string{"ETag": `"3"`},
			wantKV: msgs(messages.Range{Start: "\xff\x00", Revision: 3})}},
		{apiCase: apiCase{name: "revision=N when the key was absent", method: "GET", path: "/v1/kv/foo?revision=39",
			kvReply: onePage(39, false), wantStatus: 404, wantContains: "not found",
			wantHeader: map[string]string{"Raftkv-Revision": "39", "ETag": ""},
			wantKV:     msgs(messages.Range{Start: "foo", Revision: 39})}},
		{apiCase: apiCase{name: "revision=N answered without the range: 500", method: "GET", path: "/v1/kv/foo?revision=41",
			kvReply: messages.Result{Revision: 41}, wantStatus: 500, wantKV: msgs(messages.Range{Start: "foo", Revision: 41})}},
		{apiCase: apiCase{name: "revision=N answered with two ranges: 500", method: "GET", path: "/v1/kv/foo?revision=41",
			kvReply:    messages.Result{Revision: 41, Results: []messages.OpResult{{KVs: []messages.KV{old}, Count: 1}, {}}},
			wantStatus: 500, wantKV: msgs(messages.Range{Start: "foo", Revision: 41})}},
		{apiCase: apiCase{name: "revision=N compacted", method: "GET", path: "/v1/kv/foo?revision=3",
			kvReply:    messages.Result{Err: &messages.CompactedError{Revision: 3, Compacted: 9}},
			wantStatus: 410, wantKV: msgs(messages.Range{Start: "foo", Revision: 3})},
			wantJSON: `{"error":{"code":410,"message":"revision 3 compacted: this member's history starts after revision 9"},"compact_revision":9}`},
		{apiCase: apiCase{name: "revision=N in the future", method: "GET", path: "/v1/kv/foo?revision=99",
			kvReply:    messages.Result{Err: messages.ErrFutureRevision},
			wantStatus: 400, wantContains: "future", wantKV: msgs(messages.Range{Start: "foo", Revision: 99})}},

		{apiCase: apiCase{name: "revision=0", method: "GET", path: "/v1/kv/foo?revision=0", kvReply: found,
			wantStatus: 400, wantContains: "revision"}},
		{apiCase: apiCase{name: "revision empty", method: "GET", path: "/v1/kv/foo?revision=", kvReply: found,
			wantStatus: 400, wantContains: "revision"}},
		{apiCase: apiCase{name: "revision not a number", method: "GET", path: "/v1/kv/foo?revision=x", kvReply: found,
			wantStatus: 400, wantContains: "revision"}},
		{apiCase: apiCase{name: "revision negative", method: "GET", path: "/v1/kv/foo?revision=-1", kvReply: found,
			wantStatus: 400, wantContains: "revision"}},
		{apiCase: apiCase{name: "revision overflows", method: "GET", path: "/v1/kv/foo?revision=18446744073709551616",
			kvReply: found, wantStatus: 400, wantContains: "revision"}},
		{apiCase: apiCase{name: "limit on one key", method: "GET", path: "/v1/kv/foo?limit=5", kvReply: found,
			wantStatus: 400, wantContains: "limit " + onlyRanges}},
		{apiCase: apiCase{name: "continue on one key", method: "GET", path: "/v1/kv/foo?continue=AQ", kvReply: found,
			wantStatus: 400, wantContains: "continue " + onlyRanges}},
		{apiCase: apiCase{name: "keys_only on one key", method: "GET", path: "/v1/kv/foo?keys_only=true", kvReply: found,
			wantStatus: 400, wantContains: "keys_only " + onlyRanges}},
		{apiCase: apiCase{name: "count_only on one key", method: "GET", path: "/v1/kv/foo?count_only=true", kvReply: found,
			wantStatus: 400, wantContains: "count_only " + onlyRanges}},
		{apiCase: apiCase{name: "count_only=false on one key is still a range parameter", method: "GET",
			path: "/v1/kv/foo?count_only=false", kvReply: found, wantStatus: 400, wantContains: onlyRanges}},
		{apiCase: apiCase{name: "limit on the compat route", method: "GET", path: "/foo?limit=5", kvReply: found,
			wantStatus: 400, wantContains: onlyRanges}},
	})
}

// TestWriteAnswers covers the answers of unconditional writes: the index and
// the revision that wrote it, and for a delete how many keys it removed.
func TestWriteAnswers(t *testing.T) {
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "PUT", method: "PUT", path: "/v1/kv/foo", body: ptr("baz"),
			kvReply: messages.Result{Index: 58, Revision: 58}, wantStatus: 200,
			wantHeader: map[string]string{"Raftkv-Revision": "58", "ETag": ""},
			wantKV:     msgs(messages.Put{Key: "foo", Value: []byte("baz")})},
			wantJSON: `{"index":58,"revision":58}`},
		{apiCase: apiCase{name: "PUT of an empty value", method: "PUT", path: "/v1/kv/foo", body: ptr(""),
			kvReply: messages.Result{Index: 58, Revision: 58}, wantStatus: 200,
			wantKV: msgs(messages.Put{Key: "foo", Value: []byte{}})},
			wantJSON: `{"index":58,"revision":58}`},
		{apiCase: apiCase{name: "DELETE", method: "DELETE", path: "/v1/kv/foo",
			kvReply:    messages.Result{Index: 59, Revision: 59, Results: []messages.OpResult{{Deleted: 1}}},
			wantStatus: 200, wantBody: ptr(`{"index":59,"revision":59,"deleted":1}` + "\n"),
			wantHeader: map[string]string{"Raftkv-Revision": "59"}, wantKV: msgs(messages.Delete{Key: "foo"})}},
		{apiCase: apiCase{name: "DELETE of an absent key: the store's revision, deleted 0", method: "DELETE", path: "/v1/kv/foo",
			kvReply:    messages.Result{Index: 60, Revision: 59, Results: []messages.OpResult{{Deleted: 0}}},
			wantStatus: 200, wantBody: ptr(`{"index":60,"revision":59,"deleted":0}` + "\n"),
			wantHeader: map[string]string{"Raftkv-Revision": "59"}, wantKV: msgs(messages.Delete{Key: "foo"})}},
		{apiCase: apiCase{name: "DELETE answered without results still says deleted", method: "DELETE", path: "/v1/kv/foo",
			kvReply:    messages.Result{Index: 60, Revision: 59},
			wantStatus: 200, wantBody: ptr(`{"index":60,"revision":59,"deleted":0}` + "\n"),
			wantKV: msgs(messages.Delete{Key: "foo"})}},
		{apiCase: apiCase{name: "compat PUT: 204 with the revision header", method: "PUT", path: "/foo", body: ptr("baz"),
			kvReply: messages.Result{Index: 58, Revision: 58}, wantStatus: 204, wantBody: ptr(""),
			wantHeader: map[string]string{"Raftkv-Revision": "58"},
			wantKV:     msgs(messages.Put{Key: "foo", Value: []byte("baz")})}},
	})
}

// TestRaftexampleCoordRoutes checks that the raftexample format keeps its
// routes: the query of /<key> is part of the key, so revision= and the
// range parameters are not parameters there; /v1/kv names raftexample's keys
// (with their slash) and takes the parameters; conditional writes and
// transactions go to the kv actor, which refuses them (405).
func TestRaftexampleCoordRoutes(t *testing.T) {
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample}
	found := messages.Result{Value: []byte("v"), Found: true, KV: messages.KV{Key: "/foo", Value: []byte("v"),
		CreateRevision: 1, ModRevision: 2, Version: 2}, Revision: 3}
	unsupported := messages.Result{Err: messages.ErrUnsupported}
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "GET /key?revision= is a key", method: "GET", path: "/foo?revision=5", cfg: rx, kvReply: found,
			wantStatus: 200, wantBody: ptr("v"), wantHeader: map[string]string{"ETag": `"2"`, "Raftkv-Revision": "3"},
			wantKV: msgs(messages.Get{Key: "/foo?revision=5"})}},
		{apiCase: apiCase{name: "GET /key?limit= is a key", method: "GET", path: "/foo?limit=5&prefix=a", cfg: rx, kvReply: found,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "/foo?limit=5&prefix=a"})}},
		{apiCase: apiCase{name: "GET /key?revision=0 is a key", method: "GET", path: "/foo?revision=0", cfg: rx, kvReply: found,
			wantStatus: 200, wantKV: msgs(messages.Get{Key: "/foo?revision=0"})}},
		{apiCase: apiCase{name: "PUT /key refuses a malformed precondition", method: "PUT", path: "/foo", body: ptr("v"), cfg: rx,
			kvReply:    messages.Result{Index: 4, Revision: 4},
			wantStatus: 400, wantContains: "If-Match"},
			reqHeader: hdr("If-Match", "garbage")},
		{apiCase: apiCase{name: "conditional PUT /key refused by the kv actor", method: "PUT", path: "/foo", body: ptr("v"), cfg: rx,
			kvReply: unsupported, wantStatus: 405, wantContains: "not supported",
			wantKV: msgs(messages.Txn{
				Compares: []messages.Compare{{Key: "/foo", Target: messages.CompareModRevision, Op: messages.CompareEqual, Number: 2}},
				Success:  []messages.TxnOp{{Type: messages.OpPut, Key: "/foo", Value: []byte("v")}},
				Failure:  []messages.TxnOp{{Type: messages.OpGet, Key: "/foo"}},
			})},
			reqHeader: hdr("If-Match", `"2"`)},
		{apiCase: apiCase{name: "GET /v1/kv/key?revision=N", method: "GET", path: "/v1/kv/foo?revision=2", cfg: rx,
			kvReply: onePage(2, false, found.KV), wantStatus: 200, wantBody: ptr("v"),
			wantKV: msgs(messages.Range{Start: "/foo", Revision: 2})}},
		{apiCase: apiCase{name: "GET /v1/kv/key?limit= is 400", method: "GET", path: "/v1/kv/foo?limit=2", cfg: rx,
			kvReply: found, wantStatus: 400}},
		{apiCase: apiCase{name: "prefix in raftexample's key space", method: "GET", path: "/v1/kv/?prefix=a", cfg: rx,
			kvReply: onePage(3, false), wantStatus: 200,
			wantKV: msgs(messages.Range{Start: "/a", End: "/b"})}},
		{apiCase: apiCase{name: "empty prefix: every raftexample key", method: "GET", path: "/v1/kv/?prefix=", cfg: rx,
			kvReply: onePage(3, false), wantStatus: 200,
			wantKV: msgs(messages.Range{Start: "/", End: "0"})}},
		{apiCase: apiCase{name: "end in raftexample's key space", method: "GET", path: "/v1/kv/a?end=m", cfg: rx,
			kvReply: onePage(3, false), wantStatus: 200,
			wantKV: msgs(messages.Range{Start: "/a", End: "/m"})}},
		{apiCase: apiCase{name: "empty end: every key from the path's", method: "GET", path: "/v1/kv/a?end=", cfg: rx,
			kvReply: onePage(3, false), wantStatus: 200,
			wantKV: msgs(messages.Range{Start: "/a", End: "\x00"})}},
		{apiCase: apiCase{name: "no key, no parameters: every key", method: "GET", path: "/v1/kv/", cfg: rx,
			kvReply: onePage(3, false), wantStatus: 200,
			wantKV: msgs(messages.Range{Start: "", End: "\x00"})}},
		{apiCase: apiCase{name: "conditional PUT refused by the kv actor", method: "PUT", path: "/v1/kv/foo", body: ptr("v"), cfg: rx,
			kvReply: unsupported, wantStatus: 405, wantContains: "not supported",
			wantHeader: map[string]string{"Allow": "GET"},
			wantKV: msgs(messages.Txn{
				Compares: []messages.Compare{{Key: "/foo", Target: messages.CompareCreateRevision, Op: messages.CompareEqual}},
				Success:  []messages.TxnOp{{Type: messages.OpPut, Key: "/foo", Value: []byte("v")}},
				Failure:  []messages.TxnOp{{Type: messages.OpGet, Key: "/foo"}},
			})},
			reqHeader: hdr("If-None-Match", "*")},
		{apiCase: apiCase{name: "conditional PUT of a value not UTF-8 refused first", method: "PUT", path: "/v1/kv/foo",
			body: ptr("\xff"), cfg: rx, kvReply: unsupported,
			wantStatus: 400, wantContains: "UTF-8"},
			reqHeader: hdr("If-None-Match", "*")},
		{apiCase: apiCase{name: "conditional DELETE: no delete at all", method: "DELETE", path: "/v1/kv/foo", cfg: rx,
			kvReply: unsupported, wantStatus: 405, wantContains: "no delete",
			wantHeader: map[string]string{"Allow": "GET, PUT"}},
			reqHeader: hdr("If-Match", `"2"`)},
		{apiCase: apiCase{name: "transaction refused by the kv actor", method: "POST", path: "/v1/txn", cfg: rx,
			body: ptr(`{"success":[{"op":"get","key":"/a"}]}`), kvReply: unsupported,
			wantStatus: 405, wantContains: "not supported", wantHeader: map[string]string{"Allow": ""},
			wantKV: msgs(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpGet, Key: "/a"}}})}},
	})
}
