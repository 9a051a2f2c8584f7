package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// TestRangeParameters maps each range parameter of docs/api.md, alone and
// combined, to the messages.Range the kv actor gets, or to a 400 that sends
// nothing.
func TestRangeParameters(t *testing.T) {
	page := onePage(57, false)
	all := messages.Range{Start: "", End: "\x00"}
	with := func(f func(*messages.Range)) messages.Range {
		r := messages.Range{Start: "a", End: "m"}
		f(&r)
		return r
	}
	type mapping struct {
		path     string
		want     *messages.Range // nil: 400
		contains string
	}
	ok := func(path string, r messages.Range) mapping { return mapping{path, &r, ""} }
	bad := func(path, contains string) mapping { return mapping{path, nil, contains} }
	limitRange := fmt.Sprintf("limit must be from 1 to %d", store.MaxRangeLimit)
	mappings := []mapping{
		// Which keys.
		ok("/v1/kv/?prefix=config/", messages.Range{Start: "config/", End: "config0"}),
		ok("/v1/kv/?prefix=a%FF", messages.Range{Start: "a\xff", End: "b"}),
		ok("/v1/kv/?prefix=a%FF%FF", messages.Range{Start: "a\xff\xff", End: "b"}),
		ok("/v1/kv/?prefix=%FF", messages.Range{Start: "\xff", End: "\x00"}),
		ok("/v1/kv/?prefix=%FF%FF", messages.Range{Start: "\xff\xff", End: "\x00"}),
		ok("/v1/kv/?prefix=%00", messages.Range{Start: "\x00", End: "\x01"}),
		ok("/v1/kv/?prefix=", all),
		ok("/v1/kv/?prefix=a%20b", messages.Range{Start: "a b", End: "a c"}),
		ok("/v1/kv/a?end=m", messages.Range{Start: "a", End: "m"}),
		ok("/v1/kv/a?end=", messages.Range{Start: "a", End: "\x00"}),
		ok("/v1/kv/a/b?end=a/c", messages.Range{Start: "a/b", End: "a/c"}),
		ok("/v1/kv/%FF%00?end=%FF%01", messages.Range{Start: "\xff\x00", End: "\xff\x01"}),
		ok("/v1/kv/m?end=a", messages.Range{Start: "m", End: "a"}), // names no key; the kv actor reads none
		ok("/v1/kv/", all),
		ok("/v1/kv/?consistency=serializable", messages.Range{Start: "", End: "\x00", Serializable: true}),
		// How many, which fields.
		ok("/v1/kv/a?end=m&limit=1", with(func(r *messages.Range) { r.Limit = 1 })),
		ok("/v1/kv/a?end=m&limit=10000", with(func(r *messages.Range) { r.Limit = store.MaxRangeLimit })),
		ok("/v1/kv/?limit=5", messages.Range{Start: "", End: "\x00", Limit: 5}),
		ok("/v1/kv/a?end=m&keys_only=true", with(func(r *messages.Range) { r.KeysOnly = true })),
		ok("/v1/kv/a?end=m&keys_only=1", with(func(r *messages.Range) { r.KeysOnly = true })),
		ok("/v1/kv/a?end=m&keys_only=false", with(func(*messages.Range) {})),
		ok("/v1/kv/a?end=m&count_only=true", with(func(r *messages.Range) { r.CountOnly = true })),
		ok("/v1/kv/a?end=m&count_only=TRUE", with(func(r *messages.Range) { r.CountOnly = true })),
		ok("/v1/kv/a?end=m&count_only=0", with(func(*messages.Range) {})),
		ok("/v1/kv/a?end=m&keys_only=true&count_only=true", with(func(r *messages.Range) { r.KeysOnly, r.CountOnly = true, true })),
		// When, and how.
		ok("/v1/kv/a?end=m&revision=7", with(func(r *messages.Range) { r.Revision = 7 })),
		ok("/v1/kv/a?end=m&consistency=serializable", with(func(r *messages.Range) { r.Serializable = true })),
		ok("/v1/kv/a?end=m&consistency=linearizable", with(func(*messages.Range) {})),
		ok("/v1/kv/?prefix=p/&limit=2&keys_only=true&revision=9&consistency=serializable",
			messages.Range{Start: "p/", End: "p0", Limit: 2, KeysOnly: true, Revision: 9, Serializable: true}),
		ok("/v1/kv/a?consistency=serializable&count_only=true&revision=3&end=",
			messages.Range{Start: "a", End: "\x00", CountOnly: true, Revision: 3, Serializable: true}),

		bad("/v1/kv/a?end=m&limit=0", limitRange),
		bad("/v1/kv/a?end=m&limit=10001", limitRange),
		bad("/v1/kv/a?end=m&limit=-1", limitRange),
		bad("/v1/kv/a?end=m&limit=x", limitRange),
		bad("/v1/kv/a?end=m&limit=", limitRange),
		bad("/v1/kv/a?end=m&limit=99999999999999999999", limitRange),
		bad("/v1/kv/a?end=m&keys_only=yes", "keys_only must be true or false"),
		bad("/v1/kv/a?end=m&keys_only", "keys_only must be true or false"),
		bad("/v1/kv/a?end=m&count_only=2", "count_only must be true or false"),
		bad("/v1/kv/a?end=m&revision=0", "revision"),
		bad("/v1/kv/a?end=m&revision=x", "revision"),
		bad("/v1/kv/a?end=m&revision=-3", "revision"),
		bad("/v1/kv/?revision=", "revision"),
		bad("/v1/kv/a?end=m&consistency=stale", "consistency"),
		ok("/v1/kv/a?end=m&consistency=", with(func(*messages.Range) {})), // as if absent
		bad("/v1/kv/a?end=m&consistency=Serializable", "consistency must be linearizable or serializable"),
		bad("/v1/kv/a?end=m&lmit=5", `unknown parameter "lmit"`),
		bad("/v1/kv/?foo=1", `unknown parameter "foo"`),
		bad("/v1/kv/?prefix=a&Prefix=b", `unknown parameter "Prefix"`),
		bad("/v1/kv/a?prefix=b", "prefix= names the keys by itself"),
		bad("/v1/kv/a?prefix=", "prefix= names the keys by itself"),
		bad("/v1/kv/?prefix=a&end=b", "prefix= names the keys by itself"),
		bad("/v1/kv/?prefix=a&end=", "prefix= names the keys by itself"),
		bad("/v1/kv/?end=m", "give one"),
		bad("/v1/kv/?prefix=%zz", "malformed query"),
		bad("/v1/kv/a?end=m;limit=2", "malformed query"),
	}
	var cases []coordCase
	for _, m := range mappings {
		c := coordCase{apiCase: apiCase{name: m.path, method: "GET", path: m.path, kvReply: page,
			wantStatus: 400, wantContains: m.contains}}
		if m.want != nil {
			c.wantStatus = 200
			c.wantKV = msgs(*m.want)
			c.wantHeader = map[string]string{"Raftkv-Revision": "57"}
			c.wantJSON = `{"revision":57,"kvs":[],"more":false,"count":0}`
			if m.want.CountOnly {
				c.wantJSON = `{"revision":57,"count":0}`
			}
		}
		cases = append(cases, c)
	}
	runCoordCases(t, cases)
}

