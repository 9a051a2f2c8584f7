package httpapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// txnParse is one transaction body and the messages.Txn it must become, or
// the 400 it must be (want nil), sending nothing.
type txnParse struct {
	name     string
	body     string
	want     *messages.Txn
	contains string
}

// ranSuccess answers t as if its success branch ran: one empty result per
// operation.
func ranSuccess(t messages.Txn) messages.Result {
	return messages.Result{Index: 61, Revision: 61, Succeeded: true, Results: make([]messages.OpResult, len(t.Success))}
}

func runTxnParses(t *testing.T, parses []txnParse) {
	t.Helper()
	var cases []coordCase
	for _, p := range parses {
		c := coordCase{apiCase: apiCase{name: p.name, method: "POST", path: "/v1/txn", body: ptr(p.body),
			kvReply:    messages.Result{Err: fmt.Errorf("%w: the kv actor should not be asked", messages.ErrInvalidTxn)},
			wantStatus: 400, wantContains: p.contains}}
		if p.want != nil {
			c.kvReply = ranSuccess(*p.want)
			c.wantStatus = 200
			c.wantKV = msgs(*p.want)
		}
		cases = append(cases, c)
	}
	runCoordCases(t, cases)
}

// TestTxnCompares parses each compare target, op and constant.
func TestTxnCompares(t *testing.T) {
	one := func(c messages.Compare) *messages.Txn { return &messages.Txn{Compares: []messages.Compare{c}} }
	ok := func(cmp string, c messages.Compare) txnParse {
		return txnParse{cmp, `{"compare":[` + cmp + `]}`, one(c), ""}
	}
	bad := func(cmp, contains string) txnParse {
		return txnParse{cmp, `{"compare":[` + cmp + `]}`, nil, contains}
	}
	const (
		takesNumber = "compare takes number"
		needsValue  = "a value compare needs value (or value_b64)"
	)
	value := func(op messages.CompareOp, v string) messages.Compare {
		return messages.Compare{Key: "a", Target: messages.CompareValue, Op: op, Value: []byte(v)}
	}
	runTxnParses(t, []txnParse{
		ok(`{"key":"a","target":"value","op":"=","value":"x"}`, value(messages.CompareEqual, "x")),
		ok(`{"key":"a","target":"value","op":"!=","value":"x"}`, value(messages.CompareNotEqual, "x")),
		ok(`{"key":"a","target":"value","op":"<","value":"x"}`, value(messages.CompareLess, "x")),
		ok(`{"key":"a","target":"value","op":">","value":"x"}`, value(messages.CompareGreater, "x")),
		ok(`{"key":"a","target":"value","op":"=","value":""}`, value(messages.CompareEqual, "")),
		ok(`{"key":"a","target":"value","op":"=","value_b64":"/wA="}`, value(messages.CompareEqual, "\xff\x00")),
		ok(`{"key":"a","target":"value","op":"=","value_b64":""}`, value(messages.CompareEqual, "")),
		ok(`{"key":"a","target":"value","op":"=","value":"é\u0000"}`, value(messages.CompareEqual, "é\x00")),
		ok(`{"key_b64":"/wA=","target":"version","op":"!=","number":2}`,
			messages.Compare{Key: "\xff\x00", Target: messages.CompareVersion, Op: messages.CompareNotEqual, Number: 2}),
		ok(`{"key":"a","target":"create_revision","op":"=","number":0}`,
			messages.Compare{Key: "a", Target: messages.CompareCreateRevision, Op: messages.CompareEqual}),
		ok(`{"key":"a","target":"mod_revision","op":"<","number":18446744073709551615}`,
			messages.Compare{Key: "a", Target: messages.CompareModRevision, Op: messages.CompareLess, Number: 1<<64 - 1}),
		ok(`{"op":">","number":7,"target":"version","key":"a","value":null}`,
			messages.Compare{Key: "a", Target: messages.CompareVersion, Op: messages.CompareGreater, Number: 7}),
		{"compares in order",
			`{"compare":[{"key":"lock","target":"create_revision","op":"=","number":0},{"key":"cfg","target":"value","op":"!=","value":"old"}]}`,
			&messages.Txn{Compares: []messages.Compare{
				{Key: "lock", Target: messages.CompareCreateRevision, Op: messages.CompareEqual},
				{Key: "cfg", Target: messages.CompareValue, Op: messages.CompareNotEqual, Value: []byte("old")},
			}}, ""},

		bad(`{"key":"a","target":"value","op":"=","number":1}`, "a value compare takes value (or value_b64), not number"),
		bad(`{"key":"a","target":"value","op":"=","value":"x","number":1}`, "not number"),
		bad(`{"key":"a","target":"value","op":"="}`, needsValue),
		bad(`{"key":"a","target":"value","op":"=","value":null}`, needsValue),
		bad(`{"key":"a","target":"value","op":"=","value":"x","value_b64":"eA=="}`, "give value or value_b64, not both"),
		bad(`{"key":"a","target":"value","op":"=","value_b64":"!"}`, "value_b64"),
		bad(`{"key":"a","target":"value","op":"=","value_b64":"/w"}`, "value_b64"), // unpadded
		bad(`{"key":"a","target":"value","op":"=","value":5}`, "value"),
		bad(`{"key":"a","target":"version","op":"=","value":"1"}`, "a version "+takesNumber),
		bad(`{"key":"a","target":"mod_revision","op":"=","value_b64":"AQ=="}`, "a mod_revision "+takesNumber),
		bad(`{"key":"a","target":"create_revision","op":"="}`, "a create_revision "+takesNumber),
		bad(`{"key":"a","target":"version","op":"=","number":null}`, takesNumber),
		bad(`{"key":"a","target":"version","op":"=","number":1,"value":"1"}`, takesNumber),
		bad(`{"key":"a","target":"version","op":"=","number":-1}`, "number"),
		bad(`{"key":"a","target":"version","op":"=","number":1.5}`, "number"),
		bad(`{"key":"a","target":"version","op":"=","number":1e3}`, "number"),
		bad(`{"key":"a","target":"version","op":"=","number":"5"}`, "number"),
		bad(`{"key":"a","target":"version","op":"=","number":18446744073709551616}`, "number"),
		bad(`{"key":"a","target":"lease","op":"=","number":1}`, `target "lease": want value, version, create_revision or mod_revision`),
		bad(`{"key":"a","target":"Version","op":"=","number":1}`, `target "Version"`),
		bad(`{"key":"a","op":"=","number":1}`, `target ""`),
		bad(`{"key":"a","target":"version","op":">=","number":1}`, `op ">=": want =, !=, < or >`),
		bad(`{"key":"a","target":"version","op":"==","number":1}`, `op "=="`),
		bad(`{"key":"a","target":"version","number":1}`, `op ""`),
		bad(`{"target":"version","op":"=","number":1}`, "compare 0: key is empty"),
		bad(`{"key":"","target":"version","op":"=","number":1}`, "key is empty"),
		bad(`{"key":null,"target":"version","op":"=","number":1}`, "key is empty"),
		bad(`{"key":"a","key_b64":"YQ==","target":"version","op":"=","number":1}`, "give key or key_b64, not both"),
		bad(`{"key_b64":"*","target":"version","op":"=","number":1}`, "key_b64"),
		bad(`{"key":"a","end":"b","target":"version","op":"=","number":1}`, `unknown field "end"`),
		bad(`{"key":"a","target":"version","op":"=","number":1,"result":"get"}`, `unknown field "result"`),
		{"the second compare is wrong", `{"compare":[{"key":"a","target":"version","op":"=","number":1},{"key":"a"}]}`,
			nil, "compare 1: target"},
	})
}

