package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// granted answers a lease request with lease id: ttl granted, left
// remaining, keys.
func granted(id, ttl, left int64, keys ...string) messages.Result {
	return messages.Result{Index: 12, Revision: 11, Lease: &messages.Lease{ID: id, TTL: ttl, Remaining: left, Keys: keys}}
}

// refusedWhenApplied is err as the kv actor answers a write whose entry
// the state machine refused.
func refusedWhenApplied(err error) messages.Result {
	return messages.Result{Err: fmt.Errorf("%w: %w", messages.ErrEntryRefused, err)}
}

const maxID = "9223372036854775807"

// TestLeaseGrant covers POST /v1/leases: the body each grant takes, the
// answer (the TTL granted, which the member may have raised, and the id as
// a string), and the bodies refused before anything is proposed.
func TestLeaseGrant(t *testing.T) {
	grant := func(body string, want messages.LeaseGrant, reply messages.Result, answer string) coordCase {
		return coordCase{apiCase: apiCase{name: body, method: "POST", path: "/v1/leases", body: ptr(body),
			kvReply: reply, wantStatus: 200, wantKV: msgs(want)}, wantJSON: answer}
	}
	bad := func(body, contains string) coordCase {
		return coordCase{apiCase: apiCase{name: "refused " + body, method: "POST", path: "/v1/leases", body: ptr(body),
			kvReply: granted(1, 10, 10), wantStatus: 400, wantContains: contains}}
	}
	const takes = `a grant's body is JSON {"ttl": seconds} or {"id": "N", "ttl": seconds}`
	const badID = "a lease id is an integer from 0 to " + maxID
	runCoordCases(t, []coordCase{
		grant(`{"ttl":10}`, messages.LeaseGrant{TTL: 10}, granted(7587, 10, 10), `{"id":"7587","ttl":10}`),
		// The member's minimum (2 s at the defaults) is what the answer says.
		grant(`{"ttl":1}`, messages.LeaseGrant{TTL: 1}, granted(7588, 2, 2), `{"id":"7588","ttl":2}`),
		grant(`{"id":5,"ttl":60}`, messages.LeaseGrant{ID: 5, TTL: 60}, granted(5, 60, 60), `{"id":"5","ttl":60}`),
		grant(`{"id":"5","ttl":60}`, messages.LeaseGrant{ID: 5, TTL: 60}, granted(5, 60, 60), `{"id":"5","ttl":60}`),
		grant(`{"id":"`+maxID+`","ttl":60}`, messages.LeaseGrant{ID: 1<<63 - 1, TTL: 60}, granted(1<<63-1, 60, 60),
			`{"id":"`+maxID+`","ttl":60}`),
		grant(`{"id":`+maxID+`,"ttl":60}`, messages.LeaseGrant{ID: 1<<63 - 1, TTL: 60}, granted(1<<63-1, 60, 60),
			`{"id":"`+maxID+`","ttl":60}`),
		grant(`{"id":0,"ttl":60}`, messages.LeaseGrant{TTL: 60}, granted(9, 60, 60), `{"id":"9","ttl":60}`),
		grant(`{"id":"0","ttl":60}`, messages.LeaseGrant{TTL: 60}, granted(9, 60, 60), `{"id":"9","ttl":60}`),
		grant(`{"id":null,"ttl":60}`, messages.LeaseGrant{TTL: 60}, granted(9, 60, 60), `{"id":"9","ttl":60}`),
		grant(`{"ttl":9000000000}`, messages.LeaseGrant{TTL: messages.MaxLeaseTTL}, granted(9, messages.MaxLeaseTTL, messages.MaxLeaseTTL),
			`{"id":"9","ttl":9000000000}`),
		grant(" {\"ttl\":10}\n\t", messages.LeaseGrant{TTL: 10}, granted(3, 10, 10), `{"id":"3","ttl":10}`),

		bad(`{}`, `a grant takes "ttl", in seconds`),
		bad(`{"id":5}`, `a grant takes "ttl"`),
		bad(`{"ttl":null}`, `a grant takes "ttl"`),
		bad(`{"ttl":0}`, "ttl must be 1 second or more, not 0"),
		bad(`{"ttl":-5}`, "ttl must be 1 second or more, not -5"),
		bad(`{"ttl":1.5}`, takes),
		bad(`{"ttl":1e3}`, takes),
		bad(`{"ttl":"10"}`, takes),
		bad(`{"ttl":9000000001}`, "too large lease TTL: 9000000001 seconds, at most 9000000000"),
		bad(`{"ttl":9223372036854775808}`, takes),
		bad(`{"id":-1,"ttl":10}`, badID),
		bad(`{"id":"-1","ttl":10}`, badID),
		bad(`{"id":"+5","ttl":10}`, badID),
		bad(`{"id":1.5,"ttl":10}`, badID),
		bad(`{"id":1e3,"ttl":10}`, badID),
		bad(`{"id":"","ttl":10}`, badID),
		bad(`{"id":" 5","ttl":10}`, badID),
		bad(`{"id":"0x10","ttl":10}`, badID),
		bad(`{"id":true,"ttl":10}`, badID),
		bad(`{"id":9223372036854775808,"ttl":10}`, badID),
		bad(`{"id":"9223372036854775808","ttl":10}`, badID),
		bad(`{"ttl":10,"keys":["a"]}`, `unknown field "keys"`),
		bad(`{"ttl":10} {"ttl":10}`, "more than one JSON value"),
		bad(`{"ttl":10}}`, takes),
		bad(``, takes),
		bad(`[10]`, takes),

		{apiCase: apiCase{name: "an id in use: 409", method: "POST", path: "/v1/leases", body: ptr(`{"id":5,"ttl":10}`),
			kvReply: refusedWhenApplied(messages.ErrLeaseExists), wantStatus: 409, wantContains: "lease already exists",
			wantKV: msgs(messages.LeaseGrant{ID: 5, TTL: 10})}},
		{apiCase: apiCase{name: "a TTL the member refuses: 400", method: "POST", path: "/v1/leases", body: ptr(`{"ttl":10}`),
			kvReply: messages.Result{Err: messages.ErrLeaseTTLTooLarge}, wantStatus: 400, wantContains: "too large lease TTL",
			wantKV: msgs(messages.LeaseGrant{TTL: 10})}},
		{apiCase: apiCase{name: "no leader: 503", method: "POST", path: "/v1/leases", body: ptr(`{"ttl":10}`),
			kvReply: messages.Result{Err: messages.ErrNoLeader}, wantStatus: 503,
			wantHeader: map[string]string{"Retry-After": "1"}, wantKV: msgs(messages.LeaseGrant{TTL: 10})}},
		{apiCase: apiCase{name: "timeout: the grant may be applied", method: "POST", path: "/v1/leases", body: ptr(`{"ttl":10}`),
			cfg: httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}, kvReply: silent,
			wantStatus: 504, wantContains: "outcome of the write is unknown", wantKV: msgs(messages.LeaseGrant{TTL: 10})}},
		{apiCase: apiCase{name: "answered without the lease: 500", method: "POST", path: "/v1/leases", body: ptr(`{"ttl":10}`),
			kvReply: messages.Result{Index: 3}, wantStatus: 500, wantContains: "no lease", wantKV: msgs(messages.LeaseGrant{TTL: 10})}},
		{apiCase: apiCase{name: "answered with lease id 0: 500", method: "POST", path: "/v1/leases", body: ptr(`{"ttl":10}`),
			kvReply: granted(0, 10, 10), wantStatus: 500, wantContains: "granted lease id 0", wantKV: msgs(messages.LeaseGrant{TTL: 10})}},
		{apiCase: apiCase{name: "a body over the limit: 413", method: "POST", path: "/v1/leases", body: ptr(`{"ttl":10}`),
			cfg: httpapi.HandlerConfig{MaxRequestBytes: 8}, kvReply: granted(1, 10, 10), wantStatus: 413}},
	})
}

