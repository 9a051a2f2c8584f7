package httpapi

import (
	"net/http"

	"github.com/raftkv/node/messages"
)

// serveDigest answers GET /v1/digest with the state's digest and the index
// it was taken at. Two members at the same index must answer the same sum.
func (h *handler) serveDigest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		refuseMethod(w, r, getOnly)
		return
	}
	if !h.noParams(w, r) {
		return
	}
	reply, err := h.ask(h.kv, messages.DigestRequest{})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	d, ok := reply.(messages.Digest)
	if !ok {
		h.fail(w, r, errAPINotWired, false)
		return
	}
	h.writeJSON(w, r, d)
}
