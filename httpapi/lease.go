package httpapi

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/messages"
)

// The lease routes (docs/api.md, "Leases"), with etcd's semantics:
//
//   - POST /v1/leases {"ttl":T} or {"id":"N","ttl":T}: grant;
//   - GET /v1/leases: list;
//   - GET /v1/leases/<id>[?keys=true]: TTL granted and remaining, keys;
//   - DELETE /v1/leases/<id>: revoke, deleting the keys at one revision;
//   - POST /v1/leases/<id>/keepalive: renew.
//
// Grants and revocations are raft entries, proposed from any member. Only
// the leader keeps deadlines, so a keep-alive or a read of the remaining
// TTL on a follower (the kv actor answers ErrNotLeader) is handed to the
// leader's peer API (askLeader), which answers it as this API does and
// never hands it on again.
const (
	leasesPath      = "/v1/leases"
	leasesPrefix    = leasesPath + "/"
	keepAliveAction = "keepalive"
	leasesMethods   = "GET, POST"
	leaseMethods    = "GET, DELETE"
)

// maxLeaseID is the largest lease id: ids are etcd's, int64 above 0.
const maxLeaseID = math.MaxInt64

// grantBody is the body of POST /v1/leases. TTL is a pointer so that a
// body without one is refused rather than granted the minimum.
type grantBody struct {
	ID  *leaseID `json:"id"`
	TTL *int64   `json:"ttl"`
}

// leaseTTL answers a grant (the TTL granted) and a keep-alive (the TTL
// left, which a keep-alive resets to the TTL granted). The id is a string,
// as everywhere in the API (messages/json.go).
type leaseTTL struct {
	ID  int64 `json:"id,string"`
	TTL int64 `json:"ttl"`
}

// revokeAnswer answers a revocation: the revision of the keys' deletes, or
// the store's when the lease had no keys.
type revokeAnswer struct {
	Revision uint64 `json:"revision"`
}

// leaseID is a lease id in a request body: a JSON number, or a string of
// its decimal digits, which is how this API writes ids (and etcd's JSON
// gateway int64s), since a JavaScript client cannot hold every id as a
// number. 0 is a valid value here: a grant's "member chooses", a put's
// "no lease".
type leaseID int64

// UnmarshalJSON takes an integer from 0 to maxLeaseID, as a number or a
// string; a fraction, an exponent, a sign or anything else is refused
// rather than rounded into another lease's id.
func (id *leaseID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		unq, err := strconv.Unquote(s)
		if err != nil {
			return fmt.Errorf("lease id %s: %w", cutText(s), err)
		}
		s = unq
	}
	v, ok := parseLeaseDigits(s)
	if !ok {
		return fmt.Errorf("a lease id is an integer from 0 to %d, as a JSON number or a string of its digits, not %s",
			int64(maxLeaseID), cutText(string(b)))
	}
	*id = leaseID(v)
	return nil
}

