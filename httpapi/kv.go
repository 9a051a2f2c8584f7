package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/raftkv/node/messages"
)

// Headers of the key answers: the store's revision on every one, and a
// key's other counters next to its ETag (its mod_revision) on a read.
const (
	hdrRevision       = "Raftkv-Revision"
	hdrCreateRevision = "Raftkv-Create-Revision"
	hdrVersion        = "Raftkv-Version"
)

// writeBody is the JSON answer to a /v1/kv write: the applied index that
// contains it, which a client can compare with /v1/status, and the
// revision that wrote it (the store's, for a write that changed nothing);
// a delete says how many keys it removed.
type writeBody struct {
	Index    uint64 `json:"index"`
	Revision uint64 `json:"revision"`
	Deleted  *int   `json:"deleted,omitempty"`
}

// serveKV serves /v1/kv/<key>, where the dialect names the key.
func (h *handler) serveKV(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		key, err := h.dialect.kvKey(r)
		if err != nil {
			h.fail(w, r, err, false)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			h.fail(w, r, fmt.Errorf("%w: malformed query string: %w", messages.ErrBadRequest, err), false)
			return
		}
		if key == "" || q.Has("end") || q.Has("prefix") {
			h.serveRange(w, r, key, q)
			return
		}
		h.getKey(w, r, key, true)
	case http.MethodPut:
		key, err := h.dialect.kvKey(r)
		if err != nil {
			h.fail(w, r, err, true)
			return
		}
		h.putKey(w, r, key, http.StatusOK, queryLease)
	case http.MethodDelete:
		h.serveDelete(w, r)
	default:
		refuseMethod(w, r, h.dialect.kvMethods())
	}
}

// rangeOnlyParams are the range read's parameters that mean nothing for
// one key; refused with a reason of their own, since a client giving them
// most likely meant a range.
var rangeOnlyParams = []string{"limit", "continue", "keys_only", "count_only"}

// getKey answers the raw value, so that GET through either route family
// returns byte for byte what was PUT; the key's revisions go in headers.
// params says whether the query string holds parameters; where it is part
// of the key, reads are linearizable.
func (h *handler) getKey(w http.ResponseWriter, r *http.Request, key string, params bool) {
	if err := messages.CheckKey(key); err != nil {
		h.fail(w, r, err, false)
		return
	}
	var msg any = messages.Get{Key: key}
	if params {
		get, err := parseGet(key, r.URL.RawQuery)
		if err != nil {
			h.fail(w, r, err, false)
			return
		}
		msg = get
	}
	res, err := h.askKV(msg)
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	if _, ok := msg.(messages.Range); ok {
		if len(res.Results) != 1 {
			// Without the range, a 404 would be a guess.
			h.fail(w, r, fmt.Errorf("kv actor answered a range with %d results", len(res.Results)), false)
			return
		}
		res.Found = len(res.Results[0].KVs) == 1
		if res.Found {
			res.KV = res.Results[0].KVs[0]
			res.Value = res.KV.Value
		}
	}
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	if !res.Found {
		h.fail(w, r, messages.ErrNotFound, false)
		return
	}
	setKeyHeaders(w, res.KV)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Value)
}

// parseGet reads the parameters of a read of one key: a messages.Get, or a
// messages.Range of the key alone for a read at a past revision.
func parseGet(key, rawQuery string) (any, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed query string: %w", messages.ErrBadRequest, err)
	}
	for _, p := range rangeOnlyParams {
		if q.Has(p) {
			return nil, fmt.Errorf("%w: %s applies to range reads (end= or prefix=), not to one key", messages.ErrBadRequest, p)
		}
	}
	if err := unknownParam(q, "a read of one key", "consistency", "revision"); err != nil {
		return nil, err
	}
	serializable, err := parseConsistency(q)
	if err != nil {
		return nil, err
	}
	rev, err := parseRevision(q)
	if err != nil {
		return nil, err
	}
	if rev != 0 {
		// The key as it was then: a range of one key.
		return messages.Range{Start: key, Revision: rev, Serializable: serializable}, nil
	}
	return messages.Get{Key: key, Serializable: serializable}, nil
}