// TestTxnOps parses each operation with the fields it allows, and refuses
// the others.
func TestTxnOps(t *testing.T) {
	one := func(op messages.TxnOp) *messages.Txn { return &messages.Txn{Success: []messages.TxnOp{op}} }
	ok := func(op string, want messages.TxnOp) txnParse {
		return txnParse{op, `{"success":[` + op + `]}`, one(want), ""}
	}
	bad := func(op, contains string) txnParse {
		return txnParse{op, `{"success":[` + op + `]}`, nil, contains}
	}
	rangeOp := func(r messages.Range) messages.TxnOp { return messages.TxnOp{Type: messages.OpRange, Range: r} }
	const (
		oneKey    = "takes one key: use range or delete for a range"
		putValue  = "a put takes value (or value_b64), and only a put"
		rangeOnly = "limit, keys_only and count_only are for range"
		endOrPfx  = "give end or prefix, not both"
	)
	limitRange := fmt.Sprintf("limit must be from 1 to %d", store.MaxRangeLimit)
	runTxnParses(t, []txnParse{
		ok(`{"op":"get","key":"a"}`, messages.TxnOp{Type: messages.OpGet, Key: "a"}),
		ok(`{"op":"get","key_b64":"/wA="}`, messages.TxnOp{Type: messages.OpGet, Key: "\xff\x00"}),
		ok(`{"op":"get","key":"a","prefix":false,"limit":0,"keys_only":false,"count_only":false}`,
			messages.TxnOp{Type: messages.OpGet, Key: "a"}),
		bad(`{"op":"get","key":"a","value":"v"}`, putValue),
		bad(`{"op":"get","key":"a","end":"b"}`, "get "+oneKey),
		bad(`{"op":"get","key":"a","end":""}`, "get "+oneKey),
		bad(`{"op":"get","key":"a","end_b64":"Yg=="}`, "get "+oneKey),
		bad(`{"op":"get","key":"a","prefix":true}`, "get "+oneKey),
		bad(`{"op":"get","key":"a","limit":1}`, rangeOnly),
		bad(`{"op":"get","key":"a","keys_only":true}`, rangeOnly),
		bad(`{"op":"get","key":"a","count_only":true}`, rangeOnly),

		ok(`{"op":"put","key":"a","value":"v"}`, messages.TxnOp{Type: messages.OpPut, Key: "a", Value: []byte("v")}),
		ok(`{"op":"put","key":"a","value":""}`, messages.TxnOp{Type: messages.OpPut, Key: "a", Value: []byte{}}),
		ok(`{"op":"put","key_b64":"/w==","value_b64":"AAE="}`,
			messages.TxnOp{Type: messages.OpPut, Key: "\xff", Value: []byte{0, 1}}),
		bad(`{"op":"put","key":"a"}`, putValue),
		bad(`{"op":"put","key":"a","value":null}`, putValue),
		bad(`{"op":"put","key":"a","value":"v","value_b64":"dg=="}`, "give value or value_b64, not both"),
		bad(`{"op":"put","key":"a","value_b64":"v"}`, "value_b64"),
		bad(`{"op":"put","key":"a","value":"v","end":"b"}`, "put "+oneKey),
		bad(`{"op":"put","key":"a","value":"v","prefix":true}`, "put "+oneKey),
		bad(`{"op":"put","key":"a","value":"v","count_only":true}`, rangeOnly),
		bad(`{"op":"put","key":"a","value":"v","limit":2}`, rangeOnly),

		ok(`{"op":"range","key":"a","end":"m"}`, rangeOp(messages.Range{Start: "a", End: "m"})),
		ok(`{"op":"range","key":"a","end":""}`, rangeOp(messages.Range{Start: "a", End: "\x00"})),
		ok(`{"op":"range","key":"a","end_b64":"/w=="}`, rangeOp(messages.Range{Start: "a", End: "\xff"})),
		ok(`{"op":"range","key":"config/","prefix":true}`, rangeOp(messages.Range{Start: "config/", End: "config0"})),
		ok(`{"op":"range","key":"","prefix":true}`, rangeOp(messages.Range{Start: "", End: "\x00"})),
		ok(`{"op":"range","prefix":true}`, rangeOp(messages.Range{Start: "", End: "\x00"})),
		ok(`{"op":"range","key_b64":"/w==","prefix":true}`, rangeOp(messages.Range{Start: "\xff", End: "\x00"})),
		ok(`{"op":"range","key_b64":"Yf8=","prefix":true}`, rangeOp(messages.Range{Start: "a\xff", End: "b"})),
		ok(`{"op":"range","key":"a"}`, rangeOp(messages.Range{Start: "a"})),
		ok(`{"op":"range","key":"a","end":"m","limit":1}`, rangeOp(messages.Range{Start: "a", End: "m", Limit: 1})),
		ok(`{"op":"range","key":"a","end":"m","limit":10000}`, rangeOp(messages.Range{Start: "a", End: "m", Limit: store.MaxRangeLimit})),
		ok(`{"op":"range","key":"a","end":"m","limit":0}`, rangeOp(messages.Range{Start: "a", End: "m"})),
		ok(`{"op":"range","key":"a","end":"m","keys_only":true}`, rangeOp(messages.Range{Start: "a", End: "m", KeysOnly: true})),
		ok(`{"op":"range","key":"a","end":"m","count_only":true}`, rangeOp(messages.Range{Start: "a", End: "m", CountOnly: true})),
		ok(`{"op":"range","key":"p/","prefix":true,"limit":5,"keys_only":true,"count_only":true}`,
			rangeOp(messages.Range{Start: "p/", End: "p0", Limit: 5, KeysOnly: true, CountOnly: true})),
		bad(`{"op":"range","key":"a","end":"m","limit":10001}`, limitRange),
		bad(`{"op":"range","key":"a","end":"m","limit":-1}`, limitRange),
		bad(`{"op":"range","key":"a","end":"m","limit":1.5}`, "limit"),
		bad(`{"op":"range","key":"a","end":"m","prefix":true}`, endOrPfx),
		bad(`{"op":"range","key":"a","end":"m","end_b64":"bQ=="}`, "give end or end_b64, not both"),
		bad(`{"op":"range","key":"a","end_b64":"m"}`, "end_b64"),
		bad(`{"op":"range","key":"a","end":"m","value":"v"}`, putValue),
		bad(`{"op":"range","key":"a","end":"m","revision":3}`, `unknown field "revision"`),
		bad(`{"op":"range","key":"a","end":"m","keys_only":"true"}`, "keys_only"),

		ok(`{"op":"delete","key":"a"}`, messages.TxnOp{Type: messages.OpDelete, Key: "a"}),
		ok(`{"op":"delete","key":"a","end":"m"}`, messages.TxnOp{Type: messages.OpDelete, Key: "a", End: "m"}),
		ok(`{"op":"delete","key":"a","end":""}`, messages.TxnOp{Type: messages.OpDelete, Key: "a", End: "\x00"}),
		ok(`{"op":"delete","key":"a/","prefix":true}`, messages.TxnOp{Type: messages.OpDelete, Key: "a/", End: "a0"}),
		ok(`{"op":"delete","key_b64":"/wA=","end_b64":"/wE="}`, messages.TxnOp{Type: messages.OpDelete, Key: "\xff\x00", End: "\xff\x01"}),
		bad(`{"op":"delete","key":"a","value":"v"}`, putValue),
		bad(`{"op":"delete","key":"a","limit":3}`, rangeOnly),
		bad(`{"op":"delete","key":"a","keys_only":true}`, rangeOnly),
		bad(`{"op":"delete","key":"a","end":"m","prefix":true}`, endOrPfx),

		bad(`{"op":"watch","key":"a"}`, `op "watch": want get, range, put or delete`),
		bad(`{"op":"GET","key":"a"}`, `op "GET"`),
		bad(`{"key":"a"}`, `op ""`),
		bad(`{"op":"get","key":"a","lease":1}`, "lease is for put"),
		bad(`{"op":"get","key":"a","key_b64":"YQ=="}`, "give key or key_b64, not both"),
		bad(`"get a"`, "transaction body"),
		{"ops in order, in both branches",
			`{"success":[{"op":"put","key":"lock","value":"me"},{"op":"get","key":"cfg"}],"failure":[{"op":"get","key":"lock"},{"op":"delete","key":"x"}]}`,
			&messages.Txn{
				Success: []messages.TxnOp{{Type: messages.OpPut, Key: "lock", Value: []byte("me")}, {Type: messages.OpGet, Key: "cfg"}},
				Failure: []messages.TxnOp{{Type: messages.OpGet, Key: "lock"}, {Type: messages.OpDelete, Key: "x"}},
			}, ""},
		{"a failure op is checked alike", `{"failure":[{"op":"get","key":"a"},{"op":"put","key":"a"}]}`, nil,
			"failure operation 1: " + putValue},
		{"a success op is named", `{"success":[{"op":"get","key":"a","end":"b"}]}`, nil, "success operation 0: get"},
	})
}

