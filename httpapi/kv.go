package httpapi

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/raftkv/node/messages"
)

// indexBody is the JSON answer to a /v1/kv write: the applied index that
// contains it, which a client can compare with /v1/status.
type indexBody struct {
	Index uint64 `json:"index"`
}

// serveKV serves /v1/kv/<key>, where the dialect names the key.
func (h *handler) serveKV(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		if key, ok := h.kvKey(w, r); ok {
			h.getKey(w, r, key, true)
		}
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

// kvKey answers 400 itself when the path names no key.
func (h *handler) kvKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key, err := h.dialect.kvKey(r)
	if err != nil {
		http.Error(w, oneLine(err.Error()), http.StatusBadRequest)
		return "", false
	}
	return key, true
}

// getKey answers the raw value, so that GET through either route family
// returns byte for byte what was PUT. params says whether the query string
// holds parameters; where it is part of the key, reads are linearizable.
func (h *handler) getKey(w http.ResponseWriter, r *http.Request, key string, params bool) {
	if !checkKey(w, key) {
		return
	}
	serializable := false
	if params {
		var err error
		if serializable, err = parseConsistency(r.URL.RawQuery); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	res, err := h.askKV(messages.Get{Key: key, Serializable: serializable})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	if !res.Found {
		h.fail(w, r, messages.ErrNotFound, false)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Value)
}

// putKey answers okStatus on success: 200 with the index on /v1/kv, 204 on the
// raftexample route whose clients expect no body.
func (h *handler) putKey(w http.ResponseWriter, r *http.Request, key string, okStatus int) {
	if !checkKey(w, key) {
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
	res, err := h.askKV(messages.Put{Key: key, Value: value})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	if okStatus == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.writeJSON(w, r, indexBody{Index: res.Index})
}

func (h *handler) deleteKey(w http.ResponseWriter, r *http.Request, key string) {
	if !checkKey(w, key) {
		return
	}
	res, err := h.askKV(messages.Delete{Key: key})
	if err != nil {
		h.fail(w, r, err, true)
		return
	}
	h.writeJSON(w, r, indexBody{Index: res.Index})
}

func checkKey(w http.ResponseWriter, key string) bool {
	if key == "" {
		http.Error(w, "empty key", http.StatusBadRequest)
		return false
	}
	return true
}

// parseConsistency parses the consistency query parameter. Unknown values are
// refused rather than ignored: a typo must not silently weaken a read.
func parseConsistency(rawQuery string) (bool, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return false, fmt.Errorf("malformed query string: %w", err)
	}
	switch c := q.Get("consistency"); c {
	case "", "linearizable":
		return false, nil
	case "serializable":
		return true, nil
	default:
		return false, fmt.Errorf("consistency must be linearizable or serializable, not %q", c)
	}
}