// TestRangeAnswer parses range answers back with encoding/json.
func TestRangeAnswer(t *testing.T) {
	a := messages.KV{Key: "config/a", Value: []byte("1"), CreateRevision: 3, ModRevision: 9, Version: 2}
	b := messages.KV{Key: "config/b", Value: []byte("x\"y\n"), CreateRevision: 4, ModRevision: 4, Version: 1}
	bin := messages.KV{Key: "\xff\x00", Value: []byte{0x80}, CreateRevision: 5, ModRevision: 6, Version: 2}
	prefix := messages.Range{Start: "config/", End: "config0"}
	keysOnly := prefix
	keysOnly.KeysOnly = true
	countOnly := prefix
	countOnly.CountOnly = true
	const (
		aJSON = `{"key":"config/a","value":"1","create_revision":3,"mod_revision":9,"version":2}`
		bJSON = `{"key":"config/b","value":"x\"y\n","create_revision":4,"mod_revision":4,"version":1}`
	)
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "the docs' example", method: "GET", path: "/v1/kv/?prefix=config/",
			kvReply: onePage(57, false, a), wantStatus: 200,
			wantBody:   ptr(`{"revision":57,"kvs":[` + aJSON + `],"more":false,"count":1}` + "\n"),
			wantHeader: map[string]string{"Raftkv-Revision": "57", "Content-Type": "application/json", "ETag": ""},
			wantKV:     msgs(prefix)},
			wantJSON: `{"revision":57,"kvs":[` + aJSON + `],"count":1,"more":false}`},
		{apiCase: apiCase{name: "two keys in order", method: "GET", path: "/v1/kv/?prefix=config/",
			kvReply: onePage(57, false, a, b), wantStatus: 200, wantKV: msgs(prefix)},
			wantJSON: `{"revision":57,"kvs":[` + aJSON + `,` + bJSON + `],"count":2,"more":false}`},
		{apiCase: apiCase{name: "nothing in the range", method: "GET", path: "/v1/kv/?prefix=config/",
			kvReply: onePage(57, false), wantStatus: 200, wantKV: msgs(prefix)},
			wantJSON: `{"revision":57,"kvs":[],"count":0,"more":false}`},
		{apiCase: apiCase{name: "count is the kv actor's", method: "GET", path: "/v1/kv/?prefix=config/",
			kvReply:    messages.Result{Revision: 57, Results: []messages.OpResult{{KVs: []messages.KV{a}, Count: 1}}},
			wantStatus: 200, wantKV: msgs(prefix)},
			wantJSON: `{"revision":57,"kvs":[` + aJSON + `],"count":1,"more":false}`},
		{apiCase: apiCase{name: "keys_only leaves values out", method: "GET", path: "/v1/kv/?prefix=config/&keys_only=true",
			kvReply: onePage(57, false, a, b), wantStatus: 200, wantKV: msgs(keysOnly)},
			wantJSON: `{"revision":57,"kvs":[{"key":"config/a","create_revision":3,"mod_revision":9,"version":2},` +
				`{"key":"config/b","create_revision":4,"mod_revision":4,"version":1}],"count":2,"more":false}`},
		{apiCase: apiCase{name: "count_only: the count alone", method: "GET", path: "/v1/kv/?prefix=config/&count_only=true",
			kvReply:    messages.Result{Revision: 57, Results: []messages.OpResult{{Count: 12345}}},
			wantStatus: 200, wantBody: ptr(`{"revision":57,"count":12345}` + "\n"), wantKV: msgs(countOnly)},
			wantJSON: `{"revision":57,"count":12345}`},
		{apiCase: apiCase{name: "binary keys and values as base64", method: "GET", path: "/v1/kv/?prefix=%FF",
			kvReply: onePage(57, false, bin), wantStatus: 200, wantKV: msgs(messages.Range{Start: "\xff", End: "\x00"})},
			wantJSON: `{"revision":57,"kvs":[{"key_b64":"/wA=","value_b64":"gA==","create_revision":5,"mod_revision":6,"version":2}],"count":1,"more":false}`},
		{apiCase: apiCase{name: "binary keys only", method: "GET", path: "/v1/kv/?prefix=%FF&keys_only=true",
			kvReply: onePage(57, false, bin), wantStatus: 200,
			wantKV: msgs(messages.Range{Start: "\xff", End: "\x00", KeysOnly: true})},
			wantJSON: `{"revision":57,"kvs":[{"key_b64":"/wA=","create_revision":5,"mod_revision":6,"version":2}],"count":1,"more":false}`},
		{apiCase: apiCase{name: "a read at a revision answers it", method: "GET", path: "/v1/kv/?prefix=config/&revision=41",
			kvReply: onePage(41, false, a), wantStatus: 200, wantHeader: map[string]string{"Raftkv-Revision": "41"},
			wantKV: msgs(messages.Range{Start: "config/", End: "config0", Revision: 41})},
			wantJSON: `{"revision":41,"kvs":[` + aJSON + `],"count":1,"more":false}`},

		{apiCase: apiCase{name: "compacted: 410 with the compact revision", method: "GET", path: "/v1/kv/?prefix=config/&revision=3",
			kvReply:    messages.Result{Err: fmt.Errorf("read: %w", &messages.CompactedError{Revision: 3, Compacted: 20})},
			wantStatus: 410, wantHeader: map[string]string{"Retry-After": ""},
			wantKV: msgs(messages.Range{Start: "config/", End: "config0", Revision: 3})},
			wantJSON: `{"error":{"code":410,"message":"revision 3 compacted: this member's history starts after revision 20"},"compact_revision":20}`},
		{apiCase: apiCase{name: "compacted, answered as an error value", method: "GET", path: "/v1/kv/",
			kvReply: &messages.CompactedError{Revision: 1, Compacted: 2}, wantStatus: 410, wantKV: msgs(messages.Range{End: "\x00"})},
			wantJSON: `{"error":{"code":410,"message":"revision 1 compacted: this member's history starts after revision 2"},"compact_revision":2}`},
		{apiCase: apiCase{name: "future revision: 400", method: "GET", path: "/v1/kv/?prefix=config/&revision=99",
			kvReply:    messages.Result{Err: fmt.Errorf("%w: 99, the store is at 57", messages.ErrFutureRevision)},
			wantStatus: 400, wantContains: "revision is in the future: 99, the store is at 57",
			wantKV: msgs(messages.Range{Start: "config/", End: "config0", Revision: 99})}},
		{apiCase: apiCase{name: "refused by the kv actor: 400", method: "GET", path: "/v1/kv/?prefix=config/",
			kvReply:    messages.Result{Err: fmt.Errorf("%w: bad range", messages.ErrInvalidTxn)},
			wantStatus: 400, wantContains: "bad range", wantKV: msgs(prefix)}},
		{apiCase: apiCase{name: "no result: 500", method: "GET", path: "/v1/kv/?prefix=config/",
			kvReply: messages.Result{Revision: 57}, wantStatus: 500, wantKV: msgs(prefix)}},
		{apiCase: apiCase{name: "two results: 500", method: "GET", path: "/v1/kv/?prefix=config/",
			kvReply: messages.Result{Revision: 57, Results: []messages.OpResult{{}, {}}}, wantStatus: 500, wantKV: msgs(prefix)}},
		{apiCase: apiCase{name: "timeout: 504", method: "GET", path: "/v1/kv/?prefix=config/",
			cfg:     httpapi.HandlerConfig{Timeout: 50 * time.Millisecond},
			kvReply: silent, wantStatus: 504, wantContains: "timed out", wantKV: msgs(prefix)}},
		{apiCase: apiCase{name: "POST is not a range read", method: "POST", path: "/v1/kv/?prefix=a", body: ptr(""),
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT, DELETE"}}},
	})
}