// TestTxnBody covers the body as a whole: empty branches, unknown fields,
// malformed or trailing JSON.
func TestTxnBody(t *testing.T) {
	empty := &messages.Txn{}
	runTxnParses(t, []txnParse{
		{"an empty object", `{}`, empty, ""},
		{"empty lists", `{"compare":[],"success":[],"failure":[]}`, empty, ""},
		{"null lists", `{"compare":null,"success":null,"failure":null}`, empty, ""},
		{"white space after", "{}\n\t ", empty, ""},
		{"unknown field", `{"compares":[]}`, nil, `unknown field "compares"`},
		{"unknown field next to known ones", `{"success":[],"lease":5}`, nil, `unknown field "lease"`},
		{"two values", `{} {}`, nil, "more than one JSON value"},
		{"a value and garbage", `{}x`, nil, "transaction body"},
		{"a stray closing brace", `{}}`, nil, "transaction body"},
		{"a stray closing bracket", `{}]`, nil, "transaction body"},
		{"a value and a number", `{} 1`, nil, "more than one JSON value"},
		{"unterminated", `{"success":[`, nil, "transaction body"},
		{"empty body", ``, nil, "transaction body"},
		{"an array", `[]`, nil, "transaction body"},
		{"a branch that is not a list", `{"success":{"op":"get","key":"a"}}`, nil, "transaction body"},
		{"a compare that is not an object", `{"compare":["a"]}`, nil, "transaction body"},
	})
}

