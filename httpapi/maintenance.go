package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/raftkv/node/messages"
)

// defragmentPath rewrites the member's db compactly (messages.Defragment).
const defragmentPath = "/v1/maintenance/defragment"

// defragTimeout bounds a defragmentation: the copy of a large db takes
// minutes on a slow disk, and the member serves meanwhile, so waiting is
// cheap. The client's own deadline, if shorter, wins.
const defragTimeout = 10 * time.Minute

// defragmented is the answer to POST /v1/maintenance/defragment.
type defragmented struct {
	SizeBefore int64 `json:"size_before"`
	SizeAfter  int64 `json:"size_after"`
}

// serveDefragment answers POST /v1/maintenance/defragment once this
// member's db was rewritten; it serves every other request meanwhile.
func (h *handler) serveDefragment(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		refuseMethod(w, r, http.MethodPost)
		return
	}
	if !h.noParams(w, r) {
		return
	}
	a := h.actors()
	a.Timeout = defragTimeout
	ctx, cancel := context.WithTimeout(r.Context(), defragTimeout)
	defer cancel()
	reply, err := a.Ask(ctx, h.kv, messages.Defragment{})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	d, ok := reply.(messages.Defragmented)
	if !ok {
		h.fail(w, r, errAPINotWired, false)
		return
	}
	h.writeJSON(w, r, defragmented{SizeBefore: d.SizeBefore, SizeAfter: d.SizeAfter})
}