// rangeAnswer is a range answer as a client reads it.
type rangeAnswer struct {
	Revision uint64            `json:"revision"`
	KVs      []json.RawMessage `json:"kvs"`
	More     bool              `json:"more"`
	Count    int               `json:"count"`
	Continue *string           `json:"continue"`
}

// firstPage asks for path from a handler whose kv actor answers a page of
// keys at revision rev, and returns the answer and what the kv actor got.
func firstPage(t *testing.T, path string, rev uint64, more bool, keys ...string) (rangeAnswer, []any) {
	t.Helper()
	var kvs []messages.KV
	for _, k := range keys {
		kvs = append(kvs, messages.KV{Key: k, Value: []byte("v"), CreateRevision: 1, ModRevision: 1, Version: 1})
	}
	f := newFixture(t, onePage(rev, more, kvs...), nil, httpapi.HandlerConfig{})
	resp, body := f.do(t, "GET", path, nil, false)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	var a rangeAnswer
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("GET %s: answer %q: %v", path, body, err)
	}
	return a, f.received(t, f.kv)
}

// pageToken is the continuation of a page with more keys after the last of
// keys, read by path at revision rev.
func pageToken(t *testing.T, path string, rev uint64, keys ...string) string {
	t.Helper()
	a, _ := firstPage(t, path, rev, true, keys...)
	if a.Continue == nil || *a.Continue == "" {
		t.Fatalf("GET %s: a page with more has no continuation", path)
	}
	return *a.Continue
}