// TestTxnLimits checks the bounds, each refused before anything is sent.
func TestTxnLimits(t *testing.T) {
	compares := func(n int) string {
		return `{"compare":[` + strings.Repeat(`{"key":"k","target":"version","op":"=","number":0},`, n)[:51*n-1] + `]}`
	}
	gets := func(n int) string {
		return "[" + strings.Repeat(`{"op":"get","key":"k"},`, n)[:23*n-1] + "]"
	}
	want := func(nc, ns, nf int) *messages.Txn {
		t := &messages.Txn{}
		for range nc {
			t.Compares = append(t.Compares, messages.Compare{Key: "k", Target: messages.CompareVersion, Op: messages.CompareEqual})
		}
		for range ns {
			t.Success = append(t.Success, messages.TxnOp{Type: messages.OpGet, Key: "k"})
		}
		for range nf {
			t.Failure = append(t.Failure, messages.TxnOp{Type: messages.OpGet, Key: "k"})
		}
		return t
	}
	mc, mo := apply.MaxTxnCompares, apply.MaxTxnOps
	small := httpapi.HandlerConfig{MaxRequestBytes: 64}
	body64 := `{"success":[{"op":"get","key":"` + strings.Repeat("k", 64-35) + `"}]}`
	body65 := `{"success":[{"op":"get","key":"` + strings.Repeat("k", 65-35) + `"}]}`
	if len(body64) != 64 || len(body65) != 65 {
		t.Fatalf("bodies of %d and %d bytes", len(body64), len(body65))
	}
	var cases []coordCase
	for _, c := range []struct {
		name     string
		body     string
		want     *messages.Txn
		contains string
	}{
		{"as many compares as allowed", compares(mc), want(mc, 0, 0), ""},
		{"one compare too many", compares(mc + 1), nil, fmt.Sprintf("transaction too large: %d compares, at most %d", mc+1, mc)},
		{"as many operations as allowed", `{"success":` + gets(mo) + `,"failure":` + gets(mo) + `}`, want(0, mo, mo), ""},
		{"one success operation too many", `{"success":` + gets(mo+1) + `}`, nil,
			fmt.Sprintf("transaction too large: %d operations in a branch, at most %d", mo+1, mo)},
		{"one failure operation too many", `{"success":` + gets(1) + `,"failure":` + gets(mo+1) + `}`, nil,
			fmt.Sprintf("%d operations in a branch", mo+1)},
		{"too many, and the first malformed", `{"compare":[{}` + strings.Repeat(`,{}`, mc) + `]}`, nil, "compares"},
	} {
		cc := coordCase{apiCase: apiCase{name: c.name, method: "POST", path: "/v1/txn", body: ptr(c.body),
			kvReply: messages.Result{}, wantStatus: 413, wantContains: c.contains}}
		if c.want != nil {
			cc.kvReply = ranSuccess(*c.want)
			cc.wantStatus = 200
			cc.wantKV = msgs(*c.want)
		}
		cases = append(cases, cc)
	}
	cases = append(cases,
		coordCase{apiCase: apiCase{name: "body at the size limit", method: "POST", path: "/v1/txn", body: ptr(body64), cfg: small,
			kvReply: messages.Result{Succeeded: true, Results: []messages.OpResult{{}}}, wantStatus: 200,
			wantKV: msgs(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpGet, Key: strings.Repeat("k", 29)}}})}},
		coordCase{apiCase: apiCase{name: "body over the size limit", method: "POST", path: "/v1/txn", body: ptr(body65), cfg: small,
			kvReply: messages.Result{Succeeded: true, Results: []messages.OpResult{{}}}, wantStatus: 413,
			wantContains: "exceeds the limit of 64 bytes"}},
		coordCase{apiCase: apiCase{name: "body over the size limit, chunked", method: "POST", path: "/v1/txn", body: ptr(body65),
			chunked: true, cfg: small, kvReply: messages.Result{Succeeded: true, Results: []messages.OpResult{{}}},
			wantStatus: 413, wantContains: "exceeds the limit of 64 bytes"}},
	)
	runCoordCases(t, cases)
}