// TestLeaseRoutes covers the other routes: list, read, revoke, keep-alive,
// each request as its message and each answer as its JSON; and the
// methods, paths and ids refused.
func TestLeaseRoutes(t *testing.T) {
	rx := httpapi.HandlerConfig{Format: apply.FormatRaftexample}
	query := func(id int64, keys bool) []any { return msgs(messages.LeaseQuery{ID: id, Keys: keys}) }
	notFound := messages.Result{Err: messages.ErrLeaseNotFound}
	const badID = "a lease id is a decimal number from 1 to " + maxID
	cases := []coordCase{
		{apiCase: apiCase{name: "list, in id order", method: "GET", path: "/v1/leases",
			kvReply: messages.Result{Index: 12, Revision: 11, Leases: []messages.Lease{
				{ID: 9, TTL: 60, Remaining: -1}, {ID: 1<<63 - 1, TTL: 2, Remaining: -1}, {ID: 3, TTL: 10, Remaining: -1}}},
			wantStatus: 200, wantKV: msgs(messages.LeaseList{}),
			wantBody: ptr(`{"leases":[{"id":"3","granted_ttl":10},{"id":"9","granted_ttl":60},{"id":"` + maxID + `","granted_ttl":2}]}` + "\n")}},
		{apiCase: apiCase{name: "list: the remaining TTL is never listed", method: "GET", path: "/v1/leases",
			kvReply:    messages.Result{Leases: []messages.Lease{{ID: 3, TTL: 10, Remaining: 4, Keys: []string{"a"}}}},
			wantStatus: 200, wantKV: msgs(messages.LeaseList{})},
			wantJSON: `{"leases":[{"id":"3","granted_ttl":10}]}`},
		{apiCase: apiCase{name: "no leases: an empty list", method: "GET", path: "/v1/leases", kvReply: messages.Result{},
			wantStatus: 200, wantBody: ptr(`{"leases":[]}` + "\n"), wantKV: msgs(messages.LeaseList{})}},
		{apiCase: apiCase{name: "list, no leader", method: "GET", path: "/v1/leases", kvReply: messages.Result{Err: messages.ErrNoLeader},
			wantStatus: 503, wantKV: msgs(messages.LeaseList{})}},

		{apiCase: apiCase{name: "read", method: "GET", path: "/v1/leases/5", kvReply: granted(5, 10, 7),
			wantStatus: 200, wantKV: query(5, false), wantHeader: map[string]string{"Content-Type": "application/json"}},
			wantJSON: `{"id":"5","granted_ttl":10,"ttl":7}`},
		{apiCase: apiCase{name: "read with keys, one not UTF-8", method: "GET", path: "/v1/leases/5?keys=true",
			kvReply: granted(5, 10, 7, "a", "\xff\x00", "é\n"), wantStatus: 200, wantKV: query(5, true)},
			wantJSON: `{"id":"5","granted_ttl":10,"ttl":7,"keys":[{"key":"a"},{"key_b64":"/wA="},{"key":"é\n"}]}`},
		{apiCase: apiCase{name: "read with keys, none", method: "GET", path: "/v1/leases/5?keys=true",
			kvReply: granted(5, 10, 0), wantStatus: 200, wantKV: query(5, true)},
			wantJSON: `{"id":"5","granted_ttl":10,"ttl":0,"keys":[]}`},
		{apiCase: apiCase{name: "read with keys=false", method: "GET", path: "/v1/leases/5?keys=false",
			kvReply: granted(5, 10, 7, "a"), wantStatus: 200, wantKV: query(5, false)},
			wantJSON: `{"id":"5","granted_ttl":10,"ttl":7}`},
		{apiCase: apiCase{name: "read of the largest id", method: "GET", path: "/v1/leases/" + maxID,
			kvReply: granted(1<<63-1, 10, 7), wantStatus: 200, wantKV: query(1<<63-1, false)},
			wantJSON: `{"id":"` + maxID + `","granted_ttl":10,"ttl":7}`},
		{apiCase: apiCase{name: "read, leading zeros", method: "GET", path: "/v1/leases/005",
			kvReply: granted(5, 10, 7), wantStatus: 200, wantKV: query(5, false)},
			wantJSON: `{"id":"5","granted_ttl":10,"ttl":7}`},
		{apiCase: apiCase{name: "read of a lease gone: 404", method: "GET", path: "/v1/leases/5", kvReply: notFound,
			wantStatus: 404, wantContains: "requested lease not found", wantKV: query(5, false)}},
		{apiCase: apiCase{name: "read answered without the lease: 500", method: "GET", path: "/v1/leases/5",
			kvReply: messages.Result{}, wantStatus: 500, wantKV: query(5, false)}},
		{apiCase: apiCase{name: "read, keys=yes", method: "GET", path: "/v1/leases/5?keys=yes", kvReply: granted(5, 10, 7),
			wantStatus: 400, wantContains: "keys must be true or false"}},
		{apiCase: apiCase{name: "read, an unknown parameter", method: "GET", path: "/v1/leases/5?key=true", kvReply: granted(5, 10, 7),
			wantStatus: 400, wantContains: `unknown parameter "key" for a lease read; it takes keys`}},

		{apiCase: apiCase{name: "revoke", method: "DELETE", path: "/v1/leases/5",
			kvReply: messages.Result{Index: 43, Revision: 42}, wantStatus: 200,
			wantBody: ptr(`{"revision":42}` + "\n"), wantHeader: map[string]string{"Raftkv-Revision": "42"},
			wantKV: msgs(messages.LeaseRevoke{ID: 5})}},
		{apiCase: apiCase{name: "revoke of a lease gone: 404", method: "DELETE", path: "/v1/leases/5",
			kvReply: refusedWhenApplied(messages.ErrLeaseNotFound), wantStatus: 404, wantContains: "requested lease not found",
			wantKV: msgs(messages.LeaseRevoke{ID: 5})}},
		{apiCase: apiCase{name: "revoke, keys=true", method: "DELETE", path: "/v1/leases/5?keys=true", kvReply: messages.Result{},
			wantStatus: 400, wantContains: `unknown parameter "keys" for a revoke; it takes none`}},
		{apiCase: apiCase{name: "revoke timeout: the revocation may be applied", method: "DELETE", path: "/v1/leases/5",
			cfg: httpapi.HandlerConfig{Timeout: 50 * time.Millisecond}, kvReply: silent,
			wantStatus: 504, wantContains: "outcome of the write is unknown", wantKV: msgs(messages.LeaseRevoke{ID: 5})}},

		{apiCase: apiCase{name: "keep-alive", method: "POST", path: "/v1/leases/5/keepalive", kvReply: granted(5, 10, 10),
			wantStatus: 200, wantBody: ptr(`{"id":"5","ttl":10}` + "\n"), wantKV: msgs(messages.LeaseKeepAlive{ID: 5})}},
		{apiCase: apiCase{name: "keep-alive of a lease gone: 404", method: "POST", path: "/v1/leases/5/keepalive", kvReply: notFound,
			wantStatus: 404, wantContains: "requested lease not found", wantKV: msgs(messages.LeaseKeepAlive{ID: 5})}},
		{apiCase: apiCase{name: "keep-alive on a follower with no way to the leader: 503", method: "POST", path: "/v1/leases/5/keepalive",
			kvReply: messages.Result{Err: messages.ErrNotLeader}, wantStatus: 503, wantContains: "not the leader",
			wantHeader: map[string]string{"Retry-After": "1"}, wantKV: msgs(messages.LeaseKeepAlive{ID: 5})}},
		{apiCase: apiCase{name: "keep-alive answered without the lease: 500", method: "POST", path: "/v1/leases/5/keepalive",
			kvReply: messages.Result{}, wantStatus: 500, wantKV: msgs(messages.LeaseKeepAlive{ID: 5})}},
		{apiCase: apiCase{name: "keep-alive, keys=true", method: "POST", path: "/v1/leases/5/keepalive?keys=true",
			kvReply: granted(5, 10, 10), wantStatus: 400, wantContains: `unknown parameter "keys" for a keep-alive; it takes none`}},

		{apiCase: apiCase{name: "PUT /v1/leases: 405", method: "PUT", path: "/v1/leases", body: ptr(`{"ttl":1}`),
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, POST"}}},
		{apiCase: apiCase{name: "DELETE /v1/leases: 405", method: "DELETE", path: "/v1/leases",
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, POST"}}},
		{apiCase: apiCase{name: "POST /v1/leases/<id>: 405", method: "POST", path: "/v1/leases/5", body: ptr(`{"ttl":1}`),
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, DELETE"}}},
		{apiCase: apiCase{name: "PUT /v1/leases/<id>: 405", method: "PUT", path: "/v1/leases/5", body: ptr(`{"ttl":1}`),
			wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, DELETE"}}},
		{apiCase: apiCase{name: "GET a keep-alive: 405", method: "GET", path: "/v1/leases/5/keepalive",
			wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}}},
		{apiCase: apiCase{name: "an unknown action: 404", method: "POST", path: "/v1/leases/5/renew", wantStatus: 404}},
		{apiCase: apiCase{name: "a path under the keep-alive: 404", method: "POST", path: "/v1/leases/5/keepalive/x", wantStatus: 404}},
		{apiCase: apiCase{name: "a route that only starts alike: 404", method: "GET", path: "/v1/leasesx", wantStatus: 404}},
		// On the client port, /leases is a raftexample key like any other.
		{apiCase: apiCase{name: "raftexample's /leases is a key", method: "GET", path: "/leases/5",
			kvReply: messages.Result{Found: true, Value: []byte("v")}, wantStatus: 200, wantBody: ptr("v"),
			wantKV: msgs(messages.Get{Key: "leases/5"})}},

		{apiCase: apiCase{name: "raftexample format: no leases, nothing allowed", method: "GET", path: "/v1/leases", cfg: rx,
			wantStatus: 405, wantContains: "raftexample has no leases", wantHeader: map[string]string{"Allow": ""}}},
		{apiCase: apiCase{name: "raftexample format: no grant", method: "POST", path: "/v1/leases", body: ptr(`{"ttl":10}`), cfg: rx,
			wantStatus: 405, wantContains: "raftexample has no leases", wantHeader: map[string]string{"Allow": ""}}},
		{apiCase: apiCase{name: "raftexample format: no keep-alive", method: "POST", path: "/v1/leases/5/keepalive", cfg: rx,
			wantStatus: 405, wantContains: "raftexample has no leases", wantHeader: map[string]string{"Allow": ""}}},
	}
	for _, id := range []string{"0", "-1", "+5", "abc", "0x10", "1.5", "9223372036854775808", "", "%20" + "5"} {
		for _, r := range []struct{ method, suffix string }{{"GET", ""}, {"DELETE", ""}, {"POST", "/keepalive"}} {
			cases = append(cases, coordCase{apiCase: apiCase{name: fmt.Sprintf("%s id %q%s", r.method, id, r.suffix),
				method: r.method, path: "/v1/leases/" + id + r.suffix, kvReply: granted(5, 10, 10),
				wantStatus: 400, wantContains: badID}})
		}
	}
	runCoordCases(t, cases)
}

// TestPutWithLease covers PUT /v1/kv/<key>?lease=<id>: the lease goes
// with the put, unconditional or conditional, and a lease that does not
// exist is a 404 that wrote nothing.
func TestPutWithLease(t *testing.T) {
	put := func(lease int64) []any { return msgs(messages.Put{Key: "k", Value: []byte("v"), Lease: lease}) }
	written := messages.Result{Index: 58, Revision: 58}
	condPut := func(c messages.Compare, lease int64) []any {
		return msgs(messages.Txn{
			Compares: []messages.Compare{c},
			Success:  []messages.TxnOp{{Type: messages.OpPut, Key: "k", Value: []byte("v"), Lease: lease}},
			Failure:  []messages.TxnOp{{Type: messages.OpGet, Key: "k"}},
		})
	}
	ifMatch := messages.Compare{Key: "k", Target: messages.CompareModRevision, Op: messages.CompareEqual, Number: 42}
	create := messages.Compare{Key: "k", Target: messages.CompareCreateRevision, Op: messages.CompareEqual}
	const badLease = "lease must be a lease id (a decimal number; 0 for none)"
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "lease=5", method: "PUT", path: "/v1/kv/k?lease=5", body: ptr("v"), kvReply: written,
			wantStatus: 200, wantKV: put(5)}, wantJSON: `{"index":58,"revision":58}`},
		{apiCase: apiCase{name: "the largest id", method: "PUT", path: "/v1/kv/k?lease=" + maxID, body: ptr("v"), kvReply: written,
			wantStatus: 200, wantKV: put(1<<63 - 1)}},
		{apiCase: apiCase{name: "lease=0 is none", method: "PUT", path: "/v1/kv/k?lease=0", body: ptr("v"), kvReply: written,
			wantStatus: 200, wantKV: put(0)}},
		{apiCase: apiCase{name: "If-Match with a lease", method: "PUT", path: "/v1/kv/k?lease=5", body: ptr("v"),
			kvReply:    messages.Result{Index: 58, Revision: 58, Succeeded: true, Results: []messages.OpResult{{}}},
			wantStatus: 200, wantKV: condPut(ifMatch, 5)},
			reqHeader: hdr("If-Match", `"42"`), wantJSON: `{"index":58,"revision":58}`},
		{apiCase: apiCase{name: "If-None-Match: * with a lease", method: "PUT", path: "/v1/kv/k?lease=7", body: ptr("v"),
			kvReply:    messages.Result{Index: 58, Revision: 58, Succeeded: true, Results: []messages.OpResult{{}}},
			wantStatus: 200, wantKV: condPut(create, 7)},
			reqHeader: hdr("If-None-Match", "*")},
		{apiCase: apiCase{name: "a lease that does not exist: 404, nothing written", method: "PUT", path: "/v1/kv/k?lease=5", body: ptr("v"),
			kvReply: refusedWhenApplied(messages.ErrLeaseNotFound), wantStatus: 404, wantContains: "requested lease not found",
			wantKV: put(5)}},
		{apiCase: apiCase{name: "a conditional put naming a lease that does not exist: 404", method: "PUT", path: "/v1/kv/k?lease=5",
			body: ptr("v"), kvReply: refusedWhenApplied(messages.ErrLeaseNotFound), wantStatus: 404,
			wantContains: "requested lease not found", wantKV: condPut(ifMatch, 5)},
			reqHeader: hdr("If-Match", `"42"`)},
		{apiCase: apiCase{name: "raftexample's route: 204", method: "PUT", path: "/k", body: ptr("v"), kvReply: written,
			wantStatus: 204, wantKV: put(0)}},
		{apiCase: apiCase{name: "raftexample format: no leases", method: "PUT", path: "/v1/kv/k?lease=5", body: ptr("v"),
			cfg: httpapi.HandlerConfig{Format: apply.FormatRaftexample}, kvReply: written,
			wantStatus: 405, wantContains: "raftexample has no leases"}},
		{apiCase: apiCase{name: "raftexample format: lease=0 is no lease", method: "PUT", path: "/v1/kv/k?lease=0", body: ptr("v"),
			cfg: httpapi.HandlerConfig{Format: apply.FormatRaftexample}, kvReply: written,
			wantStatus: 200, wantKV: msgs(messages.Put{Key: "/k", Value: []byte("v")})}},
		{apiCase: apiCase{name: "lease=", method: "PUT", path: "/v1/kv/k?lease=", body: ptr("v"), kvReply: written,
			wantStatus: 400, wantContains: badLease + `, not ""`}},
		{apiCase: apiCase{name: "lease=-1", method: "PUT", path: "/v1/kv/k?lease=-1", body: ptr("v"), kvReply: written,
			wantStatus: 400, wantContains: badLease}},
		{apiCase: apiCase{name: "lease=x", method: "PUT", path: "/v1/kv/k?lease=x", body: ptr("v"), kvReply: written,
			wantStatus: 400, wantContains: badLease}},
		{apiCase: apiCase{name: "lease past the largest id", method: "PUT", path: "/v1/kv/k?lease=9223372036854775808", body: ptr("v"),
			kvReply: written, wantStatus: 400, wantContains: badLease}},
	})
}

// TestTxnLease parses a put's lease, a number or a string, and refuses it
// on the other operations.
func TestTxnLease(t *testing.T) {
	put := func(lease int64) *messages.Txn {
		return &messages.Txn{Success: []messages.TxnOp{{Type: messages.OpPut, Key: "a", Value: []byte("v"), Lease: lease}}}
	}
	ok := func(lease string, want int64) txnParse {
		body := `{"success":[{"op":"put","key":"a","value":"v","lease":` + lease + `}]}`
		return txnParse{"lease " + lease, body, put(want), ""}
	}
	bad := func(op, contains string) txnParse {
		return txnParse{op, `{"success":[` + op + `]}`, nil, contains}
	}
	const badID = "a lease id is an integer from 0 to " + maxID
	runTxnParses(t, []txnParse{
		ok(`5`, 5),
		ok(`"5"`, 5),
		ok(maxID, 1<<63-1),
		ok(`"`+maxID+`"`, 1<<63-1),
		ok(`0`, 0),
		ok(`null`, 0),
		bad(`{"op":"put","key":"a","value":"v","lease":-1}`, badID),
		bad(`{"op":"put","key":"a","value":"v","lease":1.5}`, badID),
		bad(`{"op":"put","key":"a","value":"v","lease":"x"}`, badID),
		bad(`{"op":"put","key":"a","value":"v","lease":""}`, badID),
		bad(`{"op":"put","key":"a","value":"v","lease":9223372036854775808}`, badID),
		bad(`{"op":"put","key":"a","value":"v","lease":[5]}`, badID),
		bad(`{"op":"delete","key":"a","lease":5}`, "success operation 0: lease is for put"),
		bad(`{"op":"range","key":"a","end":"b","lease":0}`, "lease is for put"),
		{"a null lease is none, on any operation", `{"success":[{"op":"get","key":"a","lease":null}]}`,
			&messages.Txn{Success: []messages.TxnOp{{Type: messages.OpGet, Key: "a"}}}, ""},
	})
}

// TestKeysShowTheirLease checks that a key attached to a lease says so in
// every answer that lists keys (a range read, a transaction's read), and
// that a key without one has no "lease" field.
func TestKeysShowTheirLease(t *testing.T) {
	leased := messages.KV{Key: "a", Value: []byte("1"), CreateRevision: 3, ModRevision: 9, Version: 2, Lease: 5}
	plain := messages.KV{Key: "b", Value: []byte("2"), CreateRevision: 4, ModRevision: 4, Version: 1}
	const (
		leasedJSON = `{"key":"a","value":"1","create_revision":3,"mod_revision":9,"version":2,"lease":"5"}`
		plainJSON  = `{"key":"b","value":"2","create_revision":4,"mod_revision":4,"version":1}`
	)
	runCoordCases(t, []coordCase{
		{apiCase: apiCase{name: "range", method: "GET", path: "/v1/kv/?prefix=", kvReply: onePage(9, false, leased, plain),
			wantStatus: 200, wantKV: msgs(messages.Range{End: "\x00"})},
			wantJSON: `{"revision":9,"kvs":[` + leasedJSON + `,` + plainJSON + `],"more":false,"count":2}`},
		{apiCase: apiCase{name: "keys only", method: "GET", path: "/v1/kv/?prefix=&keys_only=true", kvReply: onePage(9, false, leased),
			wantStatus: 200, wantKV: msgs(messages.Range{End: "\x00", KeysOnly: true})},
			wantJSON: `{"revision":9,"kvs":[{"key":"a","create_revision":3,"mod_revision":9,"version":2,"lease":"5"}],"more":false,"count":1}`},
		{apiCase: apiCase{name: "transaction", method: "POST", path: "/v1/txn", body: ptr(`{"success":[{"op":"get","key":"a"}]}`),
			kvReply: messages.Result{Index: 10, Revision: 9, Succeeded: true,
				Results: []messages.OpResult{{KVs: []messages.KV{leased}, Count: 1}}},
			wantStatus: 200, wantKV: msgs(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpGet, Key: "a"}}})},
			wantJSON: `{"index":10,"revision":9,"succeeded":true,"results":[{"op":"get","kvs":[` + leasedJSON + `],"count":1}]}`},
	})
}

