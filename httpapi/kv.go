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
		key, ok := h.kvKey(w, r)
		if !ok {
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			http.Error(w, "malformed query string: "+oneLine(err.Error()), http.StatusBadRequest)
			return
		}
		if key == "" || q.Has("end") || q.Has("prefix") {
			h.serveRange(w, r, key, q)
			return
		}
		h.getKey(w, r, key, true)
	case http.MethodPut:
		if key, ok := h.kvKey(w, r); ok {
			h.putKey(w, r, key, http.StatusOK)
		}
	case http.MethodDelete:
		// A format without delete refuses the method whatever the key.
		if err := h.dialect.checkDelete(); err != nil {
			h.fail(w, r, err, true)
			return
		}
		if key, ok := h.kvKey(w, r); ok {
			h.deleteKey(w, r, key)
		}
	default:
		methodNotAllowed(w, h.dialect.kvMethods())
	}
}

// kvKey answers 400 itself when the path cannot name a key.
func (h *handler) kvKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key, err := h.dialect.kvKey(r)
	if err != nil {
		http.Error(w, oneLine(err.Error()), http.StatusBadRequest)
		return "", false
	}
	return key, true
}

// getKey answers the raw value, so that GET through either route family
// returns byte for byte what was PUT; the key's revisions go in headers.
// params says whether the query string holds parameters; where it is part
// of the key, reads are linearizable.
func (h *handler) getKey(w http.ResponseWriter, r *http.Request, key string, params bool) {
	if !checkKey(w, key) {
		return
	}
	var msg any = messages.Get{Key: key}
	if params {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			http.Error(w, "malformed query string: "+oneLine(err.Error()), http.StatusBadRequest)
			return
		}
		serializable, err := parseConsistency(q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, p := range []string{"limit", "continue", "keys_only", "count_only"} {
			if q.Has(p) {
				http.Error(w, p+" applies to range reads (end= or prefix=), not to one key", http.StatusBadRequest)
				return
			}
		}
		rev, err := parseRevision(q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msg = messages.Get{Key: key, Serializable: serializable}
		if rev != 0 {
			// The key as it was then: a range of one key.
			msg = messages.Range{Start: key, Revision: rev, Serializable: serializable}
		}
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

func setKeyHeaders(w http.ResponseWriter, kv messages.KV) {
	w.Header().Set("ETag", etag(kv.ModRevision))
	w.Header().Set(hdrCreateRevision, strconv.FormatUint(kv.CreateRevision, 10))
	w.Header().Set(hdrVersion, strconv.FormatUint(kv.Version, 10))
}

func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// putKey answers okStatus on success: 200 with the index and revision on
// /v1/kv, 204 on the raftexample route whose clients expect no body (and
// which takes no preconditions).
func (h *handler) putKey(w http.ResponseWriter, r *http.Request, key string, okStatus int) {
	if !checkKey(w, key) {
		return
	}
	var conds []messages.Compare
	if okStatus != http.StatusNoContent {
		var err error
		if conds, err = parsePreconditions(r.Header, key); err != nil {
			http.Error(w, oneLine(err.Error()), http.StatusBadRequest)
			return
		}
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
		h.conditionalWrite(w, r, key, conds, messages.TxnOp{Type: messages.OpPut, Key: key, Value: value})
		return
	}
	res, err := h.askKV(messages.Put{Key: key, Value: value})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
	if okStatus == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.writeJSON(w, r, writeBody{Index: res.Index, Revision: res.Revision})
}

func (h *handler) deleteKey(w http.ResponseWriter, r *http.Request, key string) {
	if !checkKey(w, key) {
		return
	}
	conds, err := parsePreconditions(r.Header, key)
	if err != nil {
		http.Error(w, oneLine(err.Error()), http.StatusBadRequest)
		return
	}
	if conds != nil {
		h.conditionalWrite(w, r, key, conds, messages.TxnOp{Type: messages.OpDelete, Key: key})
		return
	}
	res, err := h.askKV(messages.Delete{Key: key})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	h.writeDeleted(w, r, res)
}

// writeDeleted answers a delete: how many keys it removed (0 or 1).
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
func (h *handler) conditionalWrite(w http.ResponseWriter, r *http.Request, key string, conds []messages.Compare, op messages.TxnOp) {
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
		w.Header().Set(hdrRevision, strconv.FormatUint(res.Revision, 10))
		h.writeJSON(w, r, writeBody{Index: res.Index, Revision: res.Revision})
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
	h.writeJSONStatus(w, r, http.StatusPreconditionFailed, preconditionBody{Error: reason, Revision: res.Revision, ModRevision: cur.ModRevision})
}

// preconditionBody is the answer to a conditional write that did not
// apply: the store's revision and the key's mod_revision (0: absent).
type preconditionBody struct {
	Error       string `json:"error"`
	Revision    uint64 `json:"revision"`
	ModRevision uint64 `json:"mod_revision"`
}

func checkKey(w http.ResponseWriter, key string) bool {
	if key == "" {
		http.Error(w, "empty key", http.StatusBadRequest)
		return false
	}
	return true
}

// parseConsistency reads the consistency parameter. Unknown values are
// refused rather than ignored: a typo must not silently weaken a read.
func parseConsistency(q url.Values) (serializable bool, err error) {
	switch c := q.Get("consistency"); c {
	case "", "linearizable":
		return false, nil
	case "serializable":
		return true, nil
	default:
		return false, fmt.Errorf("consistency must be linearizable or serializable, not %q", c)
	}
}

// parseRevision reads the revision parameter: 0 when absent.
func parseRevision(q url.Values) (uint64, error) {
	if !q.Has("revision") {
		return 0, nil
	}
	rev, err := strconv.ParseUint(q.Get("revision"), 10, 64)
	if err != nil || rev == 0 {
		return 0, fmt.Errorf("revision must be a revision from 1 up, not %q", q.Get("revision"))
	}
	return rev, nil
}