// TestTxnAnswer parses transaction answers back with encoding/json: which
// branch ran and one result per operation of it.
func TestTxnAnswer(t *testing.T) {
	lock := messages.KV{Key: "lock", Value: []byte("you"), CreateRevision: 50, ModRevision: 50, Version: 1}
	cfg := messages.KV{Key: "cfg", Value: []byte("new"), CreateRevision: 5, ModRevision: 60, Version: 3}
	bin := messages.KV{Key: "\xff", Value: []byte{0x80}, CreateRevision: 7, ModRevision: 8, Version: 2}
	const (
		lockJSON = `{"key":"lock","value":"you","create_revision":50,"mod_revision":50,"version":1}`
		cfgJSON  = `{"key":"cfg","value":"new","create_revision":5,"mod_revision":60,"version":3}`
		docsBody = `{
  "compare": [
    {"key": "lock", "target": "create_revision", "op": "=", "number": 0},
    {"key": "cfg", "target": "value", "op": "!=", "value": "old"}
  ],
  "success": [
    {"op": "put", "key": "lock", "value": "me"},
    {"op": "get", "key": "cfg"}
  ],
  "failure": [
    {"op": "get", "key": "lock"}
  ]
}`
	)
	docsTxn := messages.Txn{
		Compares: []messages.Compare{
			{Key: "lock", Target: messages.CompareCreateRevision, Op: messages.CompareEqual},
			{Key: "cfg", Target: messages.CompareValue, Op: messages.CompareNotEqual, Value: []byte("old")},
		},
		Success: []messages.TxnOp{{Type: messages.OpPut, Key: "lock", Value: []byte("me")}, {Type: messages.OpGet, Key: "cfg"}},
		Failure: []messages.TxnOp{{Type: messages.OpGet, Key: "lock"}},
	}
	everyOp := `{"success":[{"op":"get","key":"gone"},{"op":"range","key":"a","end":"z","limit":2},` +
		`{"op":"range","key":"a","end":"z","keys_only":true},{"op":"range","key":"a","end":"z","count_only":true},` +
		`{"op":"delete","key":"a","end":"c"},{"op":"put","key":"p","value":"v"},{"op":"get","key_b64":"/w=="}]}`
	everyTxn := messages.Txn{Success: []messages.TxnOp{
		{Type: messages.OpGet, Key: "gone"},
		{Type: messages.OpRange, Range: messages.Range{Start: "a", End: "z", Limit: 2}},
		{Type: messages.OpRange, Range: messages.Range{Start: "a", End: "z", KeysOnly: true}},
		{Type: messages.OpRange, Range: messages.Range{Start: "a", End: "z", CountOnly: true}},
		{Type: messages.OpDelete, Key: "a", End: "c"},
		{Type: messages.OpPut, Key: "p", Value: []byte("v")},
		{Type: messages.OpGet, Key: "\xff"},
	}}
	everyResult := messages.Result{Index: 70, Revision: 70, Succeeded: true, Results: []messages.OpResult{
		{},
		{KVs: []messages.KV{cfg, lock}, More: true, Count: 2},
		{KVs: []messages.KV{cfg}, Count: 1},
		{Count: 4},
		{Deleted: 3},
		{},
		{KVs: []messages.KV{bin}, Count: 1},
	}}
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "the docs' example, success", method: "POST", path: "/v1/txn", body: ptr(docsBody),
			kvReply: messages.Result{Index: 61, Revision: 61, Succeeded: true,
				Results: []messages.OpResult{{}, {KVs: []messages.KV{cfg}, Count: 1}}},
			wantStatus: 200, wantHeader: map[string]string{"Raftkv-Revision": "61"}, wantKV: msgs(docsTxn)},
			wantJSON: `{"index":61,"revision":61,"succeeded":true,"results":[{"op":"put"},{"op":"get","kvs":[` + cfgJSON + `],"count":1}]}`},
		{apiCase: apiCase{name: "the docs' example, failure", method: "POST", path: "/v1/txn", body: ptr(docsBody),
			kvReply: messages.Result{Index: 62, Revision: 60, Succeeded: false,
				Results: []messages.OpResult{{KVs: []messages.KV{lock}, Count: 1}}},
			wantStatus: 200, wantHeader: map[string]string{"Raftkv-Revision": "60"}, wantKV: msgs(docsTxn)},
			wantJSON: `{"index":62,"revision":60,"succeeded":false,"results":[{"op":"get","kvs":[` + lockJSON + `],"count":1}]}`},
		{apiCase: apiCase{name: "every kind of result", method: "POST", path: "/v1/txn", body: ptr(everyOp),
			kvReply: everyResult, wantStatus: 200, wantKV: msgs(everyTxn)},
			wantJSON: `{"index":70,"revision":70,"succeeded":true,"results":[` +
				`{"op":"get","kvs":[],"count":0},` +
				`{"op":"range","kvs":[` + cfgJSON + `,` + lockJSON + `],"more":true,"count":2},` +
				`{"op":"range","kvs":[{"key":"cfg","create_revision":5,"mod_revision":60,"version":3}],"more":false,"count":1},` +
				`{"op":"range","count":4},` +
				`{"op":"delete","deleted":3},` +
				`{"op":"put"},` +
				`{"op":"get","kvs":[{"key_b64":"/w==","value_b64":"gA==","create_revision":7,"mod_revision":8,"version":2}],"count":1}]}`},
		{apiCase: apiCase{name: "an empty branch ran", method: "POST", path: "/v1/txn",
			body:    ptr(`{"compare":[{"key":"a","target":"version","op":">","number":0}],"success":[{"op":"get","key":"a"}]}`),
			kvReply: messages.Result{Index: 5, Revision: 4}, wantStatus: 200,
			wantKV: msgs(messages.Txn{
				Compares: []messages.Compare{{Key: "a", Target: messages.CompareVersion, Op: messages.CompareGreater}},
				Success:  []messages.TxnOp{{Type: messages.OpGet, Key: "a"}},
			})},
			wantJSON: `{"index":5,"revision":4,"succeeded":false,"results":[]}`},
		{apiCase: apiCase{name: "answered by pointer", method: "POST", path: "/v1/txn", body: ptr(`{"success":[{"op":"delete","key":"a"}]}`),
			kvReply:    &messages.Result{Index: 9, Revision: 9, Succeeded: true, Results: []messages.OpResult{{Deleted: 1}}},
			wantStatus: 200, wantBody: ptr(`{"index":9,"revision":9,"succeeded":true,"results":[{"op":"delete","deleted":1}]}` + "\n"),
			wantKV: msgs(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpDelete, Key: "a"}}})}},
	})
}