func setKeyHeaders(w http.ResponseWriter, kv messages.KV) {
	w.Header().Set("ETag", etag(kv.ModRevision))
	w.Header().Set(hdrCreateRevision, strconv.FormatUint(kv.CreateRevision, 10))
	w.Header().Set(hdrVersion, strconv.FormatUint(kv.Version, 10))
}

func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// putQuery is what the query string of a PUT holds.
type putQuery uint8

const (
	queryIsKey putQuery = iota // part of the key: raftexample's /<key> in its format
	queryNone                  // no parameters: raftexample's /<key> in the native format, as raftexample takes none
	queryLease                 // lease=<id>: /v1/kv/<key>
)

// putKey answers okStatus on success: 200 with the index and revision on
// /v1/kv, 204 on the raftexample route whose clients expect no body. Both
// take If-Match and If-None-Match; query says which parameters the route
// takes.
func (h *handler) putKey(w http.ResponseWriter, r *http.Request, key string, okStatus int, query putQuery) {
	if err := messages.CheckKey(key); err != nil {
		h.fail(w, r, err, true)
		return
	}
	var lease int64
	if query != queryIsKey {
		var known []string
		if query == queryLease {
			known = []string{"lease"}
		}
		q, err := queryParams(r.URL.RawQuery, "a PUT", known...)
		if err == nil {
			lease, err = parseLeaseParam(q)
		}
		if err == nil && lease != 0 {
			err = h.dialect.checkLeases()
		}
		if err != nil {
			h.fail(w, r, err, true)
			return
		}
	}
	conds, err := parsePreconditions(r.Header, key)
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	value, ok := h.readBody(w, r)
	if !ok {
		return
	}
	if err := h.dialect.checkPut(key, value); err != nil {
		h.fail(w, r, err, true)
		return
	}
	if conds != nil {
		h.conditionalWrite(w, r, key, conds, messages.TxnOp{Type: messages.OpPut, Key: key, Value: value, Lease: lease}, okStatus)
		return
	}
	res, err := h.askKV(messages.Put{Key: key, Value: value, Lease: lease})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	h.writeWritten(w, r, res, okStatus)
}

// writeWritten answers a PUT that applied: 204 with the revision header
// alone, or the index and revision.
func (h *handler) writeWritten(w http.ResponseWriter, r *http.Request, res messages.Result, okStatus int) {
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	if okStatus == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The answer to every write, so written by hand rather than by
	// encoding/json (reflection and a buffer per answer); it is the bytes
	// json.Encoder makes of writeBody (TestWrittenBodyIsJSONs).
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(appendWritten(make([]byte, 0, 64), res.Index, res.Revision))
}

// appendWritten appends writeBody{Index: index, Revision: rev} as JSON, with
// json.Encoder's newline.
func appendWritten(b []byte, index, rev uint64) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, `,"revision":`...)
	b = strconv.AppendUint(b, rev, 10)
	return append(b, "}\n"...)
}

// serveDelete serves DELETE /v1/kv/<key>: the key, or with prefix=true or
// end=E the keys of a range, all at one revision.
func (h *handler) serveDelete(w http.ResponseWriter, r *http.Request) {
	// A format without delete refuses the method whatever the key.
	if err := h.dialect.checkDelete(); err != nil {
		h.fail(w, r, err, true)
		return
	}
	key, err := h.dialect.kvKey(r)
	if err == nil {
		err = messages.CheckKey(key)
	}
	var q url.Values
	if err == nil {
		q, err = queryParams(r.URL.RawQuery, "a DELETE", "prefix", "end")
	}
	var end string
	if err == nil {
		end, err = h.deleteEnd(key, r.URL.RawQuery, q)
	}
	var conds []messages.Compare
	if err == nil {
		conds, err = parsePreconditions(r.Header, key)
	}
	if err == nil && end != "" && conds != nil {
		err = fmt.Errorf("%w: If-Match and If-None-Match name a revision of one key; a range delete takes neither", messages.ErrBadRequest)
	}
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	switch {
	case end != "":
		h.deleteRange(w, r, key, end)
	case conds != nil:
		h.conditionalWrite(w, r, key, conds, messages.TxnOp{Type: messages.OpDelete, Key: key}, http.StatusOK)
	default:
		res, err := h.askKV(messages.Delete{Key: key})
		if err != nil {
			h.fail(w, r, err, true)
			return
		}
		h.writeDeleted(w, r, res)
	}
}