// The lease routes' tests of the hand-off to the leader below use a real
// peer API (NewPeerHandler) served by httptest as the leader's, over a
// scripted kv actor, and a follower wired to fakes (newFixture) whose kv
// actor answers ErrNotLeader.

// leaderKV scripts the leader's kv actor by lease id, recording what it
// is asked.
type leaderKV struct {
	got chan any
}

const (
	leaseLive   = 5 // alive, with keys
	leaseGone   = 6 // not found
	leaseMoving = 7 // the leader has just lost leadership: ErrNotLeader
)

func (l *leaderKV) answer(msg any) any {
	l.got <- msg
	var id int64
	switch m := msg.(type) {
	case messages.LeaseKeepAlive:
		id = m.ID
	case messages.LeaseQuery:
		id = m.ID
	default:
		return messages.Result{Err: fmt.Errorf("the leader's kv actor got %T", msg)}
	}
	switch id {
	case leaseLive:
		res := granted(leaseLive, 30, 30)
		if q, ok := msg.(messages.LeaseQuery); ok {
			res = granted(leaseLive, 30, 21)
			if q.Keys {
				res.Lease.Keys = []string{"k", "\xff"}
			}
		}
		return res
	case leaseMoving:
		return messages.Result{Err: messages.ErrNotLeader}
	}
	return messages.Result{Err: messages.ErrLeaseNotFound}
}