// TestTxnFailures covers the errors of a transaction once it is parsed,
// and the methods the route refuses.
func TestTxnFailures(t *testing.T) {
	body := ptr(`{"success":[{"op":"put","key":"a","value":"1"},{"op":"put","key":"b","value":"2"}],"failure":[{"op":"get","key":"a"}]}`)
	sent := msgs(messages.Txn{
		Success: []messages.TxnOp{{Type: messages.OpPut, Key: "a", Value: []byte("1")}, {Type: messages.OpPut, Key: "b", Value: []byte("2")}},
		Failure: []messages.TxnOp{{Type: messages.OpGet, Key: "a"}},
	})
	const wrongCount = "internal error: kv actor answered"
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "invalid transaction: 400", method: "POST", path: "/v1/txn", body: body,
			kvReply:    messages.Result{Err: fmt.Errorf("success: %w: operation 1: key %q is written twice", messages.ErrInvalidTxn, "a")},
			wantStatus: 400, wantContains: `invalid transaction: operation 1: key "a" is written twice`, wantKV: sent}},
		{apiCase: apiCase{name: "unsupported format: 405 allowing nothing", method: "POST", path: "/v1/txn", body: body,
			kvReply:    messages.Result{Err: fmt.Errorf("%w: raftexample has no transactions", messages.ErrUnsupported)},
			wantStatus: 405, wantContains: "raftexample has no transactions", wantHeader: map[string]string{"Allow": ""},
			wantKV: sent}},
		{apiCase: apiCase{name: "too few results for the success branch: 500", method: "POST", path: "/v1/txn", body: body,
			kvReply:    messages.Result{Succeeded: true, Results: []messages.OpResult{{}}},
			wantStatus: 500, wantContains: wrongCount + " 1 results for 2 operations", wantKV: sent}},
		{apiCase: apiCase{name: "too many results for the failure branch: 500", method: "POST", path: "/v1/txn", body: body,
			kvReply:    messages.Result{Succeeded: false, Results: []messages.OpResult{{}, {}}},
			wantStatus: 500, wantContains: wrongCount + " 2 results for 1 operations", wantKV: sent}},
		{apiCase: apiCase{name: "no results: 500", method: "POST", path: "/v1/txn", body: body,
			kvReply: messages.Result{Succeeded: true}, wantStatus: 500, wantContains: wrongCount, wantKV: sent}},
		{apiCase: apiCase{name: "no leader: 503", method: "POST", path: "/v1/txn", body: body,
			kvReply:    messages.Result{Err: messages.ErrNoLeader},
			wantStatus: 503, wantHeader: map[string]string{"Retry-After": "1"}, wantKV: sent}},
		{apiCase: apiCase{name: "no space: 507", method: "POST", path: "/v1/txn", body: body,
			kvReply: messages.Result{Err: apply.ErrNoSpace}, wantStatus: 507, wantKV: sent}},
		{apiCase: apiCase{name: "timeout: the transaction may be applied", method: "POST", path: "/v1/txn", body: body,
			cfg: httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}, kvReply: silent,
			wantStatus: 504, wantContains: "outcome of the write is unknown", wantKV: sent}},
		{apiCase: apiCase{name: "GET: 405", method: "GET", path: "/v1/txn", kvReply: messages.Result{},
			wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}}},
		{apiCase: apiCase{name: "PUT: 405", method: "PUT", path: "/v1/txn", body: body, kvReply: messages.Result{},
			wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}}},
		{apiCase: apiCase{name: "DELETE: 405", method: "DELETE", path: "/v1/txn", kvReply: messages.Result{},
			wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}}},
		{apiCase: apiCase{name: "a path under the route is no route", method: "POST", path: "/v1/txn/x", body: body,
			kvReply: messages.Result{}, wantStatus: 404}},
	})
}
