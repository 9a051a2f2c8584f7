package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/messages"
)

func modRev(op messages.CompareOp, rev uint64) messages.Compare {
	return messages.Compare{Key: "k", Target: messages.CompareModRevision, Op: op, Number: rev}
}

var (
	exists = messages.Compare{Key: "k", Target: messages.CompareCreateRevision, Op: messages.CompareGreater}
	absent = messages.Compare{Key: "k", Target: messages.CompareCreateRevision, Op: messages.CompareEqual}
)

// condTxn is the transaction a conditional write of key k sends: op if
// conds hold, else a read of the key for the 412.
func condTxn(op messages.TxnOp, conds ...messages.Compare) messages.Txn {
	return messages.Txn{
		Compares: conds,
		Success:  []messages.TxnOp{op},
		Failure:  []messages.TxnOp{{Type: messages.OpGet, Key: "k"}},
	}
}

var (
	putOp    = messages.TxnOp{Type: messages.OpPut, Key: "k", Value: []byte("v")}
	deleteOp = messages.TxnOp{Type: messages.OpDelete, Key: "k"}
)

// TestPreconditionHeaders maps each If-Match / If-None-Match header to the
// compares of the transaction sent, for PUT and DELETE alike, or to a 400
// that sends nothing.
func TestPreconditionHeaders(t *testing.T) {
	const (
		quote   = "quote the revision"
		weak    = "weak tag"
		noRev   = "does not name a revision"
		list    = "not a list"
		headers = "not 2 headers"
	)
	for _, p := range []struct {
		name     string
		header   http.Header
		want     []messages.Compare // nil: 400
		contains string             // the 400's reason
	}{
		{"If-Match *: the key exists", hdr("If-Match", "*"), []messages.Compare{exists}, ""},
		{"If-None-Match *: the key is absent", hdr("If-None-Match", "*"), []messages.Compare{absent}, ""},
		{`If-Match "5": at mod_revision 5`, hdr("If-Match", `"5"`), []messages.Compare{modRev(messages.CompareEqual, 5)}, ""},
		{`If-None-Match "5": not at mod_revision 5`, hdr("If-None-Match", `"5"`),
			[]messages.Compare{modRev(messages.CompareNotEqual, 5)}, ""},
		{"white space around the tag", hdr("If-Match", ` "5" `), []messages.Compare{modRev(messages.CompareEqual, 5)}, ""},
		{"the largest revision", hdr("If-Match", `"18446744073709551615"`),
			[]messages.Compare{modRev(messages.CompareEqual, 1<<64-1)}, ""},
		{"both headers: If-Match first", hdr("If-None-Match", `"4"`, "If-Match", "*"),
			[]messages.Compare{exists, modRev(messages.CompareNotEqual, 4)}, ""},
		{"both headers, a tag and a star", hdr("If-Match", `"5"`, "If-None-Match", "*"),
			[]messages.Compare{modRev(messages.CompareEqual, 5), absent}, ""},

		{"unquoted 5", hdr("If-Match", "5"), nil, quote},
		{"unquoted 5 in If-None-Match", hdr("If-None-Match", "5"), nil, quote},
		{`weak W/"5"`, hdr("If-Match", `W/"5"`), nil, weak},
		{`weak W/"5" in If-None-Match`, hdr("If-None-Match", `W/"5"`), nil, weak},
		{`"0" names no revision`, hdr("If-Match", `"0"`), nil, noRev},
		{`"0" in If-None-Match`, hdr("If-None-Match", `"0"`), nil, noRev},
		{`"x"`, hdr("If-Match", `"x"`), nil, noRev},
		{`empty tag ""`, hdr("If-Match", `""`), nil, noRev},
		{`"-1"`, hdr("If-Match", `"-1"`), nil, noRev},
		{`"+5"`, hdr("If-Match", `"+5"`), nil, noRev},
		{`"05" is not the tag of revision 5`, hdr("If-Match", `"05"`), nil, noRev},
		{"revision overflows", hdr("If-Match", `"18446744073709551616"`), nil, noRev},
		{"unterminated quote", hdr("If-Match", `"5`), nil, quote},
		{"a lone quote", hdr("If-Match", `"`), nil, quote},
		{"empty header", hdr("If-Match", ""), nil, quote},
		{`a list "1", "2"`, hdr("If-Match", `"1", "2"`), nil, list},
		{`a list in If-None-Match`, hdr("If-None-Match", `"1","2"`), nil, list},
		{`a star and a tag`, hdr("If-Match", `*, "1"`), nil, list},
		{"two If-Match headers", hdr("If-Match", `"1"`, "If-Match", `"2"`), nil, headers},
		{"two If-None-Match stars", hdr("If-None-Match", "*", "If-None-Match", "*"), nil, headers},
		{"a good header and a bad one", hdr("If-Match", "*", "If-None-Match", "5"), nil, quote},
	} {
		var cases []coordCase
		for _, m := range []struct {
			method string
			body   *string
			op     messages.TxnOp
			reply  messages.Result
			json   string
		}{
			{"PUT", ptr("v"), putOp, messages.Result{Succeeded: true, Index: 12, Revision: 12, Results: []messages.OpResult{{}}},
				`{"index":12,"revision":12}`},
			{"DELETE", nil, deleteOp, messages.Result{Succeeded: true, Index: 13, Revision: 13, Results: []messages.OpResult{{Deleted: 1}}},
				`{"index":13,"revision":13,"deleted":1}`},
		} {
			c := coordCase{apiCase: apiCase{name: m.method + " " + p.name, method: m.method, path: "/v1/kv/k", body: m.body,
				kvReply: m.reply, wantStatus: 400, wantContains: p.contains}, reqHeader: p.header}
			if p.want != nil {
				c.wantStatus = 200
				c.wantJSON = m.json
				c.wantKV = msgs(condTxn(m.op, p.want...))
			}
			cases = append(cases, c)
		}
		t.Run(p.name, func(t *testing.T) { runCoordCases(t, cases) })
	}
}