// received returns what the leader's kv actor was asked so far: each
// request was recorded before it was answered, so before the answer
// reached the follower.
func (l *leaderKV) received() []any {
	var got []any
	for {
		select {
		case m := <-l.got:
			got = append(got, m)
		default:
			return got
		}
	}
}

// newLeader serves a peer API for cluster 0xabc over a scripted kv actor.
func newLeader(t *testing.T) (*httptest.Server, *leaderKV) {
	t.Helper()
	system := quietSystem(t)
	kv := &leaderKV{got: make(chan any, 16)}
	srv := httptest.NewServer(httpapi.NewPeerHandler(httpapi.PeerHandlerConfig{
		Root: system.Root, KV: scriptedActor(system, kv.answer), ClusterID: 0xabc}))
	t.Cleanup(srv.Close)
	return srv, kv
}

// TestLeaseHandedToTheLeader checks that a follower hands keep-alives and
// reads of a lease to the leader's peer API and answers as the leader did,
// and that the leader's peer API never hands them on (no loop).
func TestLeaseHandedToTheLeader(t *testing.T) {
	verifyNoLeaks(t)
	leader, lkv := newLeader(t)
	// A peer server that does not serve /leases/ (an older member, or one
	// that mounts fewer than httpapi.PeerPatterns).
	old := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(old.Close)
	// A leader nobody should ask.
	self := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("asked %s %s of a member that is itself the leader", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(self.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	follower := func(leaderURL string) (httpapi.HandlerConfig, messages.Status) {
		return httpapi.HandlerConfig{PeerClient: leader.Client(), ClusterID: 0xabc},
			messages.Status{ID: 1, Leader: 2, Members: map[uint64]string{1: "http://f:1", 2: leaderURL}}
	}
	notLeader := messages.Result{Err: messages.ErrNotLeader}
	keepAlive := func(id int64) []any { return msgs(messages.LeaseKeepAlive{ID: id}) }
	query := func(id int64, keys bool) []any { return msgs(messages.LeaseQuery{ID: id, Keys: keys}) }
	status := msgs(messages.StatusRequest{})

	type forwardCase struct {
		coordCase
		leaderURL  string
		wantLeader []any // what the leader's kv actor is asked
	}
	fc := func(name, method, path, leaderURL string, sent []any, status int, wantLeader []any) forwardCase {
		return forwardCase{coordCase: coordCase{apiCase: apiCase{name: name, method: method, path: path,
			kvReply: notLeader, wantStatus: status, wantKV: sent}}, leaderURL: leaderURL, wantLeader: wantLeader}
	}
	cases := []forwardCase{
		fc("keep-alive", "POST", "/v1/leases/5/keepalive", leader.URL, keepAlive(leaseLive), 200, keepAlive(leaseLive)),
		fc("read", "GET", "/v1/leases/5", leader.URL, query(leaseLive, false), 200, query(leaseLive, false)),
		fc("read with keys", "GET", "/v1/leases/5?keys=true", leader.URL, query(leaseLive, true), 200, query(leaseLive, true)),
		fc("keep-alive of a lease gone", "POST", "/v1/leases/6/keepalive", leader.URL, keepAlive(leaseGone), 404, keepAlive(leaseGone)),
		fc("read of a lease gone", "GET", "/v1/leases/6?keys=true", leader.URL, query(leaseGone, true), 404, query(leaseGone, true)),
		fc("the leader lost leadership: 503, not handed on", "POST", "/v1/leases/7/keepalive", leader.URL,
			keepAlive(leaseMoving), 503, keepAlive(leaseMoving)),
		fc("a leader without lease routes: 502, not a lease gone", "POST", "/v1/leases/5/keepalive", old.URL,
			keepAlive(leaseLive), 502, nil),
		fc("a leader that cannot be reached: 503", "GET", "/v1/leases/5", goneURL, query(leaseLive, false), 503, nil),
		fc("this member is the leader, its kv actor does not know yet: 503", "POST", "/v1/leases/5/keepalive", self.URL,
			keepAlive(leaseLive), 503, nil),
	}
	cases[0].wantJSON = `{"id":"5","ttl":30}`
	cases[1].wantJSON = `{"id":"5","granted_ttl":30,"ttl":21}`
	cases[2].wantJSON = `{"id":"5","granted_ttl":30,"ttl":21,"keys":[{"key":"k"},{"key_b64":"/w=="}]}`
	cases[3].wantContains = "requested lease not found"
	cases[4].wantContains = "requested lease not found"
	cases[5].wantContains = "not the leader"
	cases[6].wantContains = "the leader does not serve leases on its peer port"
	cases[7].wantContains = "no leader: retry later"
	cases[7].wantHeader = map[string]string{"Retry-After": "1"}
	cases[8].wantContains = "it has just been elected"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg, c.raftReply = follower(c.leaderURL)
			c.wantRaft = status
			if c.leaderURL == self.URL {
				c.raftReply = messages.Status{ID: 2, Leader: 2, Members: map[uint64]string{2: self.URL}}
			}
			f := newFixture(t, c.kvReply, c.raftReply, c.cfg)
			resp, body := f.doWithHeader(t, c.method, c.path, c.reqHeader, c.body, c.chunked)
			checkAnswer(t, f, c.apiCase, c.wantJSON, resp, body)
			if got := lkv.received(); !reflect.DeepEqual(got, c.wantLeader) {
				t.Errorf("the leader's kv actor got %#v, want %#v", got, c.wantLeader)
			}
		})
	}
}