// TestRangePages checks that a page with more keys gives a continuation,
// one without none, and that the continuation asks for the next page at
// the revision of the first.
func TestRangePages(t *testing.T) {
	verifyNoLeaks(t)
	for _, c := range []struct {
		name, path string
		more       bool
		keys       []string
		next       *messages.Range // what the continuation sends; nil: no continuation
	}{
		{"last page", "/v1/kv/?prefix=config/&limit=2", false, []string{"config/a", "config/b"}, nil},
		{"empty page", "/v1/kv/?prefix=config/", false, nil, nil},
		{"a page of a prefix", "/v1/kv/?prefix=config/&limit=2", true, []string{"config/a", "config/b"},
			&messages.Range{Start: "config/b\x00", End: "config0", Limit: 2, Revision: 57}},
		{"a page of a range, keys only, serializable", "/v1/kv/a?end=m&limit=1&keys_only=true&consistency=serializable",
			true, []string{"b"}, &messages.Range{Start: "b\x00", End: "m", Limit: 1, KeysOnly: true, Revision: 57, Serializable: true}},
		{"a page of every key", "/v1/kv/", true, []string{"a", "b"},
			&messages.Range{Start: "b\x00", End: "\x00", Revision: 57}},
		{"a page of binary keys", "/v1/kv/?prefix=%FF", true, []string{"\xff\x00", "\xff\xff\xff"},
			&messages.Range{Start: "\xff\xff\xff\x00", End: "\x00", Revision: 57}},
		{"a page at a revision", "/v1/kv/?prefix=config/&revision=57", true, []string{"config/a"},
			&messages.Range{Start: "config/a\x00", End: "config0", Revision: 57}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _ := firstPage(t, c.path, 57, c.more, c.keys...)
			if a.More != c.more || a.Count != len(c.keys) || len(a.KVs) != len(c.keys) || a.Revision != 57 {
				t.Errorf("answer %+v: want more %v, %d keys, revision 57", a, c.more, len(c.keys))
			}
			if c.next == nil {
				if a.Continue != nil {
					t.Errorf("continue = %q on a page without more", *a.Continue)
				}
				return
			}
			if a.Continue == nil {
				t.Fatalf("no continue on a page with more")
			}
			if strings.ContainsAny(*a.Continue, "+/=%") {
				t.Errorf("continue %q needs escaping in a URL", *a.Continue)
			}
			// The same parameters, and the continuation: the next page, at
			// the first page's revision.
			path := c.path + "&continue=" + *a.Continue
			if !strings.Contains(c.path, "?") {
				path = c.path + "?continue=" + *a.Continue
			}
			_, got := firstPage(t, path, 57, false)
			if want := msgs(*c.next); !reflect.DeepEqual(got, want) {
				t.Errorf("next page sent %#v, want %#v", got, want)
			}
		})
	}
}