// deleteEnd is the end of the range a DELETE removes: "" for the path's
// key alone, "\x00" for every key from it on.
func (h *handler) deleteEnd(key, rawQuery string, q url.Values) (string, error) {
	prefix, err := exactBool(q, "prefix")
	if err != nil {
		return "", err
	}
	switch {
	case prefix && q.Has("end"):
		return "", fmt.Errorf("%w: give prefix=true or end=, not both", messages.ErrBadRequest)
	case prefix:
		return prefixEnd(key), nil
	case q.Has("end"):
		e := q.Get("end")
		if e == "" || e == "\x00" {
			return "\x00", nil
		}
		end := h.dialect.rangeKey(rawParam(rawQuery, "end"), e)
		return end, checkBound("end", end)
	}
	return "", nil
}

// deleteRange removes the keys in [start, end) as a transaction of one
// delete, so that they go at one revision (one raft entry), as etcd's
// DeleteRange does, and the answer counts them.
func (h *handler) deleteRange(w http.ResponseWriter, r *http.Request, start, end string) {
	res, err := h.askKV(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpDelete, Key: start, End: end}}})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	// A transaction without compares runs its success branch: any other
	// answer cannot say what was deleted.
	if !res.Succeeded || len(res.Results) != 1 {
		h.fail(w, r, fmt.Errorf("kv actor answered a range delete with succeeded %v and %d results", res.Succeeded, len(res.Results)), true)
		return
	}
	h.writeDeleted(w, r, res)
}

// writeDeleted answers a delete: how many keys it removed.
func (h *handler) writeDeleted(w http.ResponseWriter, r *http.Request, res messages.Result) {
	n := 0
	if len(res.Results) > 0 {
		n = res.Results[0].Deleted
	}
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	h.writeJSON(w, r, writeBody{Index: res.Index, Revision: res.Revision, Deleted: &n})
}

// conditionalWrite runs op if conds hold, as a transaction whose other
// branch reads the key, so that a refusal can say where the key is.
// okStatus is putKey's.
func (h *handler) conditionalWrite(w http.ResponseWriter, r *http.Request, key string, conds []messages.Compare, op messages.TxnOp, okStatus int) {
	res, err := h.askKV(messages.Txn{
		Compares: conds,
		Success:  []messages.TxnOp{op},
		Failure:  []messages.TxnOp{{Type: messages.OpGet, Key: key}},
	})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	// Either branch has one operation: without its result, a refusal could
	// not say where the key is, and a 412 must be certain.
	if len(res.Results) != 1 {
		h.fail(w, r, fmt.Errorf("kv actor answered %d results for 1 operation", len(res.Results)), true)
		return
	}
	if res.Succeeded {
		if op.Type == messages.OpDelete {
			h.writeDeleted(w, r, res)
			return
		}
		h.writeWritten(w, r, res, okStatus)
		return
	}
	var cur messages.KV
	found := len(res.Results[0].KVs) == 1
	reason := "precondition failed: the key does not exist"
	if found {
		cur = res.Results[0].KVs[0]
		setKeyHeaders(w, cur)
		reason = fmt.Sprintf("precondition failed: the key exists, at mod_revision %d", cur.ModRevision)
	}
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	writeError(w, r, errorBody{
		Error:       errorDetail{Code: http.StatusPreconditionFailed, Message: reason},
		Revision:    &res.Revision,
		ModRevision: &cur.ModRevision,
	})
}