// TestConditionalAnswers covers what a conditional write answers: the write
// as an unconditional one would, or 412 with the key's current state.
func TestConditionalAnswers(t *testing.T) {
	cur := messages.KV{Key: "k", Value: []byte("cur"), CreateRevision: 3, ModRevision: 9, Version: 2}
	refusedPresent := messages.Result{Index: 15, Revision: 14,
		Results: []messages.OpResult{{KVs: []messages.KV{cur}, Count: 1}}}
	refusedAbsent := messages.Result{Index: 15, Revision: 14, Results: []messages.OpResult{{}}}
	presentHeaders := map[string]string{"ETag": `"9"`, "Raftkv-Revision": "14", "Raftkv-Create-Revision": "3",
		"Raftkv-Version": "2", "Content-Type": "application/json"}
	absentHeaders := map[string]string{"ETag": "", "Raftkv-Revision": "14", "Raftkv-Create-Revision": "",
		"Raftkv-Version": "", "Content-Type": "application/json"}
	const (
		presentJSON = `{"error":{"code":412,"message":"precondition failed: the key exists, at mod_revision 9"},"revision":14,"mod_revision":9}`
		absentJSON  = `{"error":{"code":412,"message":"precondition failed: the key does not exist"},"revision":14,"mod_revision":0}`
	)
	short := httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "PUT refused, key present", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply: refusedPresent, wantStatus: 412, wantHeader: presentHeaders,
			wantKV: msgs(condTxn(putOp, modRev(messages.CompareEqual, 5)))},
			reqHeader: hdr("If-Match", `"5"`), wantJSON: presentJSON},
		{apiCase: apiCase{name: "PUT create refused, key present", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply: refusedPresent, wantStatus: 412, wantHeader: presentHeaders,
			wantKV: msgs(condTxn(putOp, absent))},
			reqHeader: hdr("If-None-Match", "*"), wantJSON: presentJSON},
		{apiCase: apiCase{name: "PUT refused, key absent", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply: refusedAbsent, wantStatus: 412, wantHeader: absentHeaders,
			wantKV: msgs(condTxn(putOp, exists))},
			reqHeader: hdr("If-Match", "*"), wantJSON: absentJSON},
		{apiCase: apiCase{name: "DELETE refused, key present", method: "DELETE", path: "/v1/kv/k",
			kvReply: refusedPresent, wantStatus: 412, wantHeader: presentHeaders,
			wantKV: msgs(condTxn(deleteOp, modRev(messages.CompareEqual, 5)))},
			reqHeader: hdr("If-Match", `"5"`), wantJSON: presentJSON},
		{apiCase: apiCase{name: "DELETE refused, key absent", method: "DELETE", path: "/v1/kv/k",
			kvReply: refusedAbsent, wantStatus: 412, wantHeader: absentHeaders,
			wantKV: msgs(condTxn(deleteOp, modRev(messages.CompareEqual, 5)))},
			reqHeader: hdr("If-Match", `"5"`), wantJSON: absentJSON},
		{apiCase: apiCase{name: "refusal answered by pointer", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply: &refusedPresent, wantStatus: 412, wantHeader: presentHeaders,
			wantKV: msgs(condTxn(putOp, absent))},
			reqHeader: hdr("If-None-Match", "*"), wantJSON: presentJSON},

		{apiCase: apiCase{name: "PUT applied", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply:    messages.Result{Succeeded: true, Index: 21, Revision: 20, Results: []messages.OpResult{{}}},
			wantStatus: 200, wantBody: ptr(`{"index":21,"revision":20}` + "\n"),
			wantHeader: map[string]string{"Raftkv-Revision": "20", "ETag": "", "Content-Type": "application/json"},
			wantKV:     msgs(condTxn(putOp, modRev(messages.CompareEqual, 9)))},
			reqHeader: hdr("If-Match", `"9"`)},
		{apiCase: apiCase{name: "PUT of an empty value applied", method: "PUT", path: "/v1/kv/k", body: ptr(""),
			kvReply:    messages.Result{Succeeded: true, Index: 21, Revision: 20, Results: []messages.OpResult{{}}},
			wantStatus: 200, wantBody: ptr(`{"index":21,"revision":20}` + "\n"),
			wantKV: msgs(condTxn(messages.TxnOp{Type: messages.OpPut, Key: "k", Value: []byte{}}, absent))},
			reqHeader: hdr("If-None-Match", "*")},
		{apiCase: apiCase{name: "DELETE applied", method: "DELETE", path: "/v1/kv/k",
			kvReply:    messages.Result{Succeeded: true, Index: 22, Revision: 22, Results: []messages.OpResult{{Deleted: 1}}},
			wantStatus: 200, wantBody: ptr(`{"index":22,"revision":22,"deleted":1}` + "\n"),
			wantHeader: map[string]string{"Raftkv-Revision": "22"},
			wantKV:     msgs(condTxn(deleteOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "DELETE of an absent key applied: deleted 0", method: "DELETE", path: "/v1/kv/k",
			kvReply:    messages.Result{Succeeded: true, Index: 23, Revision: 22, Results: []messages.OpResult{{}}},
			wantStatus: 200, wantBody: ptr(`{"index":23,"revision":22,"deleted":0}` + "\n"),
			wantKV: msgs(condTxn(deleteOp, absent))},
			reqHeader: hdr("If-None-Match", "*")},

		// A refusal is certain: an answer that does not hold the read of
		// the key cannot say where the key is.
		{apiCase: apiCase{name: "refusal without the read of the key", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply: messages.Result{Index: 15, Revision: 14}, wantStatus: 500,
			wantKV: msgs(condTxn(putOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "refusal with two results", method: "DELETE", path: "/v1/kv/k",
			kvReply: messages.Result{Index: 15, Revision: 14, Results: []messages.OpResult{{}, {}}}, wantStatus: 500,
			wantKV: msgs(condTxn(deleteOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "success without the result of the write", method: "DELETE", path: "/v1/kv/k",
			kvReply: messages.Result{Succeeded: true, Index: 15, Revision: 15}, wantStatus: 500,
			wantKV: msgs(condTxn(deleteOp, exists))},
			reqHeader: hdr("If-Match", "*")},

		// raftexample's PUT /<key> takes the preconditions too, answered as
		// that route answers: 204 with no body, errors in one line of text.
		{apiCase: apiCase{name: "compat PUT applied", method: "PUT", path: "/k", body: ptr("v"),
			kvReply:    messages.Result{Succeeded: true, Index: 21, Revision: 20, Results: []messages.OpResult{{}}},
			wantStatus: 204, wantBody: ptr(""), wantHeader: map[string]string{"Raftkv-Revision": "20", "ETag": ""},
			wantKV: msgs(condTxn(putOp, modRev(messages.CompareEqual, 5)))},
			reqHeader: hdr("If-Match", `"5"`)},
		{apiCase: apiCase{name: "compat PUT create refused: 412 in a line, with the ETag", method: "PUT", path: "/k", body: ptr("v"),
			kvReply: refusedPresent, wantStatus: 412,
			wantBody:   ptr("precondition failed: the key exists, at mod_revision 9\n"),
			wantHeader: map[string]string{"ETag": `"9"`, "Raftkv-Revision": "14", "Content-Type": "text/plain; charset=utf-8"},
			wantKV:     msgs(condTxn(putOp, absent))},
			reqHeader: hdr("If-None-Match", "*")},
		{apiCase: apiCase{name: "compat PUT refused, key absent", method: "PUT", path: "/k", body: ptr("v"),
			kvReply: refusedAbsent, wantStatus: 412, wantContains: "does not exist",
			wantHeader: map[string]string{"ETag": "", "Raftkv-Revision": "14"},
			wantKV:     msgs(condTxn(putOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "compat PUT with a malformed If-None-Match: 400, nothing sent", method: "PUT", path: "/k", body: ptr("v"),
			kvReply: messages.Result{Index: 4, Revision: 4}, wantStatus: 400, wantContains: "If-None-Match"},
			reqHeader: hdr("If-None-Match", `W/"5"`, "If-None-Match", "5")},
		{apiCase: apiCase{name: "a range DELETE takes no precondition", method: "DELETE", path: "/v1/kv/k?prefix=true",
			kvReply: messages.Result{Succeeded: true, Results: []messages.OpResult{{}}}, wantStatus: 400,
			wantContains: "a range delete takes neither"},
			reqHeader: hdr("If-Match", `"5"`)},

		{apiCase: apiCase{name: "unsupported by the kv actor: 405", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply:    messages.Result{Err: fmt.Errorf("wrapped: %w: no transactions", messages.ErrUnsupported)},
			wantStatus: 405, wantContains: "not supported by the state machine format: no transactions",
			wantHeader: map[string]string{"Allow": "GET, DELETE"},
			wantKV:     msgs(condTxn(putOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "DELETE unsupported by the kv actor: 405", method: "DELETE", path: "/v1/kv/k",
			kvReply:    messages.Result{Err: messages.ErrUnsupported},
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, PUT"},
			wantKV: msgs(condTxn(deleteOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "invalid transaction: 400", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply:    messages.Result{Err: fmt.Errorf("%w: whatever", messages.ErrInvalidTxn)},
			wantStatus: 400, wantContains: "invalid transaction", wantKV: msgs(condTxn(putOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "no leader: 503", method: "PUT", path: "/v1/kv/k", body: ptr("v"),
			kvReply:    messages.Result{Err: messages.ErrNoLeader, Succeeded: true, Results: []messages.OpResult{{}}},
			wantStatus: 503, wantHeader: map[string]string{"Retry-After": "1"}, wantKV: msgs(condTxn(putOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "timeout: the write may be applied", method: "DELETE", path: "/v1/kv/k", cfg: short,
			kvReply: silent, wantStatus: 504, wantContains: "outcome of the write is unknown",
			wantKV: msgs(condTxn(deleteOp, exists))},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "body over the limit: nothing sent", method: "PUT", path: "/v1/kv/k", body: ptr("123456789"),
			chunked: true, cfg: httpapi.HandlerConfig{MaxRequestBytes: 8},
			kvReply: messages.Result{Succeeded: true, Results: []messages.OpResult{{}}}, wantStatus: 413},
			reqHeader: hdr("If-Match", "*")},
		{apiCase: apiCase{name: "empty key before the header", method: "PUT", path: "/v1/kv/", body: ptr("v"),
			kvReply: messages.Result{Succeeded: true}, wantStatus: 400, wantContains: "key is empty"},
			reqHeader: hdr("If-Match", "5")},
	})
}