// parseLeaseDigits reads decimal digits, nothing else, into an id from 0
// to maxLeaseID: strconv alone would take a sign.
func parseLeaseDigits(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// parseLeaseID reads the id of a path: 1 to maxLeaseID, in decimal.
func parseLeaseID(s string) (int64, error) {
	id, ok := parseLeaseDigits(s)
	if !ok || id == 0 {
		return 0, fmt.Errorf("%w: a lease id is a decimal number from 1 to %d, not %s", messages.ErrBadRequest, int64(maxLeaseID), echo(s))
	}
	return id, nil
}

// parseLeaseParam reads a PUT's lease= parameter: 0 when absent. lease=0
// is "no lease", as etcd's put takes it, so that a client can pass an id
// it may not have; anything else must be an id.
func parseLeaseParam(q url.Values) (int64, error) {
	if !q.Has("lease") {
		return 0, nil
	}
	v := q.Get("lease")
	id, ok := parseLeaseDigits(v)
	if !ok {
		return 0, fmt.Errorf("%w: lease must be a lease id (a decimal number; 0 for none), not %s", messages.ErrBadRequest, echo(v))
	}
	return id, nil
}

// serveLeases serves /v1/leases and every path under it.
func (h *handler) serveLeases(w http.ResponseWriter, r *http.Request) {
	// A format without leases refuses every lease route, whatever the
	// method: nothing there could be served.
	if err := h.dialect.checkLeases(); err != nil {
		h.fail(w, r, err, r.Method != http.MethodGet)
		return
	}
	rest, item := strings.CutPrefix(r.URL.Path, leasesPrefix)
	if !item {
		switch r.Method {
		case http.MethodGet:
			if h.noParams(w, r) {
				h.listLeases(w, r)
			}
		case http.MethodPost:
			if h.noParams(w, r) {
				h.grantLease(w, r)
			}
		default:
			refuseMethod(w, r, leasesMethods)
		}
		return
	}
	req, ok := h.leaseRequest(w, r, rest, leaseMethods)
	if !ok {
		return
	}
	switch {
	case req.keepAlive:
		h.keepAlive(w, r, req.id, true)
	case r.Method == http.MethodGet:
		h.queryLease(w, r, req.id, req.keys, true)
	default:
		h.revokeLease(w, r, req.id)
	}
}

// leaseReq is a request about one lease: <id> or <id>/keepalive, under
// /v1/leases/ or the peer API's /leases/.
type leaseReq struct {
	id        int64
	keepAlive bool
	keys      bool // a read's keys=true
}

// leaseRequest reads a request about one lease; rest is the path after
// the routes' prefix, allow the methods of the lease itself (the
// keep-alive takes POST). On failure it has answered the client.
func (h *handler) leaseRequest(w http.ResponseWriter, r *http.Request, rest, allow string) (leaseReq, bool) {
	idText, action, _ := strings.Cut(rest, "/")
	var req leaseReq
	switch action {
	case "":
	case keepAliveAction:
		req.keepAlive, allow = true, "POST"
	default:
		notFound(w, r)
		return req, false
	}
	if !slices.Contains(strings.Split(allow, ", "), r.Method) {
		refuseMethod(w, r, allow)
		return req, false
	}
	route, known := "a keep-alive", []string(nil)
	switch {
	case req.keepAlive:
	case r.Method == http.MethodGet:
		route, known = "a lease read", []string{"keys"}
	default:
		route = "a revoke"
	}
	q, err := queryParams(r.URL.RawQuery, route, known...)
	if err == nil {
		req.keys, err = exactBool(q, "keys")
	}
	if err == nil {
		req.id, err = parseLeaseID(idText)
	}
	if err != nil {
		h.fail(w, r, err, false)
		return req, false
	}
	return req, true
}

// grantLease serves POST /v1/leases. A TTL under the member's minimum is
// raised by the kv actor, and the answer says what was granted; one over
// the maximum is refused here.
func (h *handler) grantLease(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var gb grantBody
	err := decodeBody(body, &gb)
	switch {
	case err != nil:
		err = fmt.Errorf(`%w: a grant's body is JSON {"ttl": seconds} or {"id": "N", "ttl": seconds}: %w`, messages.ErrBadRequest, err)
	case gb.TTL == nil:
		err = fmt.Errorf(`%w: a grant takes "ttl", in seconds`, messages.ErrBadRequest)
	case *gb.TTL < 1:
		err = fmt.Errorf("%w: ttl must be 1 second or more, not %d", messages.ErrBadRequest, *gb.TTL)
	case *gb.TTL > messages.MaxLeaseTTL:
		err = fmt.Errorf("%w: %d seconds, at most %d", messages.ErrLeaseTTLTooLarge, *gb.TTL, int64(messages.MaxLeaseTTL))
	}
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	var id int64
	if gb.ID != nil {
		id = int64(*gb.ID)
	}
	res, err := h.askKV(messages.LeaseGrant{ID: id, TTL: *gb.TTL})
	if err == nil {
		err = answeredLease(res, "a grant")
	}
	if err == nil && res.Lease.ID <= 0 {
		err = fmt.Errorf("the state machine granted lease id %d", res.Lease.ID)
	}
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	h.writeJSON(w, r, leaseTTL{ID: res.Lease.ID, TTL: res.Lease.TTL})
}

// answeredLease checks that a lease request's Result holds the lease: an
// answer without it cannot say what was granted or how long is left.
func answeredLease(res messages.Result, what string) error {
	if res.Lease == nil {
		return fmt.Errorf("the state machine answered %s with no lease", what)
	}
	return nil
}

// listLeases serves GET /v1/leases: every lease the applied state holds,
// with its TTL granted (the remaining TTL is the leader's to say, per
// lease), in id order.
func (h *handler) listLeases(w http.ResponseWriter, r *http.Request) {
	res, err := h.askKV(messages.LeaseList{})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	// Sorted here, on a copy of the actor's answer, so that the order is
	// the API's promise whatever order the store keeps.
	leases := slices.SortedFunc(slices.Values(res.Leases), func(a, b messages.Lease) int { return cmp.Compare(a.ID, b.ID) })
	b := []byte(`{"leases":[`)
	for i, l := range leases {
		if i > 0 {
			b = append(b, ',')
		}
		l.Remaining = -1 // not known: left out
		b = l.AppendJSON(b, false)
	}
	writeJSONBytes(w, append(b, "]}\n"...))
}

// revokeLease serves DELETE /v1/leases/<id>.
func (h *handler) revokeLease(w http.ResponseWriter, r *http.Request, id int64) {
	res, err := h.askKV(messages.LeaseRevoke{ID: id})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	h.writeJSON(w, r, revokeAnswer{Revision: res.Revision})
}

// keepAlive renews lease id. forward says whether a follower hands it to
// the leader: the client API does, the peer API (which is that hand-off)
// does not, so that a request is handed on once at most.
func (h *handler) keepAlive(w http.ResponseWriter, r *http.Request, id int64, forward bool) {
	res, err := h.askKV(messages.LeaseKeepAlive{ID: id})
	if forward && errors.Is(err, messages.ErrNotLeader) {
		h.leaseAtLeader(w, r, "keep the lease alive", http.MethodPost,
			peerLeasesPrefix+strconv.FormatInt(id, 10)+"/"+keepAliveAction)
		return
	}
	if err == nil {
		err = answeredLease(res, "a keep-alive")
	}
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	h.writeJSON(w, r, leaseTTL{ID: res.Lease.ID, TTL: res.Lease.Remaining})
}

// queryLease reads lease id, with its keys when keys is set; forward is
// keepAlive's.
func (h *handler) queryLease(w http.ResponseWriter, r *http.Request, id int64, keys, forward bool) {
	res, err := h.askKV(messages.LeaseQuery{ID: id, Keys: keys})
	if forward && errors.Is(err, messages.ErrNotLeader) {
		target := peerLeasesPrefix + strconv.FormatInt(id, 10)
		if keys {
			target += "?keys=true"
		}
		h.leaseAtLeader(w, r, "read the lease", http.MethodGet, target)
		return
	}
	if err == nil {
		err = answeredLease(res, "a lease read")
	}
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	writeJSONBytes(w, append(res.Lease.AppendJSON(nil, keys), '\n'))
}

// leaseAtLeader answers with the leader's answer to a lease request that
// this member, a follower, cannot answer.
func (h *handler) leaseAtLeader(w http.ResponseWriter, r *http.Request, what, method, target string) {
	body, err := h.askLeader(r, what, method, target)
	var remote *door.RemoteError
	if errors.As(err, &remote) && remote.Status == http.StatusNotFound &&
		!strings.Contains(remote.Body, messages.ErrLeaseNotFound.Error()) {
		// A leader whose peer port does not serve /leases/ (an older
		// version, or a server that does not mount PeerPatterns) answers
		// 404 too: passed on, the client would take its lease for gone.
		err = &door.RemoteError{Status: http.StatusBadGateway,
			Body: "the leader does not serve leases on its peer port (it answered 404: " + cutText(remote.Body) + ")"}
	}
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	writeJSONBytes(w, body)
}

// servePeerLease serves the peer API's lease routes for the member of
// cluster id (hex).
func (h *handler) servePeerLease(w http.ResponseWriter, r *http.Request, cluster string) {
	req, ok := h.leaseRequest(w, r, strings.TrimPrefix(r.URL.Path, peerLeasesPrefix), getOnly)
	if !ok || !sameCluster(w, r, cluster) {
		return
	}
	if req.keepAlive {
		h.keepAlive(w, r, req.id, false)
		return
	}
	h.queryLease(w, r, req.id, req.keys, false)
}

// writeJSONBytes answers 200 with b, JSON already encoded.
func writeJSONBytes(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