// TestRangeContinuations covers continuations given back: with the range
// they came from, another range, another revision, or malformed.
func TestRangeContinuations(t *testing.T) {
	// The first pages' handlers are gone before runCoordCases checks for
	// leaks.
	var tok, tokAll, tokBin string
	t.Run("first pages", func(t *testing.T) {
		tok = pageToken(t, "/v1/kv/?prefix=config/&limit=2", 57, "config/a", "config/b")
		tokAll = pageToken(t, "/v1/kv/", 9, "k")
		tokBin = pageToken(t, "/v1/kv/?prefix=%FF", 57, "\xff\xff")
	})
	if t.Failed() {
		return
	}
	next := messages.Range{Start: "config/b\x00", End: "config0", Limit: 2, Revision: 57}
	const (
		notOurs     = "not a continuation this API gave"
		otherRange  = "does not belong to this range"
		otherRevion = "continue= reads at revision 57, revision= asks for 56"
	)
	type mapping struct {
		path     string
		want     *messages.Range
		contains string
	}
	ok := func(path string, r messages.Range) mapping { return mapping{path, &r, ""} }
	bad := func(path, contains string) mapping { return mapping{path, nil, contains} }
	q := url.QueryEscape
	mappings := []mapping{
		ok("/v1/kv/?prefix=config/&limit=2&continue="+tok, next),
		ok("/v1/kv/?continue="+tok+"&limit=2&prefix=config/", next),
		ok("/v1/kv/?prefix=config/&limit=2&revision=57&continue="+tok, next),
		ok("/v1/kv/?prefix=config/&continue="+tok, messages.Range{Start: "config/b\x00", End: "config0", Revision: 57}),
		ok("/v1/kv/?prefix=config/&count_only=true&continue="+tok,
			messages.Range{Start: "config/b\x00", End: "config0", CountOnly: true, Revision: 57}),
		ok("/v1/kv/config/b%00?end=config0&continue="+tok,
			messages.Range{Start: "config/b\x00", End: "config0", Revision: 57}),
		ok("/v1/kv/?continue="+tokAll, messages.Range{Start: "k\x00", End: "\x00", Revision: 9}),
		ok("/v1/kv/?prefix=%FF&continue="+tokBin, messages.Range{Start: "\xff\xff\x00", End: "\x00", Revision: 57}),

		bad("/v1/kv/?prefix=config/&limit=2&revision=56&continue="+tok, otherRevion),
		bad("/v1/kv/?prefix=other/&continue="+tok, otherRange),
		bad("/v1/kv/?prefix=config/b/&continue="+tok, otherRange),
		bad("/v1/kv/config/c?end=config/z&continue="+tok, otherRange),
		bad("/v1/kv/a?end=config/b&continue="+tok, otherRange),
		bad("/v1/kv/a?end=config/b%00&continue="+tok, otherRange),
		bad("/v1/kv/?prefix=config/&continue="+tokAll, otherRange),
		bad("/v1/kv/?prefix=%FF%FF%FF&continue="+tokBin, otherRange),
		bad("/v1/kv/?prefix=config/&continue=", notOurs),
		bad("/v1/kv/?prefix=config/&continue="+q("!!!"), notOurs),
		bad("/v1/kv/?prefix=config/&continue="+q(tok+"=="), notOurs),
		bad("/v1/kv/?prefix=config/&continue="+q(tok[:len(tok)-1]+"+"), notOurs),
		bad("/v1/kv/?continue=AGs", notOurs),      // revision 0
		bad("/v1/kv/?continue=gA", notOurs),       // a truncated varint
		bad("/v1/kv/?continue=AQ%3D%3D", notOurs), // padded
		bad("/v1/kv/foo?continue="+tok, "continue applies to range reads"),
	}
	var cases []coordCase
	for _, m := range mappings {
		c := coordCase{apiCase: apiCase{name: m.path, method: "GET", path: m.path, kvReply: onePage(57, false),
			wantStatus: 400, wantContains: m.contains}}
		if m.want != nil {
			c.wantStatus = 200
			c.wantKV = msgs(*m.want)
		}
		cases = append(cases, c)
	}
	runCoordCases(t, cases)
}