// TestPeerLeaseRoutes covers the leader's side: the peer API answers as
// the client API does, in the peer API's text errors, for this cluster
// only, and answers ErrNotLeader 503 itself.
func TestPeerLeaseRoutes(t *testing.T) {
	verifyNoLeaks(t)
	leader, lkv := newLeader(t)
	peer := &fixture{url: leader.URL, client: leader.Client()}
	ours := hdr("X-Etcd-Cluster-ID", "abc")
	for _, c := range []struct {
		name, method, path string
		header             http.Header
		status             int
		body               string
		allow              string
		want               []any
	}{
		{"keep-alive", "POST", "/leases/5/keepalive", ours, 200, `{"id":"5","ttl":30}` + "\n", "",
			msgs(messages.LeaseKeepAlive{ID: leaseLive})},
		{"read with keys", "GET", "/leases/5?keys=true", ours, 200,
			`{"id":"5","granted_ttl":30,"ttl":21,"keys":[{"key":"k"},{"key_b64":"/w=="}]}` + "\n", "",
			msgs(messages.LeaseQuery{ID: leaseLive, Keys: true})},
		{"a lease gone", "GET", "/leases/6", ours, 404, "requested lease not found\n", "", msgs(messages.LeaseQuery{ID: leaseGone})},
		{"not the leader: 503, no second hop", "POST", "/leases/7/keepalive", ours, 503, "this member is not the leader\n", "",
			msgs(messages.LeaseKeepAlive{ID: leaseMoving})},
		{"another cluster: 412", "POST", "/leases/5/keepalive", hdr("X-Etcd-Cluster-ID", "def"), 412,
			"cluster ID mismatch: the request is for cluster \"def\", this member is in abc\n", "", nil},
		{"no cluster: 412", "GET", "/leases/5", nil, 412,
			"cluster ID mismatch: the request is for cluster \"\", this member is in abc\n", "", nil},
		{"GET a keep-alive: 405", "GET", "/leases/5/keepalive", ours, 405, "method not allowed; allowed: POST\n", "POST", nil},
		{"revoke is no peer route: 405", "DELETE", "/leases/5", ours, 405, "method not allowed; allowed: GET\n", "GET", nil},
		{"a bad id", "GET", "/leases/x", ours, 400,
			"bad request: a lease id is a decimal number from 1 to " + maxID + ", not \"x\"\n", "", nil},
		{"an unknown parameter", "GET", "/leases/5?bogus=1", ours, 400,
			"bad request: unknown parameter \"bogus\" for a lease read; it takes keys\n", "", nil},
		{"an unknown action", "POST", "/leases/5/renew", ours, 404, "not found\n", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := peer.doWithHeader(t, c.method, c.path, c.header, nil, false)
			if resp.StatusCode != c.status || body != c.body {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, body, c.status, c.body)
			}
			if got := resp.Header.Get("X-Etcd-Cluster-ID"); got != "abc" {
				t.Errorf("cluster id header %q, want abc", got)
			}
			if got := resp.Header.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
			if got := lkv.received(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("the kv actor got %#v, want %#v", got, c.want)
			}
		})
	}
}

// PeerPatterns names every path the peer API answers, so that a server
// mounting them serves the lease hand-off.
func TestPeerPatterns(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range httpapi.PeerPatterns() {
		mux.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	}
	for _, path := range []string{"/members", "/members/promote/4", "/leases/5", "/leases/5/keepalive"} {
		if _, pattern := mux.Handler(httptest.NewRequest("GET", "http://peer"+path, nil)); pattern == "" {
			t.Errorf("%s: no pattern of PeerPatterns matches it", path)
		}
	}
}
